"""Blind labeling of the golden subset: an annotator's queue, saving a label, skipping, flagging, progress.

A step of the queue is one golden unit × one criterion of its rubric version. The annotator works through
their GoldenAssignment rows in `position` order; a step is done once the annotator has any label row for it
(a verdict or a skip). Labels are append-only: labeling a step again adds a row, and the latest row counts.

What a unit view holds is exactly what the annotator may see: the prompt, the output text(s) in the order
chosen for this annotator, and the rubric's criteria. No candidate, run or model name, no judgment, no other
annotator's label and no stratum (strata may be built from judge verdicts) ever enter it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, select

from analysis.names import get_or_create_annotator
from analysis.people import Viewer
from storage.errors import InputError
from storage.models import (
    Annotator,
    EvalSet,
    EvalSetVersion,
    GoldenAssignment,
    GoldenUnit,
    Item,
    Label,
    Output,
    RubricVersion,
)
from storage.names import check_name

PAIRWISE_CHOICES = ("first", "second", "tie")  # as shown to the annotator, before undoing the swap


@dataclass(frozen=True)
class LabelingTask:
    """A golden subset (eval set version × rubric version × mode) in which an annotator has assignments."""

    version_id: int
    rubric_version_id: int
    mode: str
    title: str  # "set@N · rubric" — names of the set and rubric only, never of a candidate
    assigned: int


@dataclass
class UnitView:
    """One step on the Label page: everything the annotator sees, and nothing else."""

    golden_unit_id: int
    criterion: dict[str, Any]
    criteria: list[dict[str, Any]]
    mode: str
    messages: list[dict[str, Any]]
    outputs: list[str]  # one (pointwise) or two (pairwise, in this annotator's order) output texts
    reference: str | None  # only when the criterion uses the reference answer
    position: int  # 0-based index of the unit in the annotator's queue
    queue_size: int
    latest: dict[str, Any] | None = None  # this annotator's own latest label for this step, if any


@dataclass
class Progress:
    annotator: str
    assigned_units: int
    done_units: int
    labels: int  # latest label rows with a verdict
    skipped: int
    flagged: int
    steps_total: int
    steps_done: int
    by_criterion: dict[str, int] = field(default_factory=dict)

    @property
    def remaining_units(self) -> int:
        return self.assigned_units - self.done_units


def ensure_annotator(session: Session, name: str) -> Annotator:
    """The annotator called `name`, created on first use (names are how people are identified)."""
    return get_or_create_annotator(session, name)


def annotator_by_name(session: Session, name: str) -> Annotator | None:
    return session.exec(select(Annotator).where(Annotator.name == name)).first()


def tasks_for(session: Session, annotator_id: int) -> list[LabelingTask]:
    """The golden subsets in which the annotator has assignments, largest first."""
    return sorted(_tasks(session, annotator_id), key=lambda t: (-t.assigned, t.title))


def _tasks(session: Session, annotator_id: int | None) -> list[LabelingTask]:
    """Golden subsets with assignments (of one annotator, or of anyone) and how many units each holds."""
    query = (
        select(GoldenUnit.version_id, GoldenUnit.rubric_version_id, GoldenUnit.mode,
               func.count(func.distinct(GoldenUnit.id)))
        .join(GoldenAssignment, GoldenAssignment.golden_unit_id == GoldenUnit.id)
        .group_by(GoldenUnit.version_id, GoldenUnit.rubric_version_id, GoldenUnit.mode)
    )
    if annotator_id is not None:
        query = query.where(GoldenAssignment.annotator_id == annotator_id)
    tasks = []
    for version_id, rubric_id, mode, n in session.exec(query).all():
        version = session.get(EvalSetVersion, version_id)
        eval_set = session.get(EvalSet, version.eval_set_id) if version else None
        rubric = session.get(RubricVersion, rubric_id)
        title = f"{eval_set.name if eval_set else '?'}@{version.number if version else '?'} · "
        title += f"{rubric.name if rubric else '?'} ({rubric.content_hash[:8] if rubric else ''}) · {mode}"
        tasks.append(LabelingTask(int(version_id), int(rubric_id), str(mode), title, int(n)))
    return tasks


def criteria_of(rubric: RubricVersion) -> list[dict[str, Any]]:
    crits = list((rubric.spec or {}).get("criteria") or [])
    if not crits:
        raise InputError(f"rubric {rubric.name!r} has no criteria", where=f"rubric version {rubric.id}")
    return crits


def _queue(session: Session, annotator_id: int, task: LabelingTask) -> list[tuple[int, int, int, bool]]:
    """(assignment id, golden unit id, position, swap) in queue order: one indexed query."""
    rows = session.exec(
        select(GoldenAssignment.id, GoldenAssignment.golden_unit_id, GoldenAssignment.position, GoldenAssignment.swap)
        .join(GoldenUnit, GoldenAssignment.golden_unit_id == GoldenUnit.id)
        .where(
            GoldenAssignment.annotator_id == annotator_id,
            GoldenUnit.version_id == task.version_id,
            GoldenUnit.rubric_version_id == task.rubric_version_id,
            GoldenUnit.mode == task.mode,
        )
        .order_by(GoldenAssignment.position, GoldenAssignment.id)
    ).all()
    return [(int(a), int(u), int(p), bool(s)) for a, u, p, s in rows]


def _done_steps(session: Session, annotator_id: int, rubric_version_id: int) -> set[tuple[int, str]]:
    """(golden unit id, criterion id) the annotator has labeled or skipped: one indexed query."""
    rows = session.exec(
        select(Label.golden_unit_id, Label.criterion_id)
        .where(Label.annotator_id == annotator_id, Label.rubric_version_id == rubric_version_id)
        .where(Label.golden_unit_id.is_not(None))  # type: ignore[union-attr]
        .distinct()
    ).all()
    return {(int(u), str(c)) for u, c in rows}


def next_step(
    session: Session,
    annotator_id: int,
    task: LabelingTask,
    *,
    after: tuple[int, str] | None = None,
) -> tuple[int, str] | None:
    """The annotator's next pending (golden unit id, criterion id), or None when the queue is done.

    With `after` (the step on screen), the search starts just past it and wraps around, so that "next"
    without labeling moves on and the step comes back at the end.
    """
    rubric = session.get(RubricVersion, task.rubric_version_id)
    if rubric is None:
        raise InputError(f"rubric version {task.rubric_version_id} does not exist")
    crit_ids = [str(c["id"]) for c in criteria_of(rubric)]
    queue = _queue(session, annotator_id, task)
    done = _done_steps(session, annotator_id, task.rubric_version_id)
    steps = [(unit_id, cid) for _a, unit_id, _p, _s in queue for cid in crit_ids]
    start = 0
    if after is not None and after in steps:
        start = steps.index(after) + 1
    for step in steps[start:] + steps[:start]:
        if step not in done and step != after:
            return step
    return None


def unit_view(session: Session, annotator_id: int, golden_unit_id: int, criterion_id: str) -> UnitView:
    """What the annotator sees for one step; refuses units that are not assigned to them."""
    assignment = session.exec(
        select(GoldenAssignment).where(
            GoldenAssignment.golden_unit_id == golden_unit_id, GoldenAssignment.annotator_id == annotator_id
        )
    ).first()
    if assignment is None:
        raise InputError(
            f"golden unit {golden_unit_id} is not assigned to this annotator",
            hint="draw a golden subset with this annotator on the Agreement page or with `ownbench golden`",
        )
    unit = session.get(GoldenUnit, golden_unit_id)
    assert unit is not None
    rubric = session.get(RubricVersion, unit.rubric_version_id)
    assert rubric is not None
    criteria = criteria_of(rubric)
    criterion = next((c for c in criteria if str(c["id"]) == criterion_id), None)
    if criterion is None:
        raise InputError(f"criterion {criterion_id!r} is not in rubric {rubric.name!r}", where="criterion")
    item = session.get(Item, unit.item_id)
    assert item is not None
    texts = [_output_text(session, unit.output_id)]
    if unit.output_b_id is not None:
        texts.append(_output_text(session, unit.output_b_id))
        if assignment.swap:
            texts.reverse()
    position, size = session.exec(
        select(
            func.count().filter(GoldenAssignment.position < assignment.position),  # type: ignore[attr-defined]
            func.count(),
        )
        .join(GoldenUnit, GoldenAssignment.golden_unit_id == GoldenUnit.id)
        .where(
            GoldenAssignment.annotator_id == annotator_id,
            GoldenUnit.version_id == unit.version_id,
            GoldenUnit.rubric_version_id == unit.rubric_version_id,
            GoldenUnit.mode == unit.mode,
        )
    ).one()
    latest = session.exec(
        select(Label)
        .where(
            Label.annotator_id == annotator_id,
            Label.golden_unit_id == golden_unit_id,
            Label.criterion_id == criterion_id,
        )
        .order_by(Label.id.desc())  # type: ignore[union-attr]
    ).first()
    own = None
    if latest is not None:
        own = {
            "verdict": _shown_verdict(latest.verdict, unit.mode, assignment.swap),
            "skipped": latest.skipped,
            "flagged": latest.flagged,
            "comment": latest.comment,
        }
    return UnitView(
        golden_unit_id=golden_unit_id,
        criterion=criterion,
        criteria=criteria,
        mode=unit.mode,
        messages=list(item.messages or []),
        outputs=texts,
        reference=item.reference if criterion.get("uses_reference") else None,
        position=int(position),
        queue_size=int(size),
        latest=own,
    )


def _output_text(session: Session, output_id: int) -> str:
    out = session.get(Output, output_id)
    if out is None:
        return ""
    return out.text if out.text is not None else f"(no output: {out.error or 'empty'})"


def _shown_verdict(verdict: str | None, mode: str, swap: bool) -> str | None:
    """A stored pairwise verdict as this annotator saw it (first/second/tie)."""
    if verdict is None or mode != "pairwise":
        return verdict
    if verdict == "tie":
        return "tie"
    first_is_a = not swap
    return "first" if (verdict == "A") == first_is_a else "second"


def choices_for(criterion: dict[str, Any], mode: str) -> list[tuple[str, str]]:
    """(choice, caption) pairs the annotator can pick, in display order."""
    if mode == "pairwise":
        return [("first", "Response 1 is better"), ("second", "Response 2 is better"), ("tie", "Tie")]
    kind = criterion.get("type")
    if kind == "binary":
        return [("pass", "Pass"), ("fail", "Fail")]
    if kind == "ordinal":
        levels = {str(k): v for k, v in (criterion.get("levels") or {}).items()}
        lo, hi = int(criterion.get("min", 1)), int(criterion.get("max", 5))
        return [(str(v), f"{v}" + (f" — {levels[str(v)]}" if str(v) in levels else "")) for v in range(lo, hi + 1)]
    if kind == "categorical":
        return [(str(lab), str(lab)) for lab in criterion.get("labels") or []]
    raise InputError(f"criterion {criterion.get('id')!r} has unknown type {kind!r}", where="rubric criteria")


def encode(criterion: dict[str, Any], mode: str, choice: str, swap: bool = False) -> tuple[str, float | None]:
    """A choice on screen → the stored (verdict, score), following the shared verdict encoding."""
    allowed = [c for c, _ in choices_for(criterion, mode)]
    if choice not in allowed:
        raise InputError(
            f"{choice!r} is not a valid label for criterion {criterion.get('id')!r}",
            where=f"criterion {criterion.get('id')}",
            hint="one of: " + ", ".join(allowed),
        )
    if mode == "pairwise":
        if choice == "tie":
            return "tie", 0.5
        first_is_a = not swap
        a_wins = (choice == "first") == first_is_a
        return ("A", 1.0) if a_wins else ("B", 0.0)
    kind = criterion.get("type")
    if kind == "binary":
        return choice, 1.0 if choice == "pass" else 0.0
    if kind == "ordinal":
        return choice, float(int(choice))
    return choice, None


def save_label(
    session: Session,
    annotator_id: int,
    golden_unit_id: int,
    criterion_id: str,
    *,
    choice: str | None = None,
    skipped: bool = False,
    flagged: bool = False,
    comment: str | None = None,
) -> Label:
    """Append a label row for one step (a verdict, or a skip); the latest row counts for agreement."""
    if choice is None and not skipped:
        raise InputError("pick a label or skip", where=f"criterion {criterion_id}")
    assignment = session.exec(
        select(GoldenAssignment).where(
            GoldenAssignment.golden_unit_id == golden_unit_id, GoldenAssignment.annotator_id == annotator_id
        )
    ).first()
    if assignment is None:
        raise InputError(f"golden unit {golden_unit_id} is not assigned to this annotator")
    unit = session.get(GoldenUnit, golden_unit_id)
    assert unit is not None
    rubric = session.get(RubricVersion, unit.rubric_version_id)
    assert rubric is not None
    criterion = next((c for c in criteria_of(rubric) if str(c["id"]) == criterion_id), None)
    if criterion is None:
        raise InputError(f"criterion {criterion_id!r} is not in rubric {rubric.name!r}", where="criterion")
    verdict, score = (None, None) if skipped else encode(criterion, unit.mode, str(choice), assignment.swap)
    comment = (comment or "").strip() or None
    label = Label(
        annotator_id=annotator_id,
        rubric_version_id=unit.rubric_version_id,
        criterion_id=criterion_id,
        item_id=unit.item_id,
        output_id=unit.output_id,
        output_b_id=unit.output_b_id,
        golden_unit_id=unit.id,
        verdict=verdict,
        score=score,
        skipped=skipped,
        flagged=flagged,
        comment=comment,
        inclusion_prob=unit.inclusion_prob,
        source="app",
    )
    session.add(label)
    session.flush()
    return label


def _latest_rows(session: Session, annotator_id: int, rubric_version_id: int) -> list[Label]:
    rows = session.exec(
        select(Label)
        .where(Label.annotator_id == annotator_id, Label.rubric_version_id == rubric_version_id)
        .where(Label.golden_unit_id.is_not(None))  # type: ignore[union-attr]
        .order_by(Label.id)  # type: ignore[arg-type]
    ).all()
    latest: dict[tuple[int, str], Label] = {}
    for row in rows:
        latest[(int(row.golden_unit_id or 0), row.criterion_id)] = row
    return list(latest.values())


def progress(session: Session, annotator_id: int, task: LabelingTask) -> Progress:
    """How far one annotator is in one golden subset; counts use each step's latest label."""
    annotator = session.get(Annotator, annotator_id)
    rubric = session.get(RubricVersion, task.rubric_version_id)
    assert annotator is not None and rubric is not None
    crit_ids = [str(c["id"]) for c in criteria_of(rubric)]
    unit_ids = {u for _a, u, _p, _s in _queue(session, annotator_id, task)}
    latest = [r for r in _latest_rows(session, annotator_id, task.rubric_version_id) if r.golden_unit_id in unit_ids]
    done = {(int(r.golden_unit_id or 0), r.criterion_id) for r in latest}
    done_units = sum(1 for u in unit_ids if all((u, c) in done for c in crit_ids))
    by_crit = {c: sum(1 for r in latest if r.criterion_id == c and not r.skipped) for c in crit_ids}
    return Progress(
        annotator=annotator.name,
        assigned_units=len(unit_ids),
        done_units=done_units,
        labels=sum(1 for r in latest if not r.skipped),
        skipped=sum(1 for r in latest if r.skipped),
        flagged=sum(1 for r in latest if r.flagged),
        steps_total=len(unit_ids) * len(crit_ids),
        steps_done=len(done & {(u, c) for u in unit_ids for c in crit_ids}),
        by_criterion=by_crit,
    )


def progress_all(session: Session, task: LabelingTask, *, viewer: Viewer) -> list[Progress]:
    """Progress of every annotator assigned in this golden subset (reviewers and owners only)."""
    viewer.require("review", "other people's progress")
    ids = session.exec(
        select(GoldenAssignment.annotator_id)
        .join(GoldenUnit, GoldenAssignment.golden_unit_id == GoldenUnit.id)
        .where(
            GoldenUnit.version_id == task.version_id,
            GoldenUnit.rubric_version_id == task.rubric_version_id,
            GoldenUnit.mode == task.mode,
        )
        .distinct()
    ).all()
    return sorted((progress(session, int(i), task) for i in ids), key=lambda p: p.annotator)


def all_tasks(session: Session) -> list[LabelingTask]:
    """Every golden subset with assignments (for overviews), whoever the annotator."""
    return _tasks(session, None)
