"""Parameter-keyed, atomic artifact store under ``outputs/cache/``.

An artifact's file name is ``<name>-<key>.<ext>`` where ``key`` is a short SHA-256 of its parameters
(canonical JSON; arrays and tensors by content), so a rerun with the same parameters reuses the file and a
change of any parameter computes a new one. The parameters of every cached artifact include its input data
(pixels or a dataset digest) and :func:`code_version` of the code that produces it: the source of the
producing function and of the ``cbir`` functions and classes it refers to, transitively — not whole
modules, so a plotting edit does not invalidate a trained network — so a change of data or code can never
return an old artifact. Writes go to a temporary file in the same folder (``.<name>.<pid>.<random>.tmp``) and
are moved into place with ``os.replace``, so an interrupted run never leaves a half-written artifact; a
temporary file left by a killed writer is removed by a later run once its writer's PID is gone (or it is
older than :data:`TMP_MAX_AGE_S`), so concurrent writers are safe. Artifacts are written ``0644``. An
artifact that cannot be read (truncated, corrupt) is reported, removed and recomputed.
"""
from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import os
import types
import tempfile
import time
import warnings
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
    if type(obj).__module__.startswith("torch") and hasattr(obj, "detach"):  # a tensor: by content, not repr
        return _canonical(obj.detach().cpu().numpy())
    return obj


# ============================================================================================ code version
INFRASTRUCTURE = ("cbir.cache",)
"""Modules left out of code versions: how artifacts are stored does not change what they hold."""


def _ours_module(name: str, roots: set[str]) -> bool:
    return (name == "cbir" or name.startswith("cbir.") or name in roots) and name not in INFRASTRUCTURE


def _is_ours(obj: Any, roots: set[str]) -> bool:
    return _ours_module(getattr(obj, "__module__", None) or "", roots) and (
        inspect.isfunction(obj) or inspect.isclass(obj))


def _code_objects(code: types.CodeType):
    yield code
    for c in code.co_consts:
        if isinstance(c, types.CodeType):
            yield from _code_objects(c)


def _references(fn: Any, roots: set[str]) -> list[Any]:
    """Functions and classes of ours that ``fn`` (a function) names: globals, attributes of our modules
    (``cindex.FloatIndex``, ``from cbir.train import fit`` inside the body) and closure cells."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return []
    g = getattr(fn, "__globals__", {})
    names = [n for c in _code_objects(code) for n in c.co_names]
    mods = [g[n] for n in names if isinstance(g.get(n), types.ModuleType)]
    for n in names:  # ``from cbir.train import fit`` inside the body: the module may not be imported yet
        if _ours_module(n, roots) and "." in n:
            try:
                mods.append(importlib.import_module(n))
            except ImportError:
                pass
    mods = [m for m in mods if _ours_module(m.__name__, roots)]
    found = [g[n] for n in names if n in g]
    found += [getattr(m, n) for m in mods for n in names if hasattr(m, n)]
    for cell in fn.__closure__ or ():
        try:
            v = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        found.append(v if (inspect.isfunction(v) or inspect.isclass(v) or inspect.ismethod(v)) else type(v))
    out = []
    for v in found:
        v = getattr(v, "__func__", v)  # bound methods
        if _is_ours(v, roots):
            out.append(v)
    return out


def _members_refs(obj: Any, roots: set[str]) -> list[Any]:
    """What one function, or a class (its bases of ours and all its methods), refers to."""
    if not inspect.isclass(obj):
        return _references(obj, roots)
    out = [b for b in obj.__mro__[1:] if _is_ours(b, roots)]
    for m in vars(obj).values():
        m = getattr(getattr(m, "__func__", m), "fget", getattr(m, "__func__", m))  # static/class methods, properties
        if inspect.isfunction(m):
            out += _references(m, roots)
    return out


def _reach(objs: tuple[Any, ...]) -> dict[str, Any]:
    """Qualified name -> object for ``objs`` and every ``cbir`` function or class they reach, transitively."""
    roots = {getattr(getattr(o, "__func__", o), "__module__", "") for o in objs}
    stack, seen = [getattr(o, "__func__", o) for o in objs], {}
    while stack:
        obj = inspect.unwrap(stack.pop())
        name = f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', repr(obj))}"
        if name in seen:
            continue
        seen[name] = obj
        stack += _members_refs(obj, roots)
    return seen


def _source(obj: Any) -> str:
    try:
        return inspect.getsource(obj)
    except (OSError, TypeError):
        return ""


def code_version(*objs: Any) -> str:
    """Short SHA-256 of the source of ``objs`` (functions, classes, bound methods, lambdas) and of every
    ``cbir`` function or class they refer to, transitively (classes with all their methods).

    Used in cache keys: editing any of that code changes the key, editing code it does not reach (a
    plotting helper in the same module) does not.
    """
    blob = "\n".join(f"## {k}\n{_source(v)}" for k, v in sorted(_reach(objs).items()))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def code_reach(*objs: Any) -> list[str]:
    """The qualified names :func:`code_version` hashes for ``objs`` (to see what a key depends on)."""
    return sorted(_reach(objs))


def key(**params: Any) -> str:
    """Short (16 hex) SHA-256 of the parameters; order-independent, arrays hashed by content."""
    blob = json.dumps(_canonical(params), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def artifact_path(cache_dir: str | Path, name: str, params: Mapping[str, Any], ext: str) -> Path:
    """``<cache_dir>/<name>-<key(params)>.<ext>`` (folder created)."""
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    return cache_dir / f"{name}-{key(**params)}.{ext.lstrip('.')}"


TMP_MAX_AGE_S = 24 * 3600
"""A temporary file older than this is removed even if a process with its writer's PID exists (PID reuse)."""

