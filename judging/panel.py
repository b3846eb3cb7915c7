"""A panel: several pointwise judge runs on the same version × rubric combined into one derived judge run.

Rules (also stored in the run's params, so a report can state them):
- binary and categorical criteria: majority vote of the members that scored the unit; a tie goes to the
  verdict of the first member, in the order given, whose verdict is among the tied ones (list the judge you
  trust most first);
- ordinal criteria: the median of the members' levels (`median`, default) or their mean (`mean`); a value
  between two levels is rounded half up (2.5 → 3), so the panel's verdict is always a level of the scale;
- a unit no member scored is unscored, with each member's reason;
- check criteria are exact and identical in every member: the first member's check judgment is carried over.

The panel is stored as a judge run (`source = "panel"`, members in `params`), so agreement, calibration,
rankings and `ownbench judges compare` treat it like any judge. A panel judgment costs what its members'
judgments cost together; its latency is the slowest member's (the members can be asked at once).
"""
from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session, select

from judging.checks import CHECK_JUDGE
from judging.rubric import Criterion, rubric_from_version
from storage.errors import InputError
from storage.models import EvalSetVersion, JudgeRun, Judgment, RubricVersion, utcnow

ORDINAL_RULES = ("median", "mean")
TIE_RULE = "first member (in the order given) whose verdict is among the tied ones"


@dataclass
class PanelResult:
    judge_run_id: int
    judge_model: str
    created: bool
    units: int
    scored: int
    unscored: int


def _round_half_up(x: float) -> int:
    return math.floor(x + 0.5)


def combine(criterion: Criterion, verdicts: list[str], *, ordinal: str = "median") -> str:
    """The panel's verdict from the members' scored verdicts, in member order (see the module rules)."""
    if not verdicts:
        raise ValueError("no verdicts to combine")
    if criterion.type == "ordinal":
        levels = [int(v) for v in verdicts]
        value = statistics.median(levels) if ordinal == "median" else statistics.fmean(levels)
        return str(_round_half_up(float(value)))
    counts = Counter(verdicts)
    top = max(counts.values())
    tied = {v for v, n in counts.items() if n == top}
    return next(v for v in verdicts if v in tied)


def _latest(session: Session, run_id: int) -> dict[tuple[str, int], Judgment]:
    out: dict[tuple[str, int], Judgment] = {}
    for j in session.exec(select(Judgment).where(Judgment.judge_run_id == run_id).order_by(Judgment.id)):  # type: ignore[arg-type]
        out[(j.criterion_id, j.output_id)] = j
    return out


def _members(session: Session, run_ids: list[int]) -> list[JudgeRun]:
    if len(run_ids) < 2:
        raise InputError("a panel needs at least two judge runs", where="--runs", hint="e.g. --runs 3,4,5")
    if len(set(run_ids)) != len(run_ids):
        raise InputError("a judge run is named twice", where="--runs", hint="name each judge run once")
    runs = []
    for rid in run_ids:
        run = session.get(JudgeRun, rid)
        if run is None:
            raise InputError(f"no judge run {rid}", where="--runs",
                             hint="list judge runs with `ownbench judges compare --set … --rubric …`")
        if run.mode != "pointwise":
            raise InputError(f"judge run {rid} is {run.mode}: a panel combines pointwise judge runs", where="--runs")
        runs.append(run)
    first = runs[0]
    for run in runs[1:]:
        if (run.version_id, run.rubric_version_id) != (first.version_id, first.rubric_version_id):
            raise InputError(f"judge run {run.id} judged another eval set version or rubric version than judge run "
                             f"{first.id}", where="--runs", hint="a panel combines judge runs of the same set × rubric")
    return runs


