"""Map a function over the cells of a sweep: in this process, on local Dask workers, or on a cluster.

A *sweep* is a grid of independent cells (notebook 03's depth x bits, notebook 01's (k, b) grid and
m-sweep, ...). :func:`map_cells` runs ``fn(**cell, **shared)`` for every cell:

* ``workers: 1`` and no ``scheduler`` (the default): one after another in this process; Dask is not
  imported;
* ``workers: N > 1``: on a local Dask cluster of ``N`` single-task worker processes;
* ``scheduler: tcp://host:8786``: on the workers of an existing Dask scheduler;
* ``scheduler: slurm`` / ``pbs``: on a ``dask-jobqueue`` cluster (``SLURMCluster`` / ``PBSCluster``) built
  from ``shared.cluster``, the keyword arguments of that class (``cores``, ``memory``, ``walltime``,
  ``queue``, ``account``, ``job_extra_directives``, ...) plus ``jobs`` (how many batch jobs to start,
  default ``workers``). ``dask-jobqueue`` is imported only then.

Every cell runs with the same thread count (``threads``: torch, OpenMP/MKL/OpenBLAS through threadpoolctl
and the worker's environment, faiss) and after :func:`cbir.runtime.seed_everything` of the same seed,
wherever it is placed, so its result does not depend on placement or order. With ``name`` given, each
cell's result (a mapping of arrays) is written into the content-keyed cache (:mod:`cbir.cache`; on a
cluster the cache folder must be on a filesystem the workers share) and every result is read back from
there, so a sweep is assembled the same way whether its cells ran here, remotely or in an earlier run;
cells already in the cache are not run again. Without ``name`` the function stores its own artifacts (as
notebook 03's :func:`~cbir.experiments.residual_hashing_depth_sweep.train_cell` does) and its return
value comes back as it is.

A cell that raises is reported with its parameters, the exception type and message while the other cells
finish; the failures are raised together as one :class:`SweepError` (or returned in place of the results
with ``errors="keep"``). Progress is logged as ``cells done / total``.

Examples
--------
>>> out = map_cells(lambda k, x: {"y": x * k}, [{"k": 1}, {"k": 2}], shared={"x": np.ones(3)},
...                 log=None)                                              # doctest: +SKIP
>>> [o["y"].sum() for o in out]                                           # doctest: +SKIP
[3.0, 6.0]
"""
from __future__ import annotations

import contextlib
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from cbir import cache

#: ``shared.scheduler`` values that build a ``dask-jobqueue`` cluster, and the class each one uses.
JOBQUEUE = {"slurm": "SLURMCluster", "pbs": "PBSCluster"}
#: Address schemes a Dask scheduler listens on.
SCHEMES = ("tcp://", "tls://", "ucx://", "inproc://")
#: Environment variables that fix the thread pools of a worker process before it imports NumPy/torch.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class SweepError(RuntimeError):
    """One or more cells of a sweep failed; ``failures`` lists them (the other cells finished)."""

    def __init__(self, desc: str, failures: Sequence["CellFailure"], total: int):
        self.failures = list(failures)
        lines = [f"{desc}: {len(self.failures)} of {total} cell(s) failed (the others finished"
                 f"{' and are cached' if total > len(self.failures) else ''}):"]
        lines += [f"  - {f}" for f in self.failures]
        lines.append("fix the cause and rerun: cached cells are not run again")
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class CellFailure:
    """A cell that raised: its index, parameters, exception type and message, and the traceback text."""

    index: int
    params: dict
    error_type: str
    message: str
    traceback: str = ""

    def __str__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"cell {self.index} ({shown}): {self.error_type}: {self.message}"


# ------------------------------------------------------------------------------------------- settings
def check_scheduler(scheduler: Any) -> str | None:
    """``None``/``"local"`` (a local cluster or this process), a scheduler address (``tcp://host:8786``)
    or a ``dask-jobqueue`` kind (``"slurm"``, ``"pbs"``); anything else raises ``ValueError`` with the fix."""
    if scheduler is None or scheduler == "local":
        return None
    if isinstance(scheduler, str) and (scheduler in JOBQUEUE or scheduler.startswith(SCHEMES)):
        if scheduler.startswith(SCHEMES) and not scheduler.split("://", 1)[1]:
            raise ValueError(f"shared.scheduler={scheduler!r} has no host; write e.g. 'tcp://host:8786'")
        return scheduler
    raise ValueError(f"shared.scheduler={scheduler!r} is not a Dask scheduler: use null (local), "
                     f"an address such as 'tcp://host:8786', or one of {sorted(JOBQUEUE)} (dask-jobqueue, "
                     "with shared.cluster holding its settings)")


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"shared.{name}={value!r} must be a positive integer (1 = one at a time)")
    return int(value)


