"""Rankings, paired tests, Bradley–Terry, gate, bias diagnostics and the Alt-Test on simulated data."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from stats.alt_test import alt_test
from stats.bias import leniency, position_bias, self_preference, verbosity
from stats.estimate import bootstrap_rng, resample_counts
from stats.gate import GateConfig, check_gate
from stats.ranking import (
    bootstrap_item_means,
    bradley_terry,
    holm,
    mcnemar_exact,
    pareto_front,
    ppi_bradley_terry,
    rank_by_influence,
    rank_ranges,
)


def test_mcnemar_matches_exact_binomial_on_discordant_pairs():
    a = np.array([1] * 30 + [1] * 12 + [0] * 3 + [0] * 15, float)
    b = np.array([1] * 30 + [0] * 12 + [1] * 3 + [0] * 15, float)
    res = mcnemar_exact(a, b)
    assert (res["a_only"], res["b_only"], res["n"]) == (12, 3, 60)
    assert res["p_value"] == pytest.approx(sps.binomtest(3, 15, 0.5).pvalue, rel=1e-12)


def test_bootstrap_interval_agrees_with_scipy():
    x = np.random.default_rng(1).normal(0.3, 1.0, 400)
    ours = bootstrap_item_means(x[None], n_boot=10_000, seed=3)[0]
    lo, hi = np.quantile(ours, [0.025, 0.975])
    ref = sps.bootstrap((x,), np.mean, n_resamples=10_000, method="percentile", random_state=4).confidence_interval
    assert lo == pytest.approx(ref.low, abs=0.01) and hi == pytest.approx(ref.high, abs=0.01)


def _float64_item_means(z, n_boot, seed, chunk=500):
    """The resampled means in float64 from the same counts bootstrap_item_means draws (one stream per chunk)."""
    c, n = z.shape
    ok = np.isfinite(z)
    chunk = max(1, min(chunk, 4_000_000 // n))
    starts = list(range(0, n_boot, chunk))
    seeds = np.random.SeedSequence(seed).spawn(len(starts))
    out = np.empty((c, n_boot))
    for s, ss in zip(starts, seeds):
        w = resample_counts(bootstrap_rng(ss), n, min(chunk, n_boot - s))
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:, s:s + w.shape[0]] = ((w @ np.where(ok, z, 0.0).T) / (w @ ok.T.astype(float))).T
    return out


@pytest.mark.parametrize("missing", [0.0, 0.1])
def test_bootstrap_item_means_agree_with_float64(missing):
    rng = np.random.default_rng(5)
    # far from 0 relative to their spread: float32 on the raw values would be off by ~level·6e-8
    z = 1000.0 + rng.normal(0, 0.3, (5, 700)) * np.arange(1, 6)[:, None]
    z[rng.random(z.shape) < missing] = np.nan
    if missing:
        z[4] = np.nan  # a candidate without items: NaN resamples
    ours = bootstrap_item_means(z, n_boot=1200, seed=2)
    ref = _float64_item_means(z, 1200, 2)
    assert np.array_equal(np.isnan(ours), np.isnan(ref))
    # the product is float32 on values centred on each candidate's mean: each centred value and each partial
    # sum rounds to 2**-24 ≈ 6e-8 of its size, so a resampled mean is off by a few such units of the spread of
    # z (≤ 1.4e-7 sd observed), not of its level (1e-9 relative to the level would need float64 throughout);
    # that is thousands of times below the bootstrap's own Monte-Carlo error
    have = ~np.isnan(z).all(axis=1)
    sd = np.nanstd(z[have], axis=1, keepdims=True)
    assert np.all(np.abs(ours[have] - ref[have]) <= 1e-6 * sd)


def test_bootstrap_item_means_same_on_any_number_of_threads():
    rng = np.random.default_rng(6)
    z = rng.normal(0.5, 0.3, (4, 300))
    z[rng.random(z.shape) < 0.05] = np.nan
    one = bootstrap_item_means(z, n_boot=3000, seed=7, threads=1)
    assert np.array_equal(one, bootstrap_item_means(z, n_boot=3000, seed=7, threads=2), equal_nan=True)
    assert np.array_equal(one, bootstrap_item_means(z, n_boot=3000, seed=7, threads=3), equal_nan=True)


@pytest.mark.parametrize("n", [300, 50_000])
def test_constant_rows_resample_to_exactly_their_estimate(n):
    z = np.full((3, n), 0.3)
    z[1, ::7] = np.nan  # missing items
    z[2] = np.linspace(0, 1, n)
    boot = bootstrap_item_means(z, n_boot=200, seed=1)
    est = np.nanmean(z, axis=1)  # for n = 50 000 not 0.3 exactly: the resamples must be that value
    assert np.all(boot[0] == est[0]) and np.all(boot[1] == est[1])
    r = rank_by_influence(z, ["a", "b", "c"], n_boot=200, seed=1)
    assert all(e.low <= e.value <= e.high for e in r.estimates)


def test_holm_matches_hand_computation():
    p = np.array([0.01, 0.04, 0.03, np.nan])
    adj = holm(p)
    assert adj[:3] == pytest.approx([0.03, 0.06, 0.06]) and np.isnan(adj[3])


def test_holm_matches_statsmodels_with_ties_and_large_values():
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(3)
    for m in (1, 2, 7, 190):
        p = rng.uniform(0, 0.3, m) ** 2
        p[: m // 3] = p[0]  # ties
        assert holm(p) == pytest.approx(multipletests(p, method="holm")[1], abs=1e-12)


def test_paired_ranking_detects_a_paired_difference_intervals_alone_miss():
    rng = np.random.default_rng(0)
    item = rng.normal(0, 1, 300)  # item difficulty shared by both candidates
    z = np.stack([item + 0.10 + rng.normal(0, 0.1, 300), item + rng.normal(0, 0.1, 300), item - 1.0])
    r = rank_by_influence(z, ["a", "b", "c"], n_boot=4000, seed=1)
    assert r.order == [0, 1, 2]
    ab = next(p for p in r.pairs if {p["a"], p["b"]} == {"a", "b"})
    assert ab["p_holm"] < 0.01 and ab["difference"].low > 0
    assert r.rank_range[0] == (1, 2) and r.rank_range[1] == (1, 2)  # intervals overlap: a shared range
    assert r.rank_range[2] == (3, 3)


def test_rank_ranges_and_pareto():
    assert rank_ranges(np.array([0.9, 0.5, 0.45]), np.array([0.85, 0.4, 0.3]),
                       np.array([0.95, 0.6, 0.5])) == [(1, 1), (2, 3), (2, 3)]
    front = pareto_front(np.array([0.9, 0.8, 0.7, 0.85]), np.array([10.0, 2.0, 3.0, 12.0]))
    assert front.tolist() == [True, True, False, False]


def _battles(rng, strengths, n):
    k = len(strengths)
    a = rng.integers(0, k, n)
    b = (a + rng.integers(1, k, n)) % k
    pa = 1 / (1 + np.exp(strengths[b] - strengths[a]))
    u = rng.random(n)
    s = np.where(u < pa * 0.9, 1.0, np.where(u < pa * 0.9 + 0.1, 0.5, 0.0))  # 10 % ties
    return a, b, s


def test_bradley_terry_recovers_a_known_order():
    """Simulated battles from known strengths (not real preferences)."""
    rng = np.random.default_rng(2)
    strengths = np.array([1.5, 0.8, 0.0, -0.7, -1.6])
    a, b, s = _battles(rng, strengths, 4000)
    est = bradley_terry(a, b, s, 5, n_boot=300)
    values = np.array([e.value for e in est])
    assert np.argsort(-values).tolist() == [0, 1, 2, 3, 4]
    assert all(e.low <= e.value <= e.high for e in est)
    assert np.corrcoef(values, strengths)[0, 1] > 0.99


def test_prediction_powered_bradley_terry_corrects_a_biased_judge():
    """A judge that prefers whichever candidate has the higher index 80 % of the time, whatever the truth;
    humans (simulated) follow the true strengths; 600 of 6000 battles carry a human label."""
    rng = np.random.default_rng(4)
    strengths = np.array([1.0, 0.3, -0.3, -1.0])
    a, b, human = _battles(rng, strengths, 6000)
    judge = np.where(rng.random(a.size) < 0.8, (a > b).astype(float), human)
    lab = np.zeros(a.size, bool)
    lab[rng.choice(a.size, 600, replace=False)] = True
    naive = np.array([e.value for e in bradley_terry(a, b, judge, 4, n_boot=100)])
    fixed = np.array([e.value for e in ppi_bradley_terry(a, b, judge, np.where(lab, human, np.nan), lab, 4,
                                                          n_boot=100)])
    assert np.argsort(-naive).tolist()[0] == 3  # the biased judge's favourite
    assert np.argsort(-fixed).tolist() == [0, 1, 2, 3]


def test_gate_withholds_with_each_reason_and_hides_judge_only_numbers():
    cfg = GateConfig()
    d = check_gate({"correct": {"a": 20, "b": 3}}, {"correct": 0.8}, cfg)
    reasons = " ".join(d.withheld["correct"])
    assert "23 golden labels" in reasons and "at least 30" in reasons
    assert "b (3)" in reasons and "at least 5" in reasons
    assert d.judge_shown("correct")
    ok = check_gate({"correct": {"a": 20, "b": 15}}, {"correct": 0.5}, cfg)
    assert ok.ranking_shown("correct") and not ok.judge_shown("correct")
    assert "cannot stand in for the humans" in ok.judge_hidden["correct"] and "0.500" in ok.judge_hidden["correct"]
    per_cand = check_gate({"c": {"a": 40, "b": 2}}, {"c": 0.9}, cfg)
    assert len(per_cand.withheld["c"]) == 1 and "fewer than 5" in per_cand.withheld["c"][0]
    none = check_gate({"c": {"a": 40, "b": 40}}, {"c": None}, cfg)
    assert none.ranking_shown("c") and not none.judge_shown("c")


def test_bias_diagnostics_find_simulated_biases():
    rng = np.random.default_rng(3)
    human = rng.integers(1, 6, 300).astype(float)
    length = rng.uniform(100, 3000, 300)
    judge = np.clip(human + 0.5 + 0.0004 * (length - 1500) + rng.normal(0, 0.3, 300), 1, 5)
    assert leniency(judge, human).low > 0.2
    v = verbosity(judge, human, length)
    assert v.low > 0 and v.n == 300
    fam = rng.random(300) < 0.3
    judge2 = human + np.where(fam, 0.6, 0.0) + rng.normal(0, 0.3, 300)
    sp = self_preference(judge2, human, fam)
    assert sp["difference"].low > 0.3
    first = np.where(rng.random(400) < 0.7, 1.0, 0.0)  # first-shown wins 70 %
    swapped = np.where(rng.random(400) < 0.7, 1.0, 0.0)
    pb = position_bias(first, swapped)
    assert pb["first_position_share"].low > 0.6 and pb["p_value"] < 1e-6
    assert pb["swap_inconsistency"].value > 0.3


def test_alt_test_needs_three_humans_and_separates_good_from_bad_judges():
    rng = np.random.default_rng(8)
    truth = rng.integers(0, 2, 200).astype(float)
    humans = np.stack([np.where(rng.random(200) < 0.15, 1 - truth, truth) for _ in range(4)])
    good = np.where(rng.random(200) < 0.08, 1 - truth, truth)
    bad = np.where(rng.random(200) < 0.45, 1 - truth, truth)
    assert alt_test(humans[:2], good)["passed"] is None
    assert "3 or more humans" in alt_test(humans[:2], good)["reason"]
    g = alt_test(humans, good)
    b = alt_test(humans, bad)
    assert g["passed"] and g["winning_rate"] >= 0.5
    assert not b["passed"] and b["advantage_probability"] < g["advantage_probability"]


# --- paired differences under partial coverage -----------------------------------------------------------------


def _minimal_overlap() -> np.ndarray:
    """Two candidates, both 0.5 over their own items; on the 10 items both answered a scored 0 and b scored 1."""
    z = np.full((2, 30), np.nan)
    z[0, :10], z[0, 10:20] = 1.0, 0.0  # a: items 0–19
    z[1, 10:20], z[1, 20:30] = 1.0, 0.0  # b: items 10–29
    return z


def test_minimal_overlap_difference_lies_in_its_own_interval():
    r = rank_by_influence(_minimal_overlap(), ["a", "b"], n_boot=4000, seed=0)
    assert [e.value for e in r.estimates] == pytest.approx([0.5, 0.5])
    (p,) = r.pairs
    d = p["difference"]
    assert p["estimand"] == "own" and d.value == pytest.approx(0.0)
    assert d.low <= d.value <= d.high
    assert p["p_value"] > 0.5  # two equal means: nothing significant, not p = 1e-4
    assert "own items" in d.method


def test_shared_estimand_states_itself_and_its_interval_matches():
    from stats.ranking import paired_differences

    (p,) = paired_differences(_minimal_overlap(), [(0, 1)], estimand="shared", n_boot=2000, seed=0)
    d = p["difference"]
    assert d.value == pytest.approx(-1.0) and d.low <= d.value <= d.high and p["shared_items"] == 10
    assert "both candidates answered" in d.method
    with pytest.raises(ValueError, match="unknown estimand"):
        paired_differences(_minimal_overlap(), [(0, 1)], estimand="mean")


def test_partial_coverage_difference_inside_interval_for_every_pair():
    """Three candidates with staggered coverage and different means: every shown difference equals the
    difference of the shown estimates and lies inside its interval."""
    rng = np.random.default_rng(4)
    z = rng.normal([[0.7], [0.5], [0.3]], 0.3, (3, 200))
    z[0, 150:] = np.nan
    z[1, :60] = np.nan
    z[2, rng.random(200) < 0.5] = np.nan
    r = rank_by_influence(z, ["a", "b", "c"], n_boot=2000, seed=2)
    vals = {n: e.value for n, e in zip("abc", r.estimates)}
    for p in r.pairs:
        d = p["difference"]
        assert d.value == pytest.approx(vals[p["a"]] - vals[p["b"]])
        assert d.low <= d.value <= d.high


@pytest.mark.parametrize("estimand", ["own", "shared"])
def test_estimate_inside_interval_over_random_coverage_patterns(estimand):
    from stats.ranking import paired_differences

    rng = np.random.default_rng(11)
    checked = 0
    for _ in range(60):
        k, n = int(rng.integers(2, 5)), int(rng.integers(20, 120))
        z = rng.normal(rng.normal(0.5, 0.2, (k, 1)), rng.uniform(0.05, 0.5), (k, n))
        if rng.random() < 0.5:
            z = (z > 0.5).astype(float)  # binary verdicts too
        cover = rng.random((k, n)) < rng.uniform(0.3, 1.0, (k, 1))
        cover[:, :5] = True  # some overlap everywhere
        z[~cover] = np.nan
        pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
        for p in paired_differences(z, pairs, estimand=estimand, n_boot=400, seed=int(rng.integers(1 << 30))):
            d = p["difference"]
            assert d.low - 1e-12 <= d.value <= d.high + 1e-12, (estimand, d)
            assert 0 < p["p_value"] <= 1
            checked += 1
    assert checked >= 60


@pytest.mark.parametrize("estimand", ["own", "shared"])
def test_paired_difference_interval_covers_the_true_difference(estimand):
    """Simulated coverage (seeded, 1,000 replications): items answered at random by each candidate, correlated
    item difficulty; the 95 % interval of the difference covers the true one at least 93 % of the time."""
    from stats.ranking import paired_differences

    rng = np.random.default_rng(2024)
    reps, hits = 1000, 0
    for _ in range(reps):
        n = 150
        item = rng.normal(0, 1, n)
        z = np.stack([0.2 + item + rng.normal(0, 0.7, n), item + rng.normal(0, 0.7, n)])
        z[0, rng.random(n) < 0.3] = np.nan
        z[1, rng.random(n) < 0.4] = np.nan
        (p,) = paired_differences(z, [(0, 1)], estimand=estimand, n_boot=1000, seed=int(rng.integers(1 << 30)))
        hits += p["difference"].low <= 0.2 <= p["difference"].high
    print(f"{estimand}: coverage {hits / reps:.3f}")
    assert hits / reps >= 0.93


# --- options and messages -------------------------------------------------------------------------------------


def test_fixed_lambda_one_is_plain_ppi():
    """λ = 1 without strata: mean of the judge over all units + mean of (human − judge) on the labeled ones
    (Angelopoulos et al. 2023), and the method says λ was fixed, not tuned."""
    from stats.calibration import ppi_mean

    rng = np.random.default_rng(3)
    yhat = (rng.random(400) < 0.6).astype(float)
    y = np.where(rng.random(400) < 0.85, yhat, 1 - yhat)
    lab = np.zeros(400, bool)
    lab[rng.choice(400, 60, replace=False)] = True
    res = ppi_mean(yhat, y, lab, lam=1.0)
    assert res.estimate.value == pytest.approx(yhat.mean() + (y[lab] - yhat[lab]).mean(), abs=1e-12)
    assert "PPI (λ=1.00, fixed)" in res.estimate.method
    assert "power-tuned" in ppi_mean(yhat, y, lab).estimate.method


def test_gate_says_why_existing_labels_do_not_count_and_how_to_declare_them():
    d = check_gate({"correct": {"a": 0, "b": 0}}, {"correct": 0.8}, GateConfig(min_labels=30),
                   unusable={"correct": 19008})
    (reason, *_) = d.withheld["correct"]
    assert "19008 more human label(s) exist but do not count" in reason
    assert "--uniform" in reason and "inclusion_prob" in reason and "label 30 more" not in reason
    plain = check_gate({"correct": {"a": 0}}, {"correct": 0.8}, GateConfig(min_labels=30))
    assert "label 30 more" in plain.withheld["correct"][0]


def test_alt_test_refuses_raters_who_change_from_unit_to_unit():
    """Three labels per unit, but every unit by different people: no annotator can be held out."""
    rng = np.random.default_rng(0)
    n_units = 200
    humans = np.full((3 * n_units, n_units), np.nan)
    for u in range(n_units):
        humans[3 * u:3 * u + 3, u] = rng.integers(0, 2, 3)
    res = alt_test(humans, rng.integers(0, 2, n_units).astype(float))
    assert res["passed"] is None and "does not apply" in res["reason"] and "same" in res["reason"]


def test_distinct_rows_is_numpys_row_unique_in_the_same_order():
    """The mixed-radix shortcut gives exactly np.unique(axis=0)'s rows, order and inverse (so bootstrap draws over
    distinct rows are the same as before), and falls back to it with NaNs."""
    from stats.estimate import distinct_rows

    rng = np.random.default_rng(5)
    for trial in range(100):
        n, p = int(rng.integers(1, 200)), int(rng.integers(1, 6))
        x = rng.integers(-3, 4, size=(n, p)) * rng.choice([0.5, 1.0, 1 / 3])
        if trial % 4 == 0:
            x = rng.random((n, p)).round(1)
        if trial % 10 == 0:
            x[0, 0] = np.nan
        want, want_inv = np.unique(x, axis=0, return_inverse=True)
        got, got_inv = distinct_rows(x)
        assert np.array_equal(want, got, equal_nan=True) and np.array_equal(want_inv.ravel(), got_inv), trial


def test_bootstrap_p_value_follows_the_paired_t_test_and_can_survive_holm_over_many_pairs():
    from stats.ranking import bootstrap_p_value

    rng = np.random.default_rng(11)
    n = 400
    d_items = rng.normal(0.12, 1.0, n)  # per-item paired differences
    z = np.vstack([d_items, np.zeros(n)])
    draws = bootstrap_item_means(z, n_boot=4000, seed=2)
    diffs = draws[0] - draws[1]
    p = bootstrap_p_value(float(d_items.mean()), diffs, n)
    ref = sps.ttest_1samp(d_items, 0.0).pvalue
    # The bootstrap SE is the plug-in SE (÷ n, not n − 1) up to resampling noise: same p within a few percent.
    assert p == pytest.approx(ref, rel=0.15)

    # A clear difference among 33 candidates (528 pairs) stays significant after Holm; a share of resamples
    # beyond the observed value could not go below 1/2001 and Holm would multiply it by 528.
    big = rng.normal(0.4, 1.0, n)
    draws = bootstrap_item_means(np.vstack([big, np.zeros(n)]), n_boot=2000, seed=3)
    p_big = bootstrap_p_value(float(big.mean()), draws[0] - draws[1], n)
    assert p_big * 528 < 0.05

    # Degenerate resamples: a constant zero difference is p 1, a constant non-zero one p 0; too few, NaN.
    assert bootstrap_p_value(0.0, np.zeros(50), 50) == 1.0
    assert bootstrap_p_value(0.3, np.full(50, 0.3), 50) == 0.0
    assert np.isnan(bootstrap_p_value(0.3, np.array([0.3]), 50))
