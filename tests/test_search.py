"""Tests for cbir.search: one-step Hamming and two-step (Hamming pool + cosine rerank) search."""
import numpy as np
import pytest

from cbir.hashing import pack_bits
from cbir.index import linear_scan_knn
from cbir.search import build_binary_index, cosine_linear_scan, one_step_search, speed_scaling, two_step_search


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    n, q, d, b = 300, 20, 16, 24
    xb = rng.standard_normal((n, d)).astype(np.float32)
    xq = rng.standard_normal((q, d)).astype(np.float32)
    cb = pack_bits(rng.integers(0, 2, (n, b)))
    cq = pack_bits(rng.integers(0, 2, (q, b)))
    return xb, xq, cb, cq, b


def _brute_hamming(cb, cq, b):
    bb = np.unpackbits(cb, axis=1)[:, :b].astype(int)
    bq = np.unpackbits(cq, axis=1)[:, :b].astype(int)
    return (bq[:, None, :] != bb[None, :, :]).sum(-1)


def test_one_step_equals_bruteforce_ranking(data):
    xb, xq, cb, cq, b = data
    res = one_step_search(build_binary_index(cb, b), cq, k=300)  # full ranking: no cut-off ties
    d = _brute_hamming(cb, cq, b)
    ref = np.lexsort((np.broadcast_to(np.arange(300), d.shape), d), axis=-1)
    np.testing.assert_array_equal(res.rankings, ref)
    np.testing.assert_array_equal(res.scores, np.take_along_axis(d, ref, 1))
    assert res.timings["fine_s"] == 0.0


def test_one_step_topk_distances_match(data):
    xb, xq, cb, cq, b = data
    res = one_step_search(build_binary_index(cb, b), cq, k=10)
    d = np.sort(_brute_hamming(cb, cq, b), axis=1)[:, :10]
    np.testing.assert_array_equal(res.scores, d)  # distances identical; members may differ only on ties


@pytest.mark.parametrize("mode", [{"pool_size": 300}, {"radius": 24}])
def test_two_step_with_whole_database_equals_cosine_scan(data, mode):
    xb, xq, cb, cq, b = data
    res = two_step_search(build_binary_index(cb, b), cq, xb, xq, 15, **mode)
    _, ref = linear_scan_knn(xb, xq, 15, metric="cosine")
    np.testing.assert_array_equal(res.rankings, ref)
    np.testing.assert_array_equal(res.pool_sizes, 300)
    lin = cosine_linear_scan(xb, xq, 15)
    np.testing.assert_array_equal(lin.rankings, ref)
    np.testing.assert_allclose(res.scores, lin.scores, atol=1e-5)
    assert set(res.timings) == {"coarse_s", "fine_s", "total_s"}


def test_two_step_radius_pool_hand_example():
    # 4-bit codes; query 0000. db: 0000 (d0), 0001 (d1), 0011 (d2), 1111 (d4)
    bits = np.array([[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 1], [1, 1, 1, 1]])
    idx = build_binary_index(pack_bits(bits), 4)
    q = pack_bits(np.zeros((1, 4), int))
    # features: item 3 is the most similar in cosine, item 2 next, but only items 0,1 are within r=1
    xb = np.array([[0.0, 1.0], [0.3, 1.0], [0.9, 0.1], [1.0, 0.0]], np.float32)
    xq = np.array([[1.0, 0.0]], np.float32)
    res = two_step_search(idx, q, xb, xq, 2, radius=1)
    np.testing.assert_array_equal(res.rankings, [[1, 0]])
    np.testing.assert_array_equal(res.pool_sizes, [2])
    # k=3 > pool within r=1 -> pool widened to the 3 Hamming-nearest (0, 1, 2)
    res = two_step_search(idx, q, xb, xq, 3, radius=1)
    np.testing.assert_array_equal(res.rankings, [[2, 1, 0]])
    # top-p pool of 3 excludes item 3
    res = two_step_search(idx, q, xb, xq, 2, pool_size=3)
    np.testing.assert_array_equal(res.rankings, [[2, 1]])