def settings(P: Mapping[str, Any] | None = None, *, workers: int | None = None, threads: int | None = None,
             scheduler: str | None = None, cluster: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Sweep settings: explicit arguments, else ``P``'s ``workers`` / ``threads`` / ``scheduler`` /
    ``cluster`` (the ``shared:`` keys of a profile), else 1 worker, 1 thread, no scheduler."""
    P = P or {}
    out = {"workers": workers if workers is not None else P.get("workers", 1),
           "threads": threads if threads is not None else P.get("threads", 1),
           "scheduler": scheduler if scheduler is not None else P.get("scheduler"),
           "cluster": dict(cluster if cluster is not None else (P.get("cluster") or {}))}
    out["workers"] = _positive_int("workers", out["workers"])
    out["threads"] = _positive_int("threads", out["threads"])
    out["scheduler"] = check_scheduler(out["scheduler"])
    return out


def parallel(P: Mapping[str, Any] | None = None, **kw: Any) -> bool:
    """Whether :func:`map_cells` with these settings runs on Dask (more than one worker, or a scheduler)."""
    s = settings(P, **kw)
    return s["workers"] > 1 or s["scheduler"] is not None


# ------------------------------------------------------------------------------------------- one cell
@contextlib.contextmanager
def cell_threads(n: int) -> Iterator[None]:
    """Torch, faiss and BLAS/OpenMP pools at ``n`` threads inside the block, restored after."""
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    try:
        import faiss

        faiss_before = faiss.omp_get_max_threads()
    except (ImportError, AttributeError):  # pragma: no cover - faiss is a dependency
        faiss = None
    torch.set_num_threads(n)
    if faiss is not None:
        faiss.omp_set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield
    finally:
        torch.set_num_threads(before)
        if faiss is not None:
            faiss.omp_set_num_threads(faiss_before)


def _run_cell(fn: Callable, cell: Mapping[str, Any], shared: Mapping[str, Any], path: str | None,
              threads: int, seed: int) -> tuple:
    """Run one cell (here or on a worker): threads and seeds first; store the arrays at ``path``.

    Returns ``("ok", value)`` (``value`` is None when stored) or ``("error", type, message, traceback)``:
    exceptions travel as text, so one that cannot be pickled still reaches the caller.
    """
    from cbir.runtime import seed_everything

    try:
        with cell_threads(threads):
            seed_everything(seed)
            value = fn(**cell, **shared)
            if path is None:
                return ("ok", value)
            if not isinstance(value, Mapping):
                raise TypeError(f"a cached sweep cell must return a mapping of arrays, got {type(value).__name__}")
            cache.save_npz_atomic(path, **{k: np.asarray(v) for k, v in value.items()})
            return ("ok", None)
    except Exception as err:  # noqa: BLE001 - every failure is reported with the cell's parameters
        return ("error", type(err).__name__, str(err), traceback.format_exc())


# ------------------------------------------------------------------------------------------- clusters
def _worker_env(threads: int) -> dict[str, str]:
    return {k: str(threads) for k in THREAD_ENV}


@contextlib.contextmanager
def client(P: Mapping[str, Any] | None = None, **kw: Any) -> Iterator[Any]:
    """A ``dask.distributed.Client`` for the settings (see :func:`settings`), closed on exit.

    ``workers > 1`` without a scheduler: a local cluster of that many worker processes, one task at a
    time each, their thread pools fixed through the environment. ``scheduler`` an address: that
    scheduler's workers (start them with ``OMP_NUM_THREADS`` etc. set; each cell also sets its own
    counts). ``slurm`` / ``pbs``: a ``dask-jobqueue`` cluster from ``cluster`` scaled to ``jobs`` jobs.
    """
    s = settings(P, **kw)
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError as err:  # pragma: no cover - dask is a dependency
        raise ImportError(f"shared.workers={s['workers']} / shared.scheduler={s['scheduler']!r} need "
                          "dask.distributed: pip install 'dask[distributed]' (or set workers: 1)") from err
    sched, cluster = s["scheduler"], None
    if sched is None:
        cluster = LocalCluster(n_workers=s["workers"], threads_per_worker=1, processes=True,
                               dashboard_address=":0", env=_worker_env(s["threads"]))
        c = Client(cluster)
    elif sched in JOBQUEUE:
        try:
            import dask_jobqueue
        except ImportError:
            raise ImportError(f"shared.scheduler={sched!r} needs dask-jobqueue: pip install dask-jobqueue "
                              "(or point shared.scheduler at a running scheduler, tcp://host:8786)") from None
        spec = dict(s["cluster"])
        jobs = int(spec.pop("jobs", s["workers"]))
        spec.setdefault("processes", 1)
        spec.setdefault("job_script_prologue", [f"export {k}={s['threads']}" for k in THREAD_ENV])
        cluster = getattr(dask_jobqueue, JOBQUEUE[sched])(**spec)
        cluster.scale(jobs=jobs)
        c = Client(cluster)
    else:
        c = Client(sched, timeout=30)
    try:
        yield c
    finally:
        c.close()
        if cluster is not None:
            cluster.close()


# ------------------------------------------------------------------------------------------- the map
def map_cells(fn: Callable[..., Any], cells: Sequence[Mapping[str, Any]], *, name: str | None = None,
              shared: Mapping[str, Any] | None = None, key: Mapping[str, Any] | None = None,
              P: Mapping[str, Any] | None = None, workers: int | None = None, threads: int | None = None,
              scheduler: str | None = None, cluster: Mapping[str, Any] | None = None, seed: int | None = None,
              cache_dir: str | Path | None = None, dask_client: Any = None, errors: str = "raise",
              desc: str | None = None, log: Callable[[str], None] | None = print) -> list:
    """``[fn(**cell, **shared) for cell in cells]``, in this process or as Dask tasks.

    Parameters
    ----------
    fn : callable
        A module-level function (workers import it by name) taking each cell's keys and ``shared``'s.
    cells : sequence of mappings
        One mapping per cell: small, plain values (ints, strings, lists) that name the cell; they go into
        its cache key and into its failure report.
    name : str, optional
        Cache family (``"rdcnn_grid_cell"``): ``fn`` then returns a mapping of arrays, stored as
        ``<cache_dir>/<name>-<key>.npz`` (key: the cell, ``key``, the code version of ``fn`` and the
        seed); results are read back from the cache, and cached cells are not run. ``None``: ``fn``
        caches its own artifacts and its return value (picklable) comes back as it is.
    shared : mapping, optional
        Keyword arguments common to every cell (data arrays, ``P``): sent to each worker once.
    key : mapping, optional
        What ``shared`` contributes to the cache key (default: ``shared`` itself, arrays by content,
        hashed once).
    P : Params, optional
        Supplies ``workers``, ``threads``, ``scheduler``, ``cluster``, ``seed`` and ``cache_dir`` unless
        given explicitly.
    workers, threads, scheduler, cluster : see :func:`settings` (``threads`` = threads per cell).
    seed : int, optional
        Every cell starts from :func:`cbir.runtime.seed_everything` of it (default ``P.seed``, else 0).
    dask_client : distributed.Client, optional
        Reuse a client (see :func:`client`) instead of starting a cluster for this call.
    errors : {"raise", "keep"}
        After all cells have run, raise one :class:`SweepError` listing the failed cells, or return a
        :class:`CellFailure` in place of each failed cell's result.
    desc : str, optional
        Name of the sweep in progress lines (default ``name`` or ``fn``'s name).
    log : callable or None
        Receives the progress lines (``"<desc>: 3/12 cells done"``); ``None`` is silent.

    Returns
    -------
    list
        One result per cell, in the order of ``cells``: a dict of arrays (``name`` given) or ``fn``'s value.

    Raises
    ------
    SweepError
        Some cells failed (``errors="raise"``); the message lists each with its parameters.
    ValueError
        Bad settings (workers, threads, scheduler, errors).
    """
    if errors not in ("raise", "keep"):
        raise ValueError(f"errors={errors!r}; use 'raise' or 'keep'")
    s = settings(P, workers=workers, threads=threads, scheduler=scheduler, cluster=cluster)
    cells = [dict(c) for c in cells]
    shared = dict(shared or {})
    P = P or {}
    seed = int(seed if seed is not None else P.get("seed", 0))
    desc = desc or name or getattr(fn, "__name__", "sweep")
    paths: list[str | None] = [None] * len(cells)
    if name is not None:
        if cache_dir is None:
            cache_dir = getattr(P, "cache_dir", None)
        if cache_dir is None:
            raise ValueError(f"map_cells(name={name!r}) stores results in the cache: pass cache_dir (or P)")
        base = cache.key(shared=dict(key) if key is not None else shared, code=cache.code_version(fn), seed=seed)
        paths = [str(cache.artifact_path(cache_dir, name, {"sweep": base, **c}, "npz")) for c in cells]
    todo = [i for i, p in enumerate(paths) if p is None or not Path(p).exists()]
    n_cached = len(cells) - len(todo)
    outcomes: dict[int, tuple] = {}
    progress = _Progress(desc, len(cells), n_cached, log)
    if todo and (s["workers"] > 1 or s["scheduler"] is not None or dask_client is not None):
        _map_dask(fn, cells, shared, paths, todo, s, seed, dask_client, outcomes, progress)
    else:
        for i in todo:
            outcomes[i] = _run_cell(fn, cells[i], shared, paths[i], s["threads"], seed)
            progress.done(outcomes[i][0] == "error")
    results, failures = [], []
    for i, c in enumerate(cells):
        out = outcomes.get(i, ("ok", None))
        if out[0] == "error":
            failures.append(CellFailure(i, c, *out[1:]))
            results.append(failures[-1])
        elif paths[i] is not None:
            try:
                results.append(cache.load_npz(paths[i]))
            except (cache.CorruptArtifact, FileNotFoundError) as err:
                failures.append(CellFailure(i, c, type(err).__name__, str(err)))
                results.append(failures[-1])
        else:
            results.append(out[1])
    if failures and errors == "raise":
        raise SweepError(desc, failures, len(cells))
    return results


class _Progress:
    def __init__(self, desc: str, total: int, cached: int, log):
        self.desc, self.total, self.n, self.cached, self.failed, self.log = desc, total, cached, cached, 0, log
        self.t0 = time.perf_counter()
        if log and total:
            log(f"{desc}: {total} cell(s), {cached} cached, {total - cached} to run")

    def done(self, failed: bool) -> None:
        self.n += 1
        self.failed += bool(failed)
        if self.log:
            extra = f", {self.failed} failed" if self.failed else ""
            self.log(f"{self.desc}: {self.n}/{self.total} cells done{extra} ({time.perf_counter() - self.t0:.0f} s)")


def _map_dask(fn, cells, shared, paths, todo, s, seed, dask_client, outcomes, progress) -> None:
    from dask.distributed import as_completed

    with (contextlib.nullcontext(dask_client) if dask_client is not None else client(**_kw(s))) as c:
        # each value as one object ([v]): dask would scatter a dict's or a list's items one by one (and fail on
        # an empty one)
        scattered = {k: c.scatter([v], broadcast=True)[0] for k, v in shared.items()} if shared else {}
        futures = {c.submit(_run_cell_scattered, fn, cells[i], scattered, paths[i], s["threads"], seed,
                            pure=False, key=f"cell-{i}-{os.getpid()}-{time.time_ns()}"): i for i in todo}
        for fut in as_completed(futures):
            i = futures[fut]
            try:
                outcomes[i] = fut.result()
            except Exception as err:  # noqa: BLE001 - a worker died (KilledWorker), a cancelled task
                outcomes[i] = ("error", type(err).__name__, str(err), "")
            progress.done(outcomes[i][0] == "error")


def _kw(s: Mapping[str, Any]) -> dict[str, Any]:
    return {"workers": s["workers"], "threads": s["threads"], "scheduler": s["scheduler"] or "local",
            "cluster": s["cluster"]}


def _run_cell_scattered(fn, cell, shared, path, threads, seed):
    """The task Dask runs: ``shared`` arrives with its scattered futures already resolved (Dask does it
    for futures inside a dict argument)."""
    return _run_cell(fn, cell, shared, path, threads, seed)
