"""Agreement between raters (humans and the judge) on one criterion.

Ratings arrive as a float matrix `raters × units` with NaN where a rater did not rate a unit; values are
numeric codes (pass=1/fail=0, ordinal levels, or category indices). Every statistic reports its n and, where
asked, a 95 % percentile bootstrap interval from resampling units (Efron & Tibshirani 1993).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from stats.estimate import NAN_ESTIMATE, Estimate, percentile_interval, resampled_sums

Level = Literal["nominal", "ordinal", "interval", "ratio"]
KappaWeights = Literal["linear", "quadratic"] | None


def percent_agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Share of units on which two raters give the same value (units both rated)."""
    a, b = _paired(a, b)
    return float(np.mean(a == b)) if a.size else float("nan")


def cohen_kappa(a: np.ndarray, b: np.ndarray, weights: KappaWeights = None, labels: Sequence | None = None) -> float:
    """Cohen's kappa (Cohen 1960); linear/quadratic weighted kappa (Cohen 1968) for ordinal criteria, over the
    units both raters rated, from their confusion matrix (the formula of scikit-learn's `cohen_kappa_score`;
    scikit-learn itself is not imported: it costs seconds of start-up for a 2×2 table)."""
    a, b = _paired(a, b)
    if a.size == 0:
        return float("nan")
    if labels is None:
        labels = np.union1d(a, b)
    if np.all(a == b) and np.unique(a).size == 1:
        return float("nan")  # a single category used by both: kappa is undefined (0/0)
    return float(kappa_from_confusion(confusion(a, b, labels), weights))


def _codes(x: np.ndarray, labels: Sequence) -> np.ndarray:
    """Index of each value of `x` in `labels` (−1 where it is not one of them)."""
    lab = np.asarray(list(labels), float)
    order = np.argsort(lab, kind="stable")
    srt = lab[order]
    pos = np.clip(np.searchsorted(srt, x), 0, max(srt.size - 1, 0))
    hit = srt[pos] == x if srt.size else np.zeros(x.shape, bool)
    return np.where(hit, order[pos], -1)


def confusion(a: np.ndarray, b: np.ndarray, labels: Sequence) -> np.ndarray:
    """Counts[i, j] = units rated labels[i] by `a` and labels[j] by `b` (values outside `labels` are left out,
    as scikit-learn's confusion_matrix does)."""
    a, b = _paired(a, b)
    k = len(list(labels))
    ia, ib = _codes(a, labels), _codes(b, labels)
    ok = (ia >= 0) & (ib >= 0)
    return np.bincount(ia[ok] * k + ib[ok], minlength=k * k).reshape(k, k)


def kappa_from_confusion(conf: np.ndarray, weights: KappaWeights = None) -> np.ndarray:
    """Cohen's (weighted) kappa from one or a stack of K×K confusion matrices, same formula as scikit-learn:
    κ = 1 − Σ w·O / Σ w·E with E the outer product of the marginals (Cohen 1968)."""
    conf = np.asarray(conf, dtype=float)
    k = conf.shape[-1]
    i, j = np.indices((k, k))
    w = {None: (i != j).astype(float), "linear": np.abs(i - j).astype(float), "quadratic": (i - j) ** 2.0}[weights]
    n = conf.sum(axis=(-2, -1), keepdims=True)
    expected = conf.sum(axis=-1, keepdims=True) * conf.sum(axis=-2, keepdims=True) / np.where(n == 0, 1, n)
    num = (w * conf).sum(axis=(-2, -1))
    den = (w * expected).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 - num / den


