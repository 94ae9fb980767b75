"""Seeding, thread counts and device choice (one place, called once per notebook)."""
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


def device(prefer: str = "auto") -> "torch.device":
    """``cuda`` when available (and not disabled by ``prefer='cpu'``), else ``cpu``."""
    import torch

    if prefer == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def describe_device(dev: Any = None) -> str:
    """A one-line name of the machine that ran a computation (for timing tables)."""
    import platform

    import torch

    dev = dev or device()
    if getattr(dev, "type", str(dev)) == "cuda":
        return f"GPU {torch.cuda.get_device_name(0)}"
    return f"CPU {platform.processor() or platform.machine()} x{torch.get_num_threads()} threads"


def setup(P: Mapping[str, Any]) -> "torch.device":
    """Seed everything and fix thread counts from params; return the torch device to use."""
    import torch

    set_threads(int(P["threads"]))
    seed_everything(int(P["seed"]))
    return device()
