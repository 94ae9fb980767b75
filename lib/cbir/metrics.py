"""Retrieval and classification metrics with their variants named explicitly.

Conventions
-----------
* A ranking is an int64 array (Q, k) of database indices, best first, ties broken by (distance, index)
  (:mod:`cbir.index` returns them so). ``rel`` is the bool (Q, k) relevance of each ranked item
  (:func:`relevance`: same label as the query).
* Average precision of a query, for a ranking cut at k (``rel`` has k columns)::

      AP@k = (1 / Z) * sum_{i <= k} P@i * rel_i

  with the denominator ``Z`` named by ``denominator``:

  - ``"retrieved"``: relevant items *within the top k* — what DLBHC's and DeepHash-pytorch's ``mAP@k``
    use; the thesis' Eq. 5.1-5.3 (mAP@1000 of DRHN) is this variant;
  - ``"min_rk"``: ``min(R, k)`` with ``R`` the query's relevant items in the whole database;
  - ``"all"``: ``R`` (truncated AP; equals full-ranking AP when k = database size). Tzelepi & Tefas
    Eq. (18) is the full-ranking AP, :func:`map_all`.

  A query with Z = 0 (nothing relevant to count) scores AP = 0 and *stays in the mean* — unlike
  DeepHash-pytorch's ``CalcTopMap``, which skips such queries yet divides by all queries.
"""
from __future__ import annotations

import warnings

from typing import Iterable, Literal, Sequence

import numpy as np

Denominator = Literal["retrieved", "min_rk", "all"]


def relevance(rankings: np.ndarray, query_labels: np.ndarray, db_labels: np.ndarray) -> np.ndarray:
    """Bool (Q, k): ``db_labels[rankings] == query_labels[:, None]`` (``-1`` entries are not relevant)."""
    rankings = np.asarray(rankings, dtype=np.int64)
    db_labels, query_labels = np.asarray(db_labels), np.asarray(query_labels)
    if rankings.ndim != 2 or len(rankings) != len(query_labels):
        raise ValueError(f"rankings must be (Q, k) with Q={len(query_labels)}, got {rankings.shape}")
    rel = db_labels[np.clip(rankings, 0, None)] == query_labels[:, None]
    orphan = ~np.isin(query_labels, db_labels)
    if orphan.any():
        warnings.warn(f"{int(orphan.sum())} of {len(query_labels)} queries have no relevant item in the database "
                      f"(classes {sorted(set(query_labels[orphan].tolist()))[:10]}): their AP and precision are 0; "
                      f"use classes with at least one database image", stacklevel=2)
    return rel & (rankings >= 0)


def _rel(rel: np.ndarray) -> np.ndarray:
    rel = np.asarray(rel)
    if rel.ndim != 2:
        raise ValueError(f"rel must be a (Q, k) boolean array, got shape {rel.shape}")
    return rel.astype(bool)


def precision_at_k(rel: np.ndarray, k: int) -> float:
    """Mean over queries of (relevant among the first k) / k."""
    rel = _rel(rel)
    if not 1 <= k <= rel.shape[1]:
        raise ValueError(f"k={k} must be in [1, {rel.shape[1]}] (the ranking length)")
    return float(rel[:, :k].sum(1).mean() / k)


def precision_curve(rel: np.ndarray, ks: Iterable[int]) -> np.ndarray:
    """Precision@k for each k in ``ks`` (the "precision vs number of retrieved images" curves)."""
    return np.array([precision_at_k(rel, int(k)) for k in ks])


def average_precision(rel: np.ndarray, n_relevant: np.ndarray | None = None,
                      denominator: Denominator = "retrieved") -> np.ndarray:
    """Per-query AP over the given ranking (see the module docstring for the denominators).

    Parameters
    ----------
    rel : bool array (Q, k)
    n_relevant : int array (Q,), optional
        Relevant items per query in the whole database; required for ``"min_rk"`` and ``"all"``.
    denominator : {"retrieved", "min_rk", "all"}

    Returns
    -------
    ap : float64 array (Q,); 0 where the denominator is 0.
    """
    rel = _rel(rel)
    k = rel.shape[1]
    hits = np.cumsum(rel, axis=1)
    prec = hits / np.arange(1, k + 1)
    num = (prec * rel).sum(1)
    if denominator == "retrieved":
        z = rel.sum(1).astype(float)
    elif denominator in ("min_rk", "all"):
        if n_relevant is None:
            raise ValueError(f"denominator={denominator!r} needs n_relevant (relevant items per query)")
        r = np.asarray(n_relevant, dtype=float)
        if r.shape != (len(rel),):
            raise ValueError(f"n_relevant must have shape ({len(rel)},), got {r.shape}")
        z = np.minimum(r, k) if denominator == "min_rk" else r
    else:
        raise ValueError(f"denominator={denominator!r}; use 'retrieved', 'min_rk' or 'all'")
    return np.divide(num, z, out=np.zeros_like(num), where=z > 0)


def map_at_k(rel: np.ndarray, k: int, denominator: Denominator = "retrieved",
             n_relevant: np.ndarray | None = None) -> float:
    """mAP of the rankings cut at k, with the named denominator (module docstring)."""
    rel = _rel(rel)
    if not 1 <= k <= rel.shape[1]:
        raise ValueError(f"k={k} must be in [1, {rel.shape[1]}] (the ranking length)")
    return float(average_precision(rel[:, :k], n_relevant, denominator).mean())


