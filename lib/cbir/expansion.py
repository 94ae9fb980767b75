"""Query expansion and spatial verification (Tzelepi & Tefas 2018, Sec. 4) plus two common variants.

* :func:`average_qe` — average query expansion, Eq. (15): the new query is the mean of the query and its
  top-10 results (Chum et al. 2007, "Total recall").
* :func:`alpha_qe` — alpha-weighted QE (Radenovic, Tolias & Chum 2018, "Fine-tuning CNN image retrieval
  with no human annotation", Sec. 5): neighbours weighted by ``sim^alpha`` (cosine similarity).
* :func:`dba` — database-side augmentation (Arandjelovic & Zisserman 2012; Gordo et al. 2017): every
  database vector is replaced by the (weighted) mean of itself and its nearest database neighbours.
* :func:`nine_crops` / :func:`spatial_verification_qe` — the paper's SVQE: each of the top-N results is
  cut into nine overlapping half-size regions (Fig. 6); the query is compared with the N x 10
  representations (full image + 9 crops), the shortlist is reranked by its best-matching representation,
  and average QE is applied with the first ten reranked full-image representations.

Distances are Euclidean as in the paper (Sec. 5.3) unless a function says otherwise; searches use
:mod:`cbir.index`.
"""
from __future__ import annotations

from typing import Literal

import numpy as np

from cbir import index as cindex

Metric = Literal["cosine", "l2"]


def _check_k(k: int, n: int, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"{name}={k!r} must be a positive integer")
    if k > n:
        raise ValueError(f"{name}={k} exceeds the {n} available items")
    return int(k)


def _l2n(x: np.ndarray) -> np.ndarray:
    return (x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)).astype(np.float32)


# ================================================================================================ QE
def average_qe(xq: np.ndarray, xb: np.ndarray, I: np.ndarray, k: int = 10) -> np.ndarray:
    """Average query expansion, Eq. (15) of Tzelepi & Tefas (2018).

    ``q_new = (q + sum_{i=1..k} x_{R_i}) / (k + 1)`` with ``R_1..R_k`` the top-k results of ``q``.

    Parameters
    ----------
    xq : ndarray (Q, D)   query representations.
    xb : ndarray (N, D)   database representations.
    I : int array (Q, >=k)  rankings of the queries (best first).
    k : int, default 10 (the paper's value)

    Returns
    -------
    q_new : ndarray (Q, D), float32
    """
    xq, xb = cindex.as_float32(xq, "xq"), cindex.as_float32(xb, "xb", None)
    I = np.asarray(I, np.int64)
    k = _check_k(k, I.shape[1])
    return ((xq + xb[I[:, :k]].sum(1)) / (k + 1)).astype(np.float32)


def alpha_qe(xq: np.ndarray, xb: np.ndarray, I: np.ndarray, k: int = 10, alpha: float = 3.0) -> np.ndarray:
    """alpha-weighted query expansion (Radenovic et al. 2018): ``q_new = norm(q + sum_i s_i^alpha x_i)``.

    Works on L2-normalised vectors; ``s_i = max(cos(q, x_i), 0)``. ``alpha = 0`` is average QE on the
    normalised vectors.

    Returns
    -------
    q_new : ndarray (Q, D), float32, L2-normalised.
    """
    if alpha < 0:
        raise ValueError(f"alpha={alpha} must be >= 0")
    xq, xb = _l2n(cindex.as_float32(xq, "xq")), _l2n(cindex.as_float32(xb, "xb"))
    I = np.asarray(I, np.int64)
    k = _check_k(k, I.shape[1])
    nb = xb[I[:, :k]]  # (Q, k, D)
    s = np.clip(np.einsum("qd,qkd->qk", xq, nb), 0.0, None) ** alpha
    return _l2n(xq + np.einsum("qk,qkd->qd", s, nb))


