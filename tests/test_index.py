import numpy as np
import pytest

from cbir import index as ix
from cbir.hashing import binarize, hamming, pack_bits, unpack_bits


@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_float_index_equals_linear_scan(metric):
    rng = np.random.default_rng(1)
    xb, xq = rng.normal(size=(300, 12)).astype("f4"), rng.normal(size=(9, 12)).astype("f4")
    D, I = ix.FloatIndex(12, metric).add(xb).search(xq, 15)
    D2, I2 = ix.linear_scan_knn(xb, xq, 15, metric)
    np.testing.assert_array_equal(I, I2)
    np.testing.assert_allclose(D, D2, atol=1e-5)
    r = float(np.median(D2[:, 7]))
    lims, Dr, Ir = ix.FloatIndex(12, metric).add(xb).range_search(xq, r)
    full = ix.pairwise_distances(xb, xq, metric)
    np.testing.assert_array_equal(np.diff(lims), (full <= r + 1e-5).sum(1))


@pytest.mark.parametrize("bits", [12, 48, 64, 100, 128])
def test_binary_index_equals_numpy_scan_with_padding(bits):
    rng = np.random.default_rng(bits)
    codes = pack_bits(rng.integers(0, 2, (400, bits)))
    q = pack_bits(rng.integers(0, 2, (8, bits)))
    D, I = ix.BinaryIndex(bits).add(codes).search(q, 25)
    D2, I2 = ix.hamming_linear_scan(codes, q, 25)
    np.testing.assert_array_equal(D, D2)            # distances identical (padding adds nothing)
    inner = D < D[:, -1:]                           # below the boundary distance the sets are identical
    for row in range(len(q)):
        assert set(I[row][inner[row]]) == set(I2[row][inner[row]])
        assert np.all(np.diff(I[row][D[row] == D[row, 0]]) > 0)  # ties ordered by index
    De, Ie = ix.BinaryIndex(bits).add(codes).search(q, 25, exact_ties=True)
    np.testing.assert_array_equal(Ie, I2)
    lims, Dr, Ir = ix.BinaryIndex(bits).add(codes).range_search(q, bits // 3)
    np.testing.assert_array_equal(np.diff(lims), (ix.hamming_distances(codes, q) <= bits // 3).sum(1))


def test_pad_codes_preserves_hamming_and_bit_helpers_roundtrip():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, (5, 48)).astype(np.uint8)
    packed = pack_bits(bits)
    assert packed.shape == (5, 6) and ix.pad_codes(packed).shape == (5, 8)
    np.testing.assert_array_equal(unpack_bits(packed, 48), bits)
    np.testing.assert_array_equal(hamming(packed[:1], packed), hamming(ix.pad_codes(packed)[:1], ix.pad_codes(packed)))
    np.testing.assert_array_equal(hamming(packed[:1], packed), (bits[:1] != bits).sum(1))
    assert binarize(np.array([[0.2, 0.5, 0.51]])).tolist() == [[0, 0, 1]]


def test_index_input_errors_are_clear():
    with pytest.raises(TypeError, match="packed binary codes, uint8"):
        ix.BinaryIndex(48).add(np.zeros((3, 48), np.int64))
    with pytest.raises(ValueError, match="6 bytes per code, the index holds 2"):
        ix.BinaryIndex(12).add(np.zeros((3, 6), np.uint8))
    with pytest.raises(ValueError, match="dimension 5, the index was built for 4"):
        ix.FloatIndex(4).add(np.zeros((2, 5), "f4"))
    with pytest.raises(ValueError, match="index is empty"):
        ix.FloatIndex(4).search(np.zeros((1, 4), "f4"), 1)
    with pytest.raises(ValueError, match="bits must be 0/1"):
        pack_bits(np.array([[0, 2]]))
    with pytest.raises(ValueError, match=r"shape \(n, B\) with B >= 1"):
        pack_bits(np.zeros((3, 0)))


class _GpuLike:
    """Emulates a faiss GPU copy: holds its own vectors; ``range_search`` optionally unsupported."""

    def __init__(self, inner, range_ok: bool):
        self.inner, self.range_ok = inner, range_ok

    @property
    def ntotal(self):
        return self.inner.ntotal

    def add(self, x):
        self.inner.add(x)

    def search(self, x, k):
        return self.inner.search(x, k)

    def range_search(self, x, thr):
        if not self.range_ok:
            raise RuntimeError("range search not implemented on GPU (emulated)")
        return self.inner.range_search(x, thr)


@pytest.mark.parametrize("range_ok", [True, False])
@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_float_range_search_uses_the_index_holding_the_vectors(metric, range_ok, monkeypatch):
    import faiss

    rng = np.random.default_rng(3)
    xb, xq = rng.normal(size=(200, 8)).astype("f4"), rng.normal(size=(5, 8)).astype("f4")
    fi = ix.FloatIndex(8, metric)
    gpu_inner = faiss.IndexFlatIP(8) if metric == "cosine" else faiss.IndexFlatL2(8)
    fi.index = _GpuLike(gpu_inner, range_ok)           # add() fills the "GPU" copy only; fi._cpu stays empty
    monkeypatch.setattr(faiss, "index_gpu_to_cpu", lambda g: g.inner, raising=False)
    fi.add(xb)
    assert fi._cpu.ntotal == 0
    r = float(np.median(ix.pairwise_distances(xb, xq, metric)[:, 20]))
    lims, D, I = fi.range_search(xq, r)
    full = ix.pairwise_distances(xb, xq, metric)
    np.testing.assert_array_equal(np.diff(lims), (full <= r + 1e-5).sum(1))
    assert np.diff(lims).sum() > 0


def test_binary_range_search_falls_back_to_cpu_over_the_stored_codes():
    import faiss

    rng = np.random.default_rng(4)
    codes = pack_bits(rng.integers(0, 2, (300, 48)))
    q = pack_bits(rng.integers(0, 2, (6, 48)))
    bi = ix.BinaryIndex(48)
    bi.index = _GpuLike(faiss.IndexBinaryFlat(bi.padded_bits), range_ok=False)
    bi.add(codes)
    lims, D, I = bi.range_search(q, 16)
    np.testing.assert_array_equal(np.diff(lims), (ix.hamming_distances(codes, q) <= 16).sum(1))
    assert np.diff(lims).sum() > 0
