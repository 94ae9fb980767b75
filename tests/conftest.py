"""Shared fixtures: a temporary suite root for params/outputs, the real-data folder when present."""
from __future__ import annotations

import pytest

# Note: no os.environ changes here — nbval's notebook kernels inherit this process's environment, and an
# MPLBACKEND=Agg there would silence the inline figures the stored notebooks were checked against.


@pytest.fixture
def tmp_root(tmp_path, monkeypatch):
    """A throw-away suite root with a params/ folder holding copies of the real profiles."""
    from cbir.params import repo_root

    real = repo_root()
    (tmp_path / "params").mkdir()
    for f in (real / "params").glob("*.yaml"):
        (tmp_path / "params" / f.name).write_text(f.read_text())
    (tmp_path / "pyproject.toml").write_text("")
    monkeypatch.setenv("CBIR_ROOT", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="session")
def shared_data():
    from cbir.data import find_data

    p = find_data("cifar10_jpeg_subset.npz")
    if p is None:
        pytest.skip("shared/data not present (real-data loader tests need it)")
    return p.parent


@pytest.fixture
def one_thread():
    """Torch on one thread for tests that pin trained values (reduction order fixed across machines)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
