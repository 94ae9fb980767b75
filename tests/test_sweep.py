"""cbir.sweep: sequential and Dask maps give identical results; failures name their cell; bad settings."""
from __future__ import annotations

import pickle
import sys

import numpy as np
import pandas as pd
import pytest

from cbir import sweep
from cbir.experiments import random_sign_networks as rsn
from cbir.experiments import residual_hashing_depth_sweep as ds


def _square(k: int, x: np.ndarray) -> dict:
    if k == 3:
        raise ValueError(f"cannot do k={k}")
    return {"y": x * k, "k": k}


def _counted(k: int, log: str) -> dict:
    with open(log, "a") as fh:
        fh.write(f"{k}\n")
    return {"k": k}


# ------------------------------------------------------------------------------------------- sequential
def test_sequential_map_needs_no_dask(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)  # importing it would fail
    monkeypatch.setitem(sys.modules, "dask", None)
    out = sweep.map_cells(_square, [{"k": 1}, {"k": 2}], shared={"x": np.ones(2)}, log=None)
    assert [o["y"].tolist() for o in out] == [[1, 1], [2, 2]]


def test_failed_cell_is_reported_with_its_params_and_the_others_finish(tmp_path):
    lines = []
    with pytest.raises(sweep.SweepError) as err:
        sweep.map_cells(_square, [{"k": 1}, {"k": 3}, {"k": 2}], shared={"x": np.ones(2)}, name="sq",
                        cache_dir=tmp_path, log=lines.append)
    msg = str(err.value)
    assert "1 of 3 cell(s) failed" in msg and "cell 1 (k=3): ValueError: cannot do k=3" in msg
    assert [f.params for f in err.value.failures] == [{"k": 3}]
    assert lines[0] == "sq: 3 cell(s), 0 cached, 3 to run" and lines[-1].startswith("sq: 3/3 cells done, 1 failed")
    assert len(list(tmp_path.glob("sq-*.npz"))) == 2  # the two good cells are cached
    kept = sweep.map_cells(_square, [{"k": 1}, {"k": 3}], shared={"x": np.ones(2)}, name="sq", cache_dir=tmp_path,
                           errors="keep", log=None)
    assert kept[0]["y"].tolist() == [1, 1] and isinstance(kept[1], sweep.CellFailure)


def test_cached_cells_are_not_run_again(tmp_path):
    log = tmp_path / "calls.txt"
    for _ in range(2):
        out = sweep.map_cells(_counted, [{"k": 1}, {"k": 2}], shared={"log": str(log)}, key={}, name="cnt",
                              cache_dir=tmp_path, log=None)
    assert [int(o["k"]) for o in out] == [1, 2] and log.read_text().split() == ["1", "2"]


def test_each_cell_starts_from_the_seed_at_the_given_threads():
    import torch

    def draw(i):
        return {"r": torch.rand(3).numpy(), "t": torch.get_num_threads()}

    before = torch.get_num_threads()
    a, b = sweep.map_cells(draw, [{"i": 0}, {"i": 1}], threads=1, seed=5, log=None)
    assert np.array_equal(a["r"], b["r"]) and a["t"] == b["t"] == 1
    assert torch.get_num_threads() == before  # restored


# ------------------------------------------------------------------------------------------- bad settings
@pytest.mark.parametrize("value", ["http://host:8786", "tcp://", 8786, "sge"])
def test_bad_scheduler_is_a_clear_error(value):
    with pytest.raises(ValueError, match="shared.scheduler="):
        sweep.check_scheduler(value)


def test_bad_settings_in_params_name_the_key():
    import cbir.params as cp

    with pytest.raises(cp.ParamsError, match=r"shared.scheduler='http://x' is not a Dask scheduler.*tcp://host:8786"):
        cp.load("smoke", "drhn", {"shared.scheduler": "http://x"})
    with pytest.raises(cp.ParamsError, match=r"device='gpu'.*'auto', 'cpu', 'cuda'"):
        cp.load("smoke", "drhn", {"shared.device": "gpu"})
    with pytest.raises(cp.ParamsError, match=r"workers=0"):
        cp.load("smoke", "drhn", {"shared.workers": 0})
    P = cp.load("smoke", "drhn")
    assert (P.workers, P.scheduler, P.device) == (1, None, "auto") and not sweep.parallel(P)
    with pytest.raises(ValueError, match=r"shared.workers=0 must be a positive integer"):
        sweep.map_cells(_square, [{"k": 1}], shared={"x": 1}, workers=0)


