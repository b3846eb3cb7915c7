"""Pairwise judge runs: Bradley–Terry strengths corrected by golden human pairwise labels, and position bias.
Judge verdicts and human labels are SIMULATED: a judge that favours whichever output is shown first."""
from __future__ import annotations

import itertools

import numpy as np
from sqlmodel import select

from analysis.people import CLI
from analysis.reports import agreement_report, ranking_report
from storage.db import session_scope
from storage.models import Annotator, GoldenAssignment, GoldenUnit, JudgeRun, Judgment, Label, Output, Run
from tests.test_analysis_reports import seed_study


def _seed_pairwise(engine, golden_per_pair=20, seed=0):
    strengths = {"baseline": 1.0, "other": 0.2, "newer": -0.8}
    (vid, rid, _), _ = seed_study(engine, items=60, rates={k: 0.5 for k in strengths})
    rng = np.random.default_rng(seed)
    with session_scope(engine) as s:
        jr = JudgeRun(version_id=vid, rubric_version_id=rid, judge_model="openai/gpt-4o-mini", mode="pairwise", status="done")
        ann = Annotator(name="pat")
        s.add_all([jr, ann])
        s.flush()
        outs = {}
        for run in s.exec(select(Run)):
            from storage.models import Candidate
            name = s.get(Candidate, run.candidate_id).name
            outs[name] = {o.item_id: o for o in s.exec(select(Output).where(Output.run_id == run.id))}
        for x, y in itertools.combinations(sorted(strengths), 2):
            items = sorted(outs[x])
            golden = set(rng.choice(len(items), golden_per_pair, replace=False).tolist())
            for n, item_id in enumerate(items):
                a, b = outs[x][item_id], outs[y][item_id]
                p_a = 1 / (1 + np.exp(strengths[y] - strengths[x]))
                truth = 1.0 if rng.random() < p_a else 0.0
                # the judge says "first shown wins" 60 % of the time, otherwise the truth
                def said(first_is_a: bool, truth: float = truth) -> str:
                    if rng.random() < 0.6:
                        return "1"
                    return "1" if (truth == 1.0) == first_is_a else "2"
                ab, ba = said(True), said(False)
                va = "A" if ab == "1" else "B"
                vb = "B" if ba == "1" else "A"
                verdict = va if va == vb else "tie"
                score = {"A": 1.0, "B": 0.0, "tie": 0.5}[verdict]
                s.add(Judgment(judge_run_id=jr.id, criterion_id="correct", item_id=item_id, output_id=a.id,
                               output_b_id=b.id, verdict=verdict, score=score, version_hash="v", rubric_hash="r",
                               judge_model=jr.judge_model,
                               details={"orders": [{"first": "A", "status": "scored", "position_verdict": ab},
                                                   {"first": "B", "status": "scored", "position_verdict": ba}],
                                        "disagreement": va != vb}))
                if n in golden:
                    g = GoldenUnit(version_id=vid, rubric_version_id=rid, mode="pairwise", item_id=item_id,
                                   output_id=a.id, output_b_id=b.id, inclusion_prob=golden_per_pair / len(items))
                    s.add(g)
                    s.flush()
                    s.add(GoldenAssignment(golden_unit_id=g.id, annotator_id=ann.id))
                    s.add(Label(annotator_id=ann.id, rubric_version_id=rid, criterion_id="correct", item_id=item_id,
                                output_id=a.id, output_b_id=b.id, golden_unit_id=g.id,
                                verdict="A" if truth else "B", score=truth))
    return vid, rid


def test_pairwise_strengths_are_corrected_and_position_bias_measured(sqlite_engine):
    vid, rid = _seed_pairwise(sqlite_engine)
    with session_scope(sqlite_engine) as s:
        rep = ranking_report(s, vid, rid, viewer=CLI, n_boot=500)
        forced = ranking_report(s, vid, rid, viewer=CLI, n_boot=500, force=True)
    pw = rep.to_dict()["pairwise"]
    c = next(c for c in pw["criteria"] if c["criterion"] == "correct")
    assert c["battles"] == 180 and c["golden"] == 60
    assert [r["candidate"] for r in c["calibrated"]] == ["baseline", "other", "newer"]
    assert "judge_hidden" in c and "judge_only" not in c  # a position-biased judge does not stand in
    pb = c["position_bias"]
    assert pb["first_position_share"]["low"] > 0.6 and pb["swap_inconsistency"]["value"] > 0.3
    fc = next(c for c in forced.to_dict()["pairwise"]["criteria"] if c["criterion"] == "correct")
    assert fc["judge_only"] and "uncalibrated" in forced.to_markdown()
    assert "Bradley–Terry" in rep.to_markdown() and "swap inconsistency" in rep.to_markdown()


