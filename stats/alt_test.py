"""The Alternative Annotator Test (Calderon, Reichart & Dror 2025, "The Alternative Annotator Test for
LLM-as-a-Judge: How to Statistically Justify Replacing Human Annotators with LLMs").

Leave one annotator out at a time. For held-out annotator j and each unit i that j labeled together with at
least one other human, compare how well the judge aligns with the remaining humans with how well j does:
alignment is the share of remaining humans with the same value (discrete criteria) or minus the RMSE to them
(numeric). W^f_i = 1 if the judge aligns at least as well, W^h_i = 1 if j does. H0_j: ρ^f_j ≤ ρ^h_j − ε is
tested with a one-sided paired t-test on d_i = W^f_i − W^h_i; the m p-values are corrected with the
Benjamini–Yekutieli FDR procedure; the winning rate ω is the share of annotators whose H0 is rejected, and the
judge passes when ω ≥ the threshold (0.5 in the paper). The average advantage probability ρ = mean_j ρ^f_j is
reported beside it.
"""
from __future__ import annotations

import numpy as np

MIN_HUMANS = 3
MIN_SHARED = 10  # units an annotator must share with other annotators to take part in the test


def alt_test(
    humans: np.ndarray,
    judge: np.ndarray,
    *,
    epsilon: float = 0.2,
    q: float = 0.05,
    threshold: float = 0.5,
    discrete: bool = True,
    names: list[str] | None = None,
) -> dict:
    """`humans`: annotators × units (NaN where not labeled); `judge`: units. Returns per-annotator results,
    the winning rate, the average advantage probability and `passed`; or `passed=None` with the reason."""
    h = np.asarray(humans, float)
    f = np.asarray(judge, float)
    m = h.shape[0]
    names = names or [f"annotator {i + 1}" for i in range(m)]
    if m < MIN_HUMANS:
        return {"passed": None, "reason": f"the Alt-Test needs {MIN_HUMANS} or more humans labeling the same units; "
                                          f"{m} labeled this criterion", "annotators": []}
    # the test compares the same people with the judge over many units; when each unit's raters are different
    # people (crowd votes, "rater 1/2/3" slots), no annotator can be held out against the others
    shared = [int(np.sum(np.isfinite(h[j]) & (np.sum(np.isfinite(np.delete(h, j, axis=0)), axis=0) >= 1)))
              for j in range(m)]
    eligible = [j for j in range(m) if shared[j] >= MIN_SHARED]
    if len(eligible) < MIN_HUMANS:
        return {"passed": None, "annotators": [],
                "reason": (f"the Alt-Test does not apply here: it needs the same {MIN_HUMANS} or more annotators to "
                           f"label the same units, and only {len(eligible)} of the {m} annotators labeled "
                           f"{MIN_SHARED} or more units together with another annotator (median "
                           f"{int(np.median(shared))}); label a shared set of units with the same annotators "
                           "(`ownbench golden select --k 3`)")}
    if len(eligible) < m:
        h = h[eligible]
        names = [names[j] for j in eligible]
        skipped = m - len(eligible)
        m = len(eligible)
    else:
        skipped = 0
    # imported here, past the cases it declines: scipy.stats and statsmodels cost seconds of start-up
    from scipy import stats as sps
    from statsmodels.stats.multitest import multipletests

    rows, pvals = [], []
    for j in range(m):
        others = np.delete(h, j, axis=0)
        have = np.isfinite(h[j]) & np.isfinite(f) & (np.sum(np.isfinite(others), axis=0) >= 1)
        n = int(have.sum())
        if n < 2:
            rows.append({"annotator": names[j], "n": n, "p_value": float("nan")})
            pvals.append(np.nan)
            continue
        o = others[:, have]
        cnt = np.sum(np.isfinite(o), axis=0)
        if discrete:
            s_f = np.nansum(o == f[have], axis=0) / cnt
            s_h = np.nansum(o == h[j, have], axis=0) / cnt
        else:
            s_f = -np.sqrt(np.nansum((o - f[have]) ** 2, axis=0) / cnt)
            s_h = -np.sqrt(np.nansum((o - h[j, have]) ** 2, axis=0) / cnt)
        w_f = (s_f >= s_h).astype(float)
        w_h = (s_h >= s_f).astype(float)
        d = w_f - w_h
        sd = d.std(ddof=1)
        if sd == 0:
            p = 0.0 if d.mean() + epsilon > 0 else 1.0
        else:
            t = (d.mean() + epsilon) / (sd / np.sqrt(n))
            p = float(sps.t.sf(t, n - 1))
        rows.append({"annotator": names[j], "n": n, "rho_judge": float(w_f.mean()), "rho_human": float(w_h.mean()),
                     "p_value": p, "few_units": n < 30})
        pvals.append(p)
    p = np.array(pvals)
    ok = np.isfinite(p)
    rejected = np.zeros(m, bool)
    if ok.any():
        rejected[ok] = multipletests(p[ok], alpha=q, method="fdr_by")[0]
    for r, rej in zip(rows, rejected):
        r["rejected"] = bool(rej)
    omega = float(rejected.sum() / m)
    rho = float(np.nanmean([r.get("rho_judge", np.nan) for r in rows]))
    notes = []
    if skipped:
        notes.append(f"{skipped} annotator(s) with fewer than {MIN_SHARED} units shared with others are left out")
    if any(r.get("few_units") for r in rows):
        notes.append("some annotators labeled fewer than 30 shared units: the t-tests have little power")
    return {"passed": omega >= threshold, "winning_rate": omega, "advantage_probability": rho,
            "epsilon": epsilon, "threshold": threshold, "q": q, "annotators": rows, "notes": notes}
