"""Judge runs: every output of the selected candidates on a frozen version (pointwise), or every pair of
candidates on the same items (pairwise), one judgment per criterion; resumable and cached.

A judge run is identified by what makes its verdicts comparable: version × rubric version × judge model ×
template × mode (× structured-output mode). Running the same command again resumes that run and judges only
the units it does not hold yet; the gateway's cache makes a repeated request free. Judgments are written in
small batches as they arrive, so an interrupted run keeps what it paid for.
"""
from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Callable

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway.client import Gateway, ModelConfig
from judging.checks import CHECK_JUDGE, CHECKS_VERSION, run_check
from judging.judge import Judge, Outcome
from judging.prompt import load_template
from judging.rubric import Rubric, store_rubric
from judging.selection import items_of, select_runs, version_label  # callers import them from here too
from storage.db import session_scope
from storage.errors import InputError
from storage.jobs import cancel_requested, update_job
from storage.models import Candidate, EvalSetVersion, JudgeRun, Judgment, Output, Run, utcnow

FLUSH_EVERY_S = 0.5
FLUSH_ROWS = 200
JOB_POLL_S = 1.0


@dataclass(frozen=True)
class Unit:
    """One judgment to make: a criterion on an output (pointwise) or on an ordered pair (pairwise)."""

    criterion_id: str
    item_id: int
    output_id: int
    output_b_id: int | None
    conversation: list
    reference: str | None
    text: str
    text_b: str | None = None
    latency_ms: float | None = None  # the output's, for `max_latency_ms` checks
    cost_usd: float | None = None  # the output's, for `max_cost` checks

    @property
    def key(self) -> tuple[str, int, int | None]:
        return (self.criterion_id, self.output_id, self.output_b_id)


@dataclass
class Progress:
    total: int  # units in this run's plan
    already: int = 0  # judged before this invocation (resume)
    done: int = 0  # judged now
    scored: int = 0
    unscored: int = 0
    spend_usd: float = 0.0
    calls: int = 0
    started: float = field(default_factory=time.perf_counter)

    @property
    def remaining(self) -> int:
        return self.total - self.already - self.done


@dataclass
class JudgeRequest:
    """Everything `ownbench judge` (or the app) asks for."""

    version_id: int  # resolved and verified by the caller (`evalsets.freeze.resolve_version`)
    rubric: Rubric
    judge: ModelConfig
    mode: str = "pointwise"
    structured: str = "tools"
    candidates: list[str] | None = None
    criteria: list[str] | None = None
    limit: int | None = None
    max_retries: int = 2
    use_cache: bool = True
    new_run: bool = False
    retry_unscored: bool = False
    job_id: int | None = None
    template: str | None = None  # a shipped template by name (pointwise_compact) or a file; default: the mode's


@dataclass
class JudgeSummary:
    judge_run_id: int
    version: str
    rubric: str
    judge_model: str
    mode: str
    resumed: bool
    status: str
    status_reason: str | None
    total: int
    already: int
    judged: int
    scored: int
    unscored: int
    spend_usd: float
    skipped: dict[str, int]
    unscored_reasons: dict[str, int]
    seconds: float
    unscored_in_run: int = 0  # units of the whole run (this invocation and earlier ones) whose latest is unscored

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


# --- planning ----------------------------------------------------------------------------------------------


