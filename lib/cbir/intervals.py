"""Intervals for *ours*: every paper-vs-ours row carries one (DESIGN.md "Paper-vs-ours rows").

* :func:`bootstrap_mean` — 95 % percentile bootstrap of a mean over queries, seeded, >= 1,000 resamples.
  Pass per-query values (AP, P@k, F) for a retrieval metric; pass their *paired* per-query differences
  ``a - b`` (same queries, two methods) for a gain, so the interval is that of the gain itself.
* :func:`wilson` — binomial (Wilson score) interval of an accuracy, ``correct`` out of ``n``.
* :func:`mcnemar_difference` — interval of the difference of two accuracies measured on the *same* test
  images (paired; from the discordant counts, the normal approximation behind McNemar's test).
* :func:`seed_spread` — min and max over seeds, where seeds are run.

All return ``(lo, hi)`` as floats in the unit of the input (percent in, percent out).

References
----------
B. Efron and R. Tibshirani, *An Introduction to the Bootstrap*, 1993, Ch. 13 (percentile interval).
E. B. Wilson, "Probable inference, the law of succession, and statistical inference", JASA 22, 1927.
R. G. Newcombe, "Improved confidence intervals for the difference between binomial proportions based on
paired data", Statistics in Medicine 17, 1998 (the Wald form used here is his method 1).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy.stats import norm

N_RESAMPLES = 1000
LEVEL = 0.95

__all__ = ["bootstrap_mean", "wilson", "mcnemar_difference", "seed_spread", "N_RESAMPLES", "LEVEL"]


def _z(level: float) -> float:
    if not 0 < level < 1:
        raise ValueError(f"level={level} must lie in (0, 1), e.g. 0.95")
    return float(norm.ppf(0.5 + level / 2))


def bootstrap_mean(values: Sequence[float] | np.ndarray, *, n_resamples: int = N_RESAMPLES, level: float = LEVEL,
                   seed: int = 0, chunk: int = 200) -> tuple[float, float]:
    """Percentile bootstrap interval of ``values.mean()`` (resampling queries with replacement).

    Parameters
    ----------
    values : array (Q,)
        One number per query: a metric, or a paired difference of two methods on the same queries.
    n_resamples : int, >= 1000 (the suite's rule)
    level : float, default 0.95
    seed : int
        Seeds ``numpy.random.default_rng``; the same inputs and seed give the same interval.

    Returns
    -------
    (lo, hi) : floats; ``(nan, nan)`` for no values.
    """
    x = np.asarray(values, np.float64).ravel()
    if n_resamples < 1000:
        raise ValueError(f"n_resamples={n_resamples}; the suite's intervals use >= 1000 resamples")
    _z(level)
    if len(x) == 0 or not np.isfinite(x).all():
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    for s in range(0, n_resamples, chunk):  # (chunk, Q) indices at a time: bounded memory for large Q
        b = min(chunk, n_resamples - s)
        means[s:s + b] = x[rng.integers(0, len(x), size=(b, len(x)))].mean(axis=1)
    a = (1 - level) / 2
    lo, hi = np.quantile(means, [a, 1 - a])
    return float(lo), float(hi)


def wilson(correct: int, n: int, *, level: float = LEVEL, scale: float = 100.0) -> tuple[float, float]:
    """Wilson score interval of an accuracy ``correct / n``, returned times ``scale`` (percent by default)."""
    if n <= 0 or not 0 <= correct <= n:
        raise ValueError(f"wilson(correct={correct}, n={n}): need n > 0 and 0 <= correct <= n")
    z = _z(level)
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(scale * (centre - half)), float(scale * (centre + half))


def mcnemar_difference(correct_a: np.ndarray, correct_b: np.ndarray, *, level: float = LEVEL,
                       scale: float = 100.0) -> tuple[float, float]:
    """Interval of ``acc(a) - acc(b)`` on the same images, from the discordant pairs (paired Wald interval).

    ``correct_a``, ``correct_b`` : bool arrays (N,), whether each test image is classified correctly.
    With ``n10`` images right only under a and ``n01`` right only under b, the difference is
    ``(n10 - n01) / N`` with standard error ``sqrt(n10 + n01 - (n10 - n01)^2 / N) / N``.
    """
    a, b = np.asarray(correct_a, bool).ravel(), np.asarray(correct_b, bool).ravel()
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"correct_a and correct_b must be equal-length, non-empty; got {a.shape} and {b.shape}")
    n = a.size
    n10, n01 = int((a & ~b).sum()), int((~a & b).sum())
    d = (n10 - n01) / n
    se = np.sqrt(max(n10 + n01 - (n10 - n01) ** 2 / n, 0.0)) / n
    z = _z(level)
    return float(scale * (d - z * se)), float(scale * (d + z * se))


def seed_spread(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """(min, max) over seeds."""
    x = np.asarray(values, np.float64).ravel()
    if x.size == 0:
        return float("nan"), float("nan")
    return float(x.min()), float(x.max())
