"""Check criteria in reports: their verdicts are exact, so they are used directly (no calibration, no gate).

A check's pass rate per candidate is the mean of its verdicts over the candidate's outputs; the interval is the
usual CLT interval over items (the uncertainty of sampling prompts, not of the verdicts, which are exact).
Unscored checks (a figure the output did not record, a pattern that timed out) are counted and left out.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from analysis.data import CriterionData, StudyData
from stats.calibration import judge_only_mean
from stats.estimate import Estimate

EXACT = "exact check (computed, no calibration needed)"


def exact_calibration(study: StudyData, cd: CriterionData) -> tuple[np.ndarray, list[dict[str, Any]], list[str]]:
    """What `calibrate_criterion` returns for a check: influence values = the verdicts themselves."""
    rows = []
    for r, cand in enumerate(study.candidates):
        pop = cd.judged[r]
        est = judge_only_mean(cd.judge[r][pop], clip=(0.0, 1.0))
        rows.append({"candidate": cand.name, "model": cand.model, "outputs": int(pop.sum()),
                     "golden": int(cd.calib[r].sum()), "unscored": int(cd.unscored[r]),
                     "calibrated": Estimate(est.value, est.low, est.high, est.n, EXACT), "lambda": None,
                     "exact": True, "cost_per_1k_usd": cand.cost_per_1k, "latency_p50_ms": cand.latency_p50_ms,
                     "latency_p95_ms": cand.latency_p95_ms})
    z = np.where(cd.judged, cd.judge, np.nan)
    return z, rows, []


def exact_entry(study: StudyData, cd: CriterionData, *, n_boot: int, seed: int) -> dict[str, Any]:
    """The ranking section of a check criterion: ranked directly on its exact pass rates."""
    from stats.ranking import pareto_front, rank_by_influence, rank_ranges

    z, rows, _ = exact_calibration(study, cd)
    # said as a warning (shown under the table), not a note: pages show a note instead of a table
    entry: dict[str, Any] = {"criterion": cd.id, "type": "binary", "exact": True, "withheld": [],
                             "warnings": ["check criterion: verdicts are computed exactly from the outputs, so they "
                                          "are ranked directly (no judge, no calibration, no gate)"]}
    if not rows or not np.isfinite(z).any():
        entry["rows"] = []
        return entry
    names = [c.name for c in study.candidates]
    ranking = rank_by_influence(z, names, n_boot=n_boot, seed=seed, method=EXACT)
    quality = np.array([r["calibrated"].value for r in rows])
    cost = np.array([r["cost_per_1k_usd"] if r["cost_per_1k_usd"] is not None else np.nan for r in rows])
    front = pareto_front(quality, cost)
    ranges = rank_ranges(quality, np.array([r["calibrated"].low for r in rows]),
                         np.array([r["calibrated"].high for r in rows]))
    ordered = []
    for i in ranking.order:
        r = dict(rows[i])
        lo, hi = ranges[i]
        r.update(rank=[lo, hi], rank_label=str(lo) if lo == hi else f"{lo}–{hi}", pareto=bool(front[i]))
        ordered.append(r)
    entry["rows"] = ordered
    entry["pairs"] = ranking.pairs
    return entry
