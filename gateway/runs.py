"""Run a candidate over a frozen version: one output (or error) row per item, committed as it arrives.

- Resume: a run that did not finish (killed, stopped by the budget, cancelled, failed) is picked up again by
  the next invocation for the same candidate configuration (config_hash) and version. Items with an output are
  never called again; items whose row holds an error are retried.
- Budget: `max_cost_usd` covers the whole run, including what was spent before a resume. A call starts only if
  the spend so far, plus what calls in flight may cost, plus a conservative estimate of this call (prompt
  characters / 3 as tokens, and `max_tokens`, or the largest answer seen so far and at least 1,024 tokens,
  as completion) stays within it. Cached answers cost nothing now.
- Jobs: with `job_id`, progress goes to the Job row about once a second and a cancel request stops the run
  cleanly (calls in flight finish and are kept).
- An authentication failure stops the run at once: every further call would fail the same way.
"""
from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable

from sqlalchemy import func, select as sa_select
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from gateway.candidates import CandidateSpec, upsert_candidate, with_limits
from gateway.cache import cache_put_in
from gateway.client import CallResult, Gateway, ModelConfig
from storage.db import session_scope
from storage.errors import InputError
from storage.models import Candidate, Item, Output, Run, utcnow

UNFINISHED = ("running", "stopped", "failed", "cancelled")
_out = Output.__table__  # type: ignore[attr-defined]


