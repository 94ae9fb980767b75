"""Thin, checked wrappers over faiss exact indexes (float cosine/L2, binary Hamming) + NumPy references.

All arrays are converted and checked here (C-contiguous float32, or packed uint8 codes) and results come
back as ``(D, I)`` with ``D`` distances (smaller = closer) and ``I`` int64 database indices, each row sorted
by (distance, index) — the tie-break of shared/DESIGN.md. Distances:

* ``metric="cosine"``: cosine distance ``1 - cos`` (rows are L2-normalised on ``add``/``search``);
* ``metric="l2"``: Euclidean distance (not squared);
* binary: Hamming distance (int32) between packed codes (``np.packbits`` order, big-endian within a byte).
  Codes are zero-padded to a multiple of 64 bits before they reach faiss: padding adds equal zero bits to
  every code, so distances are unchanged, and faiss's 64-bit kernels are ~4x faster than its generic path.

Within the top-k, rows are ordered by (distance, index). Which members of a group of equal distances that
straddles position k are kept is faiss's (deterministic) choice; ``exact_ties=True`` resolves them by index
using the NumPy reference (slower). The GPU is used when ``faiss.get_num_gpus() > 0``, unless
:func:`set_default_gpu` (``shared.device: cpu`` through :func:`cbir.runtime.setup`) turned it off.
"""
from __future__ import annotations

from typing import Literal

import faiss
import numpy as np

Metric = Literal["cosine", "l2"]


# ------------------------------------------------------------------------------------------- checks
def as_float32(x: np.ndarray, name: str = "x", dim: int | None = None) -> np.ndarray:
    """C-contiguous float32 (n, d) view/copy of ``x``; raises ``TypeError``/``ValueError`` with the fix."""
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, d) float features, got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise TypeError(f"{name} must hold float32 features, got dtype {x.dtype}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} has dimension {x.shape[1]}, the index was built for {dim}")
    x = np.ascontiguousarray(x, dtype=np.float32)
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf; check the feature extractor")
    return x


def as_codes(codes: np.ndarray, name: str = "codes", n_bytes: int | None = None) -> np.ndarray:
    """C-contiguous uint8 (n, n_bytes) packed codes; raises ``TypeError`` naming the packer to use."""
    codes = np.asarray(codes)
    if codes.dtype != np.uint8 or codes.ndim != 2:
        raise TypeError(
            f"{name} must be packed binary codes, uint8 of shape (n, ceil(bits/8)) from "
            f"cbir.hashing.pack_bits; got dtype {codes.dtype} shape {codes.shape}"
        )
    if n_bytes is not None and codes.shape[1] != n_bytes:
        raise ValueError(f"{name} has {codes.shape[1]} bytes per code, the index holds {n_bytes}")
    return np.ascontiguousarray(codes)


def pad_codes(codes: np.ndarray, multiple_bits: int = 64) -> np.ndarray:
    """Zero-pad packed codes on the right to a multiple of ``multiple_bits`` bits (Hamming-preserving)."""
    codes = as_codes(codes)
    nb = multiple_bits // 8
    pad = (-codes.shape[1]) % nb
    if pad == 0:
        return codes
    return np.ascontiguousarray(np.pad(codes, ((0, 0), (0, pad))))


def _l2n(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(n, 1e-12), dtype=np.float32)


