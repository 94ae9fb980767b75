"""Tests for cbir.models.latent_hash (LatentHashNet)."""
import numpy as np
import pytest
import torch

from cbir.hashing import pack_bits, unpack_bits
from cbir.models.latent_hash import LatentHashNet, lsh_init_, small_cnn
from cbir.train import images_to_tensor


def _head(n_bits=12, **kw):
    return LatentHashNet(3, n_bits, in_dim=6, feature_dim=10, dropout=0.0, seed=0, **kw)


def test_codes_are_exact_threshold_of_latent_layer():
    torch.manual_seed(0)
    net = _head(12)
    x = torch.randn(40, 6)
    h = net.embed(x).latent
    with torch.no_grad():
        manual = torch.sigmoid(net.latent(net.feature(x))).numpy()
    np.testing.assert_allclose(h, manual, rtol=1e-6)
    codes = net.encode(x)
    assert codes.shape == (40, 2) and codes.dtype == np.uint8
    np.testing.assert_array_equal(unpack_bits(codes, 12), (manual > 0.5).astype(np.uint8))
    # packing round-trips and bit 0 is the most significant bit of byte 0
    np.testing.assert_array_equal(pack_bits(unpack_bits(codes, 12)), codes)
    assert pack_bits(np.array([[1] + [0] * 11]))[0, 0] == 128


def test_lsh_init_statistics():
    lin = torch.nn.Linear(400, 300)
    lsh_init_(lin, torch.Generator().manual_seed(0))
    w = lin.weight.detach().numpy()
    assert abs(w.mean()) < 0.002
    assert abs(w.std() - 1 / np.sqrt(400)) < 0.002
    assert torch.all(lin.bias == 0)
    # zero bias + sigmoid threshold 0.5 == sign of a random projection at initialisation
    net = _head(16)
    x = torch.randn(30, 6)
    with torch.no_grad():
        f = net.feature(x)
        proj = (f @ net.latent.weight.T > 0).numpy().astype(np.uint8)
    np.testing.assert_array_equal(unpack_bits(net.encode(x), 16), proj)


def test_seeded_init_is_deterministic():
    a, b = _head(8), _head(8)
    for pa, pb in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(pa, pb)


def test_without_latent_layer():
    net = _head(None)
    emb = net.embed(torch.randn(5, 6))
    assert emb.latent is None and emb.logits.shape == (5, 3) and emb.features.shape == (5, 10)
    with pytest.raises(ValueError, match="no latent layer"):
        net.encode(torch.randn(5, 6))


@pytest.mark.parametrize("bad", [0, -1, 2.0, True])
def test_bad_bit_counts(bad):
    with pytest.raises(ValueError, match="n_bits"):
        _head(bad)


def test_small_cnn_trains_a_step():
    trunk, dim = small_cnn(1, (4, 8, 8))
    assert dim == 72 and trunk(torch.zeros(2, 1, 28, 28)).shape == (2, 72)
    net = LatentHashNet(10, 12, trunk=trunk, in_dim=dim, feature_dim=16, seed=0)
    imgs = np.random.default_rng(0).integers(0, 256, (8, 28, 28, 3), dtype=np.uint8)
    x = images_to_tensor(imgs[..., :1])
    assert x.shape == (8, 1, 28, 28)
    y = torch.arange(8) % 10
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    loss0 = torch.nn.functional.cross_entropy(net(x), y)
    loss0.backward()
    opt.step()
    assert net.encode(x).shape == (8, 2)


def test_train_and_embed_learns_and_caches(tmp_path, capsys):
    from cbir.experiments.latent_layer_hashing import train_and_embed

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    centers = rng.standard_normal((3, 8)) * 3
    x = (centers[y] + rng.standard_normal((120, 8))).astype(np.float32)
    kw = dict(n_classes=3, in_dim=8, feature_dim=16, dropout=0.0, epochs=30, lr=0.01, batch_size=32, seed=0,
              progress=False)
    out = train_and_embed(x, y, x[:30], cache_dir=tmp_path, cache_params={"fixture": 1}, n_bits=8, **kw)
    assert out["db_latent"].shape == (120, 8) and out["test_logits"].shape == (30, 3)
    assert (out["test_logits"].argmax(1) == y[:30]).mean() == 1.0
    bits = (out["db_latent"] > 0.5).astype(int)
    d = (bits[:, None] != bits[None]).sum(-1)
    same = y[:, None] == y[None]
    assert d[same].mean() + 2 < d[~same].mean()  # codes of a class are closer than across classes
    again = train_and_embed(x, y, x[:30], cache_dir=tmp_path, cache_params={"fixture": 1}, n_bits=8, **kw)
    assert "cache hit" in capsys.readouterr().out
    np.testing.assert_array_equal(again["db_latent"], out["db_latent"])


def test_learning_curve_monitors_test_error_without_selecting(tmp_path):
    from cbir.experiments import latent_layer_hashing as xp

    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(3), 30)
    x = (rng.standard_normal((3, 8))[y] * 3 + rng.standard_normal((90, 8))).astype(np.float32)
    kw = dict(n_classes=3, in_dim=8, feature_dim=16, dropout=0.0, epochs=4, lr=0.01, batch_size=32, seed=0,
              progress=False)
    plain = xp.train_and_embed(x, y, x[:30], cache_dir=tmp_path, cache_params={"f": 1}, n_bits=8, **kw)
    mon = xp.train_and_embed(x, y, x[:30], y_test=y[:30], cache_dir=tmp_path, cache_params={"f": 1}, n_bits=8,
                             **kw)
    assert "test_acc" not in plain and mon["test_acc"].shape == (4,)
    np.testing.assert_array_equal(mon["test_logits"], plain["test_logits"])  # monitoring selects nothing
    final = (mon["test_logits"].argmax(1) == y[:30]).mean()
    assert mon["test_acc"][-1] == final  # the curve's last point is the network's test accuracy
    a = xp.Arm("feat", "toy", "", None, None, y, y[:30], x, x[:30], np.arange(5), {8: mon}, ["a", "b", "c"],
               "", 90, 32, "")
    c = xp.learning_curves([a])
    assert list(c.columns) == ["dataset", "arm", "n_bits", "epoch", "iterations", "train_loss", "train_acc",
                               "test_error_pct"]
    assert list(c.epoch) == [1, 2, 3, 4] and list(c.iterations) == [3, 6, 9, 12]  # ceil(90 / 32) = 3 per epoch
    assert c.test_error_pct.iloc[-1] == pytest.approx(100 * (1 - final))


def test_lr_decay_is_checked():
    from cbir.models.latent_hash import train_latent_hash

    with pytest.raises(ValueError, match="lr_decay=0"):
        train_latent_hash(np.zeros((4, 3), np.float32), np.zeros(4, np.int64), n_classes=2, n_bits=4, in_dim=3,
                          epochs=1, lr=0.01, batch_size=2, seed=0, lr_decay=0.0, progress=False)
