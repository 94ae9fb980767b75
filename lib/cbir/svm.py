"""Linear SVM through LIBLINEAR with the options of Xue & Roshan (2019), Sec. 2.3.

The paper trains ``liblinear -s 2 -B 1 -c C``: L2-regularised, squared-hinge (L2-loss) SVM solved in the
primal, with a bias feature of value 1, and C = 0.5 for CIFAR-10/100 and STL-10, C = 0.01 for MNIST and
mini-ImageNet. Multi-class is one-vs-rest. This wrapper feeds LIBLINEAR a ``scipy.sparse`` CSR matrix
(LIBLINEAR's dense ``problem()`` path converts row by row in Python: ~26 s for 10k x 10k here, vs ~0.3 s
from CSR) and computes decision values as one matrix product with the learnt weights, so top-k accuracy
(Fig. 6) needs no slow ``predict`` call.

References
----------
R.-E. Fan, K.-W. Chang, C.-J. Hsieh, X.-R. Wang, C.-J. Lin, "LIBLINEAR: A library for large linear
classification", JMLR 9, 2008. Y. Xue and U. Roshan, 2019, Sec. 2.3 ("Program parameters and training").
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

PAPER_C = {"cifar10": 0.5, "cifar100": 0.5, "stl10": 0.5, "mnist": 0.01, "mini_imagenet": 0.01}
"""The C values of Sec. 2.3, by dataset."""


def dense_to_csr(x: np.ndarray) -> sp.csr_matrix:
    """Wrap a dense (n, d) array as a CSR matrix that keeps every entry (zeros included), without the
    per-element scan of ``scipy.sparse.csr_matrix(dense)``; float32 data stay float32 (LIBLINEAR converts
    to double while copying into its own ``feature_node`` array)."""
    n, d = x.shape
    data = np.ascontiguousarray(x if x.dtype in (np.float32, np.float64) else x.astype(np.float32)).ravel()
    indices = np.tile(np.arange(d, dtype=np.int32), n)
    indptr = np.arange(0, n * d + 1, d, dtype=np.int64)
    return sp.csr_matrix((data, indices, indptr), shape=(n, d))


def _as_csr(x) -> sp.csr_matrix:
    if sp.issparse(x):
        x = x.tocsr()
    else:
        x = np.asarray(x)
        if x.ndim != 2:
            raise ValueError(f"features must be a 2-D array (n_samples, n_features), got shape {x.shape}")
        if not np.issubdtype(x.dtype, np.floating) and not np.issubdtype(x.dtype, np.integer):
            raise TypeError(f"features must be numeric, got dtype {x.dtype}")
        x = dense_to_csr(x)
    if x.shape[0] == 0:
        raise ValueError("features have 0 rows; pass at least one sample")
    if not np.isfinite(x.data).all():
        raise ValueError("features contain NaN or inf; check the feature extractor")
    return x


class LinearSVM:
    """One-vs-rest linear SVM trained by LIBLINEAR (``-s 2 -B 1 -c C``), scikit-learn style.

    Parameters
    ----------
    C : float, > 0, default 0.5
        Regularisation parameter (paper: 0.5 CIFAR/STL, 0.01 MNIST/mini-ImageNet; :data:`PAPER_C`).
    solver : int, default 2
        LIBLINEAR ``-s`` (2 = L2-regularised L2-loss SVC, primal).
    bias : float, default 1
        LIBLINEAR ``-B``: value of the appended bias feature (negative disables it).
    eps : float, optional
        LIBLINEAR ``-e`` stopping tolerance (default: LIBLINEAR's own, 0.01 for ``-s 2``).

    Attributes
    ----------
    classes_ : ndarray (n_classes,) int64, sorted.
    coef_ : ndarray (n_classes, n_features) float64, and ``intercept_`` (n_classes,) (bias weight x bias).
    options_ : str, the exact LIBLINEAR option string used.
    """

    def __init__(self, C: float = 0.5, *, solver: int = 2, bias: float = 1.0, eps: float | None = None):
        if not (isinstance(C, (int, float)) and C > 0):
            raise ValueError(f"C={C!r} must be a positive number (paper: 0.5 for CIFAR/STL, 0.01 for MNIST)")
        self.C, self.solver, self.bias, self.eps = float(C), int(solver), float(bias), eps

    def fit(self, x, y) -> "LinearSVM":
        """Train on features ``x`` (n, d) dense or sparse and integer labels ``y`` (n,).

        With ``solver=2`` this is LIBLINEAR's L2-regularised L2-loss SVM in the primal, one-vs-rest:
        min_w 1/2 ||w||^2 + C sum_i max(0, 1 - y_i w.[x_i; B])^2 (Xue & Roshan Sec. 2.3: ``-s 2 -B 1 -c C``)."""
        from liblinear import liblinearutil

        x = _as_csr(x)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != x.shape[0]:
            raise ValueError(f"labels must have shape ({x.shape[0]},), got {y.shape}")
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(f"need at least 2 classes to train an SVM, got {classes.tolist()}")
        opts = f"-s {self.solver} -B {self.bias:g} -c {self.C:g} -q"
        if self.eps is not None:
            opts += f" -e {self.eps:g}"
        prob = liblinearutil.problem(y.astype(np.float64), x)
        model = liblinearutil.train(prob, liblinearutil.parameter(opts))
        labels = np.asarray(model.get_labels(), dtype=np.int64)
        n_feat = model.get_nr_feature()
        nr_w = 1 if (len(labels) == 2 and self.solver != 4) else len(labels)
        n_rows = n_feat + (1 if self.bias >= 0 else 0)
        w = np.ctypeslib.as_array(model.w, shape=(n_rows * nr_w,)).reshape(n_rows, nr_w).astype(np.float64)
        coef = w[:n_feat].T  # (nr_w, d)
        intercept = w[n_feat] * self.bias if self.bias >= 0 else np.zeros(nr_w)
        if nr_w == 1:  # binary: LIBLINEAR's single vector scores labels[0] positively
            coef = np.vstack([coef, -coef])
            intercept = np.array([intercept[0], -intercept[0]])
        order = np.argsort(labels)
        full = np.zeros((len(labels), x.shape[1]))
        full[:, :n_feat] = coef
        self.classes_ = labels[order]
        self.coef_ = full[order]
        self.intercept_ = np.asarray(intercept)[order]
        self.options_ = opts
        self._model = model
        return self

    def decision_function(self, x) -> np.ndarray:
        """Decision values ``x @ coef_.T + intercept_``, shape (n, n_classes), columns = ``classes_``."""
        if not hasattr(self, "coef_"):
            raise RuntimeError("LinearSVM is not fitted; call fit(x, y) first")
        if sp.issparse(x):
            scores = x @ self.coef_.T
        else:
            x = np.asarray(x)
            if x.ndim != 2 or x.shape[1] != self.coef_.shape[1]:
                raise ValueError(f"features must have shape (n, {self.coef_.shape[1]}), got {x.shape}")
            scores = x.astype(np.float64, copy=False) @ self.coef_.T
        return np.asarray(scores) + self.intercept_

    def predict(self, x) -> np.ndarray:
        """Predicted labels (n,) int64: the class with the largest decision value."""
        scores = self.decision_function(x)
        return self.classes_[np.argmax(scores, axis=1)]

    def score(self, x, y) -> float:
        """Top-1 accuracy in [0, 1]."""
        return float(np.mean(self.predict(x) == np.asarray(y)))

