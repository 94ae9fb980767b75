"""Benchmark: top-100 Hamming search over 1,000,000 48-bit codes (notebook 02, latent-layer hashing).

Compares, in one run and on the same random codes:

* faiss ``IndexBinaryFlat`` through :class:`cbir.index.BinaryIndex` (48-bit codes zero-padded to 64 bits);
* a vectorised NumPy linear scan: XOR of packed codes, ``np.bitwise_count`` popcount, ``argpartition`` +
  sort by (distance, index) (chunked over queries to bound memory; no loop over the database).

It prints queries/second, the faiss / NumPy ratio (target >= 25x), checks that the results are identical
(same distances everywhere; same indices except inside a group of equal distances that straddles
position k, where the members kept may differ), and times the two-step search (Hamming top-p coarse pool,
cosine fine re-ranking on 64-d float features) split into its coarse and fine parts.

Codes and features are synthetic (uniform random bits, Gaussian features): search time depends on sizes,
not on content.  Runs in well under 3 minutes on 2 CPU cores:

    python benchmarks/bench_hamming.py [--n 1000000] [--queries 200] [--threads 2]

On a CPU shared with other jobs, faiss's OpenMP threads can spin against them: compare ``--threads 1``
(measured on a loaded 2-core machine: faiss 466 q/s with 1 thread vs 131 q/s with 2).
"""
from __future__ import annotations

import argparse
import platform
import time

import numpy as np


def numpy_hamming_topk(codes_b: np.ndarray, codes_q: np.ndarray, k: int, words: str = "u8",
                       chunk: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Top-k by Hamming distance with NumPy popcounts; rows sorted by (distance, index).

    ``words="u8"`` works on the packed bytes as stored (XOR, ``np.bitwise_count``, sum over the 6 bytes);
    ``words="u64"`` first views each zero-padded code as one uint64 (one XOR + one popcount per pair).
    """
    D = np.empty((len(codes_q), k), np.int32)
    I = np.empty((len(codes_q), k), np.int64)
    if words == "u64":
        pad = (-codes_b.shape[1]) % 8
        b = np.pad(codes_b, ((0, 0), (0, pad))).view(np.uint64)
        qq = np.pad(codes_q, ((0, 0), (0, pad))).view(np.uint64)
    else:
        b, qq = codes_b, codes_q
    for s in range(0, len(codes_q), chunk):  # query chunks bound memory; the database is scanned vectorised
        x = np.bitwise_xor(qq[s:s + chunk, None, :], b[None, :, :])
        d = np.bitwise_count(x).sum(-1, dtype=np.int32)
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
        # complete the tie group at the cut (by index) so the (distance, index) order is exact
        kth = np.take_along_axis(d, part, 1).max(1)
        for r in range(d.shape[0]):  # per query (not per database item): exact tie handling
            cand = np.flatnonzero(d[r] <= kth[r])
            order = np.lexsort((cand, d[r, cand]))[:k]
            I[s + r] = cand[order]
            D[s + r] = d[r, cand[order]]
    return D, I


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="database codes")
    ap.add_argument("--bits", type=int, default=48)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--pool", type=int, default=1000, help="two-step coarse pool (top-p by Hamming)")
    ap.add_argument("--feat-dim", type=int, default=64, help="float feature dimension of the fine step")
    ap.add_argument("--numpy-queries", type=int, default=20, help="queries timed for the NumPy scans")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import faiss

    from cbir.index import BinaryIndex
    from cbir.runtime import set_threads
    from cbir.search import two_step_search

    set_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    n_bytes = (args.bits + 7) // 8
    codes = rng.integers(0, 256, (args.n, n_bytes), dtype=np.uint8)
    q = rng.integers(0, 256, (args.queries, n_bytes), dtype=np.uint8)
    print(f"machine: {platform.machine()} / {platform.processor() or '?'}, threads={args.threads}, "
          f"numpy {np.__version__}, faiss {faiss.__version__}")
    print(f"database: {args.n:,} random {args.bits}-bit codes (faiss pads to {((args.bits + 63) // 64) * 64} bits); "
          f"{args.queries} queries; top-{args.k}")

    t0 = time.perf_counter()
    index = BinaryIndex(args.bits).add(codes)
    t_build = time.perf_counter() - t0
    index.search(q[:2], args.k)  # warm-up
    t0 = time.perf_counter()
    Df, If = index.search(q, args.k)
    t_faiss = time.perf_counter() - t0

    qps_f = args.queries / t_faiss
    print(f"faiss binary       : {qps_f:12,.1f} queries/s  (index build {t_build:.2f} s)")
    n_np = min(args.queries, args.numpy_queries)  # the NumPy scan is slow: time it on a prefix of the queries
    for words, what in (("u8", "packed bytes, XOR + bitwise_count + sum over 6 bytes"),
                        ("u64", "codes viewed as uint64 words, one XOR + bitwise_count per pair")):
        t0 = time.perf_counter()
        Dn, In = numpy_hamming_topk(codes, q[:n_np], args.k, words=words)
        t_numpy = time.perf_counter() - t0
        qps_n = n_np / t_numpy
        same_d = np.array_equal(Df[:n_np], Dn)
        # members may differ only inside the tie group at the cut-off distance
        below = Dn < Dn[:, -1:]
        same_i = all(set(If[r][Df[r] < Df[r, -1]]) == set(In[r][below[r]]) for r in range(n_np))
        exact = np.array_equal(If[:n_np], In)
        print(f"NumPy scan ({words:>3}) : {qps_n:12,.1f} queries/s  ({what}; {n_np} queries)")
        print(f"  ratio faiss / NumPy ({words}): {qps_f / qps_n:.1f}x  (target >= 25x)")
        print(f"  results identical: distances {same_d}; indices below the cut-off distance {same_i}; "
              f"indices at every position incl. tie order at the cut {exact}")

    feats = rng.standard_normal((args.n, args.feat_dim), dtype=np.float32)
    qf = rng.standard_normal((args.queries, args.feat_dim), dtype=np.float32)
    two_step_search(index, q[:2], feats, qf[:2], args.k, pool_size=args.pool)  # warm-up
    res = two_step_search(index, q, feats, qf, args.k, pool_size=args.pool)
    t = res.timings
    print(f"two-step (pool top-{args.pool} by Hamming, cosine rerank on {args.feat_dim}-d floats): "
          f"coarse {t['coarse_s']:.3f} s ({100 * t['coarse_s'] / t['total_s']:.0f}%), "
          f"fine {t['fine_s']:.3f} s ({100 * t['fine_s'] / t['total_s']:.0f}%), "
          f"total {t['total_s']:.3f} s = {args.queries / t['total_s']:,.1f} queries/s")


if __name__ == "__main__":
    main()