def plan_units(
    session: Session,
    version: EvalSetVersion,
    rubric: Rubric,
    selected: list[tuple[Candidate, Run]],
    *,
    mode: str,
    criteria: list[str] | None,
    limit: int | None,
) -> tuple[list[Unit], Counter]:
    """Every unit to judge, in item order, and what was skipped (no output text, no reference)."""
    crits = [rubric.criterion(c) for c in criteria] if criteria else list(rubric.criteria)
    items = items_of(session, version)
    if limit is not None:
        items = items[:limit]
    run_ids = [run.id for _, run in selected]
    outputs: dict[tuple[int, int], Output] = {
        (o.run_id, o.item_id): o
        for o in session.exec(select(Output).where(Output.run_id.in_(run_ids)))  # type: ignore[union-attr]
    }
    units: list[Unit] = []
    skipped: Counter = Counter()

    def usable(o: Output | None) -> bool:
        return o is not None and o.error is None and bool(o.text and o.text.strip())

    for item in items:
        if mode == "pointwise":
            for _, run in selected:
                o = outputs.get((run.id, item.id))  # type: ignore[arg-type]
                if not usable(o):
                    skipped["no output text"] += len(crits)
                    continue
                assert o is not None
                for c in crits:
                    if c.needs_reference and not item.reference:
                        skipped["no reference answer"] += 1
                        continue
                    units.append(Unit(c.id, item.id, o.id, None, item.messages, item.reference, o.text,  # type: ignore[arg-type]
                                      latency_ms=o.latency_ms, cost_usd=o.cost_usd))
        else:
            for (_, run_a), (_, run_b) in combinations(selected, 2):
                a = outputs.get((run_a.id, item.id))  # type: ignore[arg-type]
                b = outputs.get((run_b.id, item.id))  # type: ignore[arg-type]
                if not (usable(a) and usable(b)):
                    skipped["no output text"] += len(crits)
                    continue
                assert a is not None and b is not None
                for c in crits:
                    if c.is_check:
                        skipped["check criterion (checks are pointwise)"] += 1
                        continue
                    if c.uses_reference and not item.reference:
                        skipped["no reference answer"] += 1
                        continue
                    units.append(Unit(c.id, item.id, a.id, b.id, item.messages, item.reference, a.text, b.text))  # type: ignore[arg-type]
    return units, skipped


def _find_resumable(session: Session, version_id: int, rubric_version_id: int, judge_model: str,
                    template_hash: str, mode: str, structured: str) -> JudgeRun | None:
    rows = session.exec(
        select(JudgeRun).where(
            JudgeRun.version_id == version_id,
            JudgeRun.rubric_version_id == rubric_version_id,
            JudgeRun.judge_model == judge_model,
            JudgeRun.template_hash == template_hash,
            JudgeRun.mode == mode,
            JudgeRun.source == "judge",
        ).order_by(JudgeRun.id.desc())  # type: ignore[union-attr]
    )
    for row in rows:
        if (row.params or {}).get("structured", "tools") == structured:
            return row
    return None


def _judged_keys(session: Session, judge_run_id: int, *, scored_only: bool) -> set[tuple[str, int, int | None]]:
    rows = session.exec(
        select(Judgment.criterion_id, Judgment.output_id, Judgment.output_b_id, Judgment.status)
        .where(Judgment.judge_run_id == judge_run_id).order_by(Judgment.id)  # type: ignore[arg-type]
    )
    latest: dict[tuple[str, int, int | None], str] = {}
    for crit, out, out_b, status in rows:
        latest[(crit, out, out_b)] = status
    return {k for k, s in latest.items() if not scored_only or s == "scored"}


# --- running -----------------------------------------------------------------------------------------------


def _judgment_row(run_id: int, judge_model: str, unit: Unit, outcome: Outcome, *, version_hash: str,
                  rubric_hash: str, template_hash: str) -> Judgment:
    return Judgment(
        judge_run_id=run_id,
        criterion_id=unit.criterion_id,
        item_id=unit.item_id,
        output_id=unit.output_id,
        output_b_id=unit.output_b_id,
        status=outcome.status,
        verdict=outcome.verdict,
        score=outcome.score,
        rationale=outcome.rationale,
        unscored_reason=outcome.unscored_reason,
        details=outcome.details or None,
        version_hash=version_hash,
        rubric_hash=rubric_hash,
        judge_model=judge_model,
        template_hash=template_hash,
        latency_ms=outcome.latency_ms,
        prompt_tokens=outcome.prompt_tokens,
        completion_tokens=outcome.completion_tokens,
        cost_usd=outcome.cost_usd,
        request_hash=outcome.request_hash,
    )


