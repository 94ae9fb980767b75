"""One-step (Hamming) and two-step (Hamming coarse, cosine fine) image search, with timings.

The latent-hash paper (Li & Li, Sec. 1.2) searches in two steps: a *coarse* step keeps a candidate pool P
of database images whose binary codes are close to the query's code in Hamming distance, and a *fine*
step ranks P by the cosine similarity of the real-valued feature layer (F4 in the paper; the layer
before the latent layer H) and returns the top k.  One-step search stops after ranking by Hamming
distance.

All functions return a :class:`SearchResult` with ``rankings`` (Q, k) int64 database indices and the time
spent in each step.  Tie rules (documented, tested):

* one-step: rows sorted by (Hamming distance, database index), as :class:`cbir.index.BinaryIndex`;
* two-step: the pool is ranked by (cosine similarity descending, database index ascending).

The pool of a query is either all codes within Hamming radius ``r`` (``radius=r``; if fewer than k codes
lie within r, the pool is widened to the k Hamming-nearest codes so every query returns k items), or the
``p`` Hamming-nearest codes (``pool_size=p``, p >= k).  A pool equal to the whole database makes two-step
search identical to a cosine linear scan over the features.

References
----------
J.-y. Li, J.-h. Li, "Prompt Image Search with Deep Convolutional Neural Network via Efficient Hashing
Code and Addictive Latent Semantic Layer", Sec. 1.2 (one-step and two-step search), Figs. 6, 10, 14.
K. Lin et al., "Deep Learning of Binary Hash Codes for Fast Image Retrieval", CVPRW 2015, Sec. 3.3.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cbir.index import BinaryIndex, FloatIndex, as_codes, as_float32

__all__ = [
    "SearchResult",
    "build_binary_index",
    "one_step_search",
    "two_step_search",
    "cosine_linear_scan",
    "l2_normalize",
    "speed_scaling",
    "time_repeats",
    "spread_ratio",
    "score_rankings",
]

_PAIR_BLOCK = 1 << 16  # candidate pairs scored per block in the fine step (bounds memory)


@dataclass
class SearchResult:
    """Result of a search over a database for a batch of queries.

    Attributes
    ----------
    rankings : ndarray of shape (Q, k), int64
        Database indices, best first.
    scores : ndarray of shape (Q, k)
        Hamming distances (int32, one-step) or cosine similarities (float32, two-step / linear scan).
    timings : dict
        Seconds spent: ``coarse_s`` (Hamming step), ``fine_s`` (cosine step), ``total_s``.
    pool_sizes : ndarray of shape (Q,), int64, or None
        Candidate pool size per query (two-step only).
    """

    rankings: np.ndarray
    scores: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    pool_sizes: np.ndarray | None = None


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero), float32 C-contiguous (N, D)."""
    x = as_float32(x, "features")
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(n, 1e-12), dtype=np.float32)


def build_binary_index(db_codes: np.ndarray, n_bits: int) -> BinaryIndex:
    """A :class:`cbir.index.BinaryIndex` holding the packed database codes (N, ceil(n_bits / 8))."""
    db_codes = as_codes(db_codes, "db_codes")
    if db_codes.shape[1] != (n_bits + 7) // 8:
        raise ValueError(
            f"db_codes have {db_codes.shape[1]} bytes but n_bits={n_bits} needs {(n_bits + 7) // 8}; "
            "pack the codes with cbir.hashing.pack_bits"
        )
    return BinaryIndex(n_bits).add(db_codes)


