import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from cbir import metrics as M


def test_precision_and_ap_hand_computed():
    rel = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 1, 1]], bool)
    assert M.precision_at_k(rel, 2) == pytest.approx((1 / 2 + 0 + 1 / 2) / 3)
    # query 0: hits at 1 and 3 -> (1/1 + 2/3) / 2 ; query 2: (1/2 + 2/3 + 3/4) / 3
    ap = M.average_precision(rel, denominator="retrieved")
    assert ap == pytest.approx([(1 + 2 / 3) / 2, 0.0, (1 / 2 + 2 / 3 + 3 / 4) / 3])
    # with 5 relevant items in the database for every query
    r = np.array([5, 5, 5])
    assert M.average_precision(rel, r, "all")[0] == pytest.approx((1 + 2 / 3) / 5)
    assert M.average_precision(rel, r, "min_rk")[0] == pytest.approx((1 + 2 / 3) / 4)
    # the empty query stays in the mean with AP = 0
    assert M.map_at_k(rel, 4) == pytest.approx(ap.sum() / 3)


def test_map_all_equals_sklearn_average_precision():
    rng = np.random.default_rng(0)
    Q, N = 6, 40
    scores = rng.normal(size=(Q, N))
    truth = rng.random((Q, N)) < 0.3
    ranking = np.argsort(-scores, axis=1, kind="stable")
    rel = np.take_along_axis(truth, ranking, 1)
    expected = np.mean([average_precision_score(truth[q], scores[q]) for q in range(Q)])
    assert M.map_all(rel) == pytest.approx(expected)


def test_relevance_and_topk_accuracy():
    rank = np.array([[2, 0, 1], [1, 2, -1]])
    rel = M.relevance(rank, np.array([0, 1]), np.array([0, 1, 0]))
    assert rel.tolist() == [[True, True, False], [True, False, False]]
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.5, 0.0], [0.0, 0.2, 0.9]])
    acc = M.topk_accuracy(scores, np.array([2, 1, 0]), ks=(1, 2, 3))
    # row 1 ties 0.5/0.5: stable order puts class 0 first -> top-1 wrong, top-2 right
    assert acc == {1: 0.0, 2: pytest.approx(2 / 3), 3: 1.0}


def test_radius_prf_hand_computed_with_empty_convention():
    # 3 queries; groups: q0 -> g0, q1 -> g1, q2 -> g2 (g2 absent from db)
    db_groups = np.array([0, 0, 0, 1, 1, 3])
    lims = np.array([0, 3, 3, 4])      # q0 retrieves 3, q1 nothing, q2 one
    I = np.array([0, 1, 3, 5])
    out = M.radius_prf(lims, I, np.array([0, 1, 2]), db_groups)
    p = np.array([2 / 3, 1.0, 0.0])    # empty retrieval -> precision 1 (pHashRis convention)
    r = np.array([2 / 3, 0.0, 0.0])
    assert out["precision"] == pytest.approx(p.mean())
    assert out["recall"] == pytest.approx(r.mean())
    assert out["f"] == pytest.approx(np.mean([2 / 3, 0, 0]))
    strict = M.radius_prf(lims, I, np.array([0, 1, 2]), db_groups, empty_precision=0.0)
    assert strict["precision"] == pytest.approx((2 / 3) / 3)


def test_pr_curve_and_errors():
    rel = np.array([[1, 0, 1, 0]], bool)
    p, r = M.pr_curve(rel)
    assert p.tolist() == pytest.approx([1, 0.5, 2 / 3, 0.5]) and r.tolist() == pytest.approx([0.5, 0.5, 1, 1])
    with pytest.raises(ValueError, match="k=5 must be in"):
        M.precision_at_k(rel, 5)
    with pytest.raises(ValueError, match="needs n_relevant"):
        M.average_precision(rel, denominator="all")
