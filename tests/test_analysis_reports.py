"""Reports over a seeded database. Every judge verdict and human label here is SIMULATED (seeded random raters
with known error rates), so that the true pass rates are known; nothing here is presented as real data."""
from __future__ import annotations

import numpy as np
import pytest
from sqlmodel import select

from analysis.data import load_study
from analysis.golden import select_golden
from analysis.people import CLI
from analysis.reports import agreement_report, compare_report, ranking_report
from evalsets.freeze import ItemDraft, freeze
from stats.gate import GateConfig
from storage.db import session_scope
from storage.errors import InputError
from storage.models import (
    Annotator,
    Candidate,
    GoldenAssignment,
    GoldenUnit,
    JudgeRun,
    Judgment,
    Label,
    Output,
    RubricVersion,
    Run,
)

SPEC = {
    "name": "support", "description": "simulated",
    "judge": {"model": "openai/gpt-4o-mini", "temperature": 0.0, "mode": "pointwise"},
    "criteria": [
        {"id": "correct", "question": "Is it correct?", "type": "binary", "weight": 1.0, "uses_reference": False,
         "examples": []},
        {"id": "quality", "question": "How good?", "type": "ordinal", "min": 1, "max": 5,
         "levels": {str(i): f"level {i}" for i in range(1, 6)}, "weight": 1.0, "uses_reference": False,
         "examples": []},
        {"id": "tone", "question": "Tone?", "type": "categorical", "labels": ["formal", "casual"], "weight": 1.0,
         "uses_reference": False, "examples": []},
    ],
}


def seed_study(engine, *, items=150, rates=None, sens=0.85, spec=0.8, flip=0.05, golden=None, annotators=("ann", "bob", "cy"),
               k=2, seed=0, label=True, unscored=3, judge=True, strategy="stratified"):
    """A version with `items` items, one run per candidate (true pass rate per candidate), a simulated judge
    with the given sensitivity/specificity (none when `judge` is False), a golden draw under `strategy` labeled by
    simulated annotators."""
    rates = rates or {"baseline": 0.8, "newer": 0.5, "other": 0.78}
    rng = np.random.default_rng(seed)
    with session_scope(engine) as s:
        version = freeze(s, "support", [ItemDraft(key=f"q{i:03d}", messages=[{"role": "user", "content": f"q {i}"}])
                                        for i in range(items)])
        rubric = RubricVersion(name="support", content_hash=f"{seed:064d}", yaml_text="simulated", spec=SPEC)
        s.add(rubric)
        s.flush()
        jr = JudgeRun(version_id=version.id, rubric_version_id=rubric.id, judge_model="openai/gpt-4o-mini",
                      status="done")
        if judge:
            s.add(jr)
            s.flush()
        from evalsets.freeze import items_of

        truth = {}
        for name, p in rates.items():
            cand = Candidate(name=name, model=f"openai/{name}" if name != "other" else "anthropic/claude-x",
                             config_hash=name.ljust(64, "0"))
            s.add(cand)
            s.flush()
            run = Run(candidate_id=cand.id, version_id=version.id, status="done")
            s.add(run)
            s.flush()
            for n_item, item in enumerate(items_of(s, version)):
                out = Output(run_id=run.id, item_id=item.id, text="x" * int(rng.integers(50, 2000)),
                             cost_usd=0.001, latency_ms=float(rng.integers(100, 900)))
                s.add(out)
                s.flush()
                y = float(rng.random() < p)
                q = int(np.clip(round(1 + 4 * p + rng.normal(0, 0.8)), 1, 5))
                truth[out.id] = (y, q, int(rng.random() < 0.5))
                jy = y if rng.random() < (sens if y else spec) else 1 - y
                jq = int(np.clip(q + (1 if rng.random() < 0.4 else 0), 1, 5))
                if not judge:
                    continue
                base = dict(judge_run_id=jr.id, item_id=item.id, output_id=out.id, version_hash=version.content_hash,
                            rubric_hash=rubric.content_hash, judge_model=jr.judge_model)
                if n_item < unscored:
                    s.add(Judgment(criterion_id="correct", status="unscored", unscored_reason="timeout after 60 s", **base))
                else:
                    s.add(Judgment(criterion_id="correct", verdict="pass" if jy else "fail", score=jy, **base))
                s.add(Judgment(criterion_id="quality", verdict=str(jq), score=float(jq), **base))
                s.add(Judgment(criterion_id="tone", verdict=["formal", "casual"][truth[out.id][2]], **base))
        ids = (version.id, rubric.id, jr.id)
    if golden:
        with session_scope(engine) as s:
            select_golden(s, ids[0], ids[1], None, golden, seed=seed, annotators=list(annotators), k=k, strategy=strategy)
        if label:
            with session_scope(engine) as s:
                for a in s.exec(select(GoldenAssignment)):
                    unit = s.get(GoldenUnit, a.golden_unit_id)
                    y, q, t = truth[unit.output_id]
                    hy = y if rng.random() > flip else 1 - y
                    hq = int(np.clip(q + rng.integers(-1, 2) * (rng.random() < flip * 4), 1, 5))
                    common = dict(annotator_id=a.annotator_id, rubric_version_id=ids[1], item_id=unit.item_id,
                                  output_id=unit.output_id, golden_unit_id=unit.id, inclusion_prob=unit.inclusion_prob)
                    s.add(Label(criterion_id="correct", verdict="pass" if hy else "fail", score=hy, **common))
                    s.add(Label(criterion_id="quality", verdict=str(hq), score=float(hq), **common))
                    s.add(Label(criterion_id="tone", verdict=["formal", "casual"][t], **common))
    return ids, truth


