"""The labeling queue (analysis/labeling.py) on both backends: order, append-only labels, skip/flag, swap,
blindness of the unit view, and refusal of bad input without writing anything. Seeded data is simulated."""
from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from analysis import labeling
from analysis.people import CLI
from storage.db import session_scope
from storage.errors import InputError
from storage.models import GoldenAssignment, GoldenUnit, Label, Output
from tests.test_ui_seed import CANDIDATE_NAMES, JUDGE_MODEL, MODEL_NAMES, RATIONALE, seed_project


def _task(s: Session, aid: int) -> labeling.LabelingTask:
    tasks = labeling.tasks_for(s, aid)
    assert len(tasks) == 1
    return tasks[0]


def test_queue_walks_units_and_criteria_in_order(engine: Engine) -> None:
    seeded = seed_project(engine)
    alice = seeded.annotators["alice"]
    with session_scope(engine) as s:
        task = _task(s, alice)
        assert task.assigned == 18 and "support@1" in task.title
        step = labeling.next_step(s, alice, task)
        assert step == (seeded.unit_ids[0], "correct")
        labeling.save_label(s, alice, *step, choice="pass")
        step = labeling.next_step(s, alice, task)
        assert step == (seeded.unit_ids[0], "helpful")
        labeling.save_label(s, alice, *step, choice="3", comment="  clear  ")
        assert labeling.next_step(s, alice, task) == (seeded.unit_ids[1], "correct")
        # "next" without labeling moves past the step on screen and wraps around to it later
        assert labeling.next_step(s, alice, task, after=(seeded.unit_ids[1], "correct")) == (seeded.unit_ids[1], "helpful")
        labeling.save_label(s, alice, seeded.unit_ids[1], "correct", skipped=True)
        p = labeling.progress(s, alice, task)
        assert (p.assigned_units, p.done_units, p.labels, p.skipped, p.steps_done) == (18, 1, 2, 1, 3)
        # bob's queue is his own
        assert labeling.next_step(s, seeded.annotators["bob"], task) == (seeded.unit_ids[0], "correct")
    with Session(engine) as s:
        rows = s.exec(select(Label).order_by(Label.id)).all()
        assert [(r.verdict, r.score, r.skipped) for r in rows] == [("pass", 1.0, False), ("3", 3.0, False),
                                                                   (None, None, True)]
        assert rows[1].comment == "clear"
        unit = s.get(GoldenUnit, seeded.unit_ids[0])
        assert rows[0].inclusion_prob == unit.inclusion_prob and rows[0].golden_unit_id == unit.id
        assert rows[0].output_id == unit.output_id and rows[0].item_id == unit.item_id


def test_relabeling_appends_and_latest_counts(engine: Engine) -> None:
    seeded = seed_project(engine)
    alice = seeded.annotators["alice"]
    u = seeded.unit_ids[0]
    with session_scope(engine) as s:
        task = _task(s, alice)
        labeling.save_label(s, alice, u, "correct", choice="pass")
        labeling.save_label(s, alice, u, "correct", choice="fail", flagged=True, comment="changed my mind")
        view = labeling.unit_view(s, alice, u, "correct")
        assert view.latest == {"verdict": "fail", "skipped": False, "flagged": True, "comment": "changed my mind"}
        p = labeling.progress(s, alice, task)
        assert (p.labels, p.flagged, p.by_criterion["correct"]) == (1, 1, 1)
    with Session(engine) as s:
        assert [r.verdict for r in s.exec(select(Label).order_by(Label.id))] == ["pass", "fail"]


def test_unit_view_is_blind(sqlite_engine: Engine) -> None:
    seeded = seed_project(sqlite_engine, simulated_labels=True)
    alice = seeded.annotators["alice"]
    with session_scope(sqlite_engine) as s:
        view = labeling.unit_view(s, alice, seeded.unit_ids[3], "helpful")
        text = repr(dataclasses.asdict(view))
        for secret in [*CANDIDATE_NAMES, *MODEL_NAMES, JUDGE_MODEL, RATIONALE, "COMMENT-OF-bob", "bob"]:
            assert secret not in text
        assert view.criterion["levels"]["3"] == "Fully answers the request"
        assert view.messages[0]["role"] == "user" and len(view.outputs) == 1


