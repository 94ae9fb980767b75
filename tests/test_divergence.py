"""Tests of cbir.divergence: histograms, JS divergence and the Sec. 3.3 ratio (Xue & Roshan 2019)."""
import numpy as np
import pytest

from cbir.divergence import avg_js, js_ratio, js_ratio_table, pairwise_js, value_histograms


def test_histograms_rows_sum_to_one_and_count_correctly():
    x = np.array([[0, 0, 255, 255], [0, 128, 128, 255]], np.uint8)
    h, edges = value_histograms(x, bins=2, value_range=(0, 256))
    np.testing.assert_allclose(h, [[0.5, 0.5], [0.25, 0.75]])
    assert edges[0] == 0 and edges[-1] == 256


def test_js_known_values():
    p = np.array([[1.0, 0.0], [0.5, 0.5]])
    d = pairwise_js(p)
    assert d[0, 0] == 0 and d[1, 1] == 0
    # JS([1,0],[.5,.5]) = H(M) - (H(P)+H(Q))/2 with M=[.75,.25] in bits
    hm = -(0.75 * np.log2(0.75) + 0.25 * np.log2(0.25))
    assert d[0, 1] == pytest.approx(hm - 0.5)
    assert pairwise_js(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]))[0, 0] == pytest.approx(1.0)


def test_ratio_two_synthetic_distributions():
    # class0 = {P, Q}, class1 = {P, Q}: within = JS(P,Q); across = (0 + JS + JS + 0)/4 = JS/2
    # ratio = (JS/2) / (2 JS) = 0.25 whatever P and Q are.
    p, q = np.array([0.7, 0.2, 0.1]), np.array([0.1, 0.3, 0.6])
    h = np.stack([p, q])
    r = js_ratio(h, h)
    assert r["ratio"] == pytest.approx(0.25)
    assert r["within0"] == pytest.approx(avg_js(h)) == pytest.approx(pairwise_js(h)[0, 1])
    # separated classes: class0 = {P, P'}, class1 = {Q, Q'} close within, far across -> ratio >> 1
    h0 = np.stack([p, p * 0.9 + q * 0.1])
    h1 = np.stack([q, q * 0.9 + p * 0.1])
    assert js_ratio(h0, h1)["ratio"] > 5


def test_ratio_table_columns_and_errors():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (40, 4, 4, 3), dtype=np.uint8)
    y = np.repeat(np.arange(4), 10)
    df = js_ratio_table({"pixels": x, "pixels again": x}, y, [(0, 1), (0, 3)], bins=8)
    assert list(df.columns) == ["space", "c0", "c1", "n0", "n1", "across", "within0", "within1", "ratio"]
    assert len(df) == 4 and np.allclose(df.ratio.values[0], df.ratio.values[1])
    with pytest.raises(ValueError, match="need"):
        js_ratio_table({"p": x}, y, [(0, 9)])