def test_study_counts_unscored_latest_labels_and_outside_labels(sqlite_engine):
    (vid, rid, _), _ = seed_study(sqlite_engine, items=60, golden=30, k=1, unscored=4)
    with session_scope(sqlite_engine) as s:
        lab = s.exec(select(Label).where(Label.criterion_id == "correct")).first()
        # the same annotator relabels: the latest row counts
        s.add(Label(annotator_id=lab.annotator_id, rubric_version_id=rid, criterion_id="correct", item_id=lab.item_id,
                    output_id=lab.output_id, golden_unit_id=lab.golden_unit_id,
                    verdict="fail" if lab.verdict == "pass" else "pass", score=1 - lab.score))
        # someone labels an output they were not assigned: agreement only, flagged
        other = s.exec(select(Output).where(Output.id.not_in(select(GoldenUnit.output_id)))).first()
        dan = Annotator(name="dan")
        s.add(dan)
        s.flush()
        s.add(Label(annotator_id=dan.id, rubric_version_id=rid, criterion_id="correct", item_id=other.item_id,
                    output_id=other.id, verdict="pass", score=1.0))
        flipped = (lab.output_id, 1 - lab.score)
    with session_scope(sqlite_engine) as s:
        study = load_study(s, vid, rid)
        cd = study.criteria["correct"]
        assert cd.unscored.tolist() == [4, 4, 4]
        assert np.isnan(cd.judge).sum() == 12 and cd.judged.sum() == 180
        assert cd.outside == 1 and cd.calib.sum() == 30
        r, c = study.output_index[flipped[0]]
        assert cd.human_mean[r, c] == flipped[1]
        assert "dan" in cd.humans and not cd.calib[study.output_index[other.id]]


