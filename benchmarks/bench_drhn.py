"""Benchmark: DRHN training throughput and code-generation latency on this machine (notebook 03).

For DRHN-n with n = 1, 3, 9 (Table 4.1 networks of 15, 39 and 111 weight layers; 48-bit hash layer) it
measures, on random 32x32 inputs (speed does not depend on content):

* training images/second — forward, cross-entropy, backward and an SGD-momentum step on batches of 128
  (the thesis' batch size), after warm-up steps; compare with Table 5.4 (seconds per 100k-image epoch);
* code generation ms/image — one image per forward pass to the hash layer and the 0.5 threshold
  (Eq. 4.7), median over images, as in Table 5.5; plus the batched throughput (batches of 500).

Runs in about 1 minute on 2 CPU cores (bounded by ``--budget`` seconds per measurement):

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


#: Table 5.4 (seconds per training epoch) and Table 5.5 (ms per code, 48 bits) of the thesis, for the ratios.
THESIS_SEC_PER_EPOCH = {1: 66.41, 2: 122.22, 3: 184.57, 4: 263.72, 5: 316.51, 9: 858.01, 15: 1213.72, 16: 989.50}
THESIS_MS_PER_CODE_48 = {1: 4.681, 2: 8.554, 3: 12.759, 4: 15.466, 5: 19.375, 9: 37.188, 15: 61.635, 16: 67.263}


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
          f"{'codes img/s (batch 500)':>24} {'train x DRHN-1':>15} {'thesis':>7} {'code x DRHN-1':>14} {'thesis':>7}")
    base = None
    for n in args.depths:
        m = DRHN(n, args.bits)
        tps = train_images_per_second(m, args.batch, args.budget)
        ms = code_ms_per_image(m, budget=args.budget / 2)
        bps = code_batched_images_per_second(m, budget=args.budget / 2)
        base = base or (tps, ms)
        t_ratio, c_ratio = base[0] / tps, ms / base[1]
        th_t = THESIS_SEC_PER_EPOCH.get(n, float("nan")) / THESIS_SEC_PER_EPOCH[1]
        th_c = THESIS_MS_PER_CODE_48.get(n, float("nan")) / THESIS_MS_PER_CODE_48[1]
        print(f"{'DRHN-' + str(n):>8} {count_parameters(m):>9} {tps:>12.1f} {18000 / tps:>12.1f} {ms:>16.2f} "
              f"{bps:>24.1f} {t_ratio:>15.2f} {th_t:>7.2f} {c_ratio:>14.2f} {th_c:>7.2f}", flush=True)
    print("ratios: cost of DRHN-n relative to the first depth measured (DRHN-1 by default); 'thesis' = the same ratio "
          "from Table 5.4 (s/epoch) and Table 5.5 (ms/code, 48 bits) on the thesis' GPU")


if __name__ == "__main__":
    main()
