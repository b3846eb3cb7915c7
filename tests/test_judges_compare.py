"""Judges compared and panels: three judge runs of different quality against the same golden labels.

The judges are SIMULATED by the loopback server (real HTTP): each judge model agrees with a hidden "truth"
with its own scripted accuracy. The golden labels are SIMULATED raters who give that truth. The outputs are
real recorded answers (Chatbot Arena, see tests/test_judging_support.py); no verdict here is a real model's.
"""
from __future__ import annotations

import asyncio
import hashlib
import random
from collections import Counter

import pytest
from sqlmodel import Session, select

from analysis.people import CLI
from gateway.client import ModelConfig
from judging.panel import build_panel, combine
from judging.rubric import parse_rubric
from judging.runs import JudgeRequest, judge_version
from storage.db import session_scope
from storage.errors import InputError
from storage.models import Annotator, GoldenAssignment, GoldenUnit, Judgment, Label, Output, RubricVersion
from tests.loopback import LoopbackServer
from tests.test_judging_support import block_text, seed_version, verdict_reply

RUBRIC = parse_rubric("""\
name: resolves
description: Whether the answer resolves the request.
criteria:
  - id: resolves
    question: Does the response resolve the user's request?
    type: binary
  - id: short
    question: At most 2000 characters?
    type: check
    check:
      max_chars: 2000
""", "resolves.yaml")
# judge model → (accuracy against the truth, USD per 1M input tokens, per 1M output tokens)
JUDGES = {"openai/judge-good": (0.97, 5.0, 15.0), "openai/judge-fair": (0.80, 0.5, 1.5),
          "openai/judge-coin": (0.50, 0.1, 0.3)}