def _write(engine: Engine, rows: list[Judgment]) -> None:
    if rows:
        with session_scope(engine) as s:
            s.add_all(rows)


def _finish(engine: Engine, run_id: int, status: str, reason: str | None) -> None:
    with session_scope(engine) as s:
        run = s.get(JudgeRun, run_id)
        if run is not None:
            run.status, run.status_reason = status, reason
            run.finished_at = utcnow() if status in ("done", "stopped", "cancelled", "failed") else None
            s.add(run)


@dataclass
class Prepared:
    """A judge run opened (or resumed) for a request, and the units it still lacks."""

    run_id: int
    resumed: bool
    units: list[Unit]
    todo: list[Unit]
    skipped: Counter
    version_hash: str
    rubric_hash: str
    label: str


def prepare_run(engine: Engine, req: JudgeRequest, template: Any) -> Prepared:
    """Plan the units, find the judge run to resume (or start one) and mark it running."""
    with session_scope(engine) as s:
        version = s.get(EvalSetVersion, req.version_id)
        if version is None:
            raise InputError(f"no eval set version with id {req.version_id}", where="--set")
        selected = select_runs(s, version, req.candidates)
        if req.mode == "pairwise" and len(selected) < 2:
            raise InputError("pairwise judging needs at least two candidates with runs on this version",
                             where="--candidates", hint="name two or more candidates, e.g. --candidates a,b")
        rubric_row = store_rubric(s, req.rubric)
        units, skipped = plan_units(s, version, req.rubric, selected, mode=req.mode, criteria=req.criteria,
                                    limit=req.limit)
        run = None if req.new_run else _find_resumable(
            s, version.id, rubric_row.id, req.judge.model, template.hash, req.mode, req.structured)  # type: ignore[arg-type]
        resumed = run is not None
        params = {
            "structured": req.structured,
            "api_base": req.judge.api_base,
            "judge_params": req.judge.params,
            "max_retries": req.max_retries,
            "candidates": [c.name for c, _ in selected],
            "runs": {c.name: r.id for c, r in selected},
            "criteria": req.criteria or [c.id for c in req.rubric.criteria],
            "limit": req.limit,
        }
        if run is None:
            run = JudgeRun(version_id=version.id, rubric_version_id=rubric_row.id, judge_model=req.judge.model,  # type: ignore[arg-type]
                           template_hash=template.hash, mode=req.mode, params=params, source="judge")
        else:
            old = run.params or {}
            params["candidates"] = list(dict.fromkeys([*old.get("candidates", []), *params["candidates"]]))
            params["runs"] = {**old.get("runs", {}), **params["runs"]}
            params["criteria"] = list(dict.fromkeys([*old.get("criteria", []), *params["criteria"]]))
            run.params = {**old, **params}
        run.params = {**(run.params or {}), "skipped": dict(skipped)}
        run.status, run.status_reason, run.finished_at = "running", None, None
        s.add(run)
        s.flush()
        done_keys = _judged_keys(s, run.id, scored_only=req.retry_unscored)  # type: ignore[arg-type]
        version_hash, rubric_hash = version.content_hash, rubric_row.content_hash
        label = version_label(s, version)
        run_id = run.id
    assert run_id is not None
    return Prepared(run_id, resumed, units, [u for u in units if u.key not in done_keys], skipped, version_hash,
                    rubric_hash, label)


