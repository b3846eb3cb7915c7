"""Which outputs humans should label next: a stratified random draw with known inclusion probabilities.

Calibration is only valid if the golden subset is a random sample with known inclusion probabilities. Units
are drawn by simple random sampling without replacement within strata (candidate × judge verdict, and
"unsure" × "sure" under the uncertainty-first strategy); the inclusion probability of a unit in stratum h is
n_h/N_h, and the calibration weights by its inverse (Horvitz & Thompson 1952; active inference, Zrnic &
Candès 2024). A later batch drawn at random from the same strata's remaining units keeps the union a simple
random sample within each stratum, so the probabilities stay (n_h + n'_h)/N_h.
"""
from __future__ import annotations

import numpy as np


def allocate(sizes: np.ndarray, n: int, weights: np.ndarray | None = None) -> np.ndarray:
    """Split n draws over strata proportionally to size × weight (largest remainder), at least one per
    non-empty stratum when n allows it, never more than a stratum holds."""
    sizes = np.asarray(sizes, int)
    w = sizes * (np.ones(sizes.size) if weights is None else np.asarray(weights, float))
    n = int(min(n, sizes.sum()))
    alloc = np.zeros(sizes.size, int)
    nonempty = np.nonzero(sizes > 0)[0]
    if n >= nonempty.size:
        alloc[nonempty] = 1
    remaining = n - alloc.sum()
    while remaining > 0:
        room = sizes - alloc
        share = np.where(room > 0, w, 0.0)
        if share.sum() == 0:
            break
        quota = share / share.sum() * remaining
        add = np.minimum(np.floor(quota).astype(int), room)
        if add.sum() == 0:
            order = np.argsort(-(quota - np.floor(quota)) - (room > 0) * 1e-9, kind="stable")
            order = [i for i in order if room[i] > 0][:remaining]
            add = np.zeros_like(alloc)
            add[order] = 1
        alloc += add
        remaining = n - alloc.sum()
    return alloc


def stratified_sample(
    strata: np.ndarray,
    n: int,
    *,
    seed: int,
    unsure: np.ndarray | None = None,
    boost: float = 3.0,
    already: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Draw n new units. `strata` labels every unit of the population; with `unsure` (uncertainty-first) the
    unsure units form their own strata and get `boost` times their proportional share. `already` marks units
    drawn in earlier batches (they stay drawn). Returns (indices of the new units, inclusion probability of
    every unit after this draw (0 for undrawn), the stratum key of every unit)."""
    strata = np.asarray(strata).astype(str)
    if unsure is not None:
        strata = np.char.add(strata, np.where(np.asarray(unsure, bool), "|unsure", "|sure"))
    keys, codes = np.unique(strata, return_inverse=True)
    codes = codes.ravel()
    taken = np.zeros(strata.size, bool) if already is None else np.asarray(already, bool).copy()
    sizes = np.bincount(codes, minlength=keys.size)
    room = np.bincount(codes, weights=~taken, minlength=keys.size).astype(int)
    weights = np.array([boost if k.endswith("|unsure") else 1.0 for k in keys]) if unsure is not None else None
    alloc = allocate(room, n, weights)
    rng = np.random.default_rng(seed)
    new = []
    for h in np.nonzero(alloc)[0]:
        pool = np.nonzero((codes == h) & ~taken)[0]
        new.extend(rng.choice(pool, size=alloc[h], replace=False).tolist())
    new_idx = np.array(sorted(new), int)
    taken[new_idx] = True
    drawn = np.bincount(codes, weights=taken, minlength=keys.size)
    prob = np.where(taken, drawn[codes] / sizes[codes], 0.0)
    return new_idx, prob, strata
