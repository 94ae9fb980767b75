"""Benchmark: perceptual-hash throughput and RIS range search (notebook 04, Gaillard et al. 2018).

In one run, on the same images:

* images/second of the notebook's ``dct`` hash, pHash's ``ph_dct_imagehash`` batched in NumPy
  (:class:`cbir.hashing.perceptual.PHashDCTHash`; bit-exact with the CImg reference of
  ``tests/fixtures/phash_ref``), ``imagehash.phash`` (PIL + SciPy, one image at a time) and OpenCV's
  ``PHash`` (``dct_opencv``), median of 5 timed calls after a warm-up, 1 thread by default; the ratio to
  imagehash (target >= 5x); the bit agreement of FastDCTHash with OpenCV's ``PHash``
  (pHash's hash only samples 32 x 32 7 x 7 windows of each image, so its cost does not grow with the image);
  (most of the gap is the resize: OpenCV's bilinear 32 x 32 downscale reads ~4 source pixels per output,
  imagehash converts and Lanczos-resizes the whole image; the area-resize variant, which reads every pixel,
  is listed too);
* images/second of every hash of the notebook (OpenCV PHash / MarrHildreth / RadialVariance, FastDCTHash on
  a list of photos and on an equal-size batch, imagehash aHash / dHash / pHash / wHash);
* fixed-radius search time of the RIS benchmark at the paper's scale: N = 25,000 base images x 7 versions
  = 175,000 indexed 64-bit DCT codes (synthetic codes: every base code plus 6 copies with a few random bit
  flips, like modified images), 1,000 queries, radius 0.25 (16 bits) with :class:`cbir.index.BinaryIndex`
  (faiss); extrapolated to all 175,000 queries.

Images: the photos bundled with scikit-image / scikit-learn (``sample_photos``), repeated to
``--images`` items (real photos of 102 - 1411 px). Runs in well under 3 minutes on 2 CPU cores:

    python benchmarks/bench_phash.py [--images 300] [--threads 2] [--n-base 25000] [--queries 1000]
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np


def _rate(fn, images, repeat: int = 1) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(images)
        best = min(best, time.perf_counter() - t0)
    return len(images) / best, out


def _median_rate(fn, images, repeats: int = 5) -> tuple[float, tuple[float, float], object]:
    """img/s as the median of ``repeats`` timed calls after one warm-up call, with the (min, max) spread."""
    out = fn(images[:10])  # warm-up
    rates = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn(images)
        rates.append(len(images) / (time.perf_counter() - t0))
    return float(np.median(rates)), (float(min(rates)), float(max(rates))), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=300, help="photos hashed per method")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5, help="timed calls per headline hash (median reported)")
    ap.add_argument("--n-base", type=int, default=25000, help="N base images (x7 indexed codes)")
    ap.add_argument("--queries", type=int, default=1000, help="range-search queries timed")
    ap.add_argument("--radius", type=float, default=0.25, help="normalised radius (fraction of 64 bits)")
    args = ap.parse_args()

    import cv2
    import faiss
    import torch
    from PIL import Image

    from cbir.data import load_dataset
    from cbir.hashing import perceptual as P
    from cbir.index import BinaryIndex

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, {args.threads} threads; "
          f"numpy {np.__version__}, opencv {cv2.__version__}, faiss {faiss.__version__}")

    photos = list(load_dataset("sample_photos", split="all", verbose=False).images)
    images = [photos[i % len(photos)] for i in range(args.images)]
    shapes = np.array([im.shape[:2] for im in images])
    print(f"images: {len(images)} sample photos (repeated), {shapes.min()}-{shapes.max()} px sides")

    # --- headline: pHash's DCT hash (ours, batched) vs imagehash.phash vs OpenCV PHash, same images, same run
    dct = P.PHashDCTHash()
    fast = P.FastDCTHash()
    ih = P.ImageHashBaseline("phash")
    ocv = P.OpenCVHash("dct")
    r_dct, s_dct, c_dct = _median_rate(dct.hash_batch, images, args.repeats)
    r_ih, s_ih, _ = _median_rate(ih.hash_batch, images, args.repeats)
    r_ocv, s_ocv, c_ocv = _median_rate(ocv.hash_batch, images, args.repeats)
    r_fast, s_fast, c_fast = _median_rate(fast.hash_batch, images, args.repeats)
    print(f"\n== DCT hashes, img/s (median of {args.repeats} after a warm-up; min-max in brackets) ==")
    for label, r, sp in (("dct: pHash ph_dct_imagehash (PHashDCTHash, batched NumPy)", r_dct, s_dct),
                         ("imagehash.phash", r_ih, s_ih), ("dct_opencv: OpenCV PHash", r_ocv, s_ocv),
                         ("dct_fast: FastDCTHash (OpenCV PHash, batched NumPy)", r_fast, s_fast)):
        print(f"{label:58s} {r:9.0f}  [{sp[0]:.0f}-{sp[1]:.0f}]")
    print(f"ratio dct / imagehash.phash {r_dct / r_ih:6.1f}x  (target >= 5x); dct / OpenCV {r_dct / r_ocv:6.2f}x")
    agree = P.bit_agreement(c_fast, c_ocv, 64)
    print(f"bit agreement FastDCTHash vs OpenCV PHash: bit error rate {agree['bit_error_rate']:.4f}, "
          f"identical codes {agree['identical_fraction']:.3f} of {agree['n_images']} images")
    agree = P.bit_agreement(c_dct, c_ocv, 64)
    print(f"bit agreement pHash dct vs OpenCV PHash (different algorithms): bit error rate "
          f"{agree['bit_error_rate']:.4f}")

    # --- every hash's throughput
    same = np.stack([np.asarray(Image.fromarray(im).resize((384, 288))) for im in images])
    rows = [("PHashDCTHash dct (list of photos)", r_dct),
            ("PHashDCTHash dct (equal-size 384x288 array)", _rate(dct.hash_batch, same, repeat=3)[0]),
            ("FastDCTHash (list of photos)", r_fast), ("OpenCV PHash (dct_opencv)", r_ocv),
            ("FastDCTHash, area resize (antialiased)", _rate(P.FastDCTHash("area").hash_batch, images, repeat=2)[0]),
            ("FastDCTHash (equal-size 384x288 array)", _rate(fast.hash_batch, same, repeat=3)[0]),
            ("OpenCV PHash (equal-size 384x288 array)", _rate(ocv.hash_batch, same)[0])]
    sub = images[: max(20, len(images) // 3)]
    for name in ("mh", "rv"):
        rows.append((f"OpenCV {name.upper()} ({P.OpenCVHash(name).n_bits} bits)", _rate(P.OpenCVHash(name).hash_batch, sub)[0]))
    rows.append(("imagehash.phash", r_ih))
    for m in ("ahash", "dhash", "whash"):
        rows.append((f"imagehash.{m}", _rate(P.ImageHashBaseline(m).hash_batch, sub)[0]))
    print("\n== throughput of each hash ==")
    for name, r in rows:
        print(f"{name:42s} {r:10.0f} img/s")

    # --- RIS range search at the paper's scale (synthetic codes)
    rng = np.random.default_rng(0)
    n = args.n_base
    base_bits = rng.integers(0, 2, (n, 64), dtype=np.uint8)
    versions = [base_bits]
    for _ in range(6):  # modified versions: each flips ~4 random bits (Binomial(64, 1/16))
        flips = (rng.random((n, 64)) < 1 / 16).astype(np.uint8)
        versions.append(base_bits ^ flips)
    codes = np.packbits(np.concatenate(versions), axis=1)
    t0 = time.perf_counter()
    idx = BinaryIndex(64).add(codes)
    t_add = time.perf_counter() - t0
    q = codes[rng.choice(len(codes), args.queries, replace=False)]
    r_int = int(np.floor(args.radius * 64))
    t0 = time.perf_counter()
    lims, D, I = idx.range_search(q, r_int)
    t_rs = time.perf_counter() - t0
    per_q = t_rs / args.queries
    print(f"\n== range search: {len(codes):,} indexed 64-bit codes (N={n:,} x 7), radius {args.radius} "
          f"({r_int} bits), faiss IndexBinaryFlat ==")
    print(f"index add        {t_add * 1000:10.1f} ms")
    print(f"{args.queries} queries   {t_rs:10.3f} s  ({per_q * 1e3:.2f} ms/query, "
          f"{lims[-1] / args.queries:.1f} results/query)")
    print(f"all {len(codes):,} queries (extrapolated) {per_q * len(codes):10.1f} s")


if __name__ == "__main__":
    main()
