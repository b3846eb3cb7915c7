"""Bias-corrected (calibrated) estimates of a candidate's human-scale mean from judge verdicts on every output
and human labels on the golden subset.

Notation for one candidate on one criterion, over its N outputs (the population of units):
  ŷ_i  the judge's score (NaN when unscored), y_i the human score (mean over annotators; NaN if unlabeled),
  ξ_i  1 when the unit is in the labeled golden subset.
The estimand is the mean human score over the population the eval set's items stand for (pass rate for a
binary criterion, mean level for an ordinal one).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy.special import stdtrit  # the Student-t quantile scipy.stats' t.ppf uses, without its seconds of import

from stats.estimate import Z95, Estimate, normal_interval


@dataclass
class Calibrated:
    """A calibrated mean with its interval, the power-tuning λ, and the per-unit influence values `z`
    (mean(z) is the estimate; paired comparisons and the bootstrap resample them by item)."""

    estimate: Estimate
    lam: float
    z: np.ndarray
    n_labeled: int
    warnings: list[str] = field(default_factory=list)


def impute_unscored(yhat: np.ndarray) -> tuple[np.ndarray, int]:
    """Replace unscored judge values by the mean of the scored ones.

    Prediction-powered inference is valid for any prediction rule fixed without the labels, and "the judge's
    score, or its average where it gave none" is such a rule: unscored outputs stay in the population (their
    human labels still correct the estimate) without ever being counted as a score of their own."""
    yhat = np.asarray(yhat, float).copy()
    missing = ~np.isfinite(yhat)
    if missing.all():
        yhat[:] = 0.0
    elif missing.any():
        yhat[missing] = np.mean(yhat[~missing])
    return yhat, int(missing.sum())


def _influence_parts(
    yhat: np.ndarray, y: np.ndarray, labeled: np.ndarray, strata: np.ndarray | None, inclusion_prob: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """z_i(λ) = a_i + λ b_i, the linearisation of the estimator (see `ppi_mean`)."""
    n = yhat.size
    warnings: list[str] = []
    yl = np.where(labeled, y, 0.0)
    if inclusion_prob is not None:
        # Horvitz–Thompson rectifier with known probabilities (active inference, Zrnic & Candès 2024):
        # z = λŷ + ξ(y − λŷ)/π; its variance estimate treats inclusion as independent draws (conservative).
        pi = np.where(labeled, inclusion_prob, 1.0)
        if np.any(labeled & ~(pi > 0)):
            raise ValueError("inclusion probabilities of labeled units must be > 0")
        a = labeled * yl / pi
        b = yhat - labeled * yhat / pi
        return a, b, warnings
    codes = np.zeros(n, int) if strata is None else np.unique(np.asarray(strata), return_inverse=True)[1].ravel()
    n_h = np.bincount(codes, weights=labeled.astype(float))
    size_h = np.bincount(codes).astype(float)
    n_safe = np.where(n_h == 0, 1.0, n_h)
    mean_y = np.bincount(codes, weights=yl * labeled) / n_safe
    mean_f = np.bincount(codes, weights=yhat * labeled) / n_safe
    pi_h = n_h / size_h
    empty = n_h == 0
    if empty.any():
        # a stratum without labels cannot be corrected from its own units: borrow the pooled correction and
        # say so (the estimate is then no longer design-unbiased for that stratum)
        warnings.append(f"{int(empty.sum())} of {empty.size} strata have no label yet: their correction is "
                        "pooled from the labeled strata; label them to keep the estimate design-unbiased")
        mean_y[empty] = np.mean(y[labeled])
        mean_f[empty] = np.mean(yhat[labeled])
        pi_h[empty] = 1.0
    single = int(np.sum((n_h == 1) & (size_h > 1)))
    if single:
        # a lone label says nothing about its stratum's spread; such strata are small by construction
        # (allocation is proportional with at least one per stratum), so the understatement is small
        warnings.append(f"{single} stratum/strata hold a single label: their share of the variance is not "
                        "estimated; label more units there")
    my, mf, pi = mean_y[codes], mean_f[codes], pi_h[codes]
    # stratified prediction-powered estimator (Fisch et al. 2024, "Stratified Prediction-Powered Inference";
    # Angelopoulos et al. 2023): θ = mean_N(λŷ) + Σ_h (N_h/N)·mean_{labeled in h}(y − λŷ). Its influence values:
    # z_i = λŷ_i + m_h(y − λŷ) + ξ_i·[(y_i − λŷ_i) − m_h(y − λŷ)]/π_h, with π_h = n_h/N_h.
    # The ξ-terms sum to zero within each stratum, so scaling them by sqrt(n_h/(n_h−1)) leaves the estimate
    # unchanged and turns their sum of squares into the unbiased within-stratum variance (Cochran 1977, 5.9).
    c = np.sqrt(n_safe / np.maximum(n_safe - 1.0, 1.0))[codes]
    a = my + labeled * c * (yl - my) / pi
    b = (yhat - mf) - labeled * c * (yhat - mf) / pi
    return a, b, warnings


def ppi_mean(
    yhat: np.ndarray,
    y: np.ndarray,
    labeled: np.ndarray,
    *,
    strata: np.ndarray | None = None,
    inclusion_prob: np.ndarray | None = None,
    lam: float | None = None,
    clip: tuple[float, float] | None = None,
) -> Calibrated:
    """Prediction-powered mean with power tuning (PPI++: Angelopoulos, Duchi & Zrnic 2023, "PPI++: Efficient
    Prediction-Powered Inference"), valid 95 % CLT interval.

    Design: when `inclusion_prob` is None the labeled units are taken as a simple random sample within each
    stratum (`strata`, one stratum when None), so π_h = n_h/N_h is known from the counts; this is how the
    golden subset is drawn (stratified, optionally uncertainty-first: inverse-probability weighting as in
    active inference, Zrnic & Candès 2024). With `inclusion_prob` (per labeled unit, e.g. from an import that
    declares how its units were drawn) the Horvitz–Thompson form of active inference is used.

    λ minimises the estimated variance of mean(z) (the PPI++ power-tuning idea, here for this estimator),
    clipped to [0, 1]: λ = 0 gives the human-only estimate, so a useless judge costs (almost) nothing and the
    interval stays valid whatever the judge's quality.
    """
    yhat, _ = impute_unscored(yhat)
    y = np.asarray(y, float)
    labeled = np.asarray(labeled, bool) & np.isfinite(y)
    n, n_lab = yhat.size, int(labeled.sum())
    if n_lab == 0 or n == 0:
        return Calibrated(Estimate(float("nan"), float("nan"), float("nan"), n_lab, "no labels"), float("nan"),
                          np.full(n, np.nan), n_lab, ["no human labels"])
    a, b, warnings = _influence_parts(yhat, y, labeled, strata, inclusion_prob)
    tuned = lam is None
    if lam is None:
        vb = np.var(b)
        lam = float(np.clip(-np.cov(a, b, bias=True)[0, 1] / vb, 0.0, 1.0)) if vb > 0 else 0.0
    z = a + lam * b
    value = float(np.mean(z))
    se = float(np.std(z, ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
    # Student-t quantile on n_labeled − 1 degrees of freedom: the labeled sample, not N, limits the precision
    q = float(stdtrit(max(n_lab - 1, 1), 0.975))
    lo, hi = value - q * se, value + q * se
    if clip is not None:
        lo, hi = max(lo, clip[0]), min(hi, clip[1])
    name = f"PPI++ (λ={lam:.2f}, power-tuned)" if tuned else f"PPI (λ={lam:.2f}, fixed)"
    est = Estimate(value, float(lo), float(hi), n_lab, f"{name}, {n_lab} labeled of {n}, t interval")
    return Calibrated(est, lam, z, n_lab, warnings)


def human_only_mean(
    y: np.ndarray, labeled: np.ndarray, *, strata: np.ndarray | None = None, inclusion_prob: np.ndarray | None = None,
    clip: tuple[float, float] | None = None,
) -> Calibrated:
    """The human labels alone under the same design (the λ = 0 member of the same family: a stratified or
    Horvitz–Thompson mean with a CLT interval, Cochran 1977 ch. 5).

    When the strata are the judge's verdicts on this same criterion, this design-weighted mean already uses
    the judge through the stratum weights (post-stratification), so for a binary criterion the calibrated
    estimate coincides with it: the judge's information is spent on the draw instead of on the estimator."""
    y = np.asarray(y, float)
    res = ppi_mean(np.zeros_like(y), y, labeled, strata=strata, inclusion_prob=inclusion_prob, lam=0.0, clip=clip)
    res.estimate = Estimate(res.estimate.value, res.estimate.low, res.estimate.high, res.n_labeled,
                            f"human labels only (weighted as drawn), {res.n_labeled} labeled")
    return res


def judge_only_mean(yhat: np.ndarray, clip: tuple[float, float] | None = None) -> Estimate:
    """Mean of the judge's scored verdicts with a CLT interval: what an uncalibrated leaderboard reports. It
    estimates the judge's mean, not the humans'; unscored judgments are left out (and counted by the caller)."""
    v = np.asarray(yhat, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), 0, "no scored judgments")
    se = float(np.std(v, ddof=1) / math.sqrt(v.size)) if v.size > 1 else float("nan")
    return normal_interval(float(v.mean()), se, int(v.size), "judge only (uncalibrated)", clip)


