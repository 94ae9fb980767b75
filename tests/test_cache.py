import os

import numpy as np
import pytest

from cbir import cache


def test_key_is_order_independent_and_sensitive():
    assert cache.key(a=1, b=[1, 2]) == cache.key(b=[1, 2], a=1)
    assert cache.key(a=1) != cache.key(a=2)
    assert cache.key(x=np.arange(3)) != cache.key(x=np.arange(4))


def test_cached_npz_computes_once_and_reuses(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(5)}

    a = cache.cached_npz("feat", {"n": 5}, compute, tmp_path)
    b = cache.cached_npz("feat", {"n": 5}, compute, tmp_path)
    cache.cached_npz("feat", {"n": 6}, compute, tmp_path)
    assert len(calls) == 2 and np.array_equal(a["x"], b["x"])


def test_interrupted_write_leaves_no_artifact(tmp_path):
    def boom():
        raise KeyboardInterrupt

    path = tmp_path / "w.npz"

    with pytest.raises(RuntimeError):
        cache._atomic_write(path, lambda tmp: (tmp.write_bytes(b"partial"), (_ for _ in ()).throw(RuntimeError("x"))))
    assert not path.exists() and os.listdir(tmp_path) == []
    with pytest.raises(KeyboardInterrupt):
        cache.cached_npz("f", {}, boom, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_torch_roundtrip_weights_only(tmp_path):
    import torch

    p = cache.save_torch_atomic({"w": torch.ones(2), "epoch": 3}, tmp_path / "m.pt")
    out = cache.load_torch(p)
    assert out["epoch"] == 3 and torch.equal(out["w"], torch.ones(2))