def dba(xb: np.ndarray, k: int = 10, alpha: float = 0.0, metric: Metric = "cosine") -> np.ndarray:
    """Database-side augmentation: each vector becomes the weighted mean of itself and its top-k neighbours.

    With ``alpha = 0`` all ``k + 1`` vectors weigh the same (Arandjelovic & Zisserman 2012); ``alpha > 0``
    weights neighbours by ``max(cos, 0)^alpha`` (Radenovic et al. 2018). The result is L2-normalised for
    ``metric="cosine"``.

    Returns
    -------
    xb_new : ndarray (N, D), float32
    """
    xb = cindex.as_float32(xb, "xb")
    k = _check_k(k, len(xb) - 1)
    base = _l2n(xb) if metric == "cosine" else xb
    _, I = cindex.knn(base, base, k + 1, metric=metric)
    own = I == np.arange(len(xb))[:, None]
    drop = np.where(own.any(1), own.argmax(1), k)
    keep = np.ones_like(I, dtype=bool)
    keep[np.arange(len(xb)), drop] = False
    I = I[keep].reshape(len(xb), k)
    nb = base[I]
    if alpha > 0:
        w = np.clip(np.einsum("nd,nkd->nk", _l2n(base), _l2n(nb.reshape(-1, nb.shape[-1])).reshape(nb.shape)),
                    0.0, None) ** alpha
    else:
        w = np.ones(I.shape, np.float32)
    out = (base + np.einsum("nk,nkd->nd", w, nb)) / (1.0 + w.sum(1, keepdims=True))
    return _l2n(out) if metric == "cosine" else out.astype(np.float32)