@dataclass
class RunProgress:
    run_id: int
    total: int
    done: int = 0  # items with an output or an error row
    outputs: int = 0
    errors: int = 0
    calls: int = 0  # provider calls answered or failed in this invocation (cache hits excluded)
    cached: int = 0
    spend_usd: float = 0.0  # the whole run's spend, including before a resume
    started: float = field(default_factory=time.monotonic)

    @property
    def calls_per_s(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.calls / elapsed if elapsed > 0 else 0.0

    def as_job_progress(self) -> dict[str, Any]:
        return {"done": self.done, "total": self.total, "errors": self.errors,
                "spend_usd": round(self.spend_usd, 6), "calls_per_s": round(self.calls_per_s, 2)}


@dataclass
class RunSummary:
    run_id: int
    status: str
    status_reason: str | None
    resumed: bool
    progress: RunProgress


# --- choosing the run ---------------------------------------------------------------------------------------------


def run_config(spec: CandidateSpec, gw_route: str, *, max_cost_usd: float | None, use_cache: bool) -> dict[str, Any]:
    """What the run records about how it was made (never a key, only the variable's name)."""
    return {**spec.config(), "candidate": spec.name, "config_hash": spec.config_hash(),
            "api_key_env": spec.api_key_env, "limits": spec.limits(), "route": gw_route,
            "max_cost_usd": max_cost_usd, "use_cache": use_cache}


def open_run(
    session: Session, spec: CandidateSpec, version_id: int, config: dict[str, Any], *, fresh: bool = False
) -> tuple[Run, bool]:
    """The unfinished run of this candidate configuration on this version, or a new one; (run, resumed)."""
    candidate = upsert_candidate(session, spec)
    if not fresh:
        runs = session.exec(
            select(Run)
            .where(Run.candidate_id == candidate.id, Run.version_id == version_id, Run.source == "gateway",
                   Run.status.in_(UNFINISHED))  # type: ignore[attr-defined]
            .order_by(Run.id.desc())  # type: ignore[union-attr]
        ).all()
        for run in runs:
            if (run.config or {}).get("config_hash") == spec.config_hash():
                run.status, run.status_reason, run.finished_at = "running", None, None
                run.config = {**(run.config or {}), **{k: config[k] for k in ("limits", "max_cost_usd", "use_cache")}}
                session.add(run)
                session.flush()
                return run, True
    run = Run(candidate_id=candidate.id, version_id=version_id, source="gateway", config=config, status="running")
    session.add(run)
    session.flush()
    return run, False


def pending_items(session: Session, run_id: int, version_id: int, *, retry_errors: bool = True) -> list[Item]:
    """Items of the version without an output in this run (and, with retry_errors, those with an error row)."""
    done = select(Output.item_id).where(Output.run_id == run_id)
    if retry_errors:
        done = done.where(Output.error.is_(None))  # type: ignore[union-attr]
    return list(session.exec(
        select(Item).where(Item.version_id == version_id, Item.id.not_in(done))  # type: ignore[union-attr]
        .order_by(Item.position)
    ))


def run_totals(engine: Engine, run_id: int) -> dict[str, Any]:
    """Outputs, errors, tokens, spend (answers not served from the cache) and latency of a run."""
    o = _out.c
    with engine.connect() as conn:
        row = conn.execute(
            sa_select(
                func.count().filter(o.error.is_(None)),
                func.count().filter(o.error.is_not(None)),
                func.coalesce(func.sum(o.cost_usd).filter(o.cached.is_(False)), 0.0),
                func.coalesce(func.sum(o.cost_usd), 0.0),
                func.count().filter(o.error.is_(None), o.cost_usd.is_(None)),
                func.coalesce(func.sum(o.prompt_tokens), 0),
                func.coalesce(func.sum(o.completion_tokens), 0),
                func.avg(o.latency_ms).filter(o.error.is_(None)),
                func.count().filter(o.cached.is_(True)),
            ).where(o.run_id == run_id)
        ).one()
    return {"outputs": row[0], "errors": row[1], "spend_usd": float(row[2]), "cost_usd": float(row[3]),
            "unknown_cost": row[4], "prompt_tokens": int(row[5]), "completion_tokens": int(row[6]),
            "mean_latency_ms": float(row[7]) if row[7] is not None else None, "cached": row[8]}


# --- writing rows -------------------------------------------------------------------------------------------------


def output_text(result: CallResult) -> str | None:
    """The answer's text; an answer made only of tool calls is kept as their JSON."""
    if result.text is not None or not result.response:
        return result.text
    message = ((result.response.get("choices") or [{}])[0] or {}).get("message") or {}
    calls = message.get("tool_calls")
    return json.dumps({"tool_calls": calls}, ensure_ascii=False, sort_keys=True) if calls else None


def _row(run_id: int, item_id: int, r: CallResult) -> dict[str, Any]:
    return {
        "run_id": run_id, "item_id": item_id,
        "text": output_text(r) if r.error is None else None,
        "finish_reason": r.finish_reason, "prompt_tokens": r.prompt_tokens,
        "completion_tokens": r.completion_tokens, "cost_usd": r.cost_usd, "latency_ms": r.latency_ms,
        "ttft_ms": r.ttft_ms, "error": f"{r.error_kind}: {r.error}" if r.error is not None else None,
        "attempts": r.attempts, "request_hash": r.request_hash, "cached": r.cached, "created_at": utcnow(),
    }


def write_output(engine: Engine, values: dict[str, Any], cache_row: tuple[str, str, dict] | None = None) -> None:
    """Insert the item's row, or replace its earlier error row, and the answer's cache row, in one commit:
    a run killed at any moment never pays again for an answer it received."""
    with engine.begin() as conn:
        conn.execute(_upsert_output(engine.dialect.name, tuple(values)), values)
        if cache_row is not None:
            cache_put_in(conn, [cache_row])


@lru_cache(maxsize=16)
def _upsert_output(dialect: str, columns: tuple[str, ...]) -> Any:
    """The upsert statement, built once: building it (and its `excluded` alias) per output cost more CPU
    than the database write itself."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    stmt = insert(_out)
    return stmt.on_conflict_do_update(
        index_elements=["run_id", "item_id"],
        set_={k: stmt.excluded[k] for k in columns if k not in ("run_id", "item_id")},
    )


# --- the run itself -----------------------------------------------------------------------------------------------


class _Budget:
    def __init__(self, limit: float | None, spent: float, prices: tuple[float, float] | None, params: dict) -> None:
        self.limit, self.spent, self.prices = limit, spent, prices
        self.reserved = 0.0
        self.max_tokens = params.get("max_tokens") or params.get("max_completion_tokens")
        self.largest_answer = 0

    def estimate(self, messages: list[dict]) -> float:
        if self.prices is None:
            return 0.0
        prompt = len(json.dumps(messages, ensure_ascii=False)) / 3 + 8 * len(messages)
        completion = self.max_tokens or max(1024, int(self.largest_answer * 1.5))
        return prompt * self.prices[0] + completion * self.prices[1]

    def reserve(self, messages: list[dict]) -> float | None:
        """The reservation for one call, or None when it might push the run over the budget."""
        est = self.estimate(messages)
        if self.limit is not None and self.spent + self.reserved + est > self.limit:
            return None
        self.reserved += est
        return est

    def settle(self, reservation: float, r: CallResult) -> None:
        self.reserved -= reservation
        if r.cost_usd is not None and not r.cached:
            self.spent += r.cost_usd
        if r.completion_tokens:
            self.largest_answer = max(self.largest_answer, r.completion_tokens)


async def execute_run(
    engine: Engine,
    run_id: int,
    items: list[tuple[int, list[dict]]],
    cfg: ModelConfig,
    *,
    total: int,
    already_done: int,
    max_cost_usd: float | None = None,
    use_cache: bool = True,
    on_progress: Callable[[RunProgress], None] | None = None,
    job_id: int | None = None,
    gateway: Gateway | None = None,
) -> tuple[str, str | None, RunProgress]:
    """Call the candidate for `items` (item id, messages); returns (status, reason, progress)."""
    gw = gateway or Gateway(engine, use_cache=use_cache)
    totals = run_totals(engine, run_id)
    progress = RunProgress(run_id, total, done=already_done, outputs=totals["outputs"], errors=totals["errors"],
                           spend_usd=totals["spend_usd"])
    prices = gw.prices(cfg)
    if max_cost_usd is not None and prices is None:
        raise InputError(
            f"--max-cost needs a price for {cfg.model}, and LiteLLM's price map has none",
            hint="set input_price_per_mtok and output_price_per_mtok for this candidate in candidates.yaml",
        )
    budget = _Budget(max_cost_usd, totals["spend_usd"], prices, cfg.params)
    queue: asyncio.Queue[tuple[int, list[dict]]] = asyncio.Queue()
    for entry in items:
        queue.put_nowait(entry)
    stop: dict[str, str | None] = {"status": None, "reason": None}

    def halt(status: str, reason: str) -> None:
        if stop["status"] is None:
            stop["status"], stop["reason"] = status, reason

    async def worker() -> None:
        while stop["status"] is None:
            try:
                item_id, messages = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            reservation = budget.reserve(messages)
            if reservation is None:
                halt("stopped", f"budget: ${budget.spent:.4f} of ${max_cost_usd:.4f} spent; the next call could "
                                f"cost ${budget.estimate(messages):.4f}, which might exceed it")
                return
            result = await gw.complete(cfg, messages)
            budget.settle(reservation, result)
            write_output(engine, _row(run_id, item_id, result), result.cache_row)
            was_error = item_id in previous_errors
            progress.done += 0 if was_error else 1
            if result.error is None:
                progress.outputs += 1
                progress.errors -= 1 if was_error else 0
            elif not was_error:
                progress.errors += 1
            previous_errors.discard(item_id)
            if result.cached:
                progress.cached += 1
            else:
                progress.calls += 1
            progress.spend_usd = budget.spent
            if result.error_kind == "auth":
                halt("failed", result.error or "authentication failed")
            if on_progress is not None:
                on_progress(progress)

    async def watch_job() -> None:
        from storage.jobs import cancel_requested, update_job

        while True:
            await asyncio.sleep(1.0)
            update_job(engine, job_id, progress=progress.as_job_progress())  # type: ignore[arg-type]
            if cancel_requested(engine, job_id):  # type: ignore[arg-type]
                halt("cancelled", "cancelled on request")

    with engine.connect() as conn:
        previous_errors = set(conn.execute(
            sa_select(_out.c.item_id).where(_out.c.run_id == run_id, _out.c.error.is_not(None))).scalars())
    gw.prefetch(cfg, [messages for _, messages in items])
    deferred = gw.defer_cache_writes
    gw.defer_cache_writes = True  # each answer's cache row is committed with its output row: no extra commit
    watcher = asyncio.create_task(watch_job()) if job_id is not None else None
    try:
        n = max(1, min(cfg.max_concurrency, len(items)))
        await asyncio.gather(*(worker() for _ in range(n)))
    finally:
        if watcher is not None:
            watcher.cancel()
        gw.defer_cache_writes = deferred
        if gateway is None:
            await gw.aclose()
    if stop["status"] is not None:
        return stop["status"], stop["reason"], progress  # type: ignore[return-value]
    if progress.errors:
        return "done", f"{progress.errors} of {total} items ended with an error (see `ownbench runs show`)", progress
    return "done", None, progress


def run_candidate(
    engine: Engine,
    spec: CandidateSpec,
    version_id: int,
    *,
    concurrency: int | None = None,
    max_cost_usd: float | None = None,
    use_cache: bool = True,
    fresh: bool = False,
    on_progress: Callable[[RunProgress], None] | None = None,
    on_start: Callable[[Run, bool, int, int], None] | None = None,
    job_id: int | None = None,
    gateway: Gateway | None = None,
) -> RunSummary:
    """Run (or resume) `spec` over the version; returns when every item has a row or the run stopped.
    `concurrency` overrides the candidate's; the run records the limits it used."""
    gw = gateway or Gateway(engine, use_cache=use_cache)
    spec = with_limits(spec, concurrency=concurrency)
    cfg = spec.model_config_for()
    config = run_config(spec, gw.route(cfg), max_cost_usd=max_cost_usd, use_cache=use_cache)
    with session_scope(engine) as s:
        run, resumed = open_run(s, spec, version_id, config, fresh=fresh)
        total = len(s.exec(select(Item.id).where(Item.version_id == version_id)).all())
        todo = pending_items(s, run.id, version_id)  # type: ignore[arg-type]
        items = [(i.id, i.messages) for i in todo]
        with_rows = s.exec(select(func.count()).select_from(Output).where(Output.run_id == run.id)).one()
    if job_id is not None:
        from storage.jobs import update_job

        update_job(engine, job_id, status="running", message=f"run {run.id}" + (" (resumed)" if resumed else ""),
                   progress={"done": with_rows, "total": total, "errors": 0, "spend_usd": 0.0, "run_id": run.id})
    if on_start is not None:
        on_start(run, resumed, total, len(items))
    try:
        status, reason, progress = asyncio.run(execute_run(
            engine, run.id, items, cfg, total=total, already_done=with_rows,  # type: ignore[arg-type]
            max_cost_usd=max_cost_usd, use_cache=use_cache, on_progress=on_progress, job_id=job_id,
            gateway=gateway,
        ))
    except BaseException as exc:
        reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else f"{type(exc).__name__}: {exc}"
        _finish(engine, run.id, "stopped" if isinstance(exc, KeyboardInterrupt) else "failed", reason,  # type: ignore[arg-type]
                job_id)
        raise
    _finish(engine, run.id, status, reason, job_id, progress)  # type: ignore[arg-type]
    return RunSummary(run.id, status, reason, resumed, progress)  # type: ignore[arg-type]


def _finish(engine: Engine, run_id: int, status: str, reason: str | None, job_id: int | None,
            progress: RunProgress | None = None) -> None:
    with session_scope(engine) as s:
        run = s.get(Run, run_id)
        if run is not None:
            run.status, run.status_reason, run.finished_at = status, reason, utcnow()
            s.add(run)
    if job_id is not None:
        from storage.jobs import update_job

        job_status = {"done": "done", "cancelled": "cancelled", "stopped": "done"}.get(status, "failed")
        update_job(engine, job_id, status=job_status, message=reason or f"run {run_id} {status}",
                   progress=progress.as_job_progress() if progress else None)


def candidate_by_name(session: Session, name: str) -> Candidate:
    row = session.exec(select(Candidate).where(Candidate.name == name)).first()
    if row is None:
        known = ", ".join(session.exec(select(Candidate.name).order_by(Candidate.name)).all()) or "none yet"
        raise InputError(f"no candidate named {name!r}", where="--candidate",
                         hint=f"known candidates: {known}; add one with `ownbench candidates add candidates.yaml`")
    return row
