"""Per-image value distributions and the average Jensen-Shannon ratio of Xue & Roshan (2019), Sec. 3.3.

Each image (a row of pixel values, or of RDCNN features) is summarised by a normalised histogram of its
values. The average JS divergence between two classes is the mean over all cross-class pairs of images;
within a class it is the mean over all distinct pairs. The paper's "signal to noise" ratio is

    ratio = avgJS(c0, c1) / (avgJS(c0, c0) + avgJS(c1, c1))

(input pixels of STL-10 classes 0/1: 0.25 / (0.3 + 0.18) = 0.52; RDCNN final layer: 0.59).

The divergence is computed with :func:`scipy.spatial.distance.jensenshannon`, which returns the JS
*distance* (square root of the divergence); we square it to report the divergence. Base 2 (default) puts it
in [0, 1].

References
----------
B. Fuglede and F. Topsoe, "Jensen-Shannon divergence and Hilbert space embedding", ISIT 2004.
Y. Xue and U. Roshan, 2019, Sec. 3.3 and Fig. 4.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon


def value_histograms(x: np.ndarray, bins: int = 32, value_range: tuple[float, float] | None = None
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Normalised histogram of the values of each row (Fig. 4), vectorised over rows.

    Parameters
    ----------
    x : ndarray of shape (n, ...) numeric
        One image (or feature vector) per row; trailing axes are flattened.
    bins : int, >= 2
    value_range : (lo, hi), optional
        Shared bin range; default the global min/max of ``x`` so all rows use the same bins.

    Returns
    -------
    hist : ndarray (n, bins) float64, rows sum to 1.
    edges : ndarray (bins + 1,)
    """
    x = np.asarray(x)
    if x.ndim < 2 or x.shape[0] == 0:
        raise ValueError(f"x must have shape (n, ...) with n >= 1, got {x.shape}")
    if bins < 2:
        raise ValueError(f"bins={bins} must be >= 2")
    x = x.reshape(len(x), -1).astype(np.float64)
    lo, hi = (float(x.min()), float(x.max())) if value_range is None else map(float, value_range)
    if not hi > lo:
        hi = lo + 1.0
    edges = np.linspace(lo, hi, bins + 1)
    idx = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, bins - 1)  # last edge inclusive
    flat = (np.arange(len(x))[:, None] * bins + idx).ravel()
    hist = np.bincount(flat, minlength=len(x) * bins).reshape(len(x), bins).astype(np.float64)
    return hist / hist.sum(axis=1, keepdims=True), edges


def pairwise_js(p: np.ndarray, q: np.ndarray | None = None, base: float = 2.0) -> np.ndarray:
    """Matrix of JS divergences between rows of ``p`` (n, B) and rows of ``q`` (n', B) (default ``p``).

    JS(P || Q) = KL(P || M) / 2 + KL(Q || M) / 2 with M = (P + Q) / 2, in bits for ``base=2`` (Sec. 3.3).

    Uses ``scipy.spatial.distance.jensenshannon`` (broadcast over all pairs, no Python loop) and squares
    the distance it returns.

    Returns
    -------
    ndarray (n, n') float64 in [0, 1] for base 2.
    """
    p = np.asarray(p, np.float64)
    q = p if q is None else np.asarray(q, np.float64)
    if p.ndim != 2 or q.ndim != 2 or p.shape[1] != q.shape[1]:
        raise ValueError(f"histograms must be (n, bins) with equal bins, got {p.shape} and {q.shape}")
    d = jensenshannon(p[:, None, :], q[None, :, :], base=base, axis=2)
    return np.nan_to_num(d, nan=0.0) ** 2


def avg_js(p: np.ndarray, q: np.ndarray | None = None, base: float = 2.0) -> float:
    """Average JS divergence across two groups of histograms, or within one group (``q=None``: mean over
    distinct pairs i < j), Sec. 3.3."""
    d = pairwise_js(p, q, base=base)
    if q is None:
        n = len(d)
        if n < 2:
            raise ValueError("within-class avgJS needs at least 2 histograms")
        return float(d[np.triu_indices(n, 1)].mean())
    return float(d.mean())


def js_ratio(h0: np.ndarray, h1: np.ndarray, base: float = 2.0) -> dict[str, float]:
    """The Sec. 3.3 ratio avgJS(c0, c1) / (avgJS(c0, c0) + avgJS(c1, c1)).

    Parameters
    ----------
    h0, h1 : ndarray (n0, bins), (n1, bins) histograms of the images of class 0 and class 1.

    Returns
    -------
    dict with ``across``, ``within0``, ``within1`` and ``ratio`` (higher = classes better separated).
    """
    across, w0, w1 = avg_js(h0, h1, base), avg_js(h0, None, base), avg_js(h1, None, base)
    denom = w0 + w1
    return {"across": across, "within0": w0, "within1": w1,
            "ratio": float(across / denom) if denom > 0 else float("inf")}


def js_ratio_table(spaces: dict[str, np.ndarray], labels: np.ndarray, pairs: list[tuple[int, int]],
                   n_per_class: tuple[int, int] = (6, 4), bins: int = 32, seed: int = 0) -> pd.DataFrame:
    """JS ratio for class pairs in several representations of the same images (Sec. 3.3).

    For each pair ``(c0, c1)`` draws ``n_per_class[0]`` images of c0 and ``n_per_class[1]`` of c1 (seeded;
    the paper used 6 and 4 STL-10 images) and computes :func:`js_ratio` in every space.

    Parameters
    ----------
    spaces : dict name -> ndarray (n, ...) e.g. {"input pixels": images, "RDCNN features": feats}
    labels : ndarray (n,) int
    pairs : list of (c0, c1)

    Returns
    -------
    DataFrame with columns ``space, c0, c1, n0, n1, across, within0, within1, ratio``.
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    rows = []
    for c0, c1 in pairs:
        i0 = np.flatnonzero(labels == c0)
        i1 = np.flatnonzero(labels == c1)
        if len(i0) < n_per_class[0] or len(i1) < n_per_class[1]:
            raise ValueError(f"class pair ({c0}, {c1}) has {len(i0)}/{len(i1)} images, need {n_per_class}")
        i0 = np.sort(rng.choice(i0, n_per_class[0], replace=False))
        i1 = np.sort(rng.choice(i1, n_per_class[1], replace=False))
        for name, x in spaces.items():
            h, _ = value_histograms(np.asarray(x)[np.concatenate([i0, i1])], bins=bins)
            r = js_ratio(h[:len(i0)], h[len(i0):])
            rows.append({"space": name, "c0": c0, "c1": c1, "n0": len(i0), "n1": len(i1), **r})
    return pd.DataFrame(rows)
