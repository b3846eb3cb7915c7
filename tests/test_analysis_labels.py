"""Importing and exporting human labels (the labels are SIMULATED test rows, not real judgments of anyone)."""
from __future__ import annotations

import csv
import json

import pytest
from sqlmodel import select

from analysis.data import load_study
from analysis.labels import export_rows, import_labels, write_export
from analysis.people import CLI
from storage.db import session_scope
from storage.errors import InputError
from storage.models import Annotator, Label
from tests.test_analysis_reports import seed_study


def test_bad_rows_are_reported_by_line_and_nothing_is_written(engine, tmp_path):
    (vid, rid, _), _ = seed_study(engine, items=10, rates={"a": 0.5})
    f = tmp_path / "labels.jsonl"
    rows = [
        {"item": "q000", "candidate": "a", "criterion": "correct", "label": "pass", "annotator": "ann"},
        {"item": "q001", "candidate": "a", "criterion": "correctness", "label": "pass", "annotator": "ann"},
        {"item": "q999", "candidate": "a", "criterion": "correct", "label": "pass", "annotator": "ann"},
        {"item": "q002", "candidate": "zzz", "criterion": "correct", "label": "pass", "annotator": "ann"},
        {"item": "q003", "candidate": "a", "criterion": "quality", "label": "7", "annotator": "ann"},
        {"item": "q004", "candidate": "a", "criterion": "tone", "label": "rude", "annotator": "ann"},
        {"item": "q005", "candidate": "a", "criterion": "correct", "label": "pass"},
        {"item": "q006", "candidate": "a", "criterion": "correct", "label": "pass", "annotator": "ann",
         "inclusion_prob": 1.5},
    ]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n{not json\n")
    with pytest.raises(InputError) as err, session_scope(engine) as s:
        import_labels(s, f, vid, rid)
    msg = err.value.message
    for line, needle in ((2, "correctness"), (3, "q999"), (4, "zzz"), (5, "from 1 to 5"), (6, "rude"),
                         (7, "missing annotator"), (8, "(0, 1]"), (9, "not valid JSON")):
        assert f"labels.jsonl:{line}:" in msg and needle in msg, (line, msg)
    assert "labels.jsonl:1:" not in msg
    with session_scope(engine) as s:
        assert s.exec(select(Label)).first() is None and s.exec(select(Annotator)).first() is None


def test_import_declares_its_design_and_export_says_human_or_judge(engine, tmp_path):
    (vid, rid, _), _ = seed_study(engine, items=20, rates={"a": 0.5, "b": 0.6})
    plain = tmp_path / "plain.csv"
    plain.write_text("item,candidate,criterion,label,annotator\nq000,a,correct,yes,ann\nq001,b,correct,fail,ann\n")
    sampled = tmp_path / "sampled.csv"
    sampled.write_text("item,candidate,criterion,label,annotator,inclusion_prob\n"
                       "q002,a,correct,pass,bob,0.1\nq003,b,quality,3,bob,0.25\n")
    with session_scope(engine) as s:
        r1 = import_labels(s, plain, vid, rid)
        r2 = import_labels(s, sampled, vid, rid)
    assert r1["calibration_usable"] == 0 and r2["calibration_usable"] == 2
    with pytest.raises(InputError, match="already imported"), session_scope(engine) as s:
        import_labels(s, plain, vid, rid)
    with session_scope(engine) as s:
        study = load_study(s, vid, rid)
        cd = study.criteria["correct"]
        assert cd.outside == 2 and cd.calib.sum() == 1 and len(cd.humans) == 2
        rows = export_rows(s, vid, rid, viewer=CLI)
    human = [r for r in rows if r["source"] == "human"]
    judge = [r for r in rows if r["source"] == "judge"]
    assert len(human) == 4 and len(judge) == 20 * 2 * 3
    assert {r["rater"] for r in human} == {"ann", "bob"}
    assert all(r["rater"] == "openai/gpt-4o-mini" for r in judge)
    out = tmp_path / "out.csv"
    write_export(rows, out)
    back = list(csv.DictReader(out.open()))
    assert len(back) == len(rows) and {r["source"] for r in back} == {"human", "judge"}


def test_uniform_declaration_gives_equal_probabilities(sqlite_engine, tmp_path):
    (vid, rid, _), _ = seed_study(sqlite_engine, items=20, rates={"a": 0.5, "b": 0.6})
    f = tmp_path / "u.jsonl"
    f.write_text("\n".join(json.dumps({"item": f"q{i:03d}", "candidate": "a", "criterion": "correct",
                                       "label": "pass", "annotator": "ann"}) for i in range(5)) + "\n")
    with session_scope(sqlite_engine) as s:
        res = import_labels(s, f, vid, rid, uniform=True)
        probs = {lab.inclusion_prob for lab in s.exec(select(Label))}
    assert res["calibration_usable"] == 5 and len(probs) == 1 and probs.pop() == pytest.approx(5 / 20)
