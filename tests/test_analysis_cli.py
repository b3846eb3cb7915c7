"""`ownbench agreement|rank|compare|golden|labels` end to end, as subprocesses on a seeded SQLite database.
The judge verdicts and human labels in the database are SIMULATED (see tests/test_analysis_reports.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_analysis_reports import seed_study

OWNBENCH = str(Path(sys.executable).with_name("ownbench"))


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([OWNBENCH, *args], capture_output=True, text=True, env=os.environ.copy(), timeout=240)


@pytest.fixture
def seeded(sqlite_engine):
    seed_study(sqlite_engine, items=150, golden=120, k=1, seed=2)
    return sqlite_engine


def test_rank_agreement_and_compare_exit_codes(seeded, tmp_path):
    rank = run("rank", "--set", "support@1", "--rubric", "support", "--json", "--bootstrap", "2000")
    assert rank.returncode == 0, rank.stderr
    data = json.loads(rank.stdout)
    correct = next(c for c in data["criteria"] if c["criterion"] == "correct")
    assert [r["candidate"] for r in correct["rows"]][-1] == "newer"
    assert all(r["calibrated"]["n"] == r["golden"] for r in correct["rows"])

    md = run("rank", "--set", "support@1", "--rubric", "support", "--markdown", "--bootstrap", "500")
    assert md.returncode == 0 and md.stdout.startswith("# Ranking: support@1")

    agree = run("agreement", "--set", "support@1", "--rubric", "support", "--json", "--bootstrap", "200")
    assert agree.returncode == 0, agree.stderr
    assert {c["criterion"] for c in json.loads(agree.stdout)["criteria"]} == {"correct", "quality", "tone"}

    report = tmp_path / "compare.md"
    drop = run("compare", "--set", "support@1", "--baseline", "baseline", "--candidate", "newer", "--rubric", "support",
               "--bootstrap", "2000", "--output", str(report))
    assert drop.returncode == 1, drop.stdout + drop.stderr
    assert "Significant regression" in report.read_text()
    same = run("compare", "--set", "support@1", "--baseline", "baseline", "--candidate", "other", "--rubric",
               "support", "--bootstrap", "2000", "--json")
    assert same.returncode == 0, same.stdout + same.stderr
    assert json.loads(same.stdout)["regressed"] is False
    gain = run("compare", "--set", "support@1", "--baseline", "newer", "--candidate", "baseline", "--rubric", "support",
               "--bootstrap", "1000", "--markdown")
    assert gain.returncode == 0 and "significant gain" in gain.stdout


def test_usage_errors_exit_2(seeded):
    for args, needle in ((("compare", "--set", "support@1", "--baseline", "baseline", "--candidate", "ghost",
                           "--rubric", "support"), "ghost"),
                         (("compare", "--set", "nope@1", "--baseline", "a", "--candidate", "b", "--rubric", "support"),
                          "no eval set version"),
                         (("rank", "--set", "support@1", "--rubric", "missing-rubric"), "no rubric version"),
                         (("compare", "--set", "support@1", "--baseline", "baseline"), "Missing option")):
        res = run(*args)
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert needle in res.stderr


def test_withheld_ranking_says_why(sqlite_engine):
    seed_study(sqlite_engine, items=40, golden=9, k=1)
    res = run("rank", "--set", "support@1", "--rubric", "support", "--markdown", "--bootstrap", "200")
    assert res.returncode == 0 and "Ranking withheld" in res.stdout and "at least 30" in res.stdout
    comp = run("compare", "--set", "support@1", "--baseline", "baseline", "--candidate", "newer", "--rubric", "support",
               "--bootstrap", "200", "--json")
    assert comp.returncode == 0  # nothing significant can be claimed; the reason is in the report
    assert all(c["withheld"] for c in json.loads(comp.stdout)["criteria"])


def test_golden_select_and_label_round_trip(sqlite_engine, tmp_path):
    seed_study(sqlite_engine, items=30, rates={"a": 0.7, "b": 0.4})
    sel = run("golden", "select", "--set", "support@1", "--rubric", "support", "--n", "12", "--seed", "5",
              "--annotators", "ann,bob", "--k", "2", "--json")
    assert sel.returncode == 0, sel.stderr
    assert json.loads(sel.stdout)["assignments"] == 24
    labels = tmp_path / "labels.csv"
    labels.write_text("item,candidate,criterion,label,annotator\n"
                      "q000,a,correct,pass,erin\nq001,b,quality,4,erin\nq002,a,tone,formal,erin\n")
    imp = run("labels", "import", str(labels), "--set", "support@1", "--rubric", "support", "--uniform")
    assert imp.returncode == 0, imp.stderr and "usable for calibration" in imp.stdout
    out = tmp_path / "export.jsonl"
    exp = run("labels", "export", str(out), "--set", "support@1", "--rubric", "support")
    assert exp.returncode == 0, exp.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["source"] for r in rows} == {"judge", "human"}
    assert sum(r["source"] == "human" for r in rows) == 3


def test_golden_select_by_candidate_before_any_judge_run(sqlite_engine):
    seed_study(sqlite_engine, items=20, rates={"a": 0.7, "b": 0.4}, judge=False)
    args = ("golden", "select", "--set", "support@1", "--rubric", "support", "--n", "10", "--seed", "5",
            "--annotators", "ann")
    refused = run(*args)
    assert refused.returncode == 2 and "no pointwise judge run" in refused.stderr
    assert "strategy 'candidate'" in refused.stderr  # the way out, in the same words the app uses
    sel = run(*args, "--strategy", "candidate")
    assert sel.returncode == 0, sel.stderr
    assert "drew 10 unit(s) (10 in the golden subset) over 2 strata of candidate alone" in sel.stdout
    assert "10 assignment(s)" in sel.stdout


def test_golden_select_pairwise(sqlite_engine):
    from tests.test_analysis_pairwise import _seed_pairwise

    _seed_pairwise(sqlite_engine, golden_per_pair=0)
    sel = run("golden", "select", "--set", "support@1", "--rubric", "support", "--n", "9", "--seed", "1",
              "--mode", "pairwise", "--annotators", "pat")
    assert sel.returncode == 0, sel.stderr
    assert "drew 9 unit(s) (9 in the golden subset) over 3 strata of candidate pairs" in sel.stdout
    bad = run("golden", "select", "--set", "support@1", "--rubric", "support", "--n", "9", "--seed", "1",
              "--mode", "pairs")
    assert bad.returncode == 2 and "mode 'pairs' is not one of pointwise, pairwise" in bad.stderr
