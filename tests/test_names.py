"""Names of annotators and candidates are checked where they are created: in the app, in a golden draw, in
every import; a bad name is a clear error and nothing is written."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlmodel import Session, select

from analysis import labeling
from analysis.labels import import_labels
from gateway.candidates import load_candidates
from storage.db import make_engine, session_scope
from storage.errors import InputError
from storage.models import Annotator, Candidate, Label
from storage.names import MAX_NAME, check_name
from tests.conftest_loopback import freeze_items, ownbench_cli
from tests.test_analysis_reports import seed_study

BAD = ["![n](http://203.0.113.9/n.png)", "a" * (MAX_NAME + 1), "ana\u200b", "eve\u202enaj", "", "  ", "<b>x</b>",
       ":red[x]", "-lead", "tab\tname", "line\nbreak"]


@pytest.mark.parametrize("bad", BAD)
def test_bad_annotator_names_are_refused_saying_what_and_where(bad: str) -> None:
    with pytest.raises(InputError) as exc:
        check_name(bad, "annotator", where="the form")
    assert exc.value.where == "the form" and "annotator name" in exc.value.what and exc.value.hint


@pytest.mark.parametrize("good", ["ana", "Ana Lía", "ana.perez+qa@example.com", "o'brien", "李雷", "x_1"])
def test_plain_annotator_names_pass(good: str) -> None:
    assert check_name(f" {good} ", "annotator") == good


@pytest.mark.parametrize("good", ["gpt-4o-mini", "openai/gpt-4o", "qwen2.5:7b", "prod (2024)", "a=b"])
def test_candidate_names_may_hold_provider_punctuation(good: str) -> None:
    assert check_name(good, "candidate") == good


def test_the_app_refuses_a_hostile_annotator_and_stores_nothing(tmp_path: Path) -> None:
    eng = make_engine(f"sqlite:///{tmp_path / 'names.db'}")
    with Session(eng) as s:
        for bad in BAD:
            with pytest.raises(InputError):
                labeling.ensure_annotator(s, bad)
        assert labeling.ensure_annotator(s, " Ana Lía ").name == "Ana Lía"
        assert [a.name for a in s.exec(select(Annotator))] == ["Ana Lía"]
    eng.dispose()


def test_label_import_reports_a_bad_annotator_by_line(engine, tmp_path: Path) -> None:
    (vid, rid, _), _ = seed_study(engine, items=4, rates={"a": 0.5})
    f = tmp_path / "labels.jsonl"
    rows = [{"item": "q000", "candidate": "a", "criterion": "correct", "label": "pass", "annotator": "ann"},
            {"item": "q001", "candidate": "a", "criterion": "correct", "label": "pass",
             "annotator": "![x](http://203.0.113.9/x.png)"}]
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(InputError) as err, session_scope(engine) as s:
        import_labels(s, f, vid, rid)
    assert "labels.jsonl:2: annotator" in err.value.message and "labels.jsonl:1" not in err.value.message
    with session_scope(engine) as s:
        assert s.exec(select(Label)).first() is None and s.exec(select(Annotator)).first() is None


def test_candidates_file_reports_a_bad_name_by_line(tmp_path: Path) -> None:
    path = tmp_path / "candidates.yaml"
    path.write_text("candidates:\n  - name: ok\n    model: m\n  - name: \"<img src=x>\"\n    model: m\n")
    with pytest.raises(InputError) as err:
        load_candidates(path)
    assert err.value.where == f"{path}:4" and "candidate name" in err.value.message


def test_run_import_refuses_a_bad_candidate_name(engine, tmp_path: Path) -> None:
    _, label = freeze_items(engine, 2)
    path = tmp_path / "answers.jsonl"
    path.write_text(json.dumps({"item_key": "item-0000", "output": "fine"}) + "\n")
    proc = ownbench_cli("runs", "import", str(path), "--candidate", ":red[x]\u202e", "--set", label, cwd=tmp_path)
    assert proc.returncode == 2 and "--candidate" in proc.stderr and "candidate name" in proc.stderr
    with Session(engine) as s:
        assert s.exec(select(Candidate)).first() is None