def test_golden_selection_is_seeded_stratified_and_batched(engine):
    (vid, rid, _), _ = seed_study(engine, items=40, rates={"a": 0.7, "b": 0.4})
    with session_scope(engine) as s:
        sel = select_golden(s, vid, rid, None, 20, seed=3, annotators=["ann", "bob", "cy"], k=2)
        assert sel.created == 20 and sel.assignments == 40 and sel.criterion == "correct"
        units = list(s.exec(select(GoldenUnit)))
        first = sorted(u.output_id for u in units)
        for u in units:  # π = drawn / size of the unit's stratum
            same = [g for g in units if g.stratum == u.stratum]
            assert u.inclusion_prob == pytest.approx(len(same) / u.selection["stratum_size"])
        loads = [len(list(s.exec(select(GoldenAssignment).where(GoldenAssignment.annotator_id == a.id))))
                 for a in s.exec(select(Annotator))]
        assert sorted(loads) == [13, 13, 14]
        sel2 = select_golden(s, vid, rid, None, 10, seed=4)
        assert sel2.total == 30
        units = list(s.exec(select(GoldenUnit)))
        for u in units:
            same = [g for g in units if g.stratum == u.stratum]
            assert u.inclusion_prob == pytest.approx(len(same) / u.selection["stratum_size"])
        with pytest.raises(InputError, match="another design"):
            select_golden(s, vid, rid, None, 5, seed=5, strategy="uncertainty")
    # same seed on a fresh database → the same units
    import os
    import tempfile

    from storage.db import make_engine
    with tempfile.TemporaryDirectory() as d:
        other = make_engine(f"sqlite:///{os.path.join(d, 'x.db')}")
        (vid2, rid2, _), _ = seed_study(other, items=40, rates={"a": 0.7, "b": 0.4})
        with session_scope(other) as s:
            select_golden(s, vid2, rid2, None, 20, seed=3)
            again = sorted(u.output_id for u in s.exec(select(GoldenUnit)))
        other.dispose()
    assert again == first


def test_golden_by_candidate_needs_no_judge_and_keeps_its_design(engine):
    (vid, rid, _), _ = seed_study(engine, items=30, rates={"a": 0.7, "b": 0.4, "c": 0.5}, judge=False)
    with session_scope(engine) as s:
        failed = s.exec(select(Output).order_by(Output.id)).all()[:4]
        for o in failed[:2]:
            o.error, o.text = "HTTP 500 from the provider", ""
        failed[2].text = "   "  # nothing to label
        s.add_all(failed[:3])
    with pytest.raises(InputError, match="no pointwise judge run") as exc, session_scope(engine) as s:
        select_golden(s, vid, rid, None, 10, seed=1)
    assert exc.value.where == "--judge-run" and "strategy 'candidate'" in (exc.value.hint or "")
    with session_scope(engine) as s:
        first = select_golden(s, vid, rid, None, 20, seed=1, strategy="candidate", annotators=["ann", "bob"], k=2)
        assert (first.created, first.strata, first.criterion, first.assignments) == (20, 3, None, 40)
        second = select_golden(s, vid, rid, None, 20, seed=2, strategy="candidate")  # a later batch, same design
        assert (second.total, second.assignments) == (40, 0)
        units = list(s.exec(select(GoldenUnit)))
        for u in units:  # the union is a simple random sample within each candidate: π = drawn / usable outputs
            same = [g for g in units if g.stratum == u.stratum]
            assert u.inclusion_prob == pytest.approx(len(same) / u.selection["stratum_size"])
        assert sorted({u.selection["stratum_size"] for u in units}) == [27, 30]
        rest = select_golden(s, vid, rid, None, 100, seed=3, strategy="candidate")
        assert rest.total == 87  # every usable output, and no other
        units = list(s.exec(select(GoldenUnit)))
        drawn = {u.output_id for u in units}
        assert not drawn & {o.id for o in failed[:3]} and failed[3].id in drawn
        assert {u.stratum for u in units} == {f"candidate {c.id}" for c in s.exec(select(Candidate))}
        assert all(u.inclusion_prob == pytest.approx(1.0) for u in units)
    with pytest.raises(InputError, match="takes no criterion") as exc, session_scope(engine) as s:
        select_golden(s, vid, rid, None, 5, seed=4, strategy="candidate", criterion="correct")
    assert exc.value.where == "--criterion"


