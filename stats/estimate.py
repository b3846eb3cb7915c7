"""The one shape every estimate takes: a value, its 95 % interval, its n, and how it was computed."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

Z95 = 1.959963984540054  # two-sided 95 % standard-normal quantile


@dataclass(frozen=True)
class Estimate:
    value: float
    low: float
    high: float
    n: int
    method: str = ""

    def to_dict(self) -> dict:
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in asdict(self).items()}

    def fmt(self, digits: int = 3) -> str:
        if not math.isfinite(self.value):
            return f"n/a (n={self.n})"
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}] (n={self.n})"


NAN_ESTIMATE = Estimate(float("nan"), float("nan"), float("nan"), 0, "no data")


def normal_interval(value: float, se: float, n: int, method: str, clip: tuple[float, float] | None = None) -> Estimate:
    """value ± z·se, optionally clipped to the range the quantity can take."""
    lo, hi = value - Z95 * se, value + Z95 * se
    if clip is not None:
        lo, hi = max(lo, clip[0]), min(hi, clip[1])
    return Estimate(float(value), float(lo), float(hi), int(n), method)


def percentile_interval(value: float, draws: np.ndarray, n: int, method: str) -> Estimate:
    """Percentile bootstrap interval (Efron & Tibshirani 1993, ch. 13) over finite draws."""
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return Estimate(float(value), float("nan"), float("nan"), int(n), method)
    lo, hi = np.quantile(draws, [0.025, 0.975])
    return Estimate(float(value), float(lo), float(hi), int(n), method)


def bootstrap_rng(seed: int | np.random.SeedSequence) -> np.random.Generator:
    """The generator every bootstrap draws from: SFC64 (seeded, reproducible) draws bounded integers about three
    times faster than the default PCG64, and a large bootstrap is mostly drawing integers."""
    return np.random.Generator(np.random.SFC64(seed))


def resample_counts(rng: np.random.Generator, n: int, n_boot: int, dtype: type = np.float64) -> np.ndarray:
    """(n_boot, n) multiplicities of a nonparametric bootstrap: each row is one resample of n units with
    replacement, as counts, so that any statistic linear in per-unit terms becomes one matrix product.

    Drawn and counted in blocks of about 64 k integers, so the draws are counted while still in cache; the
    integers are those one (n_boot, n) draw would give. Counts are small integers, exact in float32 below
    2**24 units."""
    out = np.empty((n_boot, n), dtype)
    rows = max(1, 65_536 // max(n, 1))
    for start in range(0, n_boot, rows):
        # intp: what bincount counts in (no cast copy); for n < 2**32 the same draws as uint32
        b = min(rows, n_boot - start)
        idx = rng.integers(0, n, size=(b, n), dtype=np.intp)
        if b > 1:  # one count over the block: row r's units are r·n … r·n + n − 1
            idx += np.arange(0, b * n, n)[:, None]
        out[start:start + b] = np.bincount(idx.ravel(), minlength=b * n).reshape(b, n)
    return out


def distinct_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`np.unique(x, axis=0, return_inverse=True)` for a 2-d float array, in the same order, without its
    row-wise sort: each column's values become codes, the codes one mixed-radix integer per row (lexicographic
    like the rows), and those integers are sorted. Falls back to numpy's own when NaNs or too many distinct
    values make the integer overflow."""
    n, p = x.shape
    if n == 0 or np.isnan(x).any():
        distinct, inverse = np.unique(x, axis=0, return_inverse=True)
        return distinct, inverse.ravel()
    key = np.zeros(n, np.int64)
    radix = 1
    for j in range(p):
        values, codes = np.unique(x[:, j], return_inverse=True)
        radix *= max(values.size, 1)
        if radix >= 2**62:
            distinct, inverse = np.unique(x, axis=0, return_inverse=True)
            return distinct, inverse.ravel()
        key = key * values.size + codes.ravel()
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    return x[first], inverse.ravel()


def resampled_sums(x: np.ndarray, n_boot: int, seed: int = 0, *, budget: int = 4_000_000) -> np.ndarray:
    """Bootstrap sums of the rows of `x` (units × p, or a vector): (n_boot, p) totals over n_boot resamples
    of its units with replacement.

    Units with identical rows are interchangeable, so a resample's sums depend only on how many of its n draws
    land on each distinct row: when the rows take few distinct values (verdict cells, per-unit coincidences),
    those counts are drawn directly as multinomial(n, share of each distinct row), the same distribution as
    drawing units, at a cost independent of n. Otherwise resamples are drawn in chunks of at most about
    `budget` multiplicities, so the n_boot × units resample matrix is never held whole."""
    x = np.asarray(x, float)
    vec = x.ndim == 1
    x2 = x[:, None] if vec else x
    n = x2.shape[0]
    rng = bootstrap_rng(seed)
    out = np.empty((n_boot, x2.shape[1]))
    if n == 0:
        out[:] = 0.0
        return out[:, 0] if vec else out
    distinct, inverse = distinct_rows(x2)
    k = distinct.shape[0]
    if k <= max(64, n // 8):
        share = np.bincount(inverse, minlength=k) / n
        chunk = max(1, min(n_boot, budget // k))
        for start in range(0, n_boot, chunk):
            b = min(chunk, n_boot - start)
            out[start:start + b] = rng.multinomial(n, share, size=b) @ distinct
        return out[:, 0] if vec else out
    chunk = max(1, min(n_boot, budget // max(n, 1)))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        out[start:start + b] = resample_counts(rng, n, b) @ x2
    return out[:, 0] if vec else out
