"""Tests of cbir.expansion: average QE (Eq. 15), alpha-QE, DBA, nine-crop spatial verification (Sec. 4)."""
import numpy as np
import pytest

from cbir import expansion


def test_average_qe_of_query_whose_top10_are_itself_returns_itself():
    q = np.array([[1.0, 2.0, 3.0]], np.float32)
    xb = np.repeat(q, 12, axis=0)
    I = np.arange(10)[None]
    np.testing.assert_allclose(expansion.average_qe(q, xb, I, k=10), q, rtol=1e-6)


def test_average_qe_closed_form():
    xb = np.array([[0.0, 0.0], [11.0, 0.0], [0.0, 22.0]], np.float32)
    q = np.array([[0.0, 0.0]], np.float32)
    I = np.array([[1, 2, 0]])
    # Eq. 15 with k = 2: (q + x1 + x2) / 3
    np.testing.assert_allclose(expansion.average_qe(q, xb, I, k=2), [[11 / 3, 22 / 3]], rtol=1e-6)
    with pytest.raises(ValueError, match="k=4 exceeds"):
        expansion.average_qe(q, xb, I, k=4)


def test_alpha_qe_zero_alpha_is_normalised_average():
    rng = np.random.default_rng(0)
    xb = np.abs(rng.normal(size=(6, 3))).astype(np.float32)
    q = np.abs(rng.normal(size=(1, 3))).astype(np.float32)
    I = np.array([[3, 1, 5]])
    n = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)
    expected = n(n(q)[0] + n(xb[[3, 1, 5]]).sum(0))
    np.testing.assert_allclose(expansion.alpha_qe(q, xb, I, k=3, alpha=0.0)[0], expected, rtol=1e-5)


def test_dba_l2_closed_form():
    xb = np.array([[0.0], [1.0], [5.0], [6.0]], np.float32)
    out = expansion.dba(xb, k=1, metric="l2")
    # each vector averaged with its nearest other vector
    np.testing.assert_allclose(out[:, 0], [0.5, 0.5, 5.5, 5.5])


def test_crop_boxes_nine_half_size_overlapping_covering():
    H, W = 33, 40
    boxes = expansion.crop_boxes(H, W)
    assert boxes.shape == (9, 4)
    assert (boxes[:, 2] == H // 2).all() and (boxes[:, 3] == W // 2).all()
    cover = np.zeros((H, W), int)
    for t, l, h, w in boxes:
        cover[t:t + h, l:l + w] += 1
    assert (cover >= 1).all()  # covering the image
    assert cover.max() > 1  # overlapping
    assert len({(t, l) for t, l, _, _ in boxes}) == 9


def test_nine_crops_array_and_list():
    img = np.arange(2 * 8 * 6 * 3, dtype=np.uint8).reshape(2, 8, 6, 3)
    crops = expansion.nine_crops(img)
    assert crops.shape == (18, 4, 3, 3)
    np.testing.assert_array_equal(crops[0], img[0, 0:4, 0:3])
    np.testing.assert_array_equal(crops[9 + 8], img[1, 4:8, 3:6])  # image 1, bottom-right region
    lst = expansion.nine_crops([img[0], img[1, :6]])
    assert len(lst) == 18 and lst[9].shape == (3, 3, 3)


def test_spatial_rerank_promotes_matching_region():
    full = np.array([[5.0, 0.0], [4.0, 0.0], [9.0, 9.0]], np.float32)
    crops = np.full((3, 9, 2), 20.0, np.float32)
    crops[2, 4] = [0.1, 0.0]  # image 2 holds a region almost equal to the query
    q = np.array([[0.0, 0.0]], np.float32)
    I = np.array([[1, 0, 2]])
    assert expansion.spatial_rerank(q, I, full, crops).tolist() == [[2, 1, 0]]
    reranked, q_new = expansion.spatial_verification_qe(q, full, I, crops, k=2)
    np.testing.assert_allclose(q_new, [[(0 + 9 + 4) / 3, (0 + 9 + 0) / 3]], rtol=1e-6)


def test_merge_rankings_keeps_every_item_once():
    full = np.array([[0, 1, 2, 3, 4], [4, 3, 2, 1, 0]])
    head = np.array([[2, 0], [0, 4]])
    out = expansion.merge_rankings(head, full)
    assert out.tolist() == [[2, 0, 1, 3, 4], [0, 4, 3, 2, 1]]


def test_svqe_differs_from_qe_when_verification_changes_the_expansion_set():
    # 1-D features; query at 0. Shortlist of N = 4, QE over k = 2. Items 0, 1 are nearest as full images;
    # items 2, 3 have a crop that matches the query exactly, so the spatial rerank promotes them.
    xq = np.zeros((1, 1), np.float32)
    xb = np.array([[1.0], [2.0], [3.0], [4.0]], np.float32)
    I = np.array([[0, 1, 2, 3]])
    crops = np.full((4, 9, 1), 10.0, np.float32)
    crops[2, 4, 0], crops[3, 0, 0] = 0.0, 0.0
    reranked, q_sv = expansion.spatial_verification_qe(xq, xb, I, crops, k=2)
    np.testing.assert_array_equal(reranked, [[2, 3, 0, 1]])
    q_qe = expansion.average_qe(xq, xb, I, k=2)
    np.testing.assert_allclose(q_qe, [[(0 + 1 + 2) / 3]])
    np.testing.assert_allclose(q_sv, [[(0 + 3 + 4) / 3]])
    # with N == k the same items are averaged in another order: SVQE == QE (the old smoke/medium setting)
    _, q_sv2 = expansion.spatial_verification_qe(xq, xb, I[:, :2], crops, k=2)
    np.testing.assert_allclose(q_sv2, q_qe)


def test_region_queries_boxes_inside_images_and_seeded():
    imgs = [np.zeros((40, 60, 3), np.uint8), np.zeros((20, 30, 3), np.uint8)]
    crops, owner, boxes = expansion.region_queries(imgs, 3, frac=(0.5, 0.5), seed=1)
    np.testing.assert_array_equal(owner, [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(boxes[:, 2:], [[20, 30]] * 3 + [[10, 15]] * 3)
    assert [c.shape[:2] for c in crops] == [(20, 30)] * 3 + [(10, 15)] * 3
    h = np.array([40, 40, 40, 20, 20, 20]); w = np.array([60, 60, 60, 30, 30, 30])
    assert np.all(boxes[:, 0] + boxes[:, 2] <= h) and np.all(boxes[:, 1] + boxes[:, 3] <= w)
    _, _, boxes2 = expansion.region_queries(imgs, 3, frac=(0.5, 0.5), seed=1)
    np.testing.assert_array_equal(boxes, boxes2)
    with pytest.raises(ValueError, match="frac"):
        expansion.region_queries(imgs, 1, frac=(0.0, 0.5))
