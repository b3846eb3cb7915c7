"""People and progress: per annotator of a golden subset, how far they are, how fast, and how often they agree
with their peers; and moving unlabeled units from one annotator to another.

Reassigning moves `GoldenAssignment` rows only: the golden units, their strata and inclusion probabilities stay
as drawn, so calibration's design is unchanged.
"""
from __future__ import annotations

import itertools
import statistics
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func
from sqlmodel import Session, select

from analysis.labeling import LabelingTask, criteria_of, progress_all
from analysis.people import ANNOTATOR, REVIEWER, Viewer, person
from storage.errors import InputError
from storage.models import GoldenAssignment, GoldenUnit, Label, RubricVersion

BREAK = timedelta(minutes=10)  # a longer gap between two labels is a pause, not time spent on a label


@dataclass
class PersonProgress:
    annotator: str
    assigned_units: int
    done_units: int
    labels: int
    skipped: int
    flagged: int
    median_seconds: float | None  # between consecutive labels of a session (pauses over BREAK left out)
    peer_agreement: float | None  # share of (unit, criterion, peer) comparisons with the same verdict
    peer_comparisons: int


def _task_units(session: Session, task: LabelingTask) -> list[int]:
    return list(session.exec(select(GoldenUnit.id).where(
        GoldenUnit.version_id == task.version_id, GoldenUnit.rubric_version_id == task.rubric_version_id,
        GoldenUnit.mode == task.mode)))


def people_progress(session: Session, viewer: Viewer, task: LabelingTask) -> list[PersonProgress]:
    viewer.require("review", "people and progress")
    base = progress_all(session, task, viewer=viewer)
    units = _task_units(session, task)
    rows = session.exec(select(Label).where(Label.golden_unit_id.in_(units))  # type: ignore[union-attr]
                        .order_by(Label.id)).all()  # type: ignore[arg-type]
    from storage.models import Annotator

    names = {a.id: a.name for a in session.exec(select(Annotator))}
    latest: dict[tuple[int, str, int], Label] = {}
    times: dict[int, list] = {}
    for lab in rows:
        latest[(int(lab.golden_unit_id or 0), lab.criterion_id, lab.annotator_id)] = lab
        if lab.source == "app":
            times.setdefault(lab.annotator_id, []).append(lab.created_at)
    by_step: dict[tuple[int, str], dict[int, str]] = {}
    for (u, c, a), lab in latest.items():
        if not lab.skipped and lab.verdict is not None:
            by_step.setdefault((u, c), {})[a] = lab.verdict
    out = []
    ids = {v: k for k, v in names.items()}
    for p in base:
        aid = ids.get(p.annotator)
        stamps = sorted(times.get(aid, [])) if aid is not None else []
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(stamps) if b - a <= BREAK]
        same = total = 0
        for verdicts in by_step.values():
            if aid in verdicts:
                for other, v in verdicts.items():
                    if other != aid:
                        total += 1
                        same += v == verdicts[aid]
        out.append(PersonProgress(p.annotator, p.assigned_units, p.done_units, p.labels, p.skipped, p.flagged,
                                  statistics.median(gaps) if gaps else None, same / total if total else None, total))
    return out


def unlabeled_units(session: Session, annotator_id: int, task: LabelingTask) -> list[GoldenAssignment]:
    """The annotator's assignments in this subset without any label row from them (any criterion)."""
    rubric = session.get(RubricVersion, task.rubric_version_id)
    assert rubric is not None
    labeled = set(session.exec(select(Label.golden_unit_id).where(
        Label.annotator_id == annotator_id, Label.rubric_version_id == task.rubric_version_id)))
    units = set(_task_units(session, task))
    rows = session.exec(select(GoldenAssignment).where(GoldenAssignment.annotator_id == annotator_id)
                        .order_by(GoldenAssignment.position)).all()  # type: ignore[arg-type]
    return [a for a in rows if a.golden_unit_id in units and a.golden_unit_id not in labeled and criteria_of(rubric)]


def reassign(session: Session, viewer: Viewer, task: LabelingTask, from_name: str, to_name: str,
             limit: int | None = None) -> int:
    """Move up to `limit` of `from_name`'s unlabeled units to `to_name`; units `to_name` already holds stay put
    (one person never labels a unit twice). Returns how many moved."""
    viewer.require("review", "reassigning units")
    src, dst = person(session, from_name), person(session, to_name)
    if src is None:
        raise InputError(f"no person called {from_name!r}", where="from")
    if dst is None or dst.role not in (ANNOTATOR, REVIEWER, "owner"):
        raise InputError(f"{to_name!r} has no role here and cannot label", where="to",
                         hint="add them first (People page or `ownbench users add`)")
    if src.id == dst.id:
        raise InputError("reassigning to the same person moves nothing", where="to")
    held = set(session.exec(select(GoldenAssignment.golden_unit_id).where(GoldenAssignment.annotator_id == dst.id)))
    next_pos = int(session.exec(select(func.coalesce(func.max(GoldenAssignment.position), -1))
                                .where(GoldenAssignment.annotator_id == dst.id)).one()) + 1
    moved = 0
    for a in unlabeled_units(session, int(src.id), task):  # type: ignore[arg-type]
        if limit is not None and moved >= limit:
            break
        if a.golden_unit_id in held:
            continue
        a.annotator_id = int(dst.id)  # type: ignore[arg-type]
        a.position = next_pos
        next_pos += 1
        session.add(a)
        moved += 1
    session.flush()
    return moved