async def judge_version(
    engine: Engine,
    req: JudgeRequest,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    gateway: Gateway | Any | None = None,
) -> JudgeSummary:
    """Plan, resume or start the judge run, judge what is missing, and return what happened.

    `gateway`: anything with the gateway's `complete` and `aclose` (batch mode replays a batch's answers)."""
    if req.mode not in ("pointwise", "pairwise"):
        raise InputError(f"mode {req.mode!r} is not pointwise or pairwise", where="--mode")
    template = load_template(req.mode, req.template)
    t_start = time.perf_counter()

    prep = prepare_run(engine, req, template)
    run_id, resumed, units, skipped = prep.run_id, prep.resumed, prep.units, prep.skipped
    version_hash, rubric_hash, label = prep.version_hash, prep.rubric_hash, prep.label
    todo = prep.todo
    progress = Progress(total=len(units), already=len(units) - len(todo))
    reasons: Counter = Counter()
    # Check criteria are exact and local: computed here, at once, under the judge name `check`.
    check_rows = []
    for u in [u for u in todo if req.rubric.criterion(u.criterion_id).is_check]:
        outcome = check_outcome(req.rubric.criterion(u.criterion_id), u)
        check_rows.append(_judgment_row(run_id, CHECK_JUDGE, u, outcome, version_hash=version_hash,
                                        rubric_hash=rubric_hash, template_hash=CHECKS_VERSION))
        progress.done += 1
        if outcome.status == "scored":
            progress.scored += 1
        else:
            progress.unscored += 1
            reasons["check not evaluated"] += 1
    _write(engine, check_rows)
    todo = [u for u in todo if not req.rubric.criterion(u.criterion_id).is_check]
    pending: list[Judgment] = []
    stop = asyncio.Event()
    cancelled = False
    refused: list[str] = []  # why the provider refused the judge's key, once it has
    owns_gateway = gateway is None
    gw = gateway or Gateway(engine, use_cache=req.use_cache)
    judge = Judge(gw, req.judge, structured=req.structured, max_retries=req.max_retries,
                  templates={req.mode: template})
    rubric = req.rubric
    criteria = {c.id: c for c in rubric.criteria}
    queue: asyncio.Queue[Unit] = asyncio.Queue()
    # One criterion after the other: consecutive prompts then share their system message (the criterion, its
    # levels and examples), which a llama.cpp server reuses from the previous prompt and providers cache.
    order = {cid: i for i, cid in enumerate(criteria)}
    for u in sorted(todo, key=lambda u: order.get(u.criterion_id, len(order))):
        queue.put_nowait(u)

    if req.job_id is not None:
        update_job(engine, req.job_id, status="running", pid=os.getpid(),
                   progress={"done": progress.already, "total": progress.total, "errors": 0, "spend_usd": 0.0,
                             "judge_run": run_id, "judge_model": req.judge.model},
                   message=f"judging {label} with {req.judge.model}")

    async def worker() -> None:
        while not stop.is_set():
            try:
                unit = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            crit = criteria[unit.criterion_id]
            if unit.output_b_id is None:
                outcome = await judge.judge(rubric, crit, conversation=unit.conversation, output=unit.text,
                                            reference=unit.reference)
            else:
                outcome = await judge.judge_pair(rubric, crit, conversation=unit.conversation, output_a=unit.text,
                                                 output_b=unit.text_b or "", reference=unit.reference)
            if outcome.auth_error is not None:
                # Every further call would be refused the same way: stop at once, as a run does. The unit stays
                # unjudged (not unscored), so the next invocation with a valid key judges it.
                refused.append(outcome.auth_error)
                stop.set()
                return
            pending.append(_judgment_row(run_id, req.judge.model, unit, outcome, version_hash=version_hash,
                                         rubric_hash=rubric_hash, template_hash=template.hash))
            progress.done += 1
            progress.calls += outcome.calls
            progress.spend_usd += outcome.spend_usd
            if outcome.status == "scored":
                progress.scored += 1
            else:
                progress.unscored += 1
                reasons[_reason_kind(outcome.unscored_reason)] += 1

    async def flush() -> None:
        if pending:
            rows = pending[:]
            del pending[:]
            await asyncio.to_thread(_write, engine, rows)

    async def monitor() -> None:
        nonlocal cancelled
        last_poll = 0.0
        while True:
            await asyncio.sleep(FLUSH_EVERY_S)
            await flush()
            if on_progress is not None:
                on_progress(progress)
            now = time.perf_counter()
            if req.job_id is not None and now - last_poll >= JOB_POLL_S:
                last_poll = now
                await asyncio.to_thread(update_job, engine, req.job_id, progress=_job_progress(progress))
                if await asyncio.to_thread(cancel_requested, engine, req.job_id):
                    cancelled = True
                    stop.set()

    status, reason = "failed", None
    mon = asyncio.create_task(monitor())
    try:
        n_workers = max(1, min(req.judge.max_concurrency, len(todo)))
        await asyncio.gather(*(worker() for _ in range(n_workers)))
        if refused:
            status, reason = "failed", refused[0]
        elif cancelled:
            status, reason = "cancelled", "cancelled on request"
        elif req.limit is not None:
            status, reason = "stopped", f"limited to the first {req.limit} items"
        else:
            status = "done"
    except asyncio.CancelledError:
        status, reason = "stopped", "interrupted"
        raise
    except Exception as exc:
        status, reason = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        mon.cancel()
        try:
            await mon
        except (asyncio.CancelledError, Exception):  # noqa: BLE001 - the monitor only flushes and reports
            pass
        _write(engine, pending[:])
        del pending[:]
        _finish(engine, run_id, status, reason)
        if on_progress is not None:
            on_progress(progress)
        if req.job_id is not None:
            update_job(engine, req.job_id, status={"done": "done", "stopped": "done"}.get(status, status),
                       progress=_job_progress(progress),
                       message=f"judge run #{run_id}: {progress.done} judged now, {progress.unscored} unscored"
                       + (f" ({reason})" if reason else ""))
        if owns_gateway:
            await gw.aclose()

    with session_scope(engine) as s:
        unscored_in_run = len(_judged_keys(s, run_id, scored_only=False) - _judged_keys(s, run_id, scored_only=True))
    return JudgeSummary(
        unscored_in_run=unscored_in_run,
        judge_run_id=run_id, version=label, rubric=f"{rubric.name}@{rubric_hash[:12]}", judge_model=req.judge.model,
        mode=req.mode, resumed=resumed, status=status, status_reason=reason, total=progress.total, already=progress.already,
        judged=progress.done, scored=progress.scored, unscored=progress.unscored, spend_usd=progress.spend_usd,
        skipped=dict(skipped), unscored_reasons=dict(reasons.most_common()),
        seconds=round(time.perf_counter() - t_start, 2),
    )