def build_panel(session: Session, run_ids: list[int], *, ordinal: str = "median", name: str | None = None) -> PanelResult:
    """Store (or find, when the same members and rule were combined before) the panel of these judge runs."""
    if ordinal not in ORDINAL_RULES:
        raise InputError(f"ordinal rule {ordinal!r} is not one of {', '.join(ORDINAL_RULES)}", where="--ordinal")
    members = _members(session, run_ids)
    first = members[0]
    model = name or "panel:" + "+".join(m.judge_model.rsplit("/", 1)[-1] for m in members)
    params = {"members": [{"judge_run": m.id, "judge_model": m.judge_model} for m in members],
              "ordinal_rule": ordinal, "tie_rule": TIE_RULE, "majority": "binary and categorical criteria"}
    for row in session.exec(select(JudgeRun).where(JudgeRun.source == "panel",
                                                   JudgeRun.version_id == first.version_id,
                                                   JudgeRun.rubric_version_id == first.rubric_version_id)):
        old = row.params or {}
        if old.get("members") == params["members"] and old.get("ordinal_rule") == ordinal and row.judge_model == model:
            n = len(list(session.exec(select(Judgment.id).where(Judgment.judge_run_id == row.id))))
            return PanelResult(row.id, row.judge_model, False, n, n, 0)  # type: ignore[arg-type]
    rubric_row = session.get(RubricVersion, first.rubric_version_id)
    version = session.get(EvalSetVersion, first.version_id)
    assert rubric_row is not None and version is not None
    rubric = rubric_from_version(rubric_row)
    latest = [_latest(session, m.id) for m in members]  # type: ignore[arg-type]
    keys = list(dict.fromkeys(k for table in latest for k in table))
    run = JudgeRun(version_id=first.version_id, rubric_version_id=first.rubric_version_id, judge_model=model,
                   template_hash=None, mode="pointwise", params=params, source="panel", status="done",
                   finished_at=utcnow())
    session.add(run)
    session.flush()
    scored = unscored = 0
    for cid, output_id in keys:
        crit = rubric.criterion(cid)
        got = [(m, table.get((cid, output_id))) for m, table in zip(members, latest)]
        present = [(m, j) for m, j in got if j is not None]
        base = present[0][1]
        if crit.is_check:
            row = Judgment(**{**base.model_dump(exclude={"id", "created_at", "judge_run_id"}), "judge_run_id": run.id})
            row.judge_model = CHECK_JUDGE
        else:
            ok = [(m, j) for m, j in present if j.status == "scored" and j.verdict is not None]
            votes = {str(m.id): (j.verdict if j.status == "scored" else None) for m, j in got if j is not None}
            costs = [j.cost_usd for _, j in present if j.cost_usd is not None]
            lat = [j.latency_ms for _, j in present if j.latency_ms is not None]
            common: dict[str, Any] = {
                "judge_run_id": run.id, "criterion_id": cid, "item_id": base.item_id, "output_id": output_id,
                "output_b_id": None, "version_hash": version.content_hash, "rubric_hash": rubric_row.content_hash,
                "judge_model": model, "template_hash": None, "latency_ms": max(lat) if lat else None,
                "prompt_tokens": sum(j.prompt_tokens or 0 for _, j in present) or None,
                "completion_tokens": sum(j.completion_tokens or 0 for _, j in present) or None,
                "cost_usd": sum(costs) if costs else None,
                "details": {"members": votes, "rule": ordinal if crit.type == "ordinal" else "majority"},
            }
            if not ok:
                reasons = "; ".join(f"judge run {m.id}: {j.unscored_reason or 'no verdict'}" for m, j in present)
                row = Judgment(**common, status="unscored", unscored_reason=f"no panel member scored this unit ({reasons})")
            else:
                verdict = combine(crit, [j.verdict for _, j in ok], ordinal=ordinal)  # type: ignore[misc]
                tally = Counter(j.verdict for _, j in ok)
                rationale = (f"panel of {len(members)} ({len(ok)} scored): "
                             + ", ".join(f"{n} × {v}" for v, n in tally.most_common())
                             + f" → {verdict} ({'ordinal ' + ordinal if crit.type == 'ordinal' else 'majority'})")
                row = Judgment(**common, status="scored", verdict=verdict, score=crit.score_of(verdict),
                               rationale=rationale)
        session.add(row)
        if row.status == "scored":
            scored += 1
        else:
            unscored += 1
    session.flush()
    return PanelResult(run.id, model, True, len(keys), scored, unscored)  # type: ignore[arg-type]
