"""Seeding, thread counts and device choice (one place, called once per notebook).

Device selection lives here only: :func:`device` maps ``shared.device`` (``auto``/``cpu``/``cuda``) to a
torch device, :func:`setup` applies it (and the matching faiss GPU default of :mod:`cbir.index`). Training
on CUDA uses the same seeds (``torch.manual_seed`` seeds every GPU too); GPU kernels may still differ from
CPU ones in the last bits, and cache keys do not name the device: a cell trained on one is reused on the
other.
"""
from __future__ import annotations

import random
from typing import Any, Mapping

import numpy as np


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global RNG and torch (CPU and CUDA)."""
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def set_threads(n: int) -> None:
    """Fix the thread count of torch, faiss (OpenMP) and BLAS so results and timings are reproducible."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(n)
    try:
        import faiss

        faiss.omp_set_num_threads(n)
    except ImportError:  # pragma: no cover - faiss is a dependency
        pass
    threadpool_limits(n)


DEVICES = ("auto", "cpu", "cuda")
"""Values of ``shared.device``."""


def device(prefer: str = "auto") -> "torch.device":
    """The torch device for ``shared.device``: ``"auto"`` = ``cuda`` when ``torch.cuda.is_available()``,
    else ``cpu``; ``"cpu"``; ``"cuda"`` (an error when torch sees no GPU).

    Raises
    ------
    ValueError
        ``prefer`` is not one of :data:`DEVICES`, or ``"cuda"`` without a GPU (the message says what to set).
    """
    import torch

    if prefer not in DEVICES:
        raise ValueError(f"shared.device={prefer!r}; use one of {list(DEVICES)} (auto = cuda when available)")
    if prefer == "cpu" or (prefer == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError("shared.device='cuda' but torch sees no CUDA GPU (torch.cuda.is_available() is False); "
                         "set shared.device: auto or cpu, or install a CUDA build of torch")
    return torch.device("cuda")


def faiss_gpu(dev: Any) -> bool | None:
    """The ``use_gpu`` default of :mod:`cbir.index` for a torch device: ``None`` (a faiss GPU index when
    faiss sees a GPU) on ``cuda``, ``False`` (CPU indexes) on ``cpu``."""
    return None if getattr(dev, "type", str(dev)) == "cuda" else False


def describe_device(dev: Any = None) -> str:
    """A one-line name of the machine that ran a computation (for timing tables)."""
    import platform

    import torch

    dev = dev or device()
    if getattr(dev, "type", str(dev)) == "cuda":
        return f"GPU {torch.cuda.get_device_name(0)}"
    return f"CPU {platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"


def setup(P: Mapping[str, Any]) -> "torch.device":
    """Seed everything and fix thread counts from params; return the torch device of ``shared.device``
    (:func:`device`), and make :mod:`cbir.index` build faiss GPU indexes only on that device being cuda."""
    from cbir import index

    set_threads(int(P["threads"]))
    seed_everything(int(P["seed"]))
    dev = device(P.get("device", "auto"))
    index.set_default_gpu(faiss_gpu(dev))
    return dev
