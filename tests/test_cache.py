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
    (path,) = tmp_path.glob("feat-*.npz")
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


def test_tensors_are_keyed_by_content_not_by_repr():
    import torch

    a, b = torch.zeros(5000), torch.zeros(5000)
    b[2500] = 1.0  # str() of both reads "tensor([0., 0., ..., 0.])"
    assert str(a) == str(b) and cache.key(x=a) != cache.key(x=b)


def _module(tmp_path, name, helper_body, other_body="return 0"):
    import importlib.util
    import sys

    path = tmp_path / f"{name}.py"
    path.write_text("import numpy as np\n\n"
                    f"def helper(x):\n    {helper_body}\n\n"
                    f"def unrelated():\n    {other_body}\n\n"
                    "def compute():\n    return {'x': helper(np.arange(3))}\n")
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_a_code_change_to_a_cached_function_recomputes(tmp_path):
    import linecache

    v1 = _module(tmp_path, "cbir_test_codemod", "return x + 1")
    c1 = cache.code_version(v1.compute)
    assert cache.cached_npz("t", {"n": 3}, v1.compute, tmp_path / "c")["x"].tolist() == [1, 2, 3]
    linecache.clearcache()
    v2 = _module(tmp_path, "cbir_test_codemod", "return x + 2")  # the helper the cached function calls
    c2 = cache.code_version(v2.compute)
    assert cache.cached_npz("t", {"n": 3}, v2.compute, tmp_path / "c")["x"].tolist() == [2, 3, 4]
    linecache.clearcache()
    v3 = _module(tmp_path, "cbir_test_codemod", "return x + 2", other_body="return 1")  # code it does not reach
    assert cache.code_version(v3.compute) == c2 != c1


def test_code_version_reaches_what_a_cached_artifact_depends_on():
    from cbir.experiments import residual_hashing_depth_sweep as ds
    from cbir.models.backbones import Backbone

    reach = cache.code_reach(ds.train_cell)
    assert {"cbir.train.fit", "cbir.models.drhn.DRHN", "cbir.experiments.residual_hashing_depth_sweep.cell_params"} \
        <= set(reach)
    assert not any(r.startswith("cbir.plots") or ".plot_" in r for r in reach)  # a plotting edit does not retrain
    bb = Backbone.__new__(Backbone)
    compute = lambda: bb.features(None, 32)  # noqa: E731  (what cached_features hands to cached_npz)
    assert "cbir.models.backbones.Backbone" in cache.code_reach(compute)


def test_same_dataset_name_in_two_folders_gives_two_artifacts(tmp_path):
    """The stale-cache probe: same name + other pixels used to hit the old features."""
    from PIL import Image

    from cbir.data import load_dataset
    from cbir.models.backbones import pretrained_backbone

    feats = []
    for k, root in enumerate((tmp_path / "a" / "photos", tmp_path / "b" / "photos")):
        for c in ("x", "y"):
            (root / c).mkdir(parents=True)
            for i in range(2):
                rng = np.random.default_rng(10 * k + i + (c == "y"))
                Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
        ds = load_dataset(f"folder:{root}", "all", verbose=False)
        bb = pretrained_backbone("auto")
        feats.append(bb.cached_features(ds.images, 32, tmp_path / "cache", {"dataset": "photos"}, progress=False))
    assert not np.allclose(feats[0], feats[1])
    assert len(list((tmp_path / "cache").glob("backbone_features-*.npz"))) == 2
