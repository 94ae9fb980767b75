"""Tests of cbir.svm: the liblinear -s 2 -B 1 wrapper (Xue & Roshan 2019, Sec. 2.3) and top-k accuracy."""
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits
from sklearn.svm import LinearSVC

from cbir.svm import LinearSVM, dense_to_csr


@pytest.fixture(scope="module")
def digits():
    x, y = load_digits(return_X_y=True)
    return (x / 16).astype(np.float32), y


def test_matches_sklearn_linearsvc(digits):
    x, y = digits
    ours = LinearSVM(C=0.5).fit(x[:1000], y[:1000])
    ref = LinearSVC(C=0.5, loss="squared_hinge", dual=False).fit(x[:1000], y[:1000])
    acc, ref_acc = ours.score(x[1000:], y[1000:]), ref.score(x[1000:], y[1000:])
    assert acc > 0.85
    assert abs(acc - ref_acc) <= 0.01
    assert ours.options_ == "-s 2 -B 1 -c 0.5 -q"


def test_decision_values_agree_with_liblinear_predict(digits):
    from liblinear import liblinearutil

    x, y = digits
    svm = LinearSVM(C=0.01).fit(x[:600], y[:600])
    pred, _, vals = liblinearutil.predict(y[600:700].astype(float), sp.csr_matrix(x[600:700].astype(float)),
                                          svm._model, "-q")
    np.testing.assert_array_equal(np.asarray(pred, int), svm.predict(x[600:700]))
    labels = np.asarray(svm._model.get_labels())
    np.testing.assert_allclose(np.asarray(vals)[:, np.argsort(labels)], svm.decision_function(x[600:700]),
                               atol=1e-8)


def test_binary_labels_and_sparse_input(digits):
    x, y = digits
    yb = np.where(y[:500] > 4, 7, 3)
    svm = LinearSVM(C=0.5).fit(sp.csr_matrix(x[:500]), yb)
    assert list(svm.classes_) == [3, 7] and svm.decision_function(x[:5]).shape == (5, 2)
    assert svm.score(x[:500], yb) > 0.8


def test_dense_to_csr_keeps_zeros():
    a = np.array([[0.0, 1.5], [2.0, 0.0]], np.float32)
    c = dense_to_csr(a)
    assert c.nnz == 4 and np.array_equal(c.toarray(), a)


def test_decision_values_give_topk(digits):
    from cbir.metrics import topk_accuracy

    x, y = digits
    svm = LinearSVM(C=0.5).fit(x[:800], y[:800])
    top = topk_accuracy(svm.decision_function(x[800:]), y[800:], ks=(1, 2, 10))
    assert top[1] == pytest.approx(svm.score(x[800:], y[800:]))
    assert top[1] <= top[2] and top[10] == 1.0


def test_errors():
    with pytest.raises(ValueError, match="C=0"):
        LinearSVM(C=0)
    with pytest.raises(ValueError, match="2 classes"):
        LinearSVM().fit(np.ones((3, 2)), np.zeros(3, int))
    with pytest.raises(RuntimeError, match="not fitted"):
        LinearSVM().predict(np.ones((1, 2)))