def pair_agreement(
    a: np.ndarray,
    b: np.ndarray,
    labels: Sequence[float],
    *,
    ordinal: bool = False,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict:
    """Percent agreement, Cohen's kappa (and linear/quadratic weighted kappa when ordinal), the confusion
    matrix, with 95 % bootstrap intervals by resampling the units both raters rated."""
    a, b = _paired(a, b)
    labels = list(labels)
    n = int(a.size)
    out: dict = {"n": n, "labels": labels}
    if n == 0:
        out.update(percent=NAN_ESTIMATE, kappa=NAN_ESTIMATE, confusion=np.zeros((len(labels),) * 2, int))
        return out
    ai, bi = _codes(a, labels), _codes(b, labels)
    if (ai < 0).any() or (bi < 0).any():
        raise ValueError(f"a rating is not one of the labels {labels}")
    k = len(labels)
    conf = confusion(a, b, labels)
    out["confusion"] = conf
    # a resample's confusion matrix depends only on how many of its n draws fall in each cell: resampled_sums
    # draws those counts directly (multinomial over the k² cells), never an n_boot × n matrix
    cell = ai * k + bi
    onehot = np.zeros((n, k * k))
    onehot[np.arange(n), cell] = 1.0
    boot_conf = resampled_sums(onehot, n_boot, seed).reshape(n_boot, k, k)
    agree = float(np.mean(ai == bi))
    boot_agree = np.trace(boot_conf, axis1=1, axis2=2) / n
    out["percent"] = percentile_interval(agree, boot_agree, n, "percent agreement, bootstrap over units")
    variants: list[tuple[str, KappaWeights]] = [("kappa", None)]
    if ordinal:
        variants += [("kappa_linear", "linear"), ("kappa_quadratic", "quadratic")]
    for name, w in variants:
        value = cohen_kappa(a, b, weights=w, labels=labels)
        out[name] = percentile_interval(value, kappa_from_confusion(boot_conf, w), n,
                                        f"Cohen's kappa ({w or 'unweighted'}), bootstrap over units")
    return out


def krippendorff_alpha(data: np.ndarray, level: Level, value_domain: Sequence[float] | None = None) -> float:
    """Krippendorff's alpha (Krippendorff 2011, "Computing Krippendorff's Alpha-Reliability") for a
    raters × units matrix with NaN for missing values; computed by the `krippendorff` package."""
    import krippendorff

    data = np.asarray(data, dtype=float)
    if _pairable_units(data) == 0:
        return float("nan")
    values = np.unique(data[np.isfinite(data)])
    if values.size < 2 and value_domain is None:
        return float("nan")
    kwargs = {"value_domain": list(value_domain)} if value_domain is not None else {}
    return float(krippendorff.alpha(reliability_data=data, level_of_measurement=level, **kwargs))


def alpha_interval(
    data: np.ndarray, level: Level, *, value_domain: Sequence[float] | None = None, n_boot: int = 2000, seed: int = 0
) -> Estimate:
    """Krippendorff's alpha with a 95 % bootstrap interval by resampling units.

    The bootstrap is vectorised over per-unit coincidence matrices (Krippendorff 2011, eq. for o_ck): a
    resample's coincidences are the multiplicity-weighted sum of its units', and alpha follows from them with
    the level's difference function (ordinal δ uses the resample's own marginals)."""
    data = np.asarray(data, dtype=float)
    value = krippendorff_alpha(data, level, value_domain)
    keep = np.sum(np.isfinite(data), axis=0) >= 2
    data = data[:, keep]
    u = data.shape[1]
    if u == 0 or not np.isfinite(value):
        return Estimate(value, float("nan"), float("nan"), int(u), "Krippendorff's alpha")
    domain = np.asarray(value_domain if value_domain is not None else np.unique(data[np.isfinite(data)]), float)
    v = domain.size
    counts = np.zeros((u, v))
    for r in range(data.shape[0]):
        row = data[r]
        ok = np.isfinite(row)
        counts[np.nonzero(ok)[0], np.searchsorted(domain, row[ok])] += 1
    m = counts.sum(axis=1)
    unit_o = (counts[:, :, None] * counts[:, None, :] - counts[:, :, None] * np.eye(v)[None]) / (m - 1)[:, None, None]
    o = resampled_sums(unit_o.reshape(u, v * v), n_boot, seed).reshape(n_boot, v, v)
    boot = _alpha_from_coincidence(o, domain, level)
    n_pairable = int(m.sum())
    return percentile_interval(value, boot, u, f"Krippendorff's alpha ({level}), bootstrap over {u} units "
                                                f"({n_pairable} pairable values)")


def _alpha_from_coincidence(o: np.ndarray, domain: np.ndarray, level: Level) -> np.ndarray:
    """alpha = 1 − (n−1)·Σ o_ck δ²_ck / Σ n_c n_k δ²_ck for a stack of coincidence matrices."""
    nc = o.sum(axis=-1)
    n = nc.sum(axis=-1)
    c, k = np.meshgrid(domain, domain, indexing="ij")
    if level == "nominal":
        delta = np.broadcast_to((c != k).astype(float), o.shape)
    elif level == "interval":
        delta = np.broadcast_to((c - k) ** 2, o.shape)
    elif level == "ratio":
        with np.errstate(invalid="ignore", divide="ignore"):
            d = np.where(c + k == 0, 0.0, ((c - k) / (c + k)) ** 2)
        delta = np.broadcast_to(d, o.shape)
    elif level == "ordinal":
        cum = np.cumsum(nc, axis=-1)  # Σ_{g ≤ idx} n_g
        i, j = np.indices((domain.size, domain.size))
        lo, hi = np.minimum(i, j), np.maximum(i, j)
        between = cum[..., hi] - np.where(lo > 0, cum[..., np.maximum(lo - 1, 0)], 0.0)
        delta = (between - (nc[..., i] + nc[..., j]) / 2.0) ** 2
    else:
        raise ValueError(f"unknown level of measurement {level!r}")
    num = (o * delta).sum(axis=(-2, -1))
    den = (nc[..., :, None] * nc[..., None, :] * delta).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1.0 - (n - 1) * num / den


def fleiss_kappa(counts: np.ndarray) -> float:
    """Fleiss' kappa (Fleiss 1971) from a subjects × categories count table with the same number of raters
    per subject; computed by statsmodels' `fleiss_kappa`."""
    from statsmodels.stats.inter_rater import fleiss_kappa as _fk

    return float(_fk(np.asarray(counts), method="fleiss"))


def fleiss_interval(counts: np.ndarray, *, n_boot: int = 2000, seed: int = 0) -> Estimate:
    """Fleiss' kappa with a 95 % bootstrap interval by resampling subjects (vectorised Fleiss 1971 formula)."""
    counts = np.asarray(counts, dtype=float)
    s = counts.shape[0]
    value = fleiss_kappa(counts)
    m = counts.sum(axis=1)
    p_i = ((counts**2).sum(axis=1) - m) / (m * (m - 1))
    sums = resampled_sums(np.column_stack([p_i, counts, m]), n_boot, seed)
    p_bar = sums[:, 0] / s
    p_k = sums[:, 1:-1] / sums[:, -1:]
    pe = (p_k**2).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (p_bar - pe) / (1 - pe)
    return percentile_interval(value, boot, s, "Fleiss' kappa, bootstrap over subjects")


def category_counts(data: np.ndarray, domain: Sequence[float]) -> np.ndarray:
    """raters × units matrix → units × categories count table (statsmodels' aggregate_raters layout)."""
    data = np.asarray(data, float)
    return np.stack([(data == v).sum(axis=0) for v in domain], axis=1)


@dataclass
class CriterionAgreement:
    """Everything measured on one criterion; `pairs` holds one entry per pair of raters."""

    level: str
    labels: list
    n_units: int
    pairs: list[dict] = field(default_factory=list)
    alpha_humans: Estimate = NAN_ESTIMATE
    alpha_with_judge: Estimate = NAN_ESTIMATE
    alpha_judge_vs_human: Estimate = NAN_ESTIMATE
    fleiss_humans: Estimate | None = None
    fleiss_note: str | None = None


def criterion_agreement(
    ratings: dict[str, np.ndarray],
    *,
    level: Level,
    labels: Sequence[float],
    judge: str | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> CriterionAgreement:
    """All agreement statistics for one criterion.

    `ratings` maps each rater (annotator names and, under the key `judge`, the judge) to a vector over the
    same units, NaN where not rated. Judge–human alpha is computed on (judge, human label) pairs: one
    reliability unit per human label, so it measures how well the judge stands in for one human, on the same
    scale as a human–human pair.
    """
    names = list(ratings)
    humans = [r for r in names if r != judge]
    labels = list(labels)
    ordinal = level in ("ordinal", "interval")
    res = CriterionAgreement(level=level, labels=labels, n_units=int(len(next(iter(ratings.values()))) if ratings else 0))
    for x in range(len(names)):
        for y in range(x + 1, len(names)):
            first, second = names[x], names[y]
            kind = "judge-human" if judge in (first, second) else "human-human"
            if kind == "judge-human" and second == judge:  # judge first, always
                first, second = second, first
            pa = pair_agreement(ratings[first], ratings[second], labels, ordinal=ordinal, n_boot=n_boot, seed=seed)
            pa["raters"] = [first, second]
            pa["kind"] = kind
            if pa["n"] > 0:
                res.pairs.append(pa)
    domain = labels
    if len(humans) >= 2:
        res.alpha_humans = alpha_interval(np.stack([ratings[h] for h in humans]), level, value_domain=domain,
                                          n_boot=n_boot, seed=seed)
    if judge is not None and humans:
        res.alpha_with_judge = alpha_interval(np.stack([ratings[r] for r in [judge, *humans]]), level,
                                              value_domain=domain, n_boot=n_boot, seed=seed)
        j = ratings[judge]
        jcol, hcol = [], []
        for h in humans:
            ok = np.isfinite(ratings[h]) & np.isfinite(j)
            jcol.append(j[ok])
            hcol.append(ratings[h][ok])
        pair_data = np.stack([np.concatenate(jcol), np.concatenate(hcol)])
        if pair_data.shape[1]:
            res.alpha_judge_vs_human = alpha_interval(pair_data, level, value_domain=domain, n_boot=n_boot, seed=seed)
    if len(humans) >= 3:
        hm = np.stack([ratings[h] for h in humans])
        complete = np.all(np.isfinite(hm), axis=0)
        if complete.sum() >= 2:
            res.fleiss_humans = fleiss_interval(category_counts(hm[:, complete], domain), n_boot=n_boot, seed=seed)
            res.fleiss_note = f"over the {int(complete.sum())} units all {len(humans)} humans labeled"
        else:
            res.fleiss_note = "Fleiss' kappa needs units labeled by every human; fewer than 2 such units"
    else:
        res.fleiss_note = f"Fleiss' kappa needs three or more humans; {len(humans)} labeled this criterion"
    return res


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    return a[ok], b[ok]


def _pairable_units(data: np.ndarray) -> int:
    return int(np.sum(np.sum(np.isfinite(data), axis=0) >= 2))