def map_all(rel_full: np.ndarray) -> float:
    """mAP over full rankings of the database (Tzelepi & Tefas Eq. 18; DRHN's mAP@all).

    ``rel_full`` must rank every database item, so its row sums are the queries' relevant counts.
    """
    rel_full = _rel(rel_full)
    return float(average_precision(rel_full, rel_full.sum(1), "all").mean())


def pr_curve(rel_full: np.ndarray, n_points: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Mean precision and recall after each rank position of full rankings (Q, N).

    Returns ``(precision, recall)`` of length N (or sub-sampled to ``n_points`` positions).
    """
    rel_full = _rel(rel_full)
    hits = np.cumsum(rel_full, axis=1)
    n = rel_full.shape[1]
    total = np.maximum(rel_full.sum(1, keepdims=True), 1)
    prec = (hits / np.arange(1, n + 1)).mean(0)
    rec = (hits / total).mean(0)
    if n_points is not None and n_points < n:
        idx = np.unique(np.linspace(0, n - 1, n_points).round().astype(int))
        prec, rec = prec[idx], rec[idx]
    return prec, rec


def f_measure(p: np.ndarray | float, r: np.ndarray | float, beta: float = 1.0) -> np.ndarray | float:
    """F_beta = (1 + b^2) P R / (b^2 P + R), 0 where P = R = 0."""
    p, r = np.asarray(p, float), np.asarray(r, float)
    den = beta**2 * p + r
    f = np.divide((1 + beta**2) * p * r, den, out=np.zeros(np.broadcast(p, r).shape), where=den > 0)
    return f if f.ndim else float(f)


def radius_prf(lims: np.ndarray, I: np.ndarray, query_groups: np.ndarray, db_groups: np.ndarray,
               n_relevant: np.ndarray | None = None, empty_precision: float = 1.0) -> dict[str, float]:
    """Precision, recall and F of fixed-radius retrieval, averaged over queries.

    Relevance is group membership: database item ``j`` is relevant to query ``q`` when
    ``db_groups[j] == query_groups[q]`` (e.g. an original image and its modified copies share a group).

    Parameters
    ----------
    lims, I : arrays from a range search (results of query q are ``I[lims[q]:lims[q+1]]``)
    query_groups : int array (Q,); db_groups : int array (N,)
    n_relevant : int array (Q,), optional
        Relevant items per query; default: count of ``db_groups == query_groups[q]``.
    empty_precision : float
        Precision of a query that retrieves nothing. pHashRis (Gaillard et al.) uses 1.0; 0.0 is the
        stricter convention.

    Returns
    -------
    dict with ``precision``, ``recall``, ``f`` (mean of per-query F), ``f_of_means`` (F of the mean P and
    R), ``retrieved`` (mean results per query).
    """
    lims = np.asarray(lims, dtype=np.int64)
    I = np.asarray(I, dtype=np.int64)
    query_groups, db_groups = np.asarray(query_groups), np.asarray(db_groups)
    Q = len(lims) - 1
    if Q != len(query_groups):
        raise ValueError(f"lims describes {Q} queries, query_groups has {len(query_groups)}")
    counts = np.diff(lims)
    qid = np.repeat(np.arange(Q), counts)
    hit = db_groups[I] == query_groups[qid]
    tp = np.bincount(qid, weights=hit, minlength=Q)
    if n_relevant is None:
        uniq, inv = np.unique(db_groups, return_inverse=True)
        per_group = np.bincount(inv)
        pos = np.searchsorted(uniq, query_groups)
        pos = np.clip(pos, 0, len(uniq) - 1)
        n_relevant = np.where(uniq[pos] == query_groups, per_group[pos], 0)
    n_relevant = np.asarray(n_relevant, dtype=float)
    prec = np.divide(tp, counts, out=np.full(Q, float(empty_precision)), where=counts > 0)
    rec = np.divide(tp, n_relevant, out=np.zeros(Q), where=n_relevant > 0)
    f = f_measure(prec, rec)
    return {
        "precision": float(prec.mean()),
        "recall": float(rec.mean()),
        "f": float(np.mean(f)),
        "f_of_means": float(f_measure(prec.mean(), rec.mean())),
        "retrieved": float(counts.mean()),
    }


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, ks: Sequence[int] = (1, 2, 3)) -> dict[int, float]:
    """Top-k accuracy from class scores (e.g. SVM decision values): true label among the k highest.

    Ties between scores are broken by class index (stable sort), so results are deterministic.
    """
    scores, labels = np.asarray(scores), np.asarray(labels)
    if scores.ndim != 2 or len(scores) != len(labels):
        raise ValueError(f"scores must be (N, C) with N={len(labels)}, got {scores.shape}")
    order = np.argsort(-scores, axis=1, kind="stable")
    out = {}
    for k in ks:
        if not 1 <= k <= scores.shape[1]:
            raise ValueError(f"k={k} must be in [1, {scores.shape[1]}] (number of classes)")
        out[int(k)] = float((order[:, :k] == labels[:, None]).any(1).mean())
    return out
