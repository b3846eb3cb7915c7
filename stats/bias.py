"""Judge-bias diagnostics measured on golden units (judge vs human on the same unit)."""
from __future__ import annotations

import math

import numpy as np
from scipy.special import stdtrit  # Student-t quantiles, as scipy.stats' t.ppf computes them, without its import

from stats.estimate import Estimate


def _t_mean(d: np.ndarray, method: str) -> Estimate:
    d = d[np.isfinite(d)]
    n = int(d.size)
    if n < 2:
        return Estimate(float(d.mean()) if n else float("nan"), float("nan"), float("nan"), n, method)
    m, se = float(d.mean()), float(d.std(ddof=1) / math.sqrt(n))
    q = float(stdtrit(n - 1, 0.975))
    return Estimate(m, m - q * se, m + q * se, n, method)


def leniency(judge: np.ndarray, human: np.ndarray) -> Estimate:
    """Judge minus human mean on the golden units both scored: paired mean difference with a Student-t 95 %
    interval (positive: the judge is more lenient than the humans)."""
    d = np.asarray(judge, float) - np.asarray(human, float)
    return _t_mean(d, "judge − human, paired t interval")


def position_bias(first_score: np.ndarray, swapped_first_score: np.ndarray | None = None) -> dict:
    """Pairwise position bias (Zheng et al. 2023, "Judging LLM-as-a-Judge", §3.3).

    `first_score[i]`: the score of the output shown first (1 win, 0.5 tie, 0 loss) in presentation i.
    `swapped_first_score[i]`: the same pair shown in the other order, again the score of whichever output was
    shown first. First-position win share = mean first-shown score (0.5 for an unbiased judge) with an exact
    binomial test over decisive verdicts; swap inconsistency = share of pairs whose winner changes when the
    order is swapped (a consistent judge gives s and 1 − s)."""
    from scipy import stats as sps  # here: scipy.stats costs a second of start-up

    f = np.asarray(first_score, float)
    f = f[np.isfinite(f)]
    n = int(f.size)
    out: dict = {"n": n}
    if n:
        wins, losses = int(np.sum(f == 1)), int(np.sum(f == 0))
        share = float(f.mean())
        ci = sps.binomtest(wins, wins + losses).proportion_ci(0.95) if wins + losses else None
        out["first_position_share"] = Estimate(share, float(ci.low) if ci else float("nan"),
                                               float(ci.high) if ci else float("nan"), n,
                                               "first-shown score share (ties half); interval over decisive verdicts")
        out["p_value"] = float(sps.binomtest(wins, wins + losses, 0.5).pvalue) if wins + losses else float("nan")
    if swapped_first_score is not None:
        f1 = np.asarray(first_score, float)
        f2 = np.asarray(swapped_first_score, float)
        ok = np.isfinite(f1) & np.isfinite(f2)
        m = int(ok.sum())
        inconsistent = np.abs(f1[ok] - (1.0 - f2[ok])) > 1e-9
        k = int(inconsistent.sum())
        if m:
            ci = sps.binomtest(k, m).proportion_ci(0.95)
            out["swap_inconsistency"] = Estimate(k / m, float(ci.low), float(ci.high), m,
                                                 "share of pairs whose verdict changes with the order (Clopper–Pearson)")
    return out


def verbosity(judge: np.ndarray, human: np.ndarray, length: np.ndarray, per: float = 1000.0) -> Estimate:
    """Verbosity bias: OLS slope of (judge − human) on output length, per `per` characters, with a Student-t
    95 % interval (scipy's linregress standard error). Positive: the judge rewards length beyond what humans do."""
    d = np.asarray(judge, float) - np.asarray(human, float)
    x = np.asarray(length, float) / per
    ok = np.isfinite(d) & np.isfinite(x)
    d, x = d[ok], x[ok]
    n = int(d.size)
    if n < 3 or np.ptp(x) == 0:
        return Estimate(float("nan"), float("nan"), float("nan"), n, "too few units or no length variation")
    from scipy import stats as sps  # here: scipy.stats costs a second of start-up

    r = sps.linregress(x, d)
    q = float(stdtrit(n - 2, 0.975))
    return Estimate(float(r.slope), float(r.slope - q * r.stderr), float(r.slope + q * r.stderr), n,
                    f"OLS slope of judge − human per {per:g} characters")


def self_preference(judge: np.ndarray, human: np.ndarray, same_family: np.ndarray) -> dict:
    """Self-preference (Panickssery et al. 2024): mean (judge − human) on outputs of candidates from the
    judge's own model family, beside the same on the other candidates, and their difference with a Welch
    95 % interval. Positive difference: the judge favours its own family beyond what humans see."""
    d = np.asarray(judge, float) - np.asarray(human, float)
    same = np.asarray(same_family, bool)
    ok = np.isfinite(d)
    own, other = d[ok & same], d[ok & ~same]
    out = {"own_family": _t_mean(own, "judge − human on the judge's family"),
           "other": _t_mean(other, "judge − human on other families")}
    if own.size >= 2 and other.size >= 2:
        diff = float(own.mean() - other.mean())
        va, vb = own.var(ddof=1) / own.size, other.var(ddof=1) / other.size
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va**2 / (own.size - 1) + vb**2 / (other.size - 1)) if va + vb > 0 else 1.0
        q = float(stdtrit(df, 0.975))
        out["difference"] = Estimate(diff, diff - q * se, diff + q * se, int(own.size + other.size),
                                     "own − other, Welch interval")
    return out
