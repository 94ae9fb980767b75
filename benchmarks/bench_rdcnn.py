"""Benchmark: RDCNN featurisation speed against the machine's matrix-multiply speed and a loop over kernels.

Block 1 of :class:`cbir.models.rdcnn.RandomDepthwiseSignNet` is one tiled matrix product of the unfolded
patches (L x C*k*k per image) with the kernels of a chunk (C*k*k x mc), followed by a sign/count. Its useful
work is ``2 * L * C*k*k * m`` FLOP per image, so the meaningful ceiling is a ``torch.matmul`` of the *same*
shapes (the tile of images, the kernel chunk) timed in the same run: the featuriser's GFLOP/s as a fraction of
that matmul's says how much the unfold, the threshold-count and the copies cost on top (target >= 70 % for
block 1 at k=5, b=1, m=10,000). Two matmul layouts are timed, the featuriser's own tiles and the whole problem
as large products, and the ratio is taken against the faster; for b > 1 only block 1's FLOP are counted
(the depthwise blocks are memory-bound grouped convolutions), so its ratio is not a matmul efficiency. Also reported: images/second, the speed-up over
:func:`cbir.models.rdcnn.naive_rdcnn_features` (one ``conv2d`` per kernel, the paper's "repeat this k times")
with a check that both give the same features, and the projected time of the paper's scale (m = 100,000 on
the 50,000 CIFAR-10 training images, plus the 10,000 test images): the featuriser is linear in m and N.

Timing: ``--threads`` threads (default 1, via :func:`cbir.runtime.set_threads`), one warm-up call, then the
median of ``--repeats`` (>= 5) calls with the min-max spread, the featuriser and both matmuls interleaved. No unit test asserts these numbers.

Usage::

    python benchmarks/bench_rdcnn.py                 # 1 thread, about 3 min on a shared 2-core machine
    python benchmarks/bench_rdcnn.py --threads 2 --n-images 64
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
from cbir.models import rdcnn  # noqa: E402
from cbir.models.rdcnn import RandomDepthwiseSignNet, naive_rdcnn_features  # noqa: E402
from cbir.runtime import set_threads  # noqa: E402


def timed(fns: dict, repeats: int) -> dict[str, tuple[float, float, float]]:
    """Time several functions *interleaved* (one warm-up call each, then ``repeats`` rounds calling each once),
    so that load changes on a shared machine hit all of them alike; ``name -> (median, min, max)`` seconds."""
    t: dict[str, list[float]] = {k: [] for k in fns}
    for fn in fns.values():
        fn()
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            t[k].append(time.perf_counter() - t0)
    return {k: (float(np.median(v)), float(np.min(v)), float(np.max(v))) for k, v in t.items()}


def block1_flop_per_image(net: RandomDepthwiseSignNet, size: int = 32) -> float:
    """Useful FLOP of block 1 per image: 2 * L * (C*k*k) * m (multiply-adds of the patch x kernel product)."""
    L = (size + 2 * net.pad - net.k + 1) ** 2
    return 2.0 * L * net.in_channels * net.k ** 2 * net.m


def matmul_reference(net: RandomDepthwiseSignNet, n_images: int, size: int = 32, tiles: str = "large"):
    """A function doing only the matrix products of block 1 for ``n_images`` images, on random data.

    ``tiles="same"``: exactly the products the featuriser does (for b=1: per image, (L, C*k*k) @ (C*k*k, 128)
    kernel tiles; for b>1: tiles of images (tile, L, C*k*k) @ (C*k*k, chunk)). ``tiles="large"``: the whole
    problem as few large products, (n*L, C*k*k) @ (C*k*k, chunk) per kernel chunk. The faster of the two is
    the machine's matmul speed for this problem.
    """
    k, p, C = net.k, net.pad, net.in_channels
    L = (size + 2 * p - k + 1) ** 2
    chunks = [min(net.kernel_chunk, net.m - lo) for lo in range(0, net.m, net.kernel_chunk)]
    g = torch.Generator().manual_seed(0)
    patches = torch.randn(min(n_images, net.batch_size), L, C * k * k, generator=g)
    ws = {mc: torch.randn(C * k * k, mc, generator=g) for mc in set(chunks)}
    one_block = net.b == 1 and (size + 2 * p - k + 1) % 2 == 0  # the featuriser's b=1 fast path
    if one_block and tiles == "same":  # it multiplies with the bias folded in: one more column and row
        patches = torch.cat([patches, torch.ones(*patches.shape[:2], 1)], 2)
        ws = {mc: torch.cat([w, torch.ones(1, mc)], 0) for mc, w in ws.items()}

    def run():
        for s in range(0, n_images, net.batch_size):
            b = min(net.batch_size, n_images - s)
            for mc in chunks:
                w = ws[mc]
                if tiles == "large":
                    torch.matmul(patches[:b].reshape(-1, C * k * k), w)
                elif one_block:
                    t = min(rdcnn._B1_KERNEL_TILE, mc)
                    for i in range(b):
                        for j in range(0, mc, t):
                            torch.mm(patches[i], w[:, j:j + t])
                else:
                    step = max(1, rdcnn._MAX_TILE_ELEMENTS // max(1, L * mc))
                    for t in range(0, b, step):
                        torch.matmul(patches[t:min(b, t + step)], w)
    return run


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n-images", type=int, default=32, help="images per timed call at m=10,000 (m=1,000: x4)")
    ap.add_argument("--n-naive", type=int, default=8, help="images for the one-conv-per-kernel loop")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--settings", default="5,1,10000;5,1,1000;3,2,10000",
                    help="k,b,m triples separated by ';' (the first is the target setting)")
    args = ap.parse_args(argv)
    if args.repeats < 5:
        ap.error(f"--repeats={args.repeats}: use >= 5 (median with spread)")
    set_threads(args.threads)
    x = np.random.default_rng(0).integers(0, 256, (4 * args.n_images, 32, 32, 3), dtype=np.uint8)
    print(f"RDCNN featurisation, 32x32 RGB, torch {torch.__version__}, {platform.machine()}, "
          f"{args.threads} thread(s), median of {args.repeats} after a warm-up (min-max)")
    hdr = (f"{'k':>2} {'b':>2} {'m':>6} {'img/s':>16} {'block-1 GFLOP/s':>22} {'matmul same tiles':>22} "
           f"{'matmul large':>22} {'ratio':>6} {'naive img/s':>11} {'speed-up':>8} {'max|diff|':>9}")
    print(hdr)
    t_all = time.perf_counter()
    first = None
    for spec in args.settings.split(";"):
        k, b, m = (int(v) for v in spec.split(","))
        net = RandomDepthwiseSignNet(k=k, b=b, m=m, seed=0)
        n = max(8, args.n_images * 10000 // max(m, 2500))
        xf = x[:n]
        res = timed({"feat": lambda: net.transform(xf), "same": matmul_reference(net, n, tiles="same"),
                     "large": matmul_reference(net, n, tiles="large")}, args.repeats)
        (med, lo, hi), same, large = res["feat"], res["same"], res["large"]
        flop = block1_flop_per_image(net) * n
        mm = min(same[0], large[0])  # the machine's matmul speed for this problem: the faster layout
        xn = x[:args.n_naive]
        t0 = time.perf_counter()
        ref = naive_rdcnn_features(net, xn)
        naive = args.n_naive / (time.perf_counter() - t0)
        diff = float(np.abs(net.transform(xn) - ref).max())
        ips = n / med
        gf = lambda t: f"{flop / t[0] / 1e9:>7.1f} ({flop / t[2] / 1e9:.1f}-{flop / t[1] / 1e9:.1f})"  # noqa: E731
        print(f"{k:>2} {b:>2} {m:>6} {ips:>6.1f} ({n / hi:.1f}-{n / lo:.1f}) {gf((med, lo, hi)):>22} "
              f"{gf(same):>22} {gf(large):>22} {mm / med:>5.0%} {naive:>11.2f} {ips / naive:>7.1f}x {diff:>9.2g}",
              flush=True)
        if first is None:
            first = (k, b, m, ips, mm / med)
    k, b, m, ips, ratio = first
    for n_img, what in ((50000, "the 50,000 training images"), (60000, "train + test (60,000)")):
        secs = n_img * (100000 / m) / ips
        print(f"projected: k={k} b={b} m=100,000 on {what}: {secs / 3600:.1f} h at {args.threads} thread(s) "
              f"({ips * m / 100000:.2f} img/s; linear in m and N)")
    print(f"block 1 at k={k}, b={b}, m={m}: {ratio:.0%} of the faster torch.matmul layout "
          f"({'meets' if ratio >= 0.7 else 'below'} the 70 % target)")
    print(f"total {time.perf_counter() - t_all:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