def test_pairwise_swap_is_undone_when_saving(sqlite_engine: Engine) -> None:
    seeded = seed_project(sqlite_engine)
    alice, bob = seeded.annotators["alice"], seeded.annotators["bob"]
    with session_scope(sqlite_engine) as s:
        base = s.get(GoldenUnit, seeded.unit_ids[0])
        other = s.exec(select(Output).where(Output.item_id == base.item_id, Output.id != base.output_id)).first()
        pair = GoldenUnit(version_id=base.version_id, rubric_version_id=base.rubric_version_id, mode="pairwise",
                          item_id=base.item_id, output_id=base.output_id, output_b_id=other.id, inclusion_prob=0.5)
        s.add(pair)
        s.flush()
        s.add(GoldenAssignment(golden_unit_id=pair.id, annotator_id=alice, position=0, swap=False))
        s.add(GoldenAssignment(golden_unit_id=pair.id, annotator_id=bob, position=0, swap=True))
        s.flush()
        a_text = s.get(Output, base.output_id).text
        va = labeling.unit_view(s, alice, pair.id, "correct")
        vb = labeling.unit_view(s, bob, pair.id, "correct")
        assert va.outputs[0] == a_text and vb.outputs[1] == a_text and va.outputs == vb.outputs[::-1]
        # both prefer the same output (A), which bob sees second
        la = labeling.save_label(s, alice, pair.id, "correct", choice="first")
        lb = labeling.save_label(s, bob, pair.id, "correct", choice="second")
        lt = labeling.save_label(s, bob, pair.id, "helpful", choice="tie")
        assert (la.verdict, la.score, lb.verdict, lb.score, lt.verdict, lt.score) == ("A", 1.0, "A", 1.0, "tie", 0.5)
        assert la.output_b_id == other.id
        assert labeling.unit_view(s, bob, pair.id, "correct").latest["verdict"] == "second"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"criterion_id": "correct", "choice": "maybe"}, "not a valid label"),
        ({"criterion_id": "helpful", "choice": "7"}, "not a valid label"),
        ({"criterion_id": "tone", "choice": "pass"}, "criterion 'tone' is not in rubric"),
        ({"criterion_id": "correct"}, "pick a label or skip"),
    ],
)
def test_bad_labels_are_refused_and_nothing_is_written(sqlite_engine: Engine, kwargs: dict, message: str) -> None:
    seeded = seed_project(sqlite_engine)
    with pytest.raises(InputError, match=message), session_scope(sqlite_engine) as s:
        labeling.save_label(s, seeded.annotators["alice"], seeded.unit_ids[0], **kwargs)
    with Session(sqlite_engine) as s:
        assert s.exec(select(Label)).all() == []


def test_units_of_others_are_refused(sqlite_engine: Engine) -> None:
    seeded = seed_project(sqlite_engine, annotators=("alice", "bob"))
    with session_scope(sqlite_engine) as s:
        carol = labeling.ensure_annotator(s, "carol")
        assert labeling.ensure_annotator(s, " carol ").id == carol.id
        assert labeling.tasks_for(s, carol.id) == []
        with pytest.raises(InputError, match="not assigned"):
            labeling.save_label(s, carol.id, seeded.unit_ids[0], "correct", choice="pass")
        with pytest.raises(InputError, match="not assigned"):
            labeling.unit_view(s, carol.id, seeded.unit_ids[0], "correct")
        with pytest.raises(InputError, match="empty"):
            labeling.ensure_annotator(s, "  ")


def test_queue_ends(sqlite_engine: Engine) -> None:
    seeded = seed_project(sqlite_engine, golden_items=1, annotators=("alice",))
    alice = seeded.annotators["alice"]
    with session_scope(sqlite_engine) as s:
        task = _task(s, alice)
        n = 0
        while (step := labeling.next_step(s, alice, task)) is not None:
            labeling.save_label(s, alice, *step, choice="pass" if step[1] == "correct" else "2")
            n += 1
        assert n == 6
        p = labeling.progress(s, alice, task)
        assert p.done_units == p.assigned_units == 3 and p.remaining_units == 0
        assert [x.annotator for x in labeling.progress_all(s, task, viewer=CLI)] == ["alice"]
