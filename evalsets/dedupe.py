"""Duplicate log records: exact (the same normalised text) and near (MinHash over word 3-gram shingles, with
LSH banding to find candidates and the estimated Jaccard similarity to decide).

Exact dedupe keeps 8 bytes per distinct prompt, so it runs over the whole stream. Near-duplicate detection
runs over the pool that is kept (after reservoir sampling, when the stream is larger than the pool cap).
The first record of a group is kept: results depend only on the records and their order, never on a seed.
"""
from __future__ import annotations

import hashlib
import re
import unicodedata
import zlib
from collections.abc import Callable, Sequence

import numpy as np

NUM_PERM = 128
_TOKEN = re.compile(r"\w+", re.UNICODE)
_MERSENNE = np.uint64((1 << 61) - 1)


def normalise(text: str) -> str:
    """What makes two prompts "the same": Unicode compatibility form, case and runs of whitespace ignored."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return " ".join(text.casefold().split())


def exact_key(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(normalise(text).encode("utf-8"), digest_size=8).digest(), "big")


class ExactDeduper:
    """Remembers 8-byte digests of the normalised prompts seen so far."""

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self.removed = 0

    def is_new(self, text: str) -> bool:
        key = exact_key(text)
        if key in self.seen:
            self.removed += 1
            return False
        self.seen.add(key)
        return True


# Fixed permutations: the same text always gets the same signature, on every machine and run.
_rng = np.random.default_rng(20240611)
_A = (_rng.integers(1, (1 << 61) - 1, NUM_PERM, dtype=np.uint64)) | np.uint64(1)
_B = _rng.integers(0, (1 << 61) - 1, NUM_PERM, dtype=np.uint64)


def shingles(text: str, n: int = 3) -> np.ndarray:
    """32-bit hashes of the word n-grams of the normalised text (crc32: stable across processes)."""
    words = _TOKEN.findall(normalise(text))
    if not words:
        return np.zeros(0, dtype=np.uint64)
    ids = np.fromiter((zlib.crc32(w.encode("utf-8")) for w in words), dtype=np.uint64, count=len(words))
    if len(ids) < n:
        combined = ids[:1].copy()
        for x in ids[1:]:
            combined = combined * np.uint64(1000003) + x
        return combined
    out = ids[: len(ids) - n + 1].copy()
    for k in range(1, n):
        out = out * np.uint64(1000003) + ids[k: len(ids) - n + 1 + k]
    return np.unique(out & np.uint64(0xFFFFFFFF))


def signature(text: str) -> np.ndarray | None:
    sh = shingles(text)
    if sh.size == 0:
        return None
    # multiply-shift hashing on 64-bit words (wrap-around is intended), one column per permutation
    with np.errstate(over="ignore"):
        h = (sh[:, None] * _A[None, :] + _B[None, :]) >> np.uint64(32)
    return h.min(axis=0)


def bands_for(threshold: float, num_perm: int = NUM_PERM) -> tuple[int, int]:
    """(bands, rows) whose S-curve midpoint (1/b)^(1/r) sits just below the threshold: few misses."""
    best = (num_perm, 1)
    for r in range(1, num_perm + 1):
        if num_perm % r:
            continue
        b = num_perm // r
        if (1 / b) ** (1 / r) <= threshold - 0.05:
            best = (b, r)
    return best


def near_duplicates(
    texts: Sequence[str],
    threshold: float = 0.8,
    progress: Callable[[int, int], None] | None = None,
) -> list[int | None]:
    """For each text, the index of an earlier kept text it nearly duplicates (estimated Jaccard ≥ threshold
    on word 3-grams), or None when it is kept."""
    n = len(texts)
    result: list[int | None] = [None] * n
    if threshold >= 1.0 or n < 2:
        return result
    b, r = bands_for(threshold)
    buckets: list[dict[bytes, list[int]]] = [dict() for _ in range(b)]
    sigs: dict[int, np.ndarray] = {}
    for i, text in enumerate(texts):
        if progress is not None and i % 2000 == 0:
            progress(i, n)
        sig = signature(text)
        if sig is None:
            continue
        keys = [sig[j * r:(j + 1) * r].tobytes() for j in range(b)]
        match = None
        seen: set[int] = set()
        for j, key in enumerate(keys):
            for cand in buckets[j].get(key, ()):
                if cand in seen:
                    continue
                seen.add(cand)
                if float(np.mean(sigs[cand] == sig)) >= threshold:
                    match = cand
                    break
            if match is not None:
                break
        if match is not None:
            result[i] = match
            continue
        sigs[i] = sig
        for j, key in enumerate(keys):
            buckets[j].setdefault(key, []).append(i)
    if progress is not None:
        progress(n, n)
    return result