def test_two_step_cosine_ties_broken_by_index():
    bits = np.zeros((4, 8), int)
    idx = build_binary_index(pack_bits(bits), 8)
    xb = np.array([[1, 0], [2, 0], [0, 1], [3, 0]], np.float32)  # items 0, 1, 3 tie at cos = 1
    res = two_step_search(idx, pack_bits(np.zeros((1, 8), int)), xb, np.array([[1, 0]], np.float32), 3, pool_size=4)
    np.testing.assert_array_equal(res.rankings, [[0, 1, 3]])


def test_two_step_errors(data):
    xb, xq, cb, cq, b = data
    idx = build_binary_index(cb, b)
    with pytest.raises(ValueError, match="exactly one"):
        two_step_search(idx, cq, xb, xq, 5)
    with pytest.raises(ValueError, match="pool_size"):
        two_step_search(idx, cq, xb, xq, 5, pool_size=3)
    with pytest.raises(ValueError, match="rows"):
        two_step_search(idx, cq, xb[:10], xq, 5, pool_size=10)
    with pytest.raises(ValueError, match="n_bits"):
        build_binary_index(cb, 64)
    with pytest.raises(ValueError, match="k="):
        one_step_search(idx, cq, 0)


def test_speed_scaling_table():
    df = speed_scaling([200, 400], n_bits=32, feat_dim=8, n_queries=5, k=10, repeats=5)
    assert list(df.db_size) == [200, 200, 400, 400]
    assert (df.seconds > 0).all() and (df.repeats == 5).all() and (df.threads == 1).all()
    assert df.speedup.notna().sum() == 2
    ham = df[df.speedup.notna()]
    assert (ham.speedup_lo <= ham.speedup).all() and (ham.speedup <= ham.speedup_hi).all()
    assert (df.seconds_min <= df.seconds).all() and (df.seconds <= df.seconds_max).all()


def test_time_repeats_warms_up_sets_threads_and_restores_them():
    import faiss
    import torch

    from cbir.search import time_repeats

    calls, seen = [], []
    before = (torch.get_num_threads(), faiss.omp_get_max_threads())

    def fn():
        calls.append(1)
        seen.append((torch.get_num_threads(), faiss.omp_get_max_threads()))

    ts = time_repeats(fn, repeats=5, warmup=2, threads=1)
    assert ts.shape == (5,) and ts.dtype == np.float64 and (ts >= 0).all()
    assert len(calls) == 7 and set(seen) == {(1, 1)}  # 2 warm-up + 5 timed calls, all on one thread
    assert (torch.get_num_threads(), faiss.omp_get_max_threads()) == before
    with pytest.raises(ValueError, match="repeats=0"):
        time_repeats(fn, repeats=0)
    with pytest.raises(ValueError, match="threads=0"):
        time_repeats(fn, threads=0)


def test_spread_ratio_values():
    from cbir.search import spread_ratio

    slow = np.array([10.0, 12.0, 11.0, 13.0, 9.0])  # median 11
    fast = np.array([1.0, 2.0, 1.0, 1.0, 0.5])  # median 1
    assert spread_ratio(slow, fast) == (11.0, 4.5, 26.0)  # 11 / 1, 9 / 2, 13 / 0.5
    with pytest.raises(ValueError, match="positive"):
        spread_ratio(slow, np.array([0.0]))


def test_score_rankings_hand_computed():
    from cbir.search import score_rankings

    db_labels = np.array([0, 1, 0, 1])
    rankings = np.array([[0, 1, 2], [1, 0, 3]])  # query 0 (label 0): R N R; query 1 (label 1): R N R
    df = score_rankings(rankings, np.array([0, 1]), db_labels, ks=[1, 3], map_k=3)
    vals = dict(zip(df.metric + "@" + df.k.astype(str), df.value))
    assert vals["precision@1"] == 1.0
    assert vals["precision@3"] == pytest.approx(2 / 3)
    assert vals["mAP@3"] == pytest.approx((1 + 2 / 3) / 2)  # AP = (1/1 + 2/3) / 2 relevant retrieved
