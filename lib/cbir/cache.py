"""Parameter-keyed, atomic artifact store under ``outputs/cache/``.

An artifact's file name is ``<name>-<key>.<ext>`` where ``key`` is a short SHA-256 of its parameters
(canonical JSON), so a rerun with the same parameters reuses the file and a change of any parameter
computes a new one. Writes go to a temporary file in the same folder and are moved into place with
``os.replace``, so an interrupted run never leaves a half-written artifact.
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np


def _canonical(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _canonical(v) for k, v in sorted(obj.items(), key=lambda kv: str(kv[0]))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return {"__array__": hashlib.sha256(np.ascontiguousarray(obj).tobytes()).hexdigest(),
                "shape": list(obj.shape), "dtype": str(obj.dtype)}
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def key(**params: Any) -> str:
    """Short (16 hex) SHA-256 of the parameters; order-independent, arrays hashed by content."""
    blob = json.dumps(_canonical(params), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def artifact_path(cache_dir: str | Path, name: str, params: Mapping[str, Any], ext: str) -> Path:
    """``<cache_dir>/<name>-<key(params)>.<ext>`` (folder created)."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    return cache_dir / f"{name}-{key(**params)}.{ext.lstrip('.')}"


def _atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_npz_atomic(path: str | Path, **arrays: np.ndarray) -> Path:
    """Write ``arrays`` to ``path`` (.npz, uncompressed) atomically."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return _atomic_write(Path(path), write)


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def save_torch_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to ``path`` atomically (state dicts, tensors, plain containers)."""
    import torch

    return _atomic_write(Path(path), lambda tmp: torch.save(obj, tmp))


def load_torch(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def save_json_atomic(obj: Any, path: str | Path) -> Path:
    return _atomic_write(Path(path), lambda tmp: tmp.write_text(json.dumps(obj, indent=1, default=str)))


def cached_npz(name: str, params: Mapping[str, Any], compute: Callable[[], Mapping[str, np.ndarray]],
               cache_dir: str | Path, *, verbose: bool = True) -> dict[str, np.ndarray]:
    """Return the arrays stored for ``(name, params)``, computing and storing them on a miss.

    Parameters
    ----------
    name : str
        Artifact family, e.g. ``"rdcnn_features"``.
    params : mapping
        Everything the result depends on (dataset, subset, seed, model settings, ...).
    compute : callable
        Called with no argument on a miss; returns a mapping of arrays.
    cache_dir : path
        Usually ``P.cache_dir``.
    """
    path = artifact_path(cache_dir, name, params, "npz")
    if path.exists():
        if verbose:
            print(f"cache hit: {name} [{path.stem.split('-')[-1]}]")
        return load_npz(path)
    arrays = {k: np.asarray(v) for k, v in compute().items()}
    save_npz_atomic(path, **arrays)
    if verbose:
        print(f"cache store: {name} [{path.stem.split('-')[-1]}]")
    return arrays