def _check_k(k: int, n: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k={k!r} must be a positive integer (number of images to return)")
    if n == 0:
        raise ValueError("the database is empty; add codes/features first")
    return int(min(k, n))


def one_step_search(index: BinaryIndex, q_codes: np.ndarray, k: int) -> SearchResult:
    """Rank the database by Hamming distance to each query code (paper Sec. 1.2, one-step search).

    Parameters
    ----------
    index : cbir.index.BinaryIndex
        Database codes (see :func:`build_binary_index`).
    q_codes : ndarray of shape (Q, ceil(n_bits / 8)), uint8
        Packed query codes.
    k : int
        Number of images returned per query (capped at the database size).

    Returns
    -------
    SearchResult
        ``scores`` are Hamming distances; ``timings["coarse_s"]`` is the whole search time.
    """
    k = _check_k(k, index.ntotal)
    t0 = time.perf_counter()
    D, I = index.search(q_codes, k)
    dt = time.perf_counter() - t0
    return SearchResult(I, D, {"coarse_s": dt, "fine_s": 0.0, "total_s": dt})


def _pair_sims(db_feats: np.ndarray, q_feats: np.ndarray, qid: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """Cosine similarity of (query qid[m], database cand[m]) pairs, in blocks (normalised inputs)."""
    out = np.empty(len(qid), np.float32)
    for s in range(0, len(qid), _PAIR_BLOCK):  # blocks of pairs bound memory; vectorised inside
        e = s + _PAIR_BLOCK
        out[s:e] = np.einsum("md,md->m", db_feats[cand[s:e]], q_feats[qid[s:e]])
    return out


def _rank_segments(qid: np.ndarray, cand: np.ndarray, sims: np.ndarray, n_q: int, k: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of every query's candidates by (similarity desc, index asc); each query has >= k candidates."""
    order = np.lexsort((cand, -sims, qid))
    qid_s, cand_s, sims_s = qid[order], cand[order], sims[order]
    starts = np.searchsorted(qid_s, np.arange(n_q))
    pos = np.arange(len(qid_s)) - starts[qid_s]
    keep = pos < k
    return cand_s[keep].reshape(n_q, k), sims_s[keep].reshape(n_q, k)


def two_step_search(
    index: BinaryIndex,
    q_codes: np.ndarray,
    db_feats: np.ndarray,
    q_feats: np.ndarray,
    k: int,
    *,
    radius: int | None = None,
    pool_size: int | None = None,
) -> SearchResult:
    """Coarse Hamming pool, then cosine re-ranking of the pool (paper Sec. 1.2, two-step search).

    Parameters
    ----------
    index : cbir.index.BinaryIndex
        Database codes, row i = database image i.
    q_codes : ndarray of shape (Q, ceil(n_bits / 8)), uint8
        Packed query codes.
    db_feats : ndarray of shape (N, D), float
        Feature-layer activations of the database (rows are L2-normalised here, outside the timing: a
        deployed system stores them normalised).
    q_feats : ndarray of shape (Q, D), float
        Feature-layer activations of the queries.
    k : int
        Images returned per query.
    radius : int, optional
        Coarse pool = all codes with Hamming distance <= radius (widened to the k Hamming-nearest codes
        when fewer than k fall inside).  Exactly one of ``radius`` / ``pool_size`` must be given.
    pool_size : int, optional
        Coarse pool = the ``pool_size`` Hamming-nearest codes (pool_size >= k).

    Returns
    -------
    SearchResult
        ``scores`` are cosine similarities; ``timings`` split into ``coarse_s`` and ``fine_s``;
        ``pool_sizes`` per query.
    """
    n = index.ntotal
    k = _check_k(k, n)
    if (radius is None) == (pool_size is None):
        raise ValueError(f"give exactly one of radius (Hamming) or pool_size (top-p); got radius={radius}, pool_size={pool_size}")
    db_feats = l2_normalize(db_feats)
    q_feats = l2_normalize(q_feats)
    q_codes = as_codes(q_codes, "q_codes", index.n_bytes)
    if db_feats.shape[0] != n:
        raise ValueError(f"db_feats has {db_feats.shape[0]} rows but the index holds {n} codes")
    if q_feats.shape != (q_codes.shape[0], db_feats.shape[1]):
        raise ValueError(f"q_feats shape {q_feats.shape} != ({q_codes.shape[0]}, {db_feats.shape[1]}) (one row per query code)")
    n_q = q_codes.shape[0]

    t0 = time.perf_counter()
    if pool_size is not None:
        if isinstance(pool_size, bool) or not isinstance(pool_size, (int, np.integer)) or pool_size < k:
            raise ValueError(f"pool_size={pool_size!r} must be an integer >= k={k}")
        p = int(min(pool_size, n))
        _, pool = index.search(q_codes, p)
        qid = np.repeat(np.arange(n_q, dtype=np.int64), p)
        cand = pool.ravel()
    else:
        if isinstance(radius, bool) or not isinstance(radius, (int, np.integer)) or radius < 0:
            raise ValueError(f"radius={radius!r} must be a non-negative integer Hamming distance")
        lims, _, I = index.range_search(q_codes, int(radius))
        counts = np.diff(lims)
        short = counts < k
        qid_r = np.repeat(np.arange(n_q, dtype=np.int64), counts)
        keep = ~short[qid_r]
        qid, cand = qid_r[keep], I[keep]
        if short.any():
            _, Ik = index.search(q_codes[short], k)
            qid = np.concatenate([qid, np.repeat(np.flatnonzero(short).astype(np.int64), k)])
            cand = np.concatenate([cand, Ik.ravel()])
    t1 = time.perf_counter()
    sims = _pair_sims(db_feats, q_feats, qid, cand)
    rankings, scores = _rank_segments(qid, cand, sims, n_q, k)
    t2 = time.perf_counter()
    pool_sizes = np.bincount(qid, minlength=n_q).astype(np.int64)
    return SearchResult(rankings, scores, {"coarse_s": t1 - t0, "fine_s": t2 - t1, "total_s": t2 - t0}, pool_sizes)


def cosine_linear_scan(db_feats: np.ndarray, q_feats: np.ndarray, k: int) -> SearchResult:
    """Exhaustive cosine ranking of the float features (faiss flat inner product), "linear search".

    Parameters
    ----------
    db_feats, q_feats : ndarray of shape (N, D) and (Q, D), float
    k : int

    Returns
    -------
    SearchResult
        ``scores`` are cosine similarities; ``timings["fine_s"]`` is the search time (the index build,
        i.e. normalising and copying the database, is not timed).
    """
    db_feats = as_float32(db_feats, "db_feats")
    k = _check_k(k, len(db_feats))
    idx = FloatIndex(db_feats.shape[1], "cosine").add(db_feats)
    t0 = time.perf_counter()
    D, I = idx.search(q_feats, k)
    dt = time.perf_counter() - t0
    return SearchResult(I, (1.0 - D).astype(np.float32), {"coarse_s": 0.0, "fine_s": dt, "total_s": dt})


def time_repeats(fn, *, repeats: int = 5, warmup: int = 1, threads: int | None = 1) -> np.ndarray:
    """Wall-clock seconds of ``repeats`` calls of ``fn()`` after ``warmup`` untimed calls, on ``threads`` threads.

    The thread count of torch, faiss (OpenMP) and BLAS is set for the duration of the timing and restored
    afterwards (``threads=None`` leaves it as it is). One thread is the default: calls of a few
    milliseconds timed with several OpenMP threads on a shared machine measure the scheduler, not the
    algorithm.

    Parameters
    ----------
    fn : callable with no arguments
    repeats : int >= 1, default 5
    warmup : int >= 0, default 1
    threads : int >= 1 or None, default 1

    Returns
    -------
    ndarray of shape (repeats,), float64
        Seconds per timed call, in call order (report the median and the spread).
    """
    if isinstance(repeats, bool) or not isinstance(repeats, (int, np.integer)) or repeats < 1:
        raise ValueError(f"repeats={repeats!r} must be an integer >= 1 (use >= 5 for a median with a spread)")
    if isinstance(warmup, bool) or not isinstance(warmup, (int, np.integer)) or warmup < 0:
        raise ValueError(f"warmup={warmup!r} must be an integer >= 0")
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1):
        raise ValueError(f"threads={threads!r} must be an integer >= 1, or None to keep the current setting")
    import contextlib

    import torch
    from threadpoolctl import threadpool_limits

    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss is a dependency
        faiss = None
    old_torch = torch.get_num_threads()
    old_omp = faiss.omp_get_max_threads() if faiss is not None else None
    limits = threadpool_limits(int(threads)) if threads is not None else contextlib.nullcontext()
    try:
        with limits:
            if threads is not None:
                torch.set_num_threads(int(threads))
                if faiss is not None:
                    faiss.omp_set_num_threads(int(threads))
            for _ in range(int(warmup)):
                fn()
            out = np.empty(int(repeats), np.float64)
            for i in range(int(repeats)):
                t0 = time.perf_counter()
                fn()
                out[i] = time.perf_counter() - t0
    finally:
        torch.set_num_threads(old_torch)
        if faiss is not None:
            faiss.omp_set_num_threads(old_omp)
    return out


def spread_ratio(slow: np.ndarray, fast: np.ndarray) -> tuple[float, float, float]:
    """Speed-up of ``fast`` over ``slow`` from repeated timings: (median ratio, lowest, highest).

    ``median(slow) / median(fast)``, and the smallest / largest ratio over all pairings of the repeats
    (``min(slow) / max(fast)``, ``max(slow) / min(fast)``), the spread of the speed-up over repeats.
    """
    slow, fast = np.asarray(slow, np.float64), np.asarray(fast, np.float64)
    if slow.size == 0 or fast.size == 0 or (fast <= 0).any():
        raise ValueError("need non-empty timings with positive times of the fast method")
    return (float(np.median(slow) / np.median(fast)), float(slow.min() / fast.max()), float(slow.max() / fast.min()))


def speed_scaling(
    db_sizes: list[int],
    *,
    n_bits: int,
    feat_dim: int,
    n_queries: int,
    k: int,
    seed: int = 0,
    repeats: int = 5,
    warmup: int = 1,
    threads: int | None = 1,
) -> pd.DataFrame:
    """Search time vs database size: Hamming (faiss binary) vs cosine linear scan (paper Figs. 6/10/14).

    Uses *synthetic* uniform random codes and Gaussian features (search time depends on sizes, not on
    content), so database sizes beyond the real data can be measured.

    Parameters
    ----------
    db_sizes : list of int
        Database sizes N.
    n_bits : int
        Code length of the Hamming index (the paper's speed figures use 32).
    feat_dim : int
        Dimension of the float features of the linear scan.
    n_queries, k : int
        Queries per timing and images returned.
    seed : int, default 0
    repeats, warmup, threads : see :func:`time_repeats` (defaults: 5 timed calls after 1 warm-up, 1 thread)

    Returns
    -------
    DataFrame
        Columns ``db_size, method, n_bits, feat_dim, n_queries, k, threads, repeats, seconds, seconds_min,
        seconds_max, queries_per_s, speedup, speedup_lo, speedup_hi``: ``seconds`` is the median of the
        repeats, ``seconds_min`` / ``seconds_max`` their spread; ``speedup`` = median linear-scan time /
        median Hamming time at the same size, on the Hamming rows, ``speedup_lo`` / ``speedup_hi`` its spread
        (:func:`spread_ratio`).
    """
    if not db_sizes or min(db_sizes) < k:
        raise ValueError(f"db_sizes={db_sizes} must be non-empty and each >= k={k}")
    rng = np.random.default_rng(seed)
    n_bytes = (n_bits + 7) // 8
    rows = []
    for n in db_sizes:  # a handful of sizes, not a loop over items
        codes = rng.integers(0, 256, (n, n_bytes), dtype=np.uint8)
        qc = rng.integers(0, 256, (n_queries, n_bytes), dtype=np.uint8)
        feats = rng.standard_normal((n, feat_dim), dtype=np.float32)
        qf = rng.standard_normal((n_queries, feat_dim), dtype=np.float32)
        bidx = build_binary_index(codes, n_bits)
        fidx = FloatIndex(feat_dim, "cosine").add(feats)
        del feats
        times = {"hamming (faiss binary)": time_repeats(lambda: bidx.search(qc, k), repeats=repeats,
                                                        warmup=warmup, threads=threads),
                 "linear scan (cosine, float)": time_repeats(lambda: fidx.search(qf, k), repeats=repeats,
                                                             warmup=warmup, threads=threads)}
        ratio = spread_ratio(times["linear scan (cosine, float)"], times["hamming (faiss binary)"])
        for name, ts in times.items():
            is_ham = name.startswith("hamming")
            sec = float(np.median(ts))
            rows.append({"db_size": n, "method": name, "n_bits": n_bits, "feat_dim": feat_dim,
                         "n_queries": n_queries, "k": k, "threads": threads, "repeats": len(ts), "seconds": sec,
                         "seconds_min": float(ts.min()), "seconds_max": float(ts.max()),
                         "queries_per_s": n_queries / sec,
                         **{c: (v if is_ham else np.nan) for c, v in zip(("speedup", "speedup_lo", "speedup_hi"), ratio)}})
    return pd.DataFrame(rows)


def score_rankings(rankings: np.ndarray, q_labels: np.ndarray, db_labels: np.ndarray, ks: list[int],
                   map_k: int) -> pd.DataFrame:
    """Precision@k for each k and mAP@map_k of rankings, relevance = same class label.

    mAP uses :func:`cbir.metrics.map_at_k` with ``denominator="retrieved"`` (AP normalised by the relevant
    items within the top k, the DLBHC / CNNH convention); a query with none scores 0 and is kept.

    Returns
    -------
    DataFrame
        Columns ``metric`` ("precision" or "mAP"), ``k``, ``value`` (fraction in [0, 1]).
    """
    from cbir.metrics import map_at_k, precision_at_k, relevance

    rel = relevance(rankings, q_labels, db_labels)
    if max(max(ks), map_k) > rel.shape[1]:
        raise ValueError(f"rankings have {rel.shape[1]} columns; need >= max(ks, map_k) = {max(max(ks), map_k)}")
    rows = [{"metric": "precision", "k": int(k), "value": precision_at_k(rel, int(k))} for k in ks]
    rows.append({"metric": "mAP", "k": int(map_k), "value": map_at_k(rel, int(map_k), "retrieved")})
    return pd.DataFrame(rows)