def check_outcome(criterion: Any, unit: Unit) -> Outcome:
    """A check criterion's judgment of one output: exact, local, free."""
    t0 = time.perf_counter()
    r = run_check(criterion.check, text=unit.text, reference=unit.reference, latency_ms=unit.latency_ms,
                  cost_usd=unit.cost_usd)
    return Outcome(r.status, verdict=r.verdict, score=criterion.score_of(r.verdict) if r.verdict else None,
                   rationale=r.rationale, unscored_reason=r.unscored_reason, details=r.details,
                   latency_ms=round((time.perf_counter() - t0) * 1000, 3), cost_usd=0.0)


def _job_progress(p: Progress) -> dict[str, Any]:
    return {"done": p.already + p.done, "total": p.total, "errors": p.unscored, "spend_usd": round(p.spend_usd, 6)}


def _reason_kind(reason: str | None) -> str:
    """The kind of an unscored reason ("timeout", "parse failure", …) for the summary."""
    text = (reason or "unknown").split(":", 1)[0]
    if "shown first" in text and reason:
        text = reason.split(":", 2)[1].strip() if reason.count(":") >= 2 else text
    return text.split(" after ")[0].strip()


def run_judging(engine: Engine, req: JudgeRequest, *, on_progress: Callable[[Progress], None] | None = None) -> JudgeSummary:
    """`judge_version` from synchronous code (the CLI, the app's job subprocess)."""
    return asyncio.run(judge_version(engine, req, on_progress=on_progress))