def test_pairwise_correction_is_withheld_with_few_labels(sqlite_engine):
    vid, rid = _seed_pairwise(sqlite_engine, golden_per_pair=5)
    with session_scope(sqlite_engine) as s:
        rep = ranking_report(s, vid, rid, viewer=CLI, n_boot=300)
    c = next(c for c in rep.to_dict()["pairwise"]["criteria"] if c["criterion"] == "correct")
    assert "calibrated" not in c and "at least 30" in c["withheld"]


def test_agreement_report_shows_position_bias(sqlite_engine):
    vid, rid = _seed_pairwise(sqlite_engine, golden_per_pair=10)
    with session_scope(sqlite_engine) as s:
        rep = agreement_report(s, vid, rid, viewer=CLI, n_boot=100)
    pb = rep.to_dict()["position_bias"]
    assert pb and pb[0]["criterion"] == "correct" and pb[0]["first_position_share"]["value"] > 0.6
    assert "Position bias" in rep.to_markdown()


def test_pairwise_golden_draw_within_candidate_pairs_feeds_the_correction(sqlite_engine):
    """Draw pairwise units from the pairwise judge run, label them (SIMULATED raters), and they count."""
    import pytest

    from analysis.golden import select_golden
    from storage.errors import InputError

    vid, rid = _seed_pairwise(sqlite_engine, golden_per_pair=0)
    with session_scope(sqlite_engine) as s:
        pairwise_run = s.exec(select(JudgeRun).where(JudgeRun.mode == "pairwise")).one().id
        sel = select_golden(s, vid, rid, None, 30, seed=4, mode="pairwise", annotators=["pat", "quinn", "rae"], k=2)
        assert (sel.created, sel.strata, sel.strategy, sel.assignments) == (30, 3, "candidate pair", 60)
        units = s.exec(select(GoldenUnit).where(GoldenUnit.mode == "pairwise")).all()
        assert all(u.output_b_id is not None and u.inclusion_prob == pytest.approx(10 / 60) for u in units)
        assert len({(u.output_id, u.output_b_id) for u in units}) == 30
        swaps = [a.swap for a in s.exec(select(GoldenAssignment))]
        assert 0 < sum(swaps) < len(swaps)  # the order is randomised per annotator
        more = select_golden(s, vid, rid, pairwise_run, 6, seed=5, mode="pairwise", strategy="candidate pair")
        assert more.total == 36 and more.strategy == "candidate pair"
        for u in s.exec(select(GoldenUnit).where(GoldenUnit.mode == "pairwise")):
            assert u.inclusion_prob == pytest.approx(12 / 60)
        for a in s.exec(select(GoldenAssignment)):
            u = s.get(GoldenUnit, a.golden_unit_id)
            s.add(Label(annotator_id=a.annotator_id, rubric_version_id=rid, criterion_id="correct", item_id=u.item_id,
                        output_id=u.output_id, output_b_id=u.output_b_id, golden_unit_id=u.id, verdict="A", score=1.0))
    with session_scope(sqlite_engine) as s:
        rep = ranking_report(s, vid, rid, viewer=CLI, n_boot=200)
    c = next(c for c in rep.to_dict()["pairwise"]["criteria"] if c["criterion"] == "correct")
    assert c["golden"] == 30  # the labeled units, all assigned; the 6 unassigned ones carry no label
    refusals = [({"strategy": "uncertainty"}, "'uncertainty' is not one of stratified, candidate pair for pairwise"),
                ({"criterion": "correct"}, "--criterion does not apply"),
                ({"strategy": "candidate pair", "mode": "pointwise"}, "not one of stratified, uncertainty, candidate for"),
                ({"judge_run_id": pairwise_run, "mode": "pointwise"}, "is pairwise, not pointwise")]
    for kwargs, match in refusals:
        with pytest.raises(InputError, match=match), session_scope(sqlite_engine) as s:
            select_golden(s, vid, rid, kwargs.pop("judge_run_id", None), 5, seed=6,
                          **{"mode": "pairwise", **kwargs})
    with session_scope(sqlite_engine) as s:  # agreement on the pairwise run itself: judge vs human on A/B/tie
        rep = agreement_report(s, vid, rid, pairwise_run, viewer=CLI, n_boot=50)
    pc = next(c for c in rep.to_dict()["criteria"] if c["criterion"] == "correct")
    assert pc["type"] == "pairwise" and pc["judge_vs_human"]["n"] == 60 and pc["units"] == 30