def sort_rows(D: np.ndarray, I: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sort every row by (distance, index); ``-1`` (missing) entries go last."""
    I = np.asarray(I, dtype=np.int64)
    big = np.where(I < 0, np.iinfo(np.int64).max, I)
    order = np.lexsort((big, D), axis=-1)
    return np.take_along_axis(D, order, axis=1), np.take_along_axis(I, order, axis=1)


_DEFAULT_GPU: bool | None = None


def set_default_gpu(use_gpu: bool | None) -> None:
    """What ``use_gpu=None`` means for new indexes: ``None`` = a GPU index when faiss sees a GPU (the
    initial setting), ``False`` = CPU indexes. :func:`cbir.runtime.setup` sets it from ``shared.device``."""
    global _DEFAULT_GPU
    if use_gpu not in (None, False, True):
        raise ValueError(f"use_gpu={use_gpu!r}; use None (auto), True or False")
    _DEFAULT_GPU = use_gpu


def _gpu_available() -> bool:
    if _DEFAULT_GPU is False:
        return False
    try:
        return faiss.get_num_gpus() > 0
    except AttributeError:  # CPU build without the symbol
        return False


# ------------------------------------------------------------------------------------------- float
class FloatIndex:
    """Exact float index (cosine or Euclidean) over a database of features.

    Parameters
    ----------
    dim : int
        Feature dimension.
    metric : {"cosine", "l2"}
        Cosine distance (``1 - cos``) or Euclidean distance.
    use_gpu : bool or None
        ``None`` uses the GPU when faiss sees one.
    """

    def __init__(self, dim: int, metric: Metric = "cosine", use_gpu: bool | None = None):
        if metric not in ("cosine", "l2"):
            raise ValueError(f"metric={metric!r}; use 'cosine' or 'l2'")
        if not isinstance(dim, (int, np.integer)) or dim < 1:
            raise ValueError(f"dim={dim!r} must be a positive integer")
        self.dim, self.metric = int(dim), metric
        cpu = faiss.IndexFlatIP(self.dim) if metric == "cosine" else faiss.IndexFlatL2(self.dim)
        self._cpu = cpu
        self.index = cpu
        if (use_gpu is None and _gpu_available()) or use_gpu:
            self.index = faiss.index_cpu_to_all_gpus(cpu)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def _prep(self, x: np.ndarray, name: str) -> np.ndarray:
        x = as_float32(x, name, self.dim)
        return _l2n(x) if self.metric == "cosine" else x

    def add(self, xb: np.ndarray) -> "FloatIndex":
        self.index.add(self._prep(xb, "xb"))
        return self

    def _to_dist(self, D: np.ndarray) -> np.ndarray:
        if self.metric == "cosine":
            return (1.0 - D).astype(np.float32)
        return np.sqrt(np.maximum(D, 0)).astype(np.float32)

    def search(self, xq: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """k nearest database rows of each query: ``(D, I)`` of shape (Q, min(k, ntotal))."""
        k = _check_k(k, self.ntotal)
        D, I = self.index.search(self._prep(xq, "xq"), k)
        return sort_rows(self._to_dist(D), I)

    def range_search(self, xq: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All database rows within ``radius`` (distance <= radius) of each query.

        Returns ``(lims, D, I)`` as faiss does: results of query ``q`` are ``D[lims[q]:lims[q+1]]``.
        """
        xq = self._prep(xq, "xq")
        if self.metric == "cosine":
            # faiss IP range search keeps similarity > thr; distance <= r  <=>  similarity >= 1 - r
            thr = float(np.float32(1.0 - radius) - np.float32(1e-6))
        else:
            thr = float(radius) ** 2 * (1 + 1e-6) + 1e-12
        lims, D, I = _range_search(self.index, xq, thr, lambda: _gpu_to_cpu(self.index))
        return lims.astype(np.int64), self._to_dist(D), I.astype(np.int64)


# ------------------------------------------------------------------------------------------- binary
class BinaryIndex:
    """Exact Hamming index over packed binary codes (faiss ``IndexBinaryFlat``), padded to 64 bits.

    Parameters
    ----------
    n_bits : int
        Code length in bits before padding (e.g. 12, 48, 64, 128).
    """

    def __init__(self, n_bits: int, use_gpu: bool | None = None):
        if not isinstance(n_bits, (int, np.integer)) or n_bits < 1:
            raise ValueError(f"n_bits={n_bits!r} must be a positive integer")
        self.n_bits = int(n_bits)
        self.n_bytes = (self.n_bits + 7) // 8
        self.padded_bits = ((self.n_bits + 63) // 64) * 64
        self.index = faiss.IndexBinaryFlat(self.padded_bits)
        if (use_gpu is None and _gpu_available()) or use_gpu:  # pragma: no cover - no GPU in CI
            res = faiss.StandardGpuResources()
            self.index = faiss.GpuIndexBinaryFlat(res, self.padded_bits)
        self._codes: list[np.ndarray] = []

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def _prep(self, codes: np.ndarray, name: str) -> np.ndarray:
        return pad_codes(as_codes(codes, name, self.n_bytes))

    def add(self, codes: np.ndarray) -> "BinaryIndex":
        self.index.add(self._prep(codes, "codes"))
        self._codes.append(as_codes(codes, "codes", self.n_bytes))
        return self

    def _cpu_copy(self):
        cpu = faiss.IndexBinaryFlat(self.padded_bits)
        if self._codes:
            cpu.add(pad_codes(self.codes))
        return cpu

    @property
    def codes(self) -> np.ndarray:
        """The packed database codes (unpadded), in insertion order."""
        return np.concatenate(self._codes) if self._codes else np.zeros((0, self.n_bytes), np.uint8)

    def search(self, q: np.ndarray, k: int, exact_ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by Hamming distance: ``(D int32, I int64)`` rows sorted by (distance, index)."""
        k = _check_k(k, self.ntotal)
        if exact_ties:
            return hamming_linear_scan(self.codes, as_codes(q, "q", self.n_bytes), k)
        D, I = self.index.search(self._prep(q, "q"), k)
        return sort_rows(D.astype(np.int32), I)

    def range_search(self, q: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All codes within Hamming distance ``radius`` (inclusive): ``(lims, D, I)``."""
        if radius < 0:
            raise ValueError(f"radius={radius} must be >= 0")
        # faiss binary range search keeps distance < radius (strict); a GPU binary index may lack range
        # search: then a CPU IndexBinaryFlat over the stored codes answers (same codes, same distances)
        lims, D, I = _range_search(self.index, self._prep(q, "q"), int(radius) + 1, self._cpu_copy)
        return lims.astype(np.int64), D.astype(np.int32), I.astype(np.int64)


def _range_search(index, xq: np.ndarray, thr, cpu_copy):
    """``index.range_search(xq, thr)`` on the index that holds the vectors (the GPU copy when there is one);
    when that index has no range search (faiss GPU indexes raise), ``cpu_copy()`` — a CPU index holding the
    same vectors — answers instead."""
    try:
        return index.range_search(xq, thr)
    except (RuntimeError, NotImplementedError, AttributeError):
        return cpu_copy().range_search(xq, thr)


def _gpu_to_cpu(index):
    """CPU copy of a (GPU) float index with the same vectors (``faiss.index_gpu_to_cpu``)."""
    to_cpu = getattr(faiss, "index_gpu_to_cpu", None)
    if to_cpu is None:  # a CPU-only faiss build has no GPU indexes to convert
        return index
    return to_cpu(index)


def _check_k(k: int, ntotal: int) -> int:
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k={k!r} must be a positive integer")
    if ntotal == 0:
        raise ValueError("the index is empty; call add(...) first")
    return int(min(k, ntotal))


# ------------------------------------------------------------------------------------------- helpers
def knn(xb: np.ndarray, xq: np.ndarray, k: int, metric: Metric = "cosine") -> tuple[np.ndarray, np.ndarray]:
    """One-shot exact float k-NN through faiss (see :class:`FloatIndex`)."""
    xb = as_float32(xb, "xb")
    return FloatIndex(xb.shape[1], metric).add(xb).search(xq, k)


def hamming_knn(codes_b: np.ndarray, codes_q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """One-shot exact Hamming k-NN through faiss over packed codes (bit length = 8 * bytes)."""
    codes_b = as_codes(codes_b, "codes_b")
    return BinaryIndex(codes_b.shape[1] * 8).add(codes_b).search(codes_q, k)


# ------------------------------------------------------------------------------------------- NumPy references
def pairwise_distances(xb: np.ndarray, xq: np.ndarray, metric: Metric = "cosine") -> np.ndarray:
    """Dense (Q, N) float32 distance matrix (NumPy; the reference for :class:`FloatIndex`)."""
    xb, xq = as_float32(xb, "xb"), as_float32(xq, "xq", xb.shape[1])
    if metric == "cosine":
        return (1.0 - _l2n(xq) @ _l2n(xb).T).astype(np.float32)
    sq = (xq**2).sum(1)[:, None] + (xb**2).sum(1)[None, :] - 2.0 * (xq @ xb.T)
    return np.sqrt(np.maximum(sq, 0)).astype(np.float32)


def hamming_distances(codes_b: np.ndarray, codes_q: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Dense (Q, N) int32 Hamming distances between packed codes with ``np.bitwise_count``."""
    codes_b, codes_q = as_codes(codes_b, "codes_b"), as_codes(codes_q, "codes_q", codes_b.shape[1])
    out = np.empty((len(codes_q), len(codes_b)), np.int32)
    for s in range(0, len(codes_q), chunk):  # chunks over queries bound memory; no loop over the database
        x = np.bitwise_xor(codes_q[s:s + chunk, None, :], codes_b[None, :, :])
        out[s:s + chunk] = np.bitwise_count(x).sum(-1, dtype=np.int32)
    return out


def _topk_sorted(dist: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    n = dist.shape[1]
    idx = np.broadcast_to(np.arange(n, dtype=np.int64), dist.shape)
    order = np.lexsort((idx, dist), axis=-1)[:, :k]
    return np.take_along_axis(dist, order, axis=1), order.astype(np.int64)


def linear_scan_knn(xb: np.ndarray, xq: np.ndarray, k: int, metric: Metric = "cosine"
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force float k-NN in NumPy, ties broken by index (reference and baseline)."""
    return _topk_sorted(pairwise_distances(xb, xq, metric), min(k, len(xb)))


def hamming_linear_scan(codes_b: np.ndarray, codes_q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force Hamming k-NN in NumPy, ties broken by index (reference and baseline)."""
    return _topk_sorted(hamming_distances(codes_b, codes_q), min(k, len(codes_b)))