def test_golden_by_candidate_then_judged_calibrates(sqlite_engine):
    """Labels drawn by candidate alone, before the judge ran, still calibrate the judge afterwards."""
    (vid, rid, _), truth = seed_study(sqlite_engine, items=150, golden=120, k=1, seed=3, flip=0.0,
                                  strategy="candidate")
    with session_scope(sqlite_engine) as s:
        with pytest.raises(InputError, match=r"another design \(by candidate alone\)"):
            select_golden(s, vid, rid, None, 5, seed=9)
        rep = ranking_report(s, vid, rid, viewer=CLI, n_boot=1000)
        runs = {c.name: s.exec(select(Run).where(Run.candidate_id == c.id)).one().id for c in s.exec(select(Candidate))}
        true_rate = {name: np.mean([truth[o.id][0] for o in s.exec(select(Output).where(Output.run_id == rid_))])
                     for name, rid_ in runs.items()}
    c = next(c for c in rep.to_dict()["criteria"] if c["criterion"] == "correct")
    assert not c["withheld"] and {r["golden"] for r in c["rows"]} == {40}
    for r in c["rows"]:
        assert r["calibrated"]["low"] <= true_rate[r["candidate"]] <= r["calibrated"]["high"], r
    assert [r["candidate"] for r in c["rows"]][-1] == "newer"


def test_golden_selection_errors_leave_nothing(engine):
    (vid, rid, _), _ = seed_study(engine, items=10, rates={"a": 0.5})
    for kwargs, match in (({"strategy": "best"}, "strategy"), ({"annotators": ["x"], "k": 2}, "k=2"),
                          ({"criterion": "nope"}, "nope")):
        with pytest.raises(InputError, match=match), session_scope(engine) as s:
            select_golden(s, vid, rid, None, 5, seed=1, **kwargs)
    with session_scope(engine) as s:
        assert s.exec(select(GoldenUnit)).first() is None and s.exec(select(Annotator)).first() is None


def test_agreement_report(sqlite_engine):
    (vid, rid, _), _ = seed_study(sqlite_engine, items=80, golden=60, k=3)
    with session_scope(sqlite_engine) as s:
        rep = agreement_report(s, vid, rid, viewer=CLI, n_boot=300)
    d = rep.to_dict()
    crits = {c["criterion"]: c for c in d["criteria"]}
    assert set(crits) == {"correct", "quality", "tone"}
    c = crits["correct"]
    assert c["units"] == 60 and c["labels_total"] == 180 and c["unscored"] == 9
    assert len([p for p in c["pairs"] if p["kind"] == "human-human"]) == 3
    assert c["fleiss_humans"]["n"] > 0 and c["alt_test"]["passed"] is not None
    assert 0 < c["alpha_judge_vs_human"]["value"] < c["alpha_humans"]["value"]
    assert crits["quality"]["pairs"][0].get("kappa_quadratic") is not None
    assert "bias" not in crits["tone"]
    md = rep.to_markdown()
    assert "Krippendorff's alpha, judge vs human" in md and "Alt-Test" in md


def test_ranking_is_withheld_until_enough_labels(sqlite_engine):
    (vid, rid, _), _ = seed_study(sqlite_engine, items=60, golden=12, k=1)
    with session_scope(sqlite_engine) as s:
        rep = ranking_report(s, vid, rid, viewer=CLI, n_boot=500)
        forced = ranking_report(s, vid, rid, viewer=CLI, n_boot=500, force=True)
    assert "correct" in rep.withheld and "golden labels" in rep.withheld["correct"][0]
    row_lists = {c["criterion"]: c.get("rows") for c in rep.to_dict()["criteria"]}
    assert row_lists["correct"] == []
    f = {c["criterion"]: c for c in forced.to_dict()["criteria"]}
    assert f["correct"]["rows"] and all("calibrated" not in r for r in f["correct"]["rows"])
    assert "uncalibrated" in forced.to_markdown()


