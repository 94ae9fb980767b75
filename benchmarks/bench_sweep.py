"""Benchmark: one sweep run sequentially vs on 2 local Dask workers (cbir.sweep), and the cost per task.

The sweep is notebook 03's depth x bits grid at a small scale (DRHN-n trained from scratch per cell on
random 32x32 images with a class signal; training speed does not depend on content), each cell at 1
thread in both modes and each mode with an empty cache folder, so every cell really trains. Printed:

* wall time of the sweep sequentially (``workers: 1``, in this process) and on a 2-worker local cluster
  (started and warmed up before timing; its start-up time is printed apart), and their ratio;
* the overhead per task: the wall time per empty task (a function that returns at once) through
  :func:`cbir.sweep.map_cells`, in-process and on the warm cluster.

On 2 cores the ratio can at best approach 2x; a machine shared with other jobs gives less, so compare
within one run and say what else was running; the modes are alternated over ``--rounds``. About 2-4
minutes on 2 cores:

    python benchmarks/bench_sweep.py [--depths 1 2] [--bits 8 16] [--epochs 2] [--per-class 30] [--empty 50] [--rounds 2]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np


def _data(per_class: int, classes: int = 10, size: int = 32, seed: int = 0):
    from cbir.experiments import residual_hashing_depth_sweep as ds

    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), per_class).astype(np.int64)
    x = rng.integers(0, 256, (len(y), size, size, 3), dtype=np.uint8)
    x[..., 0] = np.clip(rng.normal(y * 20 + 30, 30, (size, size, len(y))).transpose(2, 0, 1), 0, 255).astype(np.uint8)
    itr, iva = ds.split_train_val(y, 0.2, seed)
    q = rng.choice(len(y), size=min(len(y), 100), replace=False)
    return ds.SweepData(x[itr], y[itr], x[iva], y[iva], x, y, x[q], y[q], [f"c{i}" for i in range(classes)],
                        "bench", "random benchmark fixture")


def _params(args) -> dict:
    return dict(dataset="bench", image_size=32, n_per_class_train=args.per_class, n_per_class_test=10,
                val_fraction=0.2, epochs=args.epochs, batch_size=32, lr=0.05, momentum=0.9, weight_decay=1e-4,
                lr_drop_epochs=[], lr_drop_factor=0.1, augment="mirror", seed=0, map_k=50, precision_ks=[1, 10],
                patience=None, threads=1)


def _empty(i: int) -> int:
    return i


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depths", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--bits", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--per-class", type=int, default=30)
    ap.add_argument("--empty", type=int, default=50, help="empty tasks for the per-task overhead")
    ap.add_argument("--rounds", type=int, default=2, help="sequential/parallel runs, alternated (median reported)")
    args = ap.parse_args()

    import torch
    from dask.distributed import Client

    from cbir import sweep
    from cbir.experiments import residual_hashing_depth_sweep as ds

    torch.set_num_threads(1)
    data, P = _data(args.per_class), _params(args)
    cells = [{"n": n, "bits": b} for n in args.depths for b in args.bits]
    load = os.getloadavg()[0]
    print(f"sweep: DRHN depths {args.depths} x bits {args.bits} = {len(cells)} cells, {len(data.y_train)} training "
          f"images, {args.epochs} epochs, 1 thread per cell; {os.cpu_count()} cores, load average {load:.1f} at start")

    def run(**kw) -> float:
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            sweep.map_cells(ds.train_and_evaluate_cell, cells, P=P, threads=1, log=None,
                            shared={"data": data, "P": P, "device": "cpu", "cache_dir": d}, **kw)
            return time.perf_counter() - t0

    t0 = time.perf_counter()
    seq, par = [], []
    with sweep.client(workers=2, threads=1) as c:
        c.run(lambda: __import__("cbir.experiments.residual_hashing_depth_sweep"))  # warm the workers' imports
        t_start = time.perf_counter() - t0
        addr = c.scheduler.address
        for _ in range(args.rounds):  # alternated, so a change of load on a shared machine hits both modes
            seq.append(run(workers=1))
            par.append(run(scheduler=addr))
        t0 = time.perf_counter()
        sweep.map_cells(_empty, [{"i": i} for i in range(args.empty)], scheduler=addr, threads=1, log=None)
        per_task_dask = (time.perf_counter() - t0) / args.empty
        with Client(addr) as raw:  # the same on plain Dask (without map_cells' thread/seed set-up per cell)
            t0 = time.perf_counter()
            raw.gather(raw.map(_empty, range(args.empty), pure=False))
            per_task_raw = (time.perf_counter() - t0) / args.empty
    t_seq, t_par = float(np.median(seq)), float(np.median(par))
    t0 = time.perf_counter()
    sweep.map_cells(_empty, [{"i": i} for i in range(args.empty)], workers=1, threads=1, log=None)
    per_task_seq = (time.perf_counter() - t0) / args.empty
    print(f"{'mode (median of rounds)':<34} {'wall s':>8} {'per cell s':>11}")
    print(f"{'sequential (workers 1, in-process)':<34} {t_seq:>8.1f} {t_seq / len(cells):>11.2f}")
    print(f"{'2 local Dask workers':<34} {t_par:>8.1f} {t_par / len(cells):>11.2f}")
    print("rounds (sequential / 2 workers, s): " + "; ".join(f"{a:.1f} / {b:.1f} = {a / b:.2f}x" for a, b in zip(seq, par)))
    print(f"speed-up sequential / 2 workers (medians): {t_seq / t_par:.2f}x (cluster start-up + warm-up {t_start:.1f} s, "
          "not included)")
    print(f"overhead per task (empty task, {args.empty} tasks): map_cells in-process {1e3 * per_task_seq:.1f} ms, "
          f"map_cells on the 2 workers {1e3 * per_task_dask:.1f} ms (includes connecting a client), "
          f"plain client.map {1e3 * per_task_raw:.1f} ms")
    print(f"load average at the end {os.getloadavg()[0]:.1f} (other jobs on the machine slow both modes)")


if __name__ == "__main__":
    main()