_swept: set[str] = set()


class CorruptArtifact(RuntimeError):
    """A cached file could not be read; it has been removed, so the next call recomputes it."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sweep_tmp(folder: str | Path, max_age_s: float = TMP_MAX_AGE_S) -> list[Path]:
    """Remove temporary files in ``folder`` whose writer is gone (dead PID) or that are older than ``max_age_s``.

    Returns the removed paths. Files of live writers younger than the limit are kept.
    """
    removed = []
    now = time.time()
    for f in Path(folder).glob(".*.tmp"):
        parts = f.name.split(".")
        pid = int(parts[-3]) if len(parts) >= 4 and parts[-3].isdigit() else None
        try:
            old = now - f.stat().st_mtime > max_age_s
        except FileNotFoundError:
            continue
        if old or pid is None or not _pid_alive(pid):
            f.unlink(missing_ok=True)
            removed.append(f)
    return removed


def _sweep_once(folder: Path) -> None:
    if str(folder) not in _swept:
        _swept.add(str(folder))
        removed = sweep_tmp(folder)
        if removed:
            print(f"cache: removed {len(removed)} temporary file(s) left by interrupted writers in {folder}")


def _atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_once(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)
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


def _corrupt(path: Path, err: BaseException) -> CorruptArtifact:
    Path(path).unlink(missing_ok=True)
    msg = f"cache artifact {path} is unreadable ({type(err).__name__}: {err}); removed it, so it is recomputed"
    warnings.warn(msg, stacklevel=3)
    return CorruptArtifact(msg)


def load_npz(path: str | Path) -> dict[str, np.ndarray]:
    """Arrays of a cached ``.npz``; a corrupt file is removed and :class:`CorruptArtifact` raised."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, EOFError, ValueError, OSError, KeyError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise _corrupt(Path(path), err) from None


def save_torch_atomic(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to ``path`` atomically (state dicts, tensors, plain containers)."""
    import torch

    return _atomic_write(Path(path), lambda tmp: torch.save(obj, tmp))


def load_torch(path: str | Path) -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU; a corrupt file is removed and
    :class:`CorruptArtifact` raised (the caller's next run recomputes it)."""
    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as err:  # noqa: BLE001 - torch raises many kinds (RuntimeError, UnpicklingError, IndexError...)
        raise _corrupt(Path(path), err) from None


def save_json_atomic(obj: Any, path: str | Path) -> Path:
    return _atomic_write(Path(path), lambda tmp: tmp.write_text(json.dumps(obj, indent=1, default=str)))


def cached_npz(name: str, params: Mapping[str, Any], compute: Callable[[], Mapping[str, np.ndarray]],
               cache_dir: str | Path, *, verbose: bool = True, code: Any = None) -> dict[str, np.ndarray]:
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
    code : callable or sequence of callables, optional
        The code the arrays depend on; its :func:`code_version` joins the key. Default: ``compute`` itself
        (with everything of ``cbir`` it reaches, including the methods of objects it closes over).
    """
    code = compute if code is None else code
    code = tuple(code) if isinstance(code, (list, tuple)) else (code,)
    params = {**dict(params), "__code__": code_version(*code)}
    path = artifact_path(cache_dir, name, params, "npz")
    if path.exists():
        try:
            arrays = load_npz(path)
        except CorruptArtifact:
            pass  # reported and removed: compute it again below
        else:
            if verbose:
                print(f"cache hit: {name} [{path.stem.split('-')[-1]}]")
            return arrays
    arrays = {k: np.asarray(v) for k, v in compute().items()}
    save_npz_atomic(path, **arrays)
    if verbose:
        print(f"cache store: {name} [{path.stem.split('-')[-1]}]")
    return arrays