def test_ranking_calibrates_and_hides_a_poor_judge(sqlite_engine):
    (vid, rid, _), _ = seed_study(sqlite_engine, items=150, golden=120, k=1, sens=0.7, spec=0.55, seed=1)
    with session_scope(sqlite_engine) as s:
        rep = ranking_report(s, vid, rid, viewer=CLI, n_boot=2000)
        loose = ranking_report(s, vid, rid, viewer=CLI, n_boot=500, gate=GateConfig(min_alpha=0.0))
    c = next(c for c in rep.to_dict()["criteria"] if c["criterion"] == "correct")
    assert not c["withheld"]
    assert c["alpha_judge_vs_human"] < 0.667 and "cannot stand in for the humans" in c["judge_hidden"]
    assert all("judge_only" not in r for r in c["rows"])
    assert [r["candidate"] for r in c["rows"]][-1] == "newer"  # true rate 0.5 vs 0.8 / 0.78
    assert all(r["calibrated"]["low"] <= r["calibrated"]["value"] <= r["calibrated"]["high"] for r in c["rows"])
    assert c["rows"][0]["rank"][0] == 1 and c["rows"][-1]["rank"][1] == 3
    assert all(r["rank"][0] <= pos + 1 <= r["rank"][1] for pos, r in enumerate(c["rows"]))
    assert c["rows"][0]["cost_per_1k_usd"] == pytest.approx(1.0)
    lc = next(c for c in loose.to_dict()["criteria"] if c["criterion"] == "correct")
    assert all("judge_only" in r for r in lc["rows"])
    cat = next(c for c in rep.to_dict()["criteria"] if c["criterion"] == "tone")
    assert "Categorical" in cat["note"]


def test_compare_flags_a_significant_drop_only(sqlite_engine):
    (vid, rid, _), _ = seed_study(sqlite_engine, items=150, golden=120, k=1, seed=2)
    with session_scope(sqlite_engine) as s:
        drop = compare_report(s, vid, rid, "baseline", "newer", viewer=CLI, n_boot=2000)
        same = compare_report(s, vid, rid, "baseline", "other", viewer=CLI, n_boot=2000)
        with pytest.raises(InputError, match="nobody"):
            compare_report(s, vid, rid, "baseline", "nobody", viewer=CLI)
    assert drop.regressed and not same.regressed
    c = next(c for c in drop.to_dict()["criteria"] if c["criterion"] == "correct")
    assert c["difference"]["high"] < 0 and c["p_holm"] < 0.05
    assert drop.regressions and {r["source"] for r in drop.regressions} <= {"human", "judge"}
    assert "Significant regression" in drop.to_markdown()


def test_alpha_level_and_plain_ppi_can_be_asked_for(sqlite_engine):
    (vid, rid, _), _ = seed_study(sqlite_engine, items=80, golden=60)
    with session_scope(sqlite_engine) as s:
        default = {c["criterion"]: c for c in agreement_report(s, vid, rid, viewer=CLI, n_boot=100).to_dict()["criteria"]}
        interval = {c["criterion"]: c for c in
                    agreement_report(s, vid, rid, viewer=CLI, n_boot=100, alpha_level="interval").to_dict()["criteria"]}
        tuned = ranking_report(s, vid, rid, viewer=CLI, n_boot=200).to_dict()
        plain = ranking_report(s, vid, rid, viewer=CLI, n_boot=200, lam=1.0).to_dict()
    assert default["quality"]["level"] == "ordinal" and interval["quality"]["level"] == "interval"
    assert interval["quality"]["alpha_humans"]["value"] != default["quality"]["alpha_humans"]["value"]
    rows = [r for c in plain["criteria"] for r in c.get("rows", [])]
    assert rows and all(r["lambda"] == 1.0 and "PPI (λ=1.00, fixed)" in r["calibrated"]["method"] for r in rows)
    assert plain["header"]["lambda"] == "PPI, λ fixed at 1" and tuned["header"]["lambda"] == "PPI++, λ power-tuned"