def sensitivity_specificity(
    judge: np.ndarray, human: np.ndarray, weights: np.ndarray | None = None
) -> tuple[float, float, float, float]:
    """The judge's sensitivity P(judge pass | human pass) and specificity P(judge fail | human fail) on the
    golden units, weighted by inverse inclusion probabilities when given; returns (se, n_pos, sp, n_neg) with
    Kish effective sample sizes (Kish 1965) for the weighted case."""
    judge = np.asarray(judge, float)
    human = np.asarray(human, float)
    ok = np.isfinite(judge) & np.isfinite(human)
    judge, human = judge[ok], human[ok]
    w = np.ones_like(judge) if weights is None else np.asarray(weights, float)[ok]
    pos, neg = human >= 0.5, human < 0.5

    def rate(mask: np.ndarray, hit: np.ndarray) -> tuple[float, float]:
        ww = w[mask]
        if ww.sum() == 0:
            return float("nan"), 0.0
        return float(np.sum(ww * hit[mask]) / ww.sum()), float(ww.sum() ** 2 / np.sum(ww**2))

    se, n_pos = rate(pos, judge >= 0.5)
    sp, n_neg = rate(neg, judge < 0.5)
    return se, n_pos, sp, n_neg


def rogan_gladen(p_obs: float, n_obs: int, se: float, n_pos: float, sp: float, n_neg: float) -> Estimate:
    """Rogan–Gladen corrected prevalence (Rogan & Gladen 1978): p = (p_obs + sp − 1)/(se + sp − 1).

    The interval carries the calibration uncertainty by the delta method over the three independent binomial
    estimates (p_obs from the judge on n_obs outputs, se and sp from the golden labels; Greiner & Gardner
    2000): Var(p) ≈ [Var(p_obs) + p²·Var(se) + (1−p)²·Var(sp)] / (se + sp − 1)², then clipped to [0, 1].
    Undefined (NaN) when se + sp ≤ 1: such a judge carries no information about the prevalence.
    """
    j = se + sp - 1.0
    n = int(n_obs)
    if not (np.isfinite(j) and j > 0 and n_pos > 0 and n_neg > 0 and n > 0):
        return Estimate(float("nan"), float("nan"), float("nan"), n, "Rogan–Gladen undefined (sensitivity + "
                                                                     "specificity ≤ 1 or no golden positives/negatives)")
    p = (p_obs + sp - 1.0) / j
    var = (p_obs * (1 - p_obs) / n + p**2 * se * (1 - se) / n_pos + (1 - p) ** 2 * sp * (1 - sp) / n_neg) / j**2
    p_clipped = float(np.clip(p, 0.0, 1.0))
    half = Z95 * math.sqrt(max(var, 0.0))
    return Estimate(p_clipped, float(max(p - half, 0.0)), float(min(p + half, 1.0)), n,
                    f"Rogan–Gladen (se={se:.2f}, sp={sp:.2f}), delta method")
