"""Binary codes: thresholding, bit packing and Hamming distance (shared by every hashing method).

Bit order: bit ``j`` of a code is ``bits[:, j]``; packing uses ``np.packbits(bits, axis=1)`` (big-endian
within a byte: bit 0 is the most significant bit of byte 0), and the last byte is zero-padded.
Sub-modules: :mod:`cbir.hashing.baselines` (LSH, ITQ, ...), :mod:`cbir.hashing.perceptual`
(DCT / Marr-Hildreth / radial-variance image hashes).
"""
from __future__ import annotations

import numpy as np


def binarize(h: np.ndarray, threshold: float = 0.5, inclusive: bool = False) -> np.ndarray:
    """Threshold activations into bits.

    The thesis' Eq. (4.7) (DRHN) sets a bit where ``H > 0.5``; Li & Li's Eq. (1) where ``H >= 0.5``
    (``inclusive=True``). The two differ only for activations exactly at the threshold.

    Parameters
    ----------
    h : array of shape (n, bits)
        Latent activations (sigmoid outputs in (0, 1) for latent-layer hashing; any real values with
        ``threshold=0`` for sign hashing).
    threshold : float
        0.5 for sigmoid layers; 0 for projections.
    inclusive : bool
        Use ``>=`` instead of ``>``.

    Returns
    -------
    bits : uint8 array of shape (n, bits), values 0/1.
    """
    h = np.asarray(h)
    if h.ndim != 2 or h.shape[1] == 0:
        raise ValueError(f"h must have shape (n, bits) with bits >= 1, got {h.shape}")
    return (h >= threshold if inclusive else h > threshold).astype(np.uint8)


def pack_bits(bits: np.ndarray) -> np.ndarray:
    """Pack 0/1 bits (n, B) into uint8 codes (n, ceil(B/8)), big-endian within each byte."""
    bits = np.asarray(bits)
    if bits.ndim != 2 or bits.shape[1] == 0:
        raise ValueError(f"bits must have shape (n, B) with B >= 1, got {bits.shape}")
    if bits.size and (bits.min() < 0 or bits.max() > 1):
        raise ValueError("bits must be 0/1; threshold activations first with cbir.hashing.binarize")
    return np.packbits(bits.astype(np.uint8), axis=1)


def unpack_bits(packed: np.ndarray, n_bits: int) -> np.ndarray:
    """Inverse of :func:`pack_bits`: uint8 0/1 array of shape (n, n_bits)."""
    packed = np.asarray(packed, dtype=np.uint8)
    if n_bits < 1 or n_bits > packed.shape[1] * 8:
        raise ValueError(f"n_bits={n_bits} does not fit codes of {packed.shape[1]} bytes")
    return np.unpackbits(packed, axis=1, count=n_bits)


def hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamming distance between matching rows of packed codes ``a`` and ``b`` (broadcasting), int32."""
    a, b = np.asarray(a, np.uint8), np.asarray(b, np.uint8)
    return np.bitwise_count(np.bitwise_xor(a, b)).sum(-1, dtype=np.int32)
