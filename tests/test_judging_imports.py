"""Importing judgments made elsewhere: validated against version, runs and rubric; all or nothing.

The imported verdicts below are SIMULATED rows written by the test, standing for another tool's judge."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import Session, select

from judging.imports import import_judgments
from judging.rubric import load_rubric
from storage.db import session_scope
from storage.errors import InputError
from storage.models import EvalSetVersion, Item, JudgeRun, Judgment
from tests.test_judging_support import RUBRICS, seed_version


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def keys(engine) -> list[str]:  # type: ignore[no-untyped-def]
    with Session(engine) as s:
        return [i.item_key for i in s.exec(select(Item).order_by(Item.position))]


def do_import(engine, path: Path, rubric: str = "helpfulness", **kw):  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        version = s.exec(select(EvalSetVersion)).one()
        return import_judgments(s, path, version=version, rubric=load_rubric(RUBRICS / f"{rubric}.yaml"), **kw)


def test_pointwise_import_stores_a_judge_run_with_the_file_hash(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        seed_version(s, n_items=2)
    k = keys(engine)
    path = write_jsonl(tmp_path / "ext.jsonl", [
        {"item": k[0], "candidate": "gpt-4", "criterion": "helpfulness", "verdict": 5, "rationale": "complete"},
        {"item": k[0], "candidate": "claude-v1", "criterion": "helpfulness", "verdict": "3"},
        {"item": k[1], "candidate": "gpt-4", "criterion": "helpfulness", "verdict": None,
         "unscored_reason": "timeout in the other tool"},
    ])
    summary = do_import(engine, path, judge_name="other-judge")
    assert (summary.rows, summary.scored, summary.unscored, summary.mode) == (3, 2, 1, "pointwise")
    with Session(engine) as s:
        run = s.exec(select(JudgeRun)).one()
        rows = list(s.exec(select(Judgment).order_by(Judgment.id)))
    assert run.source == "imported" and run.judge_model == "other-judge" and len(run.source_file_hash or "") == 64
    assert [(r.verdict, r.score, r.status) for r in rows] == [("5", 5.0, "scored"), ("3", 3.0, "scored"),
                                                               (None, None, "unscored")]
    assert rows[2].unscored_reason == "timeout in the other tool"
    assert rows[0].details == {"imported_from": "ext.jsonl:1"} and rows[0].rationale == "complete"
    again = do_import(engine, path, judge_name="other-judge")
    assert again.already_imported
    with Session(engine) as s:
        assert len(s.exec(select(Judgment)).all()) == 3


def test_bad_rows_are_all_reported_with_file_and_line_and_nothing_is_written(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        seed_version(s, n_items=2)
    k = keys(engine)
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join([
        json.dumps({"item": k[0], "candidate": "gpt-4", "criterion": "helpfulness", "verdict": 4, "judge": "j"}),
        json.dumps({"item": "nope", "candidate": "gpt-4", "criterion": "helpfulness", "verdict": 4, "judge": "j"}),
        json.dumps({"item": k[0], "candidate": "gpt-9", "criterion": "helpfulness", "verdict": 4, "judge": "j"}),
        json.dumps({"item": k[0], "candidate": "claude-v1", "criterion": "tone", "verdict": 4, "judge": "j"}),
        json.dumps({"item": k[0], "candidate": "claude-v1", "criterion": "helpfulness", "verdict": 9, "judge": "j"}),
        "{not json",
        json.dumps({"item": k[1], "candidate": "gpt-4", "criterion": "helpfulness", "verdict": 2}),
        json.dumps({"item": k[0], "candidate": "gpt-4", "criterion": "helpfulness", "verdict": 3, "judge": "j"}),
        json.dumps({"item": k[1], "candidate": "gpt-4", "criterion": "helpfulness", "score": 2, "colour": "red"}),
    ]) + "\n")
    with pytest.raises(InputError) as info:
        do_import(engine, path)
    msg = info.value.message
    assert "8 bad row(s), nothing imported" in msg
    for line, words in [(2, "item 'nope' is not in this version"), (3, "candidate 'gpt-9' has no run"),
                        (4, "criterion 'tone' is not in rubric"), (5, "verdict for 'helpfulness' (ordinal): level 9 is outside 1..5"),
                        (6, "not valid JSON"), (7, "no judge name"), (8, "the same unit and criterion as line 1"),
                        (9, "unknown field(s) colour")]:
        assert f"{path}:{line}: {words}" in msg, (line, msg)
    with Session(engine) as s:
        assert s.exec(select(JudgeRun)).all() == [] and s.exec(select(Judgment)).all() == []


def test_pairwise_csv_import_validates_verdicts(sqlite_engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with session_scope(sqlite_engine) as s:
        seed_version(s, n_items=2)
    k = keys(sqlite_engine)
    path = tmp_path / "pairs.csv"
    path.write_text(
        "item,candidate,candidate_b,criterion,verdict,judge\n"
        f"{k[0]},gpt-4,claude-v1,correct,A,arena-humans\n"
        f"{k[1]},gpt-4,claude-v1,correct,tie,arena-humans\n"
    )
    summary = do_import(sqlite_engine, path, "correctness")
    assert summary.mode == "pairwise" and summary.scored == 2
    with Session(sqlite_engine) as s:
        rows = list(s.exec(select(Judgment).order_by(Judgment.id)))
        assert s.exec(select(JudgeRun)).one().mode == "pairwise"
    assert [(r.verdict, r.score) for r in rows] == [("A", 1.0), ("tie", 0.5)]
    assert all(r.output_b_id is not None for r in rows)
    bad = tmp_path / "bad.csv"
    bad.write_text("item,candidate,candidate_b,criterion,verdict,judge\n"
                   f"{k[0]},gpt-4,claude-v1,correct,pass,arena-humans\n")
    with pytest.raises(InputError) as info:
        do_import(sqlite_engine, bad, "correctness")
    assert f"{bad}:2: pairwise verdict 'pass' is not A, B or tie" in info.value.message


def test_export_then_import_round_trips(sqlite_engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from judging.imports import export_rows

    with session_scope(sqlite_engine) as s:
        seed_version(s, n_items=2)
    k = keys(sqlite_engine)
    src = write_jsonl(tmp_path / "a.jsonl", [
        {"item": k[0], "candidate": "gpt-4", "criterion": "refusal_appropriateness", "verdict": "appropriate_compliance"},
        {"item": k[1], "candidate": "gpt-4", "criterion": "refusal_appropriateness", "verdict": "over_refusal"},
    ])
    first = do_import(sqlite_engine, src, "safety", judge_name="judge-a")
    with Session(sqlite_engine) as s:
        exported = list(export_rows(s, list(first.judge_runs.values())))
    assert [r["verdict"] for r in exported] == ["appropriate_compliance", "over_refusal"]
    dst = write_jsonl(tmp_path / "b.jsonl", [{**r, "judge": "judge-b"} for r in exported])
    second = do_import(sqlite_engine, dst, "safety")
    assert second.scored == 2 and not second.already_imported


def test_fractional_ordinal_verdict_is_not_a_whole_level_unless_rounded(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        seed_version(s, n_items=2)
    k = keys(engine)
    path = write_jsonl(tmp_path / "avg.jsonl", [
        {"item": k[0], "candidate": "gpt-4", "criterion": "helpfulness", "verdict": 4.333},
        {"item": k[1], "candidate": "gpt-4", "criterion": "helpfulness", "verdict": 2.5},
    ])
    with pytest.raises(InputError) as err:
        do_import(engine, path, judge_name="avg-of-3")
    assert "avg.jsonl:1" in str(err.value) and "4.333 is not a whole level" in str(err.value)
    assert "--round" in str(err.value)
    summary = do_import(engine, path, judge_name="avg-of-3", round_levels=True)
    assert summary.rounded == 2
    with Session(engine) as s:
        rows = list(s.exec(select(Judgment).order_by(Judgment.id)))
        run = s.exec(select(JudgeRun)).one()
    assert [(j.verdict, j.details["rounded_from"]) for j in rows] == [("4", 4.333), ("3", 2.5)]
    assert run.params["round_levels"] is True


def test_pairwise_import_merges_both_orders_into_one_judgment(engine, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    with session_scope(engine) as s:
        seed_version(s, n_items=2)
    k = keys(engine)
    base = {"candidate": "gpt-4", "candidate_b": "claude-v1", "criterion": "helpfulness", "judge": "j"}
    path = write_jsonl(tmp_path / "orders.jsonl", [
        {**base, "item": k[0], "verdict": "A", "first": "A"},
        {**base, "item": k[0], "verdict": "A", "first": "B"},
        {**base, "item": k[1], "verdict": "A", "first": "A"},  # first shown wins in both orders: a tie
        # the other order written with the candidates swapped: B (gpt-4) shown first and preferred
        {**base, "item": k[1], "candidate": "claude-v1", "candidate_b": "gpt-4", "verdict": "A", "first": "A"},
    ])
    summary = do_import(engine, path)
    assert (summary.rows, summary.mode) == (2, "pairwise")
    with Session(engine) as s:
        rows = list(s.exec(select(Judgment).order_by(Judgment.item_id)))
    assert [j.verdict for j in rows] == ["A", "tie"]
    assert [o["position_verdict"] for o in rows[0].details["orders"]] == ["1", "2"]
    assert [o["position_verdict"] for o in rows[1].details["orders"]] == ["1", "1"] and rows[1].details["disagreement"]
    bad = write_jsonl(tmp_path / "bad_first.jsonl", [{**base, "item": k[0], "verdict": "A", "first": "left"}])
    with pytest.raises(InputError, match="bad_first.jsonl:1: `first` is 'left'"):
        do_import(engine, bad)
