"""Perceptual image hashes (Gaillard et al. 2018, Sec. 3.3; Zauner 2010).

One interface, :class:`PerceptualHash`, over

* OpenCV contrib ``cv2.img_hash`` implementations of the three pHash-library hashes the paper benchmarks:
  ``PHash`` (DCT, 64 bits), ``MarrHildrethHash`` (Laplacian of Gaussian, 576 bits) and
  ``RadialVarianceHash`` (Radon projections, 40 one-byte DCT coefficients compared by peak
  cross-correlation);
* :class:`FastDCTHash`, a batched NumPy re-implementation of OpenCV's ``PHash`` (resize to 32 x 32, luma,
  2-D DCT-II as two matrix products over the whole batch, 8 x 8 low frequencies, DC set to 0, threshold at
  the mean); its bit agreement with OpenCV is measured by :func:`bit_agreement`;
* the ``imagehash`` package's aHash / dHash / pHash / wHash as extra baselines.

Conventions (DESIGN.md): images are ``uint8`` RGB (H, W, 3) arrays (see
:func:`cbir.transforms.as_rgb_uint8` for the accepted modes); binary codes are returned PACKED,
``np.packbits(bits, axis=1)`` (big-endian within a byte), shape (N, ceil(n_bits / 8)); bit ``i`` of our
code is bit ``i`` of OpenCV's code (OpenCV stores bit ``i`` at position ``i % 8`` counted from the least
significant bit; we convert). Distances: Hamming for binary hashes, normalised by the number of bits;
for the radial-variance hash ``1 - peak cross-correlation`` (pHash's ``ph_crosscorr``; the paper's
``pHashRis`` uses the same ``1 - r``), clipped to [0, 1].
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import cv2
import numpy as np
from PIL import Image

from cbir.transforms import as_rgb_uint8

__all__ = [
    "PerceptualHash",
    "OpenCVHash",
    "FastDCTHash",
    "PHashDCTHash",
    "phash_dct_matrix",
    "ImageHashBaseline",
    "make_hash",
    "HASH_NAMES",
    "PAPER_RADIUS_GRIDS",
    "dct_matrix",
    "bit_agreement",
    "hamming_matrix",
    "peak_crosscorr_matrix",
]

#: The paper's normalised radius grids (Figs. 5-7, pHashRis ``benchmark/config.sh``).
PAPER_RADIUS_GRIDS: dict[str, np.ndarray] = {
    "dct": np.round(np.arange(0, 12) / 32.0, 6),  # 0 .. 0.34375 step 1/32
    "mh": np.round(np.arange(0, 91) * 0.005, 6),  # 0 .. 0.45 step 0.005
    "rv": np.round(np.arange(0, 35) * 0.005, 6),  # 0 .. 0.17 step 0.005
}

_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def _as_image_list(images: Any) -> list[np.ndarray] | np.ndarray:
    """Validate a batch: (N, H, W, 3) uint8 array (returned as is) or a sequence of single images."""
    if isinstance(images, np.ndarray) and images.ndim == 4:
        if images.dtype != np.uint8 or images.shape[3] != 3:
            raise TypeError(
                f"image batch must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}; "
                "convert with cbir.transforms.as_rgb_uint8 per image"
            )
        if len(images):
            as_rgb_uint8(images[0], name="images[0]")  # the minimum-size check
        return np.ascontiguousarray(images)
    if isinstance(images, (np.ndarray, Image.Image)):
        raise TypeError(
            "hash_batch expects a batch (N, H, W, 3) or a list of images; wrap a single image as [image]"
        )
    return [as_rgb_uint8(im, name=f"images[{i}]") for i, im in enumerate(images)]


def _opencv_bits_to_packed(raw: np.ndarray) -> np.ndarray:
    """OpenCV stores bit i at (byte i // 8, LSB-first); return our big-endian packed layout."""
    bits = np.unpackbits(raw, axis=1, bitorder="little")
    return np.packbits(bits, axis=1)


def hamming_matrix(codes_q: np.ndarray, codes_b: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """All-pairs Hamming distances of packed codes, int32 (Q, B); popcount of XOR by lookup table."""
    codes_q = np.ascontiguousarray(codes_q, dtype=np.uint8)
    codes_b = np.ascontiguousarray(codes_b, dtype=np.uint8)
    if codes_q.ndim != 2 or codes_b.ndim != 2 or codes_q.shape[1] != codes_b.shape[1]:
        raise ValueError(f"packed codes must be 2-D with equal widths, got {codes_q.shape} and {codes_b.shape}")
    out = np.empty((len(codes_q), len(codes_b)), np.int32)
    for s in range(0, len(codes_q), chunk):  # chunks bound memory only
        x = codes_q[s : s + chunk, None, :] ^ codes_b[None, :, :]
        out[s : s + chunk] = _POPCOUNT[x].sum(axis=2, dtype=np.int32)
    return out


def peak_crosscorr_matrix(codes_q: np.ndarray, codes_b: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Peak circular Pearson cross-correlation of radial-variance digests, float32 (Q, B) (Sec. 3.3, RV hash).

    r(x, y) = max_d sum_i x~_i y~_{(i - d) mod n} with x~, y~ centred and unit-norm; this is pHash's
    ``ph_crosscorr`` (Zauner 2010) and OpenCV's ``RadialVarianceHash::compare``, computed for all
    pairs as one matrix product against the n circular shifts of the database codes.
    """
    xq = np.asarray(codes_q, np.float64)
    xb = np.asarray(codes_b, np.float64)
    if xq.ndim != 2 or xb.ndim != 2 or xq.shape[1] != xb.shape[1]:
        raise ValueError(f"digests must be 2-D with equal lengths, got {xq.shape} and {xb.shape}")
    n = xq.shape[1]

    def _z(x: np.ndarray) -> np.ndarray:
        x = x - x.mean(axis=1, keepdims=True)
        nrm = np.linalg.norm(x, axis=1, keepdims=True)
        return (x / np.where(nrm == 0, 1.0, nrm)).astype(np.float32)

    zq, zb = _z(xq), _z(xb)
    idx = (np.arange(n)[None, :] - np.arange(n)[:, None]) % n  # (shift d, i) -> (i - d) mod n
    shifted = zb[:, idx]  # (B, n_shifts, n)
    shifted = shifted.reshape(len(zb) * n, n)
    out = np.empty((len(zq), len(zb)), np.float32)
    for s in range(0, len(zq), chunk):
        c = zq[s : s + chunk] @ shifted.T  # (chunk, B * n)
        out[s : s + chunk] = c.reshape(len(c), len(zb), n).max(axis=2)
    return out


class PerceptualHash(ABC):
    """Common interface of every image hash used in notebook 04.

    Attributes
    ----------
    name : str
        Short name, e.g. ``"dct"``, ``"mh"``, ``"rv"``, ``"dct_fast"``, ``"imagehash_phash"``.
    n_bits : int
        Code length in bits (the RV digest counts 8 bits per coefficient).
    kind : {"binary", "digest"}
        ``"binary"``: packed bits, Hamming distance. ``"digest"``: uint8 coefficients, 1 - peak correlation.
    """

    name: str = "hash"
    n_bits: int = 0
    kind: str = "binary"

    @abstractmethod
    def hash_batch(self, images: Any) -> np.ndarray:
        """Hash a batch: (N, H, W, 3) uint8 array or list of images -> uint8 codes (N, n_bytes)."""

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        """Raw distance between two codes (Hamming count, or 1 - peak correlation)."""
        a2, b2 = np.atleast_2d(a), np.atleast_2d(b)
        if self.kind == "binary":
            return float(hamming_matrix(a2, b2)[0, 0])
        return float(1.0 - peak_crosscorr_matrix(a2, b2)[0, 0])

    def normalized_distance(self, a: np.ndarray, b: np.ndarray) -> float:
        """Distance in [0, 1]: Hamming / n_bits, or clip(1 - peak correlation, 0, 1)."""
        return float(self.pairwise(np.atleast_2d(a), np.atleast_2d(b))[0, 0])

    def pairwise(self, codes_q: np.ndarray, codes_b: np.ndarray) -> np.ndarray:
        """All-pairs normalised distances, float32 (Q, B), in [0, 1].

        Binary codes: the Hamming distance of Sec. 2.5.2 divided by the code length,
        d(a, b) = (1 / l) sum_i a_i XOR b_i (popcount of the XOR, :func:`hamming_matrix`); digests:
        1 - peak cross-correlation (:func:`peak_crosscorr_matrix`), clipped to [0, 1].
        """
        if self.kind == "binary":
            return (hamming_matrix(codes_q, codes_b) / np.float32(self.n_bits)).astype(np.float32)
        return np.clip(1.0 - peak_crosscorr_matrix(codes_q, codes_b), 0.0, 1.0).astype(np.float32)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, n_bits={self.n_bits}, kind={self.kind!r})"


class OpenCVHash(PerceptualHash):
    """The pHash-library hashes through OpenCV contrib ``cv2.img_hash`` (Sec. 3.3).

    Parameters
    ----------
    method : {"dct", "mh", "rv"}
        ``"dct"``: ``PHash`` (64 bits). ``"mh"``: ``MarrHildrethHash(alpha=2, scale=1)`` (576 bits).
        ``"rv"``: ``RadialVarianceHash(sigma=1, numOfAngleLine=180)`` (40-byte digest; pHash's
        ``ph_image_digest(file, 1.0, 1.0, digest, 180)`` as called by the paper's pHashRis).

    Notes
    -----
    OpenCV expects BGR input, so RGB images are swapped before hashing. One ``compute`` call per image
    (OpenCV has no batched API); use :class:`FastDCTHash` where DCT throughput matters.
    """

    _SPECS = {
        "dct": ("PHash_create", 64, "binary"),
        "mh": ("MarrHildrethHash_create", 576, "binary"),
        "rv": ("RadialVarianceHash_create", 320, "digest"),
    }

    def __init__(self, method: str = "dct") -> None:
        if method not in self._SPECS:
            raise ValueError(f"method={method!r} unknown; choose one of {sorted(self._SPECS)}")
        factory, self.n_bits, self.kind = self._SPECS[method]
        self.name = method
        self._impl = getattr(cv2.img_hash, factory)()

    def hash_batch(self, images: Any) -> np.ndarray:
        imgs = _as_image_list(images)
        if len(imgs) == 0:
            return np.zeros((0, self.n_bits // 8), np.uint8)
        # one compute() per image: OpenCV's img_hash has no batched API
        raw = np.stack([self._impl.compute(np.ascontiguousarray(im[:, :, ::-1])).reshape(-1) for im in imgs])
        raw = raw.astype(np.uint8)
        return _opencv_bits_to_packed(raw) if self.kind == "binary" else raw

    def compare_opencv(self, a: np.ndarray, b: np.ndarray) -> float:
        """OpenCV's own ``compare`` on two of OUR codes (for cross-checking the distance)."""
        if self.kind == "binary":
            a = np.packbits(np.unpackbits(np.atleast_2d(a), axis=1), axis=1, bitorder="little")
            b = np.packbits(np.unpackbits(np.atleast_2d(b), axis=1), axis=1, bitorder="little")
        return float(self._impl.compare(np.atleast_2d(a).astype(np.uint8), np.atleast_2d(b).astype(np.uint8)))


def dct_matrix(n: int = 32) -> np.ndarray:
    """Orthonormal DCT-II matrix C (n, n), float64: ``C @ x`` is OpenCV's / scipy's ``dct(x, norm='ortho')``.

    C[k, i] = sqrt(a_k / n) cos(pi (2 i + 1) k / (2 n)), a_0 = 1, a_k = 2 otherwise.
    """
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    c = np.sqrt(2.0 / n) * np.cos(np.pi * (2 * i + 1) * k / (2 * n))
    c[0] /= np.sqrt(2.0)
    return c


class FastDCTHash(PerceptualHash):
    """Batched NumPy DCT hash that reproduces OpenCV's ``PHash`` step by step (Sec. 3.3, Zauner 2010).

    1. Resize each RGB image to 32 x 32 with OpenCV's bit-exact bilinear (``INTER_LINEAR_EXACT``), the only
       per-image step (it reads ~4 source pixels per output pixel, so it is cheap for any image size).
    2. Luma with OpenCV's fixed-point ``BGR2GRAY``: Y = (4899 R + 9617 G + 1868 B + 2^13) >> 14.
    3. 2-D orthonormal DCT-II of the whole batch as ``C8 @ Y @ C8.T`` (only the 8 x 8 low frequencies).
    4. DC coefficient set to 0, bit = coefficient > mean of the 64 (DC included as 0), row-major order.

    Parameters
    ----------
    resize : {"opencv_exact", "area"}
        ``"area"`` (pixel averaging) is a more alias-robust variant; it no longer matches OpenCV bit-for-bit.
    """

    name = "dct_fast"
    n_bits = 64
    kind = "binary"

    def __init__(self, resize: str = "opencv_exact") -> None:
        interp = {"opencv_exact": cv2.INTER_LINEAR_EXACT, "area": cv2.INTER_AREA}
        if resize not in interp:
            raise ValueError(f"resize={resize!r} unknown; choose one of {sorted(interp)}")
        self.resize = resize
        self._interp = interp[resize]
        self._c8 = dct_matrix(32)[:8].astype(np.float32)

    def _resize32(self, images: list[np.ndarray] | np.ndarray) -> np.ndarray:
        # One cv2.resize per image: bilinear (non-antialiased) downscaling reads only the 2 x 2 source pixels
        # around each of the 32 x 32 outputs, so this costs microseconds whatever the image size. (Stacking
        # equal-size images as channels of one array was tried and is slower: it copies every pixel.)
        if len(images) == 0:
            return np.zeros((0, 32, 32, 3), np.uint8)
        return np.stack([cv2.resize(im, (32, 32), interpolation=self._interp) for im in images])

    def low_dct(self, images: Any) -> np.ndarray:
        """The 8 x 8 low-frequency DCT block of each image's 32 x 32 luma, float32 (N, 8, 8)."""
        small = self._resize32(_as_image_list(images)).astype(np.int32)
        y = (small[..., 0] * 4899 + small[..., 1] * 9617 + small[..., 2] * 1868 + (1 << 13)) >> 14
        y = y.astype(np.float32)
        return np.matmul(np.matmul(self._c8, y), self._c8.T)

    def bits(self, images: Any) -> np.ndarray:
        """Unpacked 0/1 bits, uint8 (N, 64), row-major over the 8 x 8 block."""
        d = self.low_dct(images).reshape(-1, 64).copy()
        d[:, 0] = 0.0
        return (d > d.mean(axis=1, keepdims=True)).astype(np.uint8)

    def hash_batch(self, images: Any) -> np.ndarray:
        return np.packbits(self.bits(images), axis=1)


def phash_dct_matrix(n: int = 32) -> np.ndarray:
    """pHash's ``ph_dct_matrix(N)`` (pHash 0.9.6, pHash.cpp) in its float32 arithmetic, (n, n).

    Row 0 is ``1 / sqrtf(N)``; row ``y >= 1``, column ``x`` is ``(float) c1 * cos(pi / 2 / N * y * (2 x + 1))``
    with ``c1 = (float) sqrt(2.0 / N)`` and the cosine in double, as in the C++ source.
    """
    c1 = np.float64(np.float32(np.sqrt(2.0 / n)))
    y = np.arange(n, dtype=np.float64)[:, None]
    x = np.arange(n, dtype=np.float64)[None, :]
    c = (c1 * np.cos((np.pi / 2 / n) * y * (2 * x + 1))).astype(np.float32)
    c[0] = np.float32(1.0) / np.sqrt(np.float32(n))
    return c


def _cimg_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """CImg's ``operator*`` for float matrices: float32 products summed in double, result cast to float.

    ``a`` (..., m, k), ``b`` (..., k, p) -> float32 (..., m, p), batched over leading axes.
    """
    prods = a[..., :, :, None] * b[..., None, :, :]  # float32 products, rounded as CImg rounds them
    return prods.sum(axis=-2, dtype=np.float64).astype(np.float32)


class PHashDCTHash(PerceptualHash):
    """pHash 0.9.6's ``ph_dct_imagehash`` step for step (Sec. 3.3 of the paper; Zauner 2010, Sec. 2.3).

    On a ``CImg<uint8_t>`` RGB image pHash computes

    1. luma ``Y = (66 R + 129 G + 25 B + 128) / 256 + 16`` stored back in ``uint8`` (CImg's
       ``RGBtoYCbCr().channel(0)``; the store truncates, so Y = ((66 R + 129 G + 25 B + 128) >> 8) + 16);
    2. ``get_convolve`` with ``CImg<float>(7, 7, 1, 1, 1)``: a 7 x 7 box SUM (all ones, not /49) with
       Neumann borders (edge pixels repeated), CImg's default ``boundary_conditions=1``;
    3. ``resize(32, 32)``: CImg's default ``interpolation_type=1``, nearest neighbour, which takes source
       column ``floor(x W / 32)`` and row ``floor(y H / 32)``;
    4. ``D = C * img * C^T`` with pHash's own float32 DCT matrix (:func:`phash_dct_matrix`);
    5. the 8 x 8 block of rows/columns 1..8 (DC row and column dropped), unrolled row-major; bit ``i`` is
       ``D_i > median`` with CImg's ``median()`` of 64 values = mean of the 32nd and 33rd smallest.

    Steps 1-3 only need the 7 x 7 windows around the 32 x 32 sampled pixels, so each image costs one
    nearest-neighbour gather of 224 x 224 pixels (``cv2.remap``) and its luma (``cv2.transform``) whatever
    its size; the box sums (exact integers, as CImg's float sums are), DCT and threshold run over the whole
    batch as matrix products. Bit ``i`` here is pHash's ``hash`` bit ``i`` counted from the
    least significant bit (``(hash >> i) & 1``); codes are packed big-endian like every hash of this module.
    Gray inputs arrive as RGB (R = G = B) and take pHash's 3-channel path; a 1-channel file read by pHash
    takes ``channel(0)`` without the luma formula instead.
    """

    name = "dct"
    n_bits = 64
    kind = "binary"

    _OFFSETS = np.arange(-3, 4)
    _LUMA = np.array([[66 / 256, 129 / 256, 25 / 256, 0.5 / 256 + 16]])

    def __init__(self) -> None:
        c = phash_dct_matrix(32)
        self._c_rows = c[1:9]  # rows 1..8 of C: only they reach the kept block
        self._ct_cols = np.ascontiguousarray(c.T[:, 1:9])
        self._block_sum = np.kron(np.eye(32, dtype=np.float32), np.ones((1, 7), np.float32))  # (32, 224)

    @classmethod
    def _window_index(cls, size: int) -> np.ndarray:
        """(32, 7) source indices of the 7-tap windows around the nearest-neighbour samples, clamped."""
        centre = (np.arange(32) * size) // 32
        return np.clip(centre[:, None] + cls._OFFSETS[None, :], 0, size - 1)

    def _windows(self, im: np.ndarray) -> np.ndarray:
        """The (224, 224) pHash luma of the 32 x 32 sampled 7 x 7 windows of one RGB image, uint8."""
        r = self._window_index(im.shape[0]).ravel().astype(np.float32)
        c = self._window_index(im.shape[1]).ravel().astype(np.float32)
        map_x, map_y = np.broadcast_to(c[None, :], (224, 224)), np.broadcast_to(r[:, None], (224, 224))
        win = cv2.remap(im, np.ascontiguousarray(map_x), np.ascontiguousarray(map_y), cv2.INTER_NEAREST)
        # Y = floor((66 R + 129 G + 25 B + 128) / 256) + 16 as round((66 R + 129 G + 25 B + 0.5) / 256) + 16:
        # the rounded value is never within 0.0019 of a half, so OpenCV's float path gives the integer
        # exactly (checked on all 2^24 RGB triples in tests/test_perceptual.py)
        return cv2.transform(win, self._LUMA)

    def filtered32(self, images: Any) -> np.ndarray:
        """Steps 1-3: the 7 x 7 box-summed luma at the 32 x 32 nearest-neighbour samples, float32 (N, 32, 32)."""
        imgs = _as_image_list(images)
        if len(imgs) == 0:
            return np.zeros((0, 32, 32), np.float32)
        y = np.stack([self._windows(im) for im in imgs]).astype(np.float32)  # one gather per image
        return np.matmul(np.matmul(self._block_sum, y), self._block_sum.T)  # exact integer sums (< 2^24)

    def low_dct(self, images: Any) -> np.ndarray:
        """Step 4 on the kept block: rows/columns 1..8 of ``C * img * C^T``, float32 (N, 8, 8)."""
        img = self.filtered32(images)
        t = _cimg_matmul(np.broadcast_to(self._c_rows, (len(img), 8, 32)), img)  # rows 1..8 of C * img
        return _cimg_matmul(t, np.broadcast_to(self._ct_cols, (len(img), 32, 8)))

    def bits(self, images: Any) -> np.ndarray:
        """Unpacked 0/1 bits, uint8 (N, 64); bit i is pHash's bit i (LSB first)."""
        d = self.low_dct(images).reshape(-1, 64)
        srt = np.sort(d, axis=1)
        median = ((srt[:, 32] + srt[:, 31]) / np.float32(2)).astype(np.float32)
        return (d > median[:, None]).astype(np.uint8)

    def hash_batch(self, images: Any) -> np.ndarray:
        return np.packbits(self.bits(images), axis=1)

    @staticmethod
    def to_uint64(codes: np.ndarray) -> np.ndarray:
        """Packed codes -> pHash's ``ulong64`` values (bit i of the code = bit i of the integer)."""
        bits = np.unpackbits(np.asarray(codes, np.uint8), axis=1)[:, :64].astype(np.uint64)
        return (bits << np.arange(64, dtype=np.uint64)[None, :]).sum(axis=1, dtype=np.uint64)


class ImageHashBaseline(PerceptualHash):
    """The ``imagehash`` package's hashes (aHash, dHash, pHash, wHash) as extra baselines.

    Parameters
    ----------
    method : {"ahash", "dhash", "phash", "whash"}
    hash_size : int
        Side of the hash grid (bits = hash_size ** 2), default 8 (64 bits).
    """

    def __init__(self, method: str = "phash", hash_size: int = 8) -> None:
        import imagehash

        funcs = {
            "ahash": imagehash.average_hash,
            "dhash": imagehash.dhash,
            "phash": imagehash.phash,
            "whash": imagehash.whash,
        }
        if method not in funcs:
            raise ValueError(f"method={method!r} unknown; choose one of {sorted(funcs)}")
        if int(hash_size) < 2:
            raise ValueError(f"hash_size={hash_size} must be >= 2")
        self._func = funcs[method]
        self.hash_size = int(hash_size)
        self.name = f"imagehash_{method}"
        self.n_bits = self.hash_size**2
        self.kind = "binary"

    def hash_batch(self, images: Any) -> np.ndarray:
        imgs = _as_image_list(images)
        if len(imgs) == 0:
            return np.zeros((0, (self.n_bits + 7) // 8), np.uint8)
        bits = np.stack(
            [self._func(Image.fromarray(im), hash_size=self.hash_size).hash.reshape(-1) for im in imgs]
        ).astype(np.uint8)
        return np.packbits(bits, axis=1)


#: Names accepted by :func:`make_hash`.
HASH_NAMES: tuple[str, ...] = (
    "dct", "dct_opencv", "mh", "rv", "dct_fast",
    "imagehash_ahash", "imagehash_dhash", "imagehash_phash", "imagehash_whash",
)


def make_hash(name: str) -> PerceptualHash:
    """Build a hash by name (one of :data:`HASH_NAMES`)."""
    if name == "dct":
        return PHashDCTHash()
    if name == "dct_opencv":
        return OpenCVHash("dct")
    if name in ("mh", "rv"):
        return OpenCVHash(name)
    if name == "dct_fast":
        return FastDCTHash()
    if name.startswith("imagehash_"):
        return ImageHashBaseline(name.split("_", 1)[1])
    raise ValueError(f"hash name={name!r} unknown; choose one of {list(HASH_NAMES)}")


def bit_agreement(codes_a: np.ndarray, codes_b: np.ndarray, n_bits: int | None = None) -> dict[str, float]:
    """Agreement of two packed code sets of the same images (e.g. FastDCTHash vs OpenCV PHash).

    Returns
    -------
    dict
        ``bit_error_rate`` (fraction of differing bits over all images), ``identical_fraction``
        (images whose codes are identical), ``max_bits_differing`` and ``n_images``.
    """
    a = np.asarray(codes_a, np.uint8)
    b = np.asarray(codes_b, np.uint8)
    if a.shape != b.shape:
        raise ValueError(f"code shapes differ: {a.shape} vs {b.shape}; hash the same images with both")
    nb = n_bits if n_bits is not None else a.shape[1] * 8
    d = _POPCOUNT[a ^ b].sum(axis=1).astype(np.int64)
    return {
        "n_images": int(len(a)),
        "bit_error_rate": float(d.sum() / max(1, len(a) * nb)),
        "identical_fraction": float((d == 0).mean()) if len(a) else float("nan"),
        "max_bits_differing": int(d.max()) if len(a) else 0,
    }
