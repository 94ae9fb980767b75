"""Benchmark: DRHN training throughput and code-generation latency on this machine (notebook 03).

For DRHN-n with n = 1, 3, 9 (Table 4.1 networks of 15, 39 and 111 weight layers; 48-bit hash layer) it
measures, on random 32x32 inputs (speed does not depend on content):

* training images/second — forward, cross-entropy, backward and an SGD-momentum step on batches of 128
  (the thesis' batch size), after warm-up steps; compare with Table 5.4 (seconds per 100k-image epoch);
* code generation ms/image — one image per forward pass to the hash layer and the 0.5 threshold
  (Eq. 4.7), median over images, as in Table 5.5; plus the batched throughput (batches of 500).

Runs in about 1-2 minutes on 2 CPU cores (bounded by ``--budget`` seconds per measurement):

    python benchmarks/bench_drhn.py [--depths 1 3 9] [--threads 2] [--budget 8]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F

from cbir.models.drhn import DRHN, count_parameters
from cbir.runtime import describe_device


def train_images_per_second(model: DRHN, batch: int, budget: float, warmup: int = 1) -> float:
    """Training images/s over as many SGD steps as fit in ``budget`` seconds (at least 2)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, 32, 32)
    y = torch.randint(0, 10, (batch,))
    model.train()
    steps, t0 = 0, None
    while True:
        if steps == warmup:
            t0 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        steps += 1
        if t0 is not None and steps - warmup >= 2 and time.perf_counter() - t0 > budget:
            break
    return (steps - warmup) * batch / (time.perf_counter() - t0)


@torch.no_grad()
def code_ms_per_image(model: DRHN, budget: float, warmup: int = 3) -> float:
    """Median ms to produce one image's code (batch of 1)."""
    model.eval()
    x = torch.randn(1, 3, 32, 32)
    for _ in range(warmup):
        model.codes(x)
    times, t_end = [], time.perf_counter() + budget
    while len(times) < 5 or (time.perf_counter() < t_end and len(times) < 500):
        t0 = time.perf_counter()
        model.codes(x)
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1000)


@torch.no_grad()
def code_batched_images_per_second(model: DRHN, batch: int = 500, budget: float = 4.0) -> float:
    model.eval()
    x = torch.randn(batch, 3, 32, 32)
    model.codes(x)
    n, t0 = 0, time.perf_counter()
    while n == 0 or time.perf_counter() - t0 < budget:
        model.codes(x)
        n += batch
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--depths", type=int, nargs="+", default=[1, 3, 9])
    ap.add_argument("--bits", type=int, default=48)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget", type=float, default=8.0, help="seconds per training measurement")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"device: {describe_device(torch.device('cpu'))}, torch {torch.__version__}")
    print(f"{'model':>8} {'params':>9} {'train img/s':>12} {'s/epoch 18k':>12} {'ms/code (1 img)':>16} "
          f"{'codes img/s (batch 500)':>24}")
    for n in args.depths:
        m = DRHN(n, args.bits)
        tps = train_images_per_second(m, args.batch, args.budget)
        ms = code_ms_per_image(m, budget=args.budget / 2)
        bps = code_batched_images_per_second(m, budget=args.budget / 2)
        print(f"{'DRHN-' + str(n):>8} {count_parameters(m):>9} {tps:>12.1f} {18000 / tps:>12.1f} {ms:>16.2f} "
              f"{bps:>24.1f}", flush=True)
    print("thesis (own GPU): Table 5.4 s/epoch DRHN-1 66.4, DRHN-3 184.6, DRHN-9 858.0 (100k mirrored images); "
          "Table 5.5 ms/code DRHN-1 4.7, DRHN-3 12.1, DRHN-9 37.2 (48 bits: 4.68, 12.76, 37.19)")


if __name__ == "__main__":
    main()
