"""The gate: when a ranking may be shown at all, and when judge-only numbers may be shown beside it.

Below G golden labels per criterion (or g per candidate) no interval means anything, so the ranking is
withheld. Judge–human agreement does not gate the calibrated ranking (prediction-powered intervals are valid
whatever the judge's quality; a poor judge only makes them as wide as human-only ones), but it gates every
judge-only number.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class GateConfig:
    min_labels: int = 30  # G: golden labels per criterion
    min_per_candidate: int = 5  # g: golden labels per candidate and criterion
    min_alpha: float = 0.667  # Krippendorff's alpha judge vs human below which judge-only numbers are hidden


@dataclass
class GateDecision:
    withheld: dict[str, list[str]] = field(default_factory=dict)  # criterion → reasons the ranking is withheld
    judge_hidden: dict[str, str] = field(default_factory=dict)  # criterion → why judge-only numbers are hidden

    def ranking_shown(self, criterion: str) -> bool:
        return not self.withheld.get(criterion)

    def judge_shown(self, criterion: str) -> bool:
        return criterion not in self.judge_hidden


def check_gate(
    labels: dict[str, dict[str, int]], alpha: dict[str, float | None], config: GateConfig = GateConfig(),
    unusable: dict[str, int] | None = None,
) -> GateDecision:
    """`labels[criterion][candidate]` = golden labels usable for calibration; `alpha[criterion]` = judge–human
    Krippendorff's alpha (None/NaN when it cannot be computed); `unusable[criterion]` = human labels that exist
    but do not count (no known inclusion probability). Reasons are in words, with the numbers."""
    out = GateDecision()
    for crit, per_cand in labels.items():
        reasons = []
        total = sum(per_cand.values())
        if total < config.min_labels:
            idle = (unusable or {}).get(crit, 0)
            reasons.append(f"criterion {crit!r} has {total} golden labels usable for calibration; at least "
                           f"{config.min_labels} are needed before any interval means anything"
                           + (f". {idle} more human label(s) exist but do not count: they were imported without a "
                              "declared design or made outside a golden assignment, so the chance each unit had "
                              "of being labeled is unknown and no unbiased correction can use them (they still "
                              "count for agreement). If they are a uniform random sample of the outputs, import the "
                              "file again with `ownbench labels import FILE --uniform`; if they were drawn with "
                              "known probabilities, add an inclusion_prob column"
                              if idle else f" (label {config.min_labels - total} more)"))
        short = sorted((n, c) for c, n in per_cand.items() if n < config.min_per_candidate)
        if short:
            listed = ", ".join(f"{c} ({n})" for n, c in short)
            reasons.append(f"criterion {crit!r}: fewer than {config.min_per_candidate} golden labels for "
                           f"candidate(s) {listed}; every candidate needs at least {config.min_per_candidate}")
        if reasons:
            out.withheld[crit] = reasons
        a = alpha.get(crit)
        if a is None or not math.isfinite(a):
            out.judge_hidden[crit] = (f"judge–human agreement on {crit!r} cannot be measured yet (no units labeled "
                                      "by both); judge-only numbers are hidden, calibrated results only")
        elif a < config.min_alpha:
            out.judge_hidden[crit] = (f"judge–human Krippendorff's alpha on {crit!r} is {a:.3f}, below "
                                      f"{config.min_alpha}: the judge cannot stand in for the humans on this "
                                      "criterion; calibrated results only")
    return out
