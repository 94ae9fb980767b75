"""Tests for cbir.hashing.baselines (LSH, PCA-ITQ, spectral hashing)."""
import numpy as np
import pytest

from cbir.hashing import unpack_bits
from cbir.hashing.baselines import LSH, PCAITQ, SpectralHashing, make_hasher


@pytest.fixture(scope="module")
def feats():
    rng = np.random.default_rng(0)
    centers = rng.standard_normal((4, 16)) * 3
    labels = np.repeat(np.arange(4), 50)
    return centers[labels] + rng.standard_normal((200, 16)), labels


def test_lsh_is_sign_of_centred_random_projection(feats):
    x, _ = feats
    h = LSH(12, seed=3).fit(x)
    expected = ((x - x.mean(0)) @ h.projection_ > 0).astype(np.uint8)
    np.testing.assert_array_equal(h.encode_bits(x), expected)
    packed = h.encode(x)
    assert packed.shape == (200, 2) and packed.dtype == np.uint8
    np.testing.assert_array_equal(unpack_bits(packed, 12), expected)


def test_lsh_hand_computed():
    # two points symmetric about the mean -> opposite bits on every hyperplane
    x = np.array([[1.0, 2.0], [-1.0, -2.0], [3.0, 6.0], [-3.0, -6.0]])
    bits = LSH(8, seed=0).fit(x).encode_bits(x)
    np.testing.assert_array_equal(bits[0], 1 - bits[1])
    np.testing.assert_array_equal(bits[0], bits[2])  # same direction from the mean


def test_itq_loss_monotone_and_below_pca_sign(feats):
    x, _ = feats
    itq = PCAITQ(8, n_iter=30, seed=0).fit(x)
    loss = itq.loss_history_
    assert len(loss) == 30
    assert np.all(np.diff(loss) <= 1e-9 * loss[0])
    assert loss[-1] < loss[0]
    # quantization loss of plain PCA-sign (rotation = identity) is not better than ITQ's
    v = (x - x.mean(0)) @ itq.pca_
    pca_loss = np.sum((np.where(v >= 0, 1.0, -1.0) - v) ** 2)
    assert itq.quantization_loss(x) <= pca_loss + 1e-9
    np.testing.assert_allclose(itq.rotation_ @ itq.rotation_.T, np.eye(8), atol=1e-10)


def test_itq_rejects_too_many_bits(feats):
    x, _ = feats
    with pytest.raises(ValueError, match="n_bits <= min"):
        PCAITQ(32).fit(x)


def test_spectral_hashing_first_bit_splits_principal_axis():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1, 1, (500, 2)) * np.array([10.0, 1.0])  # long axis 0
    sh = SpectralHashing(3).fit(x)
    bits = sh.encode_bits(x)
    # the lowest mode is sin(pi/2 + pi (v - min) / range) on the long axis: sign flips at its middle
    v = (x - x.mean(0)) @ sh.pca_[:, 0]
    mid = (v.min() + v.max()) / 2
    agree = np.mean(bits[:, 0] == (v < mid))
    assert agree > 0.99
    assert bits.shape == (500, 3)
    # with 3 bits on a 10:1 box, all three modes lie on the long axis (k = 1, 2, 3)
    np.testing.assert_array_equal(sh.modes_[:, 0], [1, 2, 3])


@pytest.mark.parametrize("name", ["lsh", "itq", "sh"])
def test_codes_preserve_class_neighbourhoods(feats, name):
    x, y = feats
    bits = make_hasher(name, 8).fit(x).encode_bits(x).astype(int)
    d = (bits[:, None, :] != bits[None, :, :]).sum(-1)
    same = y[:, None] == y[None, :]
    assert d[same].mean() < d[~same].mean()


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_bad_bit_counts(bad):
    with pytest.raises(ValueError, match="n_bits"):
        LSH(bad)


def test_unfitted_and_wrong_dim(feats):
    x, _ = feats
    with pytest.raises(RuntimeError, match="fit"):
        LSH(4).encode(x)
    with pytest.raises(ValueError, match="columns"):
        LSH(4).fit(x).encode(x[:, :5])
    with pytest.raises(ValueError, match="unknown hashing baseline"):
        make_hasher("pq", 8)
