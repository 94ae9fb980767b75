"""Benchmark: FU / RRI target construction time, faiss k-NN vs NumPy brute force (notebook 05).

Tzelepi & Tefas build a target for every training image from its nearest neighbours (FU, Eq. 1-3: mean of
the n nearest; RRI, Eq. 4-8: nearest irrelevant per class). This times, on the same random features
(speed depends on sizes, not content; default 20,000 x 1,280 float32 — the medium profile's CIFAR-10
database with EfficientNet-Lite0 pooled features):

* ``cbir.retarget.fu_targets`` / ``rri_targets`` — neighbour search through faiss (:mod:`cbir.index`);
* the same targets from a NumPy brute force: dense Euclidean distances (chunked over rows, no loop over
  the database) + ``argpartition`` + mean;

and checks that both give the same targets (up to ties). It also times one retraining epoch of the
FC6/FC7 head over ``--train`` samples. Runs in about 1-3 minutes on 2 CPU cores:

    python benchmarks/bench_retarget.py [--n 20000] [--dim 1280] [--threads 2]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from cbir import retarget
from cbir.runtime import describe_device, set_threads


def numpy_fu_targets(x: np.ndarray, n: int, eta: float, chunk: int = 1024) -> np.ndarray:
    """Eq. 3 with a dense NumPy neighbour search (reference)."""
    sq = (x.astype(np.float64) ** 2).sum(1)
    out = np.empty_like(x)
    for s in range(0, len(x), chunk):
        xs = x[s:s + chunk]
        d = sq[s:s + chunk, None] + sq[None, :] - 2.0 * (xs @ x.T)
        d[np.arange(len(xs)), np.arange(s, s + len(xs))] = np.inf  # exclude self
        idx = np.argpartition(d, n, axis=1)[:, :n]
        out[s:s + chunk] = xs - 2 * eta * (xs - x[idx].mean(1))
    return out


def numpy_rri_targets(x: np.ndarray, y: np.ndarray, n: int, beta: float, chunk: int = 1024) -> np.ndarray:
    """Eq. 8 (m = all relevant) with a dense NumPy search of the n nearest irrelevant (reference)."""
    sq = (x.astype(np.float64) ** 2).sum(1)
    sums = np.zeros((y.max() + 1, x.shape[1]))
    np.add.at(sums, y, x)
    cnt = np.bincount(y)
    mu_pos = (sums[y] - x) / (cnt[y] - 1)[:, None]
    out = np.empty_like(x)
    for s in range(0, len(x), chunk):
        xs, ys = x[s:s + chunk], y[s:s + chunk]
        d = sq[s:s + chunk, None] + sq[None, :] - 2.0 * (xs @ x.T)
        d[ys[:, None] == y[None, :]] = np.inf  # relevant (and self) excluded
        idx = np.argpartition(d, n, axis=1)[:, :n]
        mu_neg = x[idx].mean(1)
        out[s:s + chunk] = xs - (1 - beta) * (xs - mu_pos[s:s + chunk]) + beta * (xs - mu_neg)
    return out


def timed(fn, *args, **kw):
    t0 = time.perf_counter()
    out = fn(*args, **kw)
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--dim", type=int, default=1280)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--train", type=int, default=3000, help="samples in the timed retraining epoch")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    set_threads(a.threads)
    rng = np.random.default_rng(0)
    y = rng.integers(0, a.classes, a.n)
    x = (np.abs(rng.normal(size=(a.n, a.dim))) * 0.1 + 0.05 * (y[:, None] == np.arange(a.dim) % a.classes)
         ).astype(np.float32)
    print(f"device: {describe_device()}; features {a.n} x {a.dim}, {a.classes} classes")
    rows = []
    t_fu, s_fu = timed(retarget.fu_targets, x, n_neighbors=2, eta=0.5)
    r_fu, s_fu_np = timed(numpy_fu_targets, x, 2, 0.5)
    rows.append(("FU targets (n=2)", s_fu, s_fu_np, t_fu - r_fu))
    t_rri, s_rri = timed(retarget.rri_targets, x, y, n=5, beta=0.2)
    r_rri, s_rri_np = timed(numpy_rri_targets, x, y, 5, 0.2)
    rows.append(("RRI targets (all +, 5 -)", s_rri, s_rri_np, t_rri - r_rri))
    # rows that differ: a neighbour swapped at a near-tie of float32 (faiss) vs float64 (NumPy) distances
    print(f"{'step':28s} {'faiss s':>9s} {'numpy s':>9s} {'speed-up':>9s} {'max |diff|':>11s} {'rows > 1e-4':>12s}")
    for name, s1, s2, diff in rows:
        bad = int((np.abs(diff).max(1) > 1e-4).sum())
        print(f"{name:28s} {s1:9.2f} {s2:9.2f} {s2 / s1:8.1f}x {np.abs(diff).max():11.2e} {bad:12d}")
    head = retarget.RetargetHead(a.dim, "fc7")
    cfg = retarget.TrainConfig(epochs=1, batch_size=64, lr_fc6=1e-4, lr_fc7=1e-3)
    _, s_ep = timed(retarget.fit_targets, head, x[:a.train], t_rri[:a.train], cfg)
    print(f"one retraining epoch of the FC6/FC7 head on {a.train} samples: {s_ep:.2f} s "
          f"({a.train / s_ep:.0f} samples/s)")
    _, s_tr = timed(retarget.transform, head, x)
    print(f"re-representing {a.n} database features with the head: {s_tr:.2f} s")


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
