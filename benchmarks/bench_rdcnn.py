"""Benchmark: RDCNN featurisation speed, tiled matrix product vs a loop over kernels.

Measures images/second of :meth:`cbir.models.rdcnn.RandomDepthwiseSignNet.transform` (block 1 as one tiled
matmul of unfolded patches x all kernels, depthwise blocks as grouped convolutions) against
:func:`cbir.models.rdcnn.naive_rdcnn_features` (one ``conv2d`` per kernel, "repeat this k times" as the paper
words it) for (k=5, b=1) and (k=3, b=2) at m = 1,000 and 10,000 on 32x32 RGB images, in the same run.
The naive path runs on fewer images (one batch) and its per-image rate is reported as measured; both
rates are per image for the full m, so the ratio is the speed-up. Checks that both give the same features.

Usage::

    python benchmarks/bench_rdcnn.py               # 2 threads, < 3 min
    python benchmarks/bench_rdcnn.py --threads 8 --n-fast 512
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
from cbir.models.rdcnn import RandomDepthwiseSignNet, naive_rdcnn_features  # noqa: E402


def rate(fn, n_images: int, repeats: int = 1) -> float:
    """Best-of-``repeats`` images/second of ``fn()``."""
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return n_images / best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--n-fast", type=int, default=256, help="images for the fast path at m=1000 (m=10000: /4)")
    ap.add_argument("--n-naive", type=int, default=32, help="images for the naive loop (one batch)")
    ap.add_argument("--ms", type=int, nargs="+", default=[1000, 10000])
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (args.n_fast, 32, 32, 3), dtype=np.uint8)
    print(f"RDCNN featurisation, 32x32 RGB, torch {torch.__version__}, {platform.machine()} "
          f"{args.threads} threads")
    print(f"{'k':>2} {'b':>2} {'m':>6} {'fast img/s':>11} {'naive img/s':>12} {'speed-up':>9} {'max |diff|':>10}")
    t_all = time.perf_counter()
    rows = []
    for k, b in [(5, 1), (3, 2)]:
        for m in args.ms:
            net = RandomDepthwiseSignNet(k=k, b=b, m=m, seed=0)
            n_fast = max(8, args.n_fast * 1000 // max(m, 1000))
            xf = x[:n_fast]
            net.transform(xf[:8])  # warm-up
            fast = rate(lambda: net.transform(xf), n_fast, repeats=2 if m <= 1000 else 1)
            xn = x[:args.n_naive]
            t0 = time.perf_counter()
            ref = naive_rdcnn_features(net, xn)
            naive = args.n_naive / (time.perf_counter() - t0)
            diff = float(np.abs(net.transform(xn) - ref).max())
            rows.append((k, b, m, fast, naive))
            print(f"{k:>2} {b:>2} {m:>6} {fast:>11.1f} {naive:>12.1f} {fast / naive:>8.1f}x {diff:>10.2g}",
                  flush=True)
    print(f"total {time.perf_counter() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
