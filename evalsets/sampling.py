"""Representative sampling: N prompts that cover the pool's topics, plus the edge cases people forget.

1. Edge-case quotas first (longest, shortest, non-English, multi-turn), each filled as far as the pool allows.
2. The rest of the pool is clustered by topic: TF-IDF (words, sublinear tf, English stop words) reduced by
   truncated SVD (LSA) and grouped by MiniBatchKMeans, with k derived from N (about √N).
3. The remaining budget is allocated to clusters in proportion to their size, with a floor per cluster so
   rare topics appear (largest-remainder rounding), and drawn at random within each cluster.
Everything random is seeded: the same pool, N, quotas and seed give the same sample.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

QUOTA_KINDS = ("longest", "shortest", "non_english", "multi_turn")


def default_quotas(n: int) -> dict[str, int]:
    """About 2 % of N each for longest / shortest and 4 % for non-English / multi-turn (at least 1)."""
    if n <= 0:
        return {k: 0 for k in QUOTA_KINDS}
    small, big = max(1, round(n * 0.02)), max(1, round(n * 0.04))
    return {"longest": small, "shortest": small, "non_english": big, "multi_turn": big}


def clusters_for(n: int, pool: int) -> int:
    return max(1, min(round(math.sqrt(max(n, 1))), pool // 5 or 1, 60))


@dataclass
class PoolEntry:
    """What sampling needs to know about one pooled log record."""

    text: str
    length: int
    user_turns: int
    language: str
    label: str = ""  # key or source, for the report


@dataclass
class SampleResult:
    selected: list[int]  # pool indices, in pool order
    reasons: dict[int, str]  # pool index → "cluster 3" / "quota: longest"
    clusters: dict[int, int] = field(default_factory=dict)  # pool index → cluster id
    report: dict = field(default_factory=dict)


def sample(
    pool: Sequence[PoolEntry],
    n: int,
    *,
    seed: int = 0,
    quotas: dict[str, int] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> SampleResult:
    rng = np.random.default_rng(seed)
    size = len(pool)
    quotas = default_quotas(n) if quotas is None else {k: int(v) for k, v in quotas.items()}
    unknown = set(quotas) - set(QUOTA_KINDS)
    if unknown:
        raise ValueError(f"unknown quota kinds: {', '.join(sorted(unknown))}")
    if n <= 0 or n >= size:
        picked = list(range(size))
        return SampleResult(picked, {i: "all" for i in picked}, report={
            "method": "all", "n_requested": n, "n_selected": size, "pool_size": size,
            "note": "the pool is not larger than N: every pooled record is kept" if n > 0 else "no sampling (N = 0)",
        })

    chosen: dict[int, str] = {}
    quota_report: dict[str, dict] = {}
    for kind in QUOTA_KINDS:
        want = min(quotas.get(kind, 0), n - len(chosen))
        candidates = _quota_candidates(kind, pool, rng)
        available = len(candidates)
        got = 0
        for i in candidates:
            if got >= want:
                break
            if i in chosen:
                continue
            chosen[i] = f"quota: {kind}"
            got += 1
        quota_report[kind] = {"requested": quotas.get(kind, 0), "filled": got, "available": available}

    rest = [i for i in range(size) if i not in chosen]
    budget = n - len(chosen)
    k = clusters_for(n, len(rest))
    if progress:
        progress("clustering", 0, 1)
    labels, top_terms, method = _cluster([pool[i].text for i in rest], k, seed)
    if progress:
        progress("clustering", 1, 1)
    k = int(labels.max()) + 1 if len(labels) else 0
    members: list[list[int]] = [[] for _ in range(k)]
    for pos, lab in enumerate(labels):
        members[int(lab)].append(rest[pos])
    # present clusters largest first; ids follow that order
    order = sorted(range(k), key=lambda c: (-len(members[c]), members[c][0] if members[c] else 0))
    members = [members[c] for c in order]
    top_terms = [top_terms[c] for c in order]
    cluster_of = {i: c for c, ms in enumerate(members) for i in ms}

    alloc = allocate([len(m) for m in members], budget)
    for c, (ms, a) in enumerate(zip(members, alloc)):
        if a:
            for i in sorted(rng.choice(ms, size=a, replace=False).tolist()):
                chosen[i] = f"cluster {c}"
    for i, reason in chosen.items():
        if reason.startswith("quota") and i not in cluster_of:
            cluster_of[i] = -1
    selected = sorted(chosen)
    report = {
        "method": method,
        "seed": seed,
        "n_requested": n,
        "n_selected": len(selected),
        "pool_size": size,
        "k": k,
        "clusters": [
            {"id": c, "size": len(ms), "selected": alloc[c], "top_terms": top_terms[c]}
            for c, ms in enumerate(members)
        ],
        "quotas": quota_report,
    }
    return SampleResult(selected, {i: chosen[i] for i in selected}, cluster_of, report)


def _quota_candidates(kind: str, pool: Sequence[PoolEntry], rng: np.random.Generator) -> list[int]:
    idx = range(len(pool))
    if kind == "longest":
        return sorted(idx, key=lambda i: (-pool[i].length, i))
    if kind == "shortest":
        return sorted((i for i in idx if pool[i].length > 0), key=lambda i: (pool[i].length, i))
    if kind == "non_english":
        cands = [i for i in idx if pool[i].language not in ("en", "und")]
    elif kind == "multi_turn":
        cands = [i for i in idx if pool[i].user_turns > 1]
    else:
        raise ValueError(kind)
    return [cands[j] for j in rng.permutation(len(cands))] if cands else []


def allocate(sizes: list[int], budget: int) -> list[int]:
    """Proportional allocation with a floor per cluster (2 when the budget allows, else 1), largest
    remainders first, never more than a cluster holds. Sums to min(budget, total)."""
    k = len(sizes)
    total = sum(sizes)
    budget = min(budget, total)
    if k == 0 or budget <= 0:
        return [0] * k
    floor = 2 if budget >= 4 * k else 1 if budget >= 2 * k else 0
    alloc = [min(floor, s) for s in sizes]
    left = budget - sum(alloc)
    while left > 0:
        room = [s - a for s, a in zip(sizes, alloc)]
        weight = sum(r for r in room)
        if weight == 0:
            break
        shares = [left * r / weight for r in room]
        extra = [min(int(sh), r) for sh, r in zip(shares, room)]
        if sum(extra) == 0:  # hand out the last few by largest remainder, ties to the larger cluster
            order = sorted(range(k), key=lambda c: (-(shares[c] - int(shares[c])), -room[c], c))
            for c in order:
                if left == 0:
                    break
                if room[c] > extra[c]:
                    extra[c] += 1
                    left -= 1
            alloc = [a + e for a, e in zip(alloc, extra)]
            continue
        alloc = [a + e for a, e in zip(alloc, extra)]
        left -= sum(extra)
    return alloc


def _cluster(texts: list[str], k: int, seed: int) -> tuple[np.ndarray, list[list[str]], str]:
    """Topic clusters of the texts and each cluster's top terms."""
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import normalize

    n = len(texts)
    if n == 0:
        return np.zeros(0, dtype=int), [], "none"
    if k <= 1 or n < 4:
        return np.zeros(n, dtype=int), [[]], "single cluster (pool too small to cluster)"
    vec = TfidfVectorizer(
        max_features=50_000, sublinear_tf=True, stop_words="english", min_df=2 if n >= 50 else 1, max_df=0.5,
        token_pattern=r"(?u)\b[^\W\d_]{2,}\b", dtype=np.float32,
    )
    try:
        x = vec.fit_transform(t[:20_000] for t in texts)
    except ValueError:  # no words at all (e.g. only numbers or symbols)
        return np.zeros(n, dtype=int), [[]], "single cluster (no words to cluster on)"
    terms = vec.get_feature_names_out()
    dims = min(100, x.shape[1] - 1, n - 1)
    if dims >= 2:
        svd = TruncatedSVD(n_components=dims, random_state=seed, algorithm="randomized", n_iter=5)
        z = normalize(svd.fit_transform(x))
        method = f"TF-IDF + LSA ({dims} dims) + MiniBatchKMeans"
    else:
        z = x
        method = "TF-IDF + MiniBatchKMeans"
    k = min(k, n)
    km = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=min(4096, n), max_iter=100)
    labels = km.fit_predict(z)
    # renumber to consecutive ids (a cluster can come out empty)
    used = np.unique(labels)
    remap = {int(old): new for new, old in enumerate(used)}
    labels = np.array([remap[int(l)] for l in labels])
    top: list[list[str]] = []
    for c in range(len(used)):
        rows = np.flatnonzero(labels == c)
        centroid = np.asarray(x[rows].mean(axis=0)).ravel()
        best = np.argsort(-centroid, kind="stable")[:8]
        top.append([str(terms[j]) for j in best if centroid[j] > 0])
    return labels, top, method
