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


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_artifact_is_reported_removed_and_recomputed(tmp_path, damage):
    calls = []

    def compute():
        calls.append(1)
        return {"x": np.arange(1000)}

    cache.cached_npz("feat", {"n": 1}, compute, tmp_path)
    path = cache.artifact_path(tmp_path, "feat", {"n": 1}, "npz")
    blob = path.read_bytes()
    path.write_bytes({"truncate": blob[: len(blob) // 2], "garbage": b"not a zip" * 50, "empty": b""}[damage])
    with pytest.warns(UserWarning, match="unreadable.*removed it, so it is recomputed"):
        out = cache.cached_npz("feat", {"n": 1}, compute, tmp_path)
    assert len(calls) == 2 and np.array_equal(out["x"], np.arange(1000))
    assert np.array_equal(cache.load_npz(path)["x"], np.arange(1000))  # the recomputed file is whole


def test_corrupt_torch_checkpoint_raises_named_error_and_is_removed(tmp_path):
    p = tmp_path / "m.pt"
    p.write_bytes(b"\x80garbage")
    with pytest.warns(UserWarning), pytest.raises(cache.CorruptArtifact, match="m.pt is unreadable"):
        cache.load_torch(p)
    assert not p.exists()


def test_artifacts_are_world_readable(tmp_path):
    path = cache.save_npz_atomic(tmp_path / "a.npz", x=np.arange(3))
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_killed_writer_tmp_is_removed_later_live_writer_kept(tmp_path):
    import subprocess
    import sys
    import time

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    left = tmp_path / f".a.npz.{dead_pid}.x1y2.tmp"  # what a killed large write leaves behind
    left.write_bytes(b"0" * 1000)
    live = tmp_path / f".b.npz.{os.getpid()}.z3.tmp"  # a concurrent writer, still running
    live.write_bytes(b"1")
    old = tmp_path / f".c.npz.{os.getpid()}.q4.tmp"
    old.write_bytes(b"2")
    os.utime(old, (time.time() - 2 * cache.TMP_MAX_AGE_S,) * 2)
    removed = cache.sweep_tmp(tmp_path)
    assert sorted(removed) == sorted([left, old]) and live.exists()
    # and a normal store sweeps its folder once per process
    left.write_bytes(b"0")
    cache._swept.discard(str(tmp_path))
    cache.cached_npz("f", {}, lambda: {"x": np.zeros(1)}, tmp_path)
    assert not left.exists()
