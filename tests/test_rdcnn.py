"""Tests of cbir.models.rdcnn (Xue & Roshan 2019, Sec. 2.2): shapes, determinism, sign, hand example."""
import numpy as np
import pytest
import torch

from cbir.models.rdcnn import RandomDepthwiseSignNet, naive_rdcnn_features, sign_pm1


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(6, 16, 16, 3), dtype=np.uint8)


@pytest.mark.parametrize("k,b", [(3, 1), (5, 1), (3, 2), (3, 3)])
def test_shape_range_and_determinism(images, k, b):
    f1 = RandomDepthwiseSignNet(k=k, b=b, m=40, seed=3).transform(images)
    f2 = RandomDepthwiseSignNet(k=k, b=b, m=40, seed=3).transform(images)
    f3 = RandomDepthwiseSignNet(k=k, b=b, m=40, seed=4).transform(images)
    assert f1.shape == (6, 40) and f1.dtype == np.float32
    assert np.array_equal(f1, f2)
    assert not np.array_equal(f1, f3)
    assert f1.min() >= -1 and f1.max() <= 1


@pytest.mark.parametrize("k,b,padding", [(5, 1, "valid"), (3, 2, "same"), (4, 2, "valid"),
                                         (3, 3, "same")])
def test_matches_naive_per_kernel_loop(images, k, b, padding):
    net = RandomDepthwiseSignNet(k=k, b=b, m=24, seed=1, padding=padding, kernel_chunk=16, batch_size=4)
    np.testing.assert_allclose(net.transform(images), naive_rdcnn_features(net, images), atol=1e-6)


def test_prefix_property_and_chunking(images):
    big = RandomDepthwiseSignNet(k=3, b=2, m=300, seed=0, kernel_chunk=128).transform(images)
    small = RandomDepthwiseSignNet(k=3, b=2, m=100, seed=0).transform(images)
    np.testing.assert_array_equal(big[:, :100], small)


def test_sign_maps_are_pm1(images):
    net = RandomDepthwiseSignNet(k=3, b=2, m=8)
    for block in (1, 2):
        s = net.sign_maps(images[:2], block=block)
        assert set(np.unique(s)) <= {-1.0, 1.0}
    assert torch.equal(sign_pm1(torch.tensor([-2.0, 0.0, 3.0])), torch.tensor([-1.0, 1.0, 1.0]))


def test_single_kernel_hand_computed():
    # 1 grey 4x4 image, one 2x2 kernel [[1, 0], [0, -1]] + bias 0, valid padding, b = 1.
    img = np.array([[0, 255, 0, 0], [0, 0, 255, 0], [255, 0, 0, 0], [0, 0, 0, 255]], np.uint8)
    net = RandomDepthwiseSignNet(k=2, b=1, m=1, in_channels=1, padding="valid", bias=False)
    net.w1[:] = torch.tensor([[1.0, 0.0, 0.0, -1.0]])
    # responses x[i,j] - x[i+1,j+1] over the 3x3 grid (scaled by 1/255):
    # row0: 0-0=0 (+1), 1-1=0 (+1), 0-0=0 (+1); row1: 0-0=0 (+1), 0-0=0 (+1), 1-1=0 (+1)
    # row2: 1-0=1 (+1), 0-0=0 (+1), 0-1=-1 (-1). 2x2 pool (floor) keeps the top-left 2x2: all +1 -> 1.0
    assert net.transform(img[None]).item() == pytest.approx(1.0)
    net.w1[:] = torch.tensor([[-1.0, 0.0, 0.0, 0.0]])  # -x[i, j]: top-left 2x2 = [0, -1; 0, 0] -> signs +1,-1,+1,+1
    assert net.transform(img[None]).item() == pytest.approx(0.5)


def test_float16_and_memmap(images, tmp_path):
    net = RandomDepthwiseSignNet(k=3, b=1, m=20)
    f16 = net.transform(images, dtype=np.float16)
    mm = net.transform(images, memmap_path=tmp_path / "f.npy")
    assert f16.dtype == np.float16 and np.abs(f16 - mm).max() < 1e-3
    assert np.array_equal(np.load(tmp_path / "f.npy"), mm)


def test_bad_inputs_raise_clear_errors(images):
    net = RandomDepthwiseSignNet(k=3, b=1, m=4)
    with pytest.raises(ValueError, match="channel"):
        net.transform(images[..., :1])  # grayscale into an RGB net
    with pytest.raises(TypeError, match="uint8"):
        net.transform(images.astype(np.float32))
    with pytest.raises(ValueError, match="empty"):
        net.transform(images[:0])
    with pytest.raises(ValueError, match="m=0"):
        RandomDepthwiseSignNet(k=3, b=1, m=0)
    with pytest.raises(ValueError, match="too small"):
        RandomDepthwiseSignNet(k=7, b=3, m=2, padding="valid").transform(images)