def _u(*parts: str) -> float:
    return int(hashlib.sha256("|".join(parts).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def truth(text: str) -> str:
    return "pass" if _u("truth", text) < 0.6 else "fail"


def judge_script(body: dict) -> dict:
    """A judge whose verdict equals the truth with its model's accuracy (the coin judge: a fair coin)."""
    text = block_text(body, "output") or ""
    model = "openai/" + body["model"]
    accuracy = JUDGES[model][0]
    if accuracy == 0.5:
        verdict = "pass" if _u("coin", text) < 0.6 else "fail"
    else:
        right = _u(model, text) < accuracy
        verdict = truth(text) if right else ("fail" if truth(text) == "pass" else "pass")
    return verdict_reply(body, {"reasoning": "scripted", "verdict": verdict})


@pytest.fixture
def study(sqlite_engine):  # type: ignore[no-untyped-def]
    engine = sqlite_engine
    with session_scope(engine) as s:
        version_id, runs = seed_version(s, n_items=60, candidates=("gpt-4", "claude-v1", "gpt-3.5-turbo"))
    run_ids = {}
    with LoopbackServer() as srv:
        srv.script = judge_script
        for model, (_, pin, pout) in JUDGES.items():
            cfg = ModelConfig(model, api_base=srv.base_url, max_attempts=1, max_concurrency=16,
                              input_price_per_mtok=pin, output_price_per_mtok=pout)
            summary = asyncio.run(judge_version(engine, JudgeRequest(version_id=version_id, rubric=RUBRIC, judge=cfg)))
            assert summary.status == "done" and summary.unscored == 0
            run_ids[model] = summary.judge_run_id
    # golden labels: a simple random sample of half of each candidate's outputs, labeled by a simulated rater
    rng = random.Random(7)
    with session_scope(engine) as s:
        rv = s.exec(select(RubricVersion).where(RubricVersion.name == "resolves")).one()
        ann = Annotator(name="sim-rater")
        s.add(ann)
        s.flush()
        for run_id in runs.values():
            outs = list(s.exec(select(Output).where(Output.run_id == run_id).order_by(Output.id)))
            for o in rng.sample(outs, 30):
                unit = GoldenUnit(version_id=version_id, rubric_version_id=rv.id, item_id=o.item_id, output_id=o.id,  # type: ignore[arg-type]
                                  inclusion_prob=0.5, selection={"strategy": "random"})
                s.add(unit)
                s.flush()
                s.add(GoldenAssignment(golden_unit_id=unit.id, annotator_id=ann.id))  # type: ignore[arg-type]
                t = truth(o.text or "")
                s.add(Label(annotator_id=ann.id, rubric_version_id=rv.id, criterion_id="resolves", item_id=o.item_id,  # type: ignore[arg-type]
                            output_id=o.id, golden_unit_id=unit.id, verdict=t, score=1.0 if t == "pass" else 0.0))  # type: ignore[arg-type]
        rubric_version_id = rv.id
    return engine, version_id, rubric_version_id, run_ids


def test_judges_compared_order_by_calibrated_width_matches_their_quality(study) -> None:  # type: ignore[no-untyped-def]
    from analysis.judges import compare_judges

    engine, version_id, rubric_version_id, run_ids = study
    with Session(engine) as s:
        report = compare_judges(s, version_id, rubric_version_id, viewer=CLI, n_boot=200)
        costs = {m: list(s.exec(select(Judgment.cost_usd).where(
            Judgment.judge_run_id == rid, Judgment.criterion_id == "resolves"))) for m, rid in run_ids.items()}
    by = {j["judge_model"]: j for j in report.judges}
    good, fair, coin = (by[m] for m in JUDGES)
    assert good["width"] < fair["width"] < coin["width"]
    assert good["width_ratio"] < fair["width_ratio"] < 1.0
    assert good["alpha"].value > fair["alpha"].value > coin["alpha"].value
    for model, j in by.items():
        assert j["criteria"] == ["resolves"]  # the check criterion is exact and left out
        assert j["judgments"] == 180 and j["unscored_share"] == 0
        assert j["cost_per_1k_usd"] == pytest.approx(sum(costs[model]) / 180 * 1000)
        assert j["latency_p50_ms"] is not None and j["kappa"] is not None and j["leniency"] is not None
    assert good["cost_per_1k_usd"] > fair["cost_per_1k_usd"] > coin["cost_per_1k_usd"]
    rec = report.recommendation
    assert rec["judge_run"] in (run_ids["openai/judge-good"], run_ids["openai/judge-fair"])
    within = [j for j in report.judges if j["judge_run"] in rec["within_margin"]]
    assert all(j["width"] <= rec["best_width"] * 1.10 for j in within)
    assert by[rec["judge_model"]]["cost_per_1k_usd"] == min(j["cost_per_1k_usd"] for j in within)
    md = report.to_markdown()
    assert "Recommendation" in md and "judge-coin" in md and "$ / 1k judgments" in md


def test_recommendation_says_when_no_judge_beats_human_only() -> None:
    from analysis.judges import recommend

    judges = [{"judge_run": 1, "judge_model": "a", "width": 0.40, "human_width": 0.40, "width_ratio": 1.0,
               "cost_per_1k_usd": 0.1},
              {"judge_run": 2, "judge_model": "b", "width": 0.42, "human_width": 0.40, "width_ratio": 1.05,
               "cost_per_1k_usd": 0.2}]
    rec = recommend(judges, 0.1)
    assert rec["judge_run"] is None and "no judge beats human-only" in rec["text"]
    judges[1].update(width=0.30, width_ratio=0.75)
    judges.append({"judge_run": 3, "judge_model": "c", "width": 0.32, "human_width": 0.40, "width_ratio": 0.8,
                   "cost_per_1k_usd": 0.05})
    assert recommend(judges, 0.1)["judge_run"] == 3  # cheapest within 10 % of the narrowest
    assert recommend(judges, 0.05)["judge_run"] == 2  # 0.32 is not within 5 % of 0.30


def test_panel_is_stored_and_ranked_like_a_judge(study) -> None:  # type: ignore[no-untyped-def]
    from analysis.judges import compare_judges
    from analysis.reports import agreement_report, ranking_report

    engine, version_id, rubric_version_id, run_ids = study
    members = [run_ids[m] for m in JUDGES]
    with session_scope(engine) as s:
        res = build_panel(s, members)
    assert res.created and res.units == 360 and res.unscored == 0
    with session_scope(engine) as s:
        again = build_panel(s, members)
    assert not again.created and again.judge_run_id == res.judge_run_id  # the same panel is not stored twice
    with Session(engine) as s:
        rows = {(j.criterion_id, j.output_id): j for j in s.exec(select(Judgment).where(Judgment.judge_run_id == res.judge_run_id))}
        member_rows = {rid: {(j.criterion_id, j.output_id): j for j in s.exec(select(Judgment).where(Judgment.judge_run_id == rid))}
                       for rid in members}
        run = s.get(__import__("storage.models", fromlist=["JudgeRun"]).JudgeRun, res.judge_run_id)
    assert run.source == "panel" and [m["judge_run"] for m in run.params["members"]] == members
    for key, j in rows.items():
        votes = [member_rows[rid][key].verdict for rid in members]
        assert j.verdict == Counter(votes).most_common(1)[0][0]  # three binary votes: never a tie
        assert j.cost_usd == pytest.approx(sum(member_rows[rid][key].cost_usd for rid in members))
        if key[0] == "short":
            assert j.judge_model == "check"
    with Session(engine) as s:
        ranking = ranking_report(s, version_id, rubric_version_id, viewer=CLI, n_boot=500)  # default: the latest judge run
        agreement = agreement_report(s, version_id, rubric_version_id, res.judge_run_id, viewer=CLI, n_boot=200)
        compared = compare_judges(s, version_id, rubric_version_id, viewer=CLI, n_boot=200)
    assert ranking.header["judge_run"] == res.judge_run_id
    resolves = next(c for c in ranking.criteria if c["criterion"] == "resolves")
    assert not resolves["withheld"] and len(resolves["rows"]) == 3
    assert next(c for c in agreement.criteria if c["criterion"] == "resolves")["alpha_judge_vs_human"]["value"] > 0.5
    panel = next(j for j in compared.judges if j["judge_run"] == res.judge_run_id)
    assert panel["source"] == "panel" and panel["width"] is not None
    assert panel["cost_per_1k_usd"] == pytest.approx(sum(j["cost_per_1k_usd"] for j in compared.judges
                                                         if j["judge_run"] in members))


def test_panel_rules_and_errors(study) -> None:  # type: ignore[no-untyped-def]
    engine, _, _, run_ids = study
    binary = RUBRIC.criterion("resolves")
    assert combine(binary, ["fail", "pass"]) == "fail"  # a tie goes to the first member
    assert combine(binary, ["pass", "fail"]) == "pass"
    ordinal = parse_rubric("name: o\ndescription: d\ncriteria:\n  - id: q\n    question: q?\n    type: ordinal\n"
                           "    min: 1\n    max: 5\n    levels: {1: a, 2: b, 3: c, 4: d, 5: e}\n").criterion("q")
    assert combine(ordinal, ["2", "3"], ordinal="median") == "3"  # 2.5 rounds half up
    assert combine(ordinal, ["1", "2", "5"], ordinal="median") == "2"
    assert combine(ordinal, ["1", "2", "5"], ordinal="mean") == "3"  # 2.67 → 3
    with session_scope(engine) as s, pytest.raises(InputError, match="at least two"):
        build_panel(s, [run_ids["openai/judge-good"]])
    with session_scope(engine) as s, pytest.raises(InputError, match="no judge run 999"):
        build_panel(s, [run_ids["openai/judge-good"], 999])


def test_judges_commands(study, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json

    from tests.conftest_loopback import ownbench_cli

    _, _, _, run_ids = study
    res = ownbench_cli("judges", "compare", "--set", "arena", "--rubric", "resolves", "--bootstrap", "200", "--json",
                       cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert [j["judge_run"] for j in data["judges"]] == sorted(run_ids.values())
    assert data["recommendation"]["judge_run"] in run_ids.values() and data["margin"] == 0.1
    members = ",".join(str(run_ids[m]) for m in JUDGES)
    res = ownbench_cli("judges", "panel", "--runs", members, "--ordinal", "mean", "--json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["created"] is True
    bad = ownbench_cli("judges", "panel", "--runs", str(run_ids["openai/judge-good"]), cwd=tmp_path)
    assert bad.returncode == 2 and "a panel needs at least two judge runs" in bad.stderr
    bad = ownbench_cli("judges", "panel", "--runs", members, "--ordinal", "mode", cwd=tmp_path)
    assert bad.returncode == 2 and "ordinal rule 'mode'" in bad.stderr
