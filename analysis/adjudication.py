"""Adjudication: a reviewer settles golden units where the annotators disagree.

The queue holds pointwise golden units × criteria where at least two annotators' latest labels (skips aside)
differ. An adjudicated label is its own row (`Adjudication`), never a `Label`: agreement keeps comparing what
the annotators said, and calibration uses the latest adjudicated label where one exists (analysis.data).
Its provenance is the reviewer, the time, the note and the annotators' labels it resolved.

A reviewer who is also assigned a unit does not see it here until they have labeled it themselves, so their own
label stays independent of their peers'.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, select

from analysis.labeling import choices_for, criteria_of, encode
from analysis.people import Viewer
from storage.errors import InputError
from storage.models import (
    Adjudication,
    Annotator,
    GoldenAssignment,
    GoldenUnit,
    Item,
    Label,
    Output,
    RubricVersion,
)


@dataclass
class Disagreement:
    golden_unit_id: int
    criterion: dict[str, Any]
    labels: list[dict[str, Any]]  # annotator, verdict, comment, label id
    adjudicated: dict[str, Any] | None = None  # latest: verdict, note, by, at
    messages: list = field(default_factory=list)
    output: str = ""

    @property
    def criterion_id(self) -> str:
        return str(self.criterion["id"])


def _blind_units(session: Session, viewer: Viewer, rubric_version_id: int) -> set[tuple[int, str]] | None:
    """Units × criteria assigned to the viewer that the viewer has labeled (None: the viewer labels nothing)."""
    if viewer.annotator_id is None:
        return None
    return {(u, c) for u, c in session.exec(
        select(Label.golden_unit_id, Label.criterion_id)
        .where(Label.annotator_id == viewer.annotator_id, Label.rubric_version_id == rubric_version_id))}


def _assigned(session: Session, viewer: Viewer) -> set[int]:
    if viewer.annotator_id is None:
        return set()
    return set(session.exec(select(GoldenAssignment.golden_unit_id)
                            .where(GoldenAssignment.annotator_id == viewer.annotator_id)))


def queue(session: Session, viewer: Viewer, version_id: int, rubric_version_id: int, *,
          include_settled: bool = False) -> list[Disagreement]:
    """Golden units × criteria where annotators disagree, unsettled first (reviewers and owners only)."""
    viewer.require("review", "adjudication")
    rubric = session.get(RubricVersion, rubric_version_id)
    if rubric is None:
        raise InputError(f"no rubric version {rubric_version_id}", where="rubric")
    crits = {str(c["id"]): c for c in criteria_of(rubric)}
    units = {u.id: u for u in session.exec(select(GoldenUnit).where(
        GoldenUnit.version_id == version_id, GoldenUnit.rubric_version_id == rubric_version_id,
        GoldenUnit.mode == "pointwise"))}
    names = {a.id: a.name for a in session.exec(select(Annotator))}
    latest: dict[tuple[int, str, int], Label] = {}
    for lab in session.exec(select(Label).where(Label.rubric_version_id == rubric_version_id,
                                                Label.golden_unit_id.in_(list(units)))  # type: ignore[union-attr]
                            .order_by(Label.id)):  # type: ignore[arg-type]
        latest[(int(lab.golden_unit_id), lab.criterion_id, lab.annotator_id)] = lab  # type: ignore[arg-type]
    settled: dict[tuple[int, str], Adjudication] = {}
    for adj in session.exec(select(Adjudication).where(Adjudication.rubric_version_id == rubric_version_id)
                            .order_by(Adjudication.id)):  # type: ignore[arg-type]
        settled[(adj.golden_unit_id, adj.criterion_id)] = adj
    own_done = _blind_units(session, viewer, rubric_version_id)
    own_assigned = _assigned(session, viewer)
    grouped: dict[tuple[int, str], list[Label]] = {}
    for (unit_id, crit_id, _ann), lab in latest.items():
        if not lab.skipped and lab.verdict is not None:
            grouped.setdefault((unit_id, crit_id), []).append(lab)
    out: list[Disagreement] = []
    for (unit_id, crit_id), labs in sorted(grouped.items()):
        if len({lab.verdict for lab in labs}) < 2 or crit_id not in crits:
            continue
        if unit_id in own_assigned and (own_done is None or (unit_id, crit_id) not in own_done):
            continue  # blind until the reviewer has labeled their own assignment
        adj = settled.get((unit_id, crit_id))
        if adj is not None and not include_settled:
            continue
        out.append(Disagreement(
            unit_id, crits[crit_id],
            [{"annotator": names.get(lab.annotator_id, "?"), "verdict": lab.verdict, "comment": lab.comment,
              "label": lab.id} for lab in sorted(labs, key=lambda x: names.get(x.annotator_id, ""))],
            None if adj is None else {"verdict": adj.verdict, "note": adj.note,
                                      "by": names.get(adj.adjudicator_id, "?"), "at": adj.created_at}))
    return out


def with_content(session: Session, viewer: Viewer, d: Disagreement) -> Disagreement:
    """The prompt and output of a queued unit (never the candidate's name)."""
    viewer.require("review", "adjudication")
    unit = session.get(GoldenUnit, d.golden_unit_id)
    assert unit is not None
    item = session.get(Item, unit.item_id)
    out = session.get(Output, unit.output_id)
    d.messages = list(item.messages or []) if item else []
    d.output = (out.text or "") if out else ""
    return d


def record(session: Session, viewer: Viewer, version_id: int, rubric_version_id: int, golden_unit_id: int,
           criterion_id: str, choice: str, note: str) -> Adjudication:
    """Store a reviewer's adjudicated label with the note and the labels it resolved; refuses units not in the
    queue (no disagreement, or still blind to this reviewer)."""
    viewer.require("review", "adjudication")
    note = (note or "").strip()
    if not note:
        raise InputError("an adjudication needs a note saying why", where="note",
                         hint="e.g. which annotator read the criterion as written")
    if viewer.annotator_id is None:
        raise InputError("an adjudication is recorded under a person", where="viewer",
                         hint="sign in; in single-user mode pick your name in the sidebar")
    found = next((d for d in queue(session, viewer, version_id, rubric_version_id, include_settled=True)
                  if d.golden_unit_id == golden_unit_id and d.criterion_id == criterion_id), None)
    if found is None:
        raise InputError(f"golden unit {golden_unit_id} × {criterion_id} has no disagreement to adjudicate here",
                         where="unit")
    unit = session.get(GoldenUnit, golden_unit_id)
    assert unit is not None
    if choice not in [c for c, _ in choices_for(found.criterion, unit.mode)]:
        encode(found.criterion, unit.mode, choice)  # raises with the allowed choices
    verdict, score = encode(found.criterion, unit.mode, choice)
    adj = Adjudication(golden_unit_id=golden_unit_id, rubric_version_id=rubric_version_id, criterion_id=criterion_id,
                       output_id=unit.output_id, output_b_id=unit.output_b_id, verdict=verdict, score=score,
                       note=note, adjudicator_id=viewer.annotator_id, labels=found.labels)
    session.add(adj)
    session.flush()
    return adj


def still_blind(session: Session, viewer: Viewer, rubric_version_id: int) -> set[tuple[int, str]]:
    """(output id, criterion id) of units assigned to the viewer that they have not labeled yet: judge verdicts
    and peers' labels on them stay hidden from the viewer until they have."""
    if viewer.annotator_id is None:
        return set()
    rubric = session.get(RubricVersion, rubric_version_id)
    if rubric is None:
        return set()
    crit_ids = [str(c["id"]) for c in criteria_of(rubric)]
    done = _blind_units(session, viewer, rubric_version_id) or set()
    rows = session.exec(select(GoldenUnit.id, GoldenUnit.output_id)
                        .join(GoldenAssignment, GoldenAssignment.golden_unit_id == GoldenUnit.id)
                        .where(GoldenAssignment.annotator_id == viewer.annotator_id,
                               GoldenUnit.rubric_version_id == rubric_version_id)).all()
    return {(int(out), c) for unit, out in rows for c in crit_ids if (unit, c) not in done}