def test_params_pickle_for_workers():
    import cbir.params as cp

    P = cp.load("smoke", "drhn")
    Q = pickle.loads(pickle.dumps(P))
    assert Q.as_dict() == P.as_dict() and Q.section == "drhn" and Q.profile == "smoke"


def test_device_selection_errors_and_auto():
    import torch

    from cbir import runtime

    with pytest.raises(ValueError, match=r"shared.device='gpu'; use one of \['auto', 'cpu', 'cuda'\]"):
        runtime.device("gpu")
    assert runtime.device("cpu").type == "cpu"
    assert runtime.device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"shared.device='cuda' but torch sees no CUDA GPU.*auto or cpu"):
            runtime.device("cuda")
    assert runtime.faiss_gpu(torch.device("cpu")) is False and runtime.faiss_gpu(torch.device("cuda")) is None


def test_jobqueue_missing_is_a_clear_error(monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setitem(sys.modules, "dask_jobqueue", None)
    with pytest.raises(ImportError, match=r"shared.scheduler='slurm' needs dask-jobqueue: pip install dask-jobqueue"):
        with sweep.client(scheduler="slurm", cluster={"cores": 1, "memory": "1GB"}):
            pass


# ------------------------------------------------------------------------------------------- 2 local workers
@pytest.fixture(scope="module")
def two_workers():
    """The address of a 2-worker local cluster built by :func:`cbir.sweep.client` (1 task and 1 thread
    each), shared by the module's tests (each map connects to it as to a remote scheduler)."""
    pytest.importorskip("distributed")
    with sweep.client(workers=2, threads=1) as c:
        assert len(c.scheduler_info()["workers"]) == 2
        env = c.run(lambda: __import__("os").environ.get("OMP_NUM_THREADS"))
        assert set(env.values()) == {"1"}
        yield c.scheduler.address


def _tiny_images(classes=3, n=8, size=16, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n).astype(np.int64)
    x = rng.integers(0, 256, (len(y), size, size, 3), dtype=np.uint8)
    x[..., 0] = np.clip(rng.normal(y * 60 + 40, 40, (size, size, len(y))).transpose(2, 0, 1), 0, 255).astype(np.uint8)
    return x, y


def test_drhn_depth_x_bits_on_two_workers_equals_sequential(tmp_path, two_workers, one_thread):
    from test_drhn import _tiny_data, _tiny_params

    data = _tiny_data()
    P = {**_tiny_params(epochs=1, lr_drop_epochs=[]), "depths": [1, 2], "bits": [4, 8], "threads": 1}
    seq = ds.run_sweep({**P, "workers": 1}, data, cache_dir=tmp_path / "seq", progress=False, log=None)
    lines = []
    par = ds.run_sweep({**P, "scheduler": two_workers}, data, cache_dir=tmp_path / "par", progress=False,
                       log=lines.append)
    res_seq, _ = ds.split_timing(seq.cells, seq.histories)
    res_par, _ = ds.split_timing(par.cells, par.histories)
    pd.testing.assert_frame_equal(res_seq, res_par)
    assert not par.cells["from_cache"].any()  # trained by the workers in this run, not found in the cache
    for key, ev in seq.evals.items():
        assert all(np.array_equal(ev[a], par.evals[key][a]) for a in ev), key
    assert "DRHN depth x bits: 4/4 cells done" in " ".join(lines)


def test_rdcnn_grid_and_m_sweep_on_two_workers_equal_sequential(tmp_path, two_workers):
    x, y = _tiny_images()
    xt, yt = _tiny_images(seed=1)
    base = {"dataset": "tiny", "grid_k": [3, 5], "grid_b": [1, 2], "grid_m": 16, "svm_C": 0.5, "seed": 0,
            "threads": 1, "m_sweep": [4, 16, 32]}
    out = {}
    for mode, extra in (("seq", {"workers": 1}), ("par", {"scheduler": two_workers})):
        P = {**base, **extra, "cache_dir": str(tmp_path / mode)}
        grid, correct = rsn.grid_sweep(x, y, xt, yt, P, log=None)
        F = rsn.cached_rdcnn_features(x, k=3, b=1, m=32, seed=0, tag="t", cache_dir=None)
        Ft = rsn.cached_rdcnn_features(xt, k=3, b=1, m=32, seed=0, tag="t", cache_dir=None)
        msw, mcorrect = rsn.m_sweep(F, y, Ft, yt, P, log=None)
        out[mode] = grid.drop(columns="seconds"), correct, msw, mcorrect
    (g0, c0, m0, mc0), (g1, c1, m1, mc1) = out["seq"], out["par"]
    pd.testing.assert_frame_equal(g0, g1)
    assert g0[["k", "b"]].values.tolist() == [[3, 1], [3, 2], [5, 1], [5, 2]]
    assert all(np.array_equal(c0[kb], c1[kb]) for kb in c0)
    pd.testing.assert_frame_equal(m0, m1)
    assert m0["m"].tolist() == [4, 16, 32] and all(np.array_equal(mc0[m][1], mc1[m][1]) for m in mc0)


def test_failed_cell_on_workers_is_reported_and_the_others_finish(tmp_path, two_workers):
    with pytest.raises(sweep.SweepError, match=r"cell 2 \(k=3\): ValueError: cannot do k=3") as err:
        sweep.map_cells(_square, [{"k": 1}, {"k": 2}, {"k": 3}, {"k": 4}], shared={"x": np.ones(2)}, name="sq",
                        cache_dir=tmp_path, scheduler=two_workers, log=None)
    assert "Traceback" in err.value.failures[0].traceback
    assert len(list(tmp_path.glob("sq-*.npz"))) == 3


def test_layer_features_04_and_retraining_schemes_05_on_two_workers_equal_sequential(tmp_path, two_workers):
    """Notebook 04's per-image-set CNN features and 05's retraining schemes as sweep cells (same results)."""
    import torch

    from cbir.experiments import perceptual_hash_vs_cnn as ph
    from cbir.experiments import retargeting_retraining_qe as rq
    from cbir.models.backbones import Backbone
    from test_retarget import _tiny_params, _tiny_split

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 3, padding=1)
    module = torch.nn.Module()
    module.conv = conv
    trunk = torch.nn.Sequential(conv, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    bb = Backbone("tiny", "test", module, trunk, 4, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    x, _ = _tiny_images(classes=2, n=3, size=24)
    sets = ph.build_image_sets(list(x), n_nonindexed=1, modifications=("blur", "crop"))
    enc = {mode: ph.encode_cnn(sets, bb, ["conv"], ["avg", "max"], size=32, sweep_params=extra)
           for mode, extra in (("seq", {"workers": 1, "threads": 1}), ("par", {"scheduler": two_workers, "threads": 1}))}
    assert sorted(enc["seq"]) == sorted(enc["par"]) and len(enc["seq"]) == 6
    for name, e in enc["seq"].items():
        p = enc["par"][name]
        assert np.array_equal(e.base, p.base) and all(np.array_equal(e.modified[m], p.modified[m]) for m in e.modified)

    sf = _tiny_split()
    out = {}
    for mode, extra in (("seq", {"shared.workers": 1}), ("par", {"shared.scheduler": two_workers})):
        P = _tiny_params(**{"shared.threads": 1, **extra})
        table, heads, per_query = rq.compare_schemes(sf, P, schemes=[(["fu"], "fc7"), (["rri"], "fc7")])
        out[mode] = table.drop(columns="train_seconds"), per_query
    pd.testing.assert_frame_equal(out["seq"][0], out["par"][0])
    pd.testing.assert_frame_equal(out["seq"][1], out["par"][1])
    assert out["seq"][0].pipeline.tolist() == ["none", "fu", "rri"]