# ================================================================================================ crops
def crop_boxes(height: int, width: int) -> np.ndarray:
    """The nine overlapping half-size regions of an image (Sec. 4, Fig. 6): int (9, 4) ``top, left, h, w``.

    Each region is ``height // 2`` x ``width // 2``; tops and lefts are ``0``, the centre offset and the
    bottom/right offset, so the 3 x 3 grid overlaps by a quarter of the image and covers all of it.
    """
    if height < 2 or width < 2:
        raise ValueError(f"image of {height}x{width} px is too small to crop into half-size regions")
    h, w = height // 2, width // 2
    tops = np.array([0, (height - h) // 2, height - h])
    lefts = np.array([0, (width - w) // 2, width - w])
    t, l = np.meshgrid(tops, lefts, indexing="ij")
    return np.stack([t.ravel(), l.ravel(), np.full(9, h), np.full(9, w)], axis=1).astype(np.int64)


def nine_crops(images: np.ndarray | list) -> np.ndarray | list:
    """Cut every image into its nine regions (:func:`crop_boxes`).

    Parameters
    ----------
    images : uint8 (N, H, W, C) or a list of (H_i, W_i, C) arrays

    Returns
    -------
    crops : (N * 9, H // 2, W // 2, C) for an array (image-major: rows ``9 i .. 9 i + 8`` are image i's
        crops, in :func:`crop_boxes` order), or a list of 9 N arrays for a list input.
    """
    if isinstance(images, np.ndarray):
        if images.ndim != 4:
            raise ValueError(f"images must be (N, H, W, C), got shape {images.shape}")
        n, hh, ww = images.shape[:3]
        boxes = crop_boxes(hh, ww)
        crops = np.stack([images[:, t:t + h, l:l + w] for t, l, h, w in boxes], axis=1)
        return crops.reshape(n * 9, *crops.shape[2:])
    out = []
    for im in images:  # images of different sizes: one small loop per image, 9 slices each
        im = np.asarray(im)
        out.extend(im[t:t + h, l:l + w] for t, l, h, w in crop_boxes(*im.shape[:2]))
    return out


def region_queries(images: np.ndarray | list, n_per_image: int = 1, *, frac: tuple[float, float] = (0.4, 0.6),
                   seed: int = 0) -> tuple[list, np.ndarray, np.ndarray]:
    """Cropped-region queries (the Table 12 protocol, Sec. 5.7): ``n_per_image`` random rectangles per image.

    The paper queries Paris 6k with the annotated region of each query image; without annotations we draw
    each region's height and width as ``frac`` (uniform in ``[lo, hi]``) of the image's and place it
    uniformly at random inside the image (seeded; the draw is ours, not the paper's).

    Parameters
    ----------
    images : uint8 (N, H, W, C) or a list of (H_i, W_i, C) arrays
    n_per_image : int >= 1
    frac : (lo, hi) with 0 < lo <= hi <= 1
    seed : int

    Returns
    -------
    crops : list of N * n_per_image arrays (image-major)
    owner : int64 (N * n_per_image,)   index of the image each crop comes from.
    boxes : int64 (N * n_per_image, 4) ``top, left, h, w``.
    """
    lo, hi = frac
    if not 0 < lo <= hi <= 1:
        raise ValueError(f"frac={frac} must satisfy 0 < lo <= hi <= 1")
    n_per_image = _check_k(n_per_image, 10 ** 9, "n_per_image")
    shapes = np.array([np.asarray(im).shape[:2] for im in images], np.int64)  # (N, 2)
    owner = np.repeat(np.arange(len(shapes)), n_per_image)
    rng = np.random.default_rng(seed)
    hw = np.maximum(1, np.round(shapes[owner] * rng.uniform(lo, hi, (len(owner), 2)))).astype(np.int64)
    tl = np.floor(rng.uniform(0, 1, (len(owner), 2)) * (shapes[owner] - hw + 1)).astype(np.int64)
    boxes = np.concatenate([tl, hw], axis=1)
    crops = [np.asarray(images[o])[t:t + h, l:l + w] for o, (t, l, h, w) in zip(owner, boxes)]
    return crops, owner, boxes


# ================================================================================================ SVQE
def spatial_rerank(xq: np.ndarray, I: np.ndarray, full: np.ndarray, crops: np.ndarray) -> np.ndarray:
    """Rerank each query's shortlist by its closest of the N x 10 region representations (Sec. 4).

    Parameters
    ----------
    xq : ndarray (Q, D)        query representations.
    I : int array (Q, N)       shortlists (database indices).
    full : ndarray (Nb, D)     full-image database representations (``x_{i,0}``).
    crops : ndarray (Q, N, 9, D) or (Nb, 9, D)
        Region representations ``x_{i,1..9}`` — either per shortlist slot or for the whole database.

    Returns
    -------
    reranked : int64 (Q, N), the shortlist sorted by min over ``l = 0..9`` of ``||q - x_{i,l}||``
        (ties keep the original order).
    """
    xq = cindex.as_float32(xq, "xq")
    I = np.asarray(I, np.int64)
    crops = np.asarray(crops, np.float32)
    if crops.ndim == 3:
        reg = crops[I]  # (Q, N, 9, D)
    elif crops.ndim == 4 and crops.shape[:2] == I.shape:
        reg = crops
    else:
        raise ValueError(f"crops must be (Nb, 9, D) or (Q, N, 9, D) matching I {I.shape}, got {crops.shape}")
    reps = np.concatenate([full[I][:, :, None, :], reg], axis=2)  # (Q, N, 10, D)
    d = np.linalg.norm(reps - xq[:, None, None, :], axis=-1).min(-1)  # (Q, N)
    order = np.argsort(d, axis=1, kind="stable")
    return np.take_along_axis(I, order, axis=1)


def spatial_verification_qe(xq: np.ndarray, xb: np.ndarray, I: np.ndarray, crops: np.ndarray,
                            k: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """SVQE (Sec. 4): rerank the shortlist with the region representations, then Eq. (15) on the reranked list.

    The paper does not give the shortlist size N (the columns of ``I``); with ``N > k`` the spatial
    reranking decides which ``k`` images are averaged, so SVQE can differ from average QE. With ``N == k``
    the expansion set is the same ten images in another order and SVQE equals average QE (Eq. 15 is a sum).

    Returns
    -------
    reranked : int64 (Q, N)   shortlist after spatial reranking.
    q_new : ndarray (Q, D)    expanded queries (mean of the query and the first ``k`` reranked images).
    """
    reranked = spatial_rerank(xq, I, xb, crops)
    return reranked, average_qe(xq, xb, reranked, k)


def merge_rankings(head: np.ndarray, full: np.ndarray) -> np.ndarray:
    """Put a reranked shortlist ``head`` (Q, N) in front of the rest of a full ranking ``full`` (Q, Nb)."""
    head, full = np.asarray(head, np.int64), np.asarray(full, np.int64)
    nb = full.shape[1]
    member = np.zeros((len(full), nb), bool)
    np.put_along_axis(member, head, True, axis=1)
    rest_mask = ~np.take_along_axis(member, full, axis=1)
    rest = full[rest_mask].reshape(len(full), nb - head.shape[1])
    return np.concatenate([head, rest], axis=1)
