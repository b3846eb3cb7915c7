"""Calibration on simulated judges and raters (all verdicts here are simulated, not real labels)."""
from __future__ import annotations

import numpy as np
import pytest

from stats.calibration import (
    human_only_mean,
    judge_only_mean,
    ppi_mean,
    rogan_gladen,
    sensitivity_specificity,
)
from stats.golden import allocate, stratified_sample


def _simulate(rng, n=300, golden=60, p=0.8, sens=0.8, spec=0.7):
    y = (rng.random(n) < p).astype(float)
    yhat = np.where(y == 1, rng.random(n) < sens, rng.random(n) >= spec).astype(float)
    lab = np.zeros(n, bool)
    lab[rng.choice(n, golden, replace=False)] = True
    return y, yhat, lab


def test_calibrated_intervals_cover_where_judge_only_ones_do_not():
    """Judge with sensitivity 0.8 / specificity 0.7, true pass rate 0.8, 300 items, 60 golden, 2,000 sets (Monte Carlo error ±0.5 %)."""
    rng = np.random.default_rng(2024)
    p, runs = 0.8, 2000
    cal = judge = rg = 0
    for _ in range(runs):
        y, yhat, lab = _simulate(rng, p=p)
        c = ppi_mean(yhat, np.where(lab, y, np.nan), lab).estimate
        j = judge_only_mean(yhat)
        se, npos, sp, nneg = sensitivity_specificity(yhat[lab], y[lab])
        r = rogan_gladen(float(yhat.mean()), yhat.size, se, npos, sp, nneg)
        cal += c.low <= p <= c.high
        judge += j.low <= p <= j.high
        rg += r.low <= p <= r.high
    assert cal / runs >= 0.93
    assert judge / runs < 0.50
    assert rg / runs >= 0.90  # delta-method interval that carries the calibration uncertainty


def test_poor_judge_stays_valid_and_no_wider_than_human_only():
    """A judge that is right 55 % of the time regardless of the truth: coverage holds, width ≈ human-only."""
    rng = np.random.default_rng(7)
    p, runs = 0.6, 2000
    cover, ratio = 0, []
    for _ in range(runs):
        y = (rng.random(300) < p).astype(float)
        yhat = np.where(rng.random(300) < 0.55, y, 1 - y)
        lab = np.zeros(300, bool)
        lab[rng.choice(300, 60, replace=False)] = True
        yl = np.where(lab, y, np.nan)
        c = ppi_mean(yhat, yl, lab).estimate
        h = human_only_mean(yl, lab).estimate
        cover += c.low <= p <= c.high
        ratio.append((c.high - c.low) / (h.high - h.low))
    assert cover / runs >= 0.93
    assert np.mean(ratio) <= 1.05


def test_good_judge_narrows_the_interval():
    rng = np.random.default_rng(11)
    y, _, lab = _simulate(rng, n=2000, golden=100, p=0.5)
    yhat = np.where(rng.random(2000) < 0.95, y, 1 - y)
    yl = np.where(lab, y, np.nan)
    c = ppi_mean(yhat, yl, lab)
    h = human_only_mean(yl, lab)
    assert c.lam > 0.5
    assert (c.estimate.high - c.estimate.low) < 0.7 * (h.estimate.high - h.estimate.low)


def test_uncertainty_first_selection_needs_the_weights():
    """Units where the judge is unsure are oversampled; there the judge errs more. Weighting by the known
    inclusion probabilities (strata) keeps the estimate unbiased; ignoring them does not."""
    rng = np.random.default_rng(5)
    n, p, runs = 400, 0.7, 400
    err_w, err_u = [], []
    covered = 0
    for r in range(runs):
        y = (rng.random(n) < p).astype(float)
        unsure = rng.random(n) < 0.25
        wrong = rng.random(n) < np.where(unsure, 0.45, 0.05)
        yhat = np.where(wrong, 1 - y, y)
        idx, prob, strata = stratified_sample(yhat.astype(int).astype(str), 60, seed=r, unsure=unsure, boost=4.0)
        lab = np.zeros(n, bool)
        lab[idx] = True
        yl = np.where(lab, y, np.nan)
        truth = y.mean()  # the population's own human mean: isolates the selection bias
        err_w.append(ppi_mean(yhat, yl, lab, strata=strata, lam=1.0).estimate.value - truth)
        tuned = ppi_mean(yhat, yl, lab, strata=strata).estimate
        covered += tuned.low <= p <= tuned.high
        err_u.append(ppi_mean(yhat, yl, lab, lam=1.0).estimate.value - truth)
        assert np.allclose(prob[lab], [np.mean(lab[strata == s]) for s in strata[lab]])
    se_w = np.std(err_w) / np.sqrt(runs)
    se_u = np.std(err_u) / np.sqrt(runs)
    assert abs(np.mean(err_w)) < 3 * se_w
    assert abs(np.mean(err_u)) > 5 * se_u
    assert covered / runs >= 0.92  # and the weighted, power-tuned intervals stay valid


def test_horvitz_thompson_with_declared_probabilities_is_unbiased():
    rng = np.random.default_rng(9)
    n, errs = 500, []
    for _ in range(400):
        y = (rng.random(n) < 0.4).astype(float)
        yhat = np.where(rng.random(n) < 0.8, y, 1 - y)
        pi = np.where(yhat == 1, 0.3, 0.08)  # Poisson sampling with known probabilities
        lab = rng.random(n) < pi
        errs.append(ppi_mean(yhat, np.where(lab, y, np.nan), lab, inclusion_prob=pi).estimate.value - y.mean())
    assert abs(np.mean(errs)) < 3 * np.std(errs) / np.sqrt(len(errs))


def test_unscored_judgments_are_imputed_not_scored():
    y = np.array([1, 0, 1, 1, 0, 1, 0, 1.0])
    yhat = np.array([1, 0, np.nan, 1, 0, np.nan, 0, 1.0])
    lab = np.ones(8, bool)
    assert judge_only_mean(yhat).n == 6
    c = ppi_mean(yhat, y, lab, lam=1.0)
    assert c.estimate.value == pytest.approx(y.mean())  # fully labeled: the humans' mean, whatever the judge


def test_allocation_respects_sizes_and_total():
    a = allocate(np.array([100, 10, 1, 0]), 20)
    assert a.sum() == 20 and a[3] == 0 and a[2] == 1 and np.all(a <= [100, 10, 1, 0])
    assert allocate(np.array([3, 2]), 50).tolist() == [3, 2]
    idx1, _, s = stratified_sample(np.array(["a"] * 50 + ["b"] * 50), 10, seed=1)
    idx2, _, _ = stratified_sample(np.array(["a"] * 50 + ["b"] * 50), 10, seed=1)
    assert idx1.tolist() == idx2.tolist()
    taken = np.zeros(100, bool)
    taken[idx1] = True
    more, prob, _ = stratified_sample(s, 10, seed=2, already=taken)
    assert not set(more) & set(idx1) and prob[idx1[0]] == pytest.approx(10 / 50)


def test_rogan_gladen_undefined_for_an_uninformative_judge():
    assert np.isnan(rogan_gladen(0.5, 100, 0.5, 30, 0.4, 30).value)
