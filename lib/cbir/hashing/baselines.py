"""Unsupervised hashing baselines on float features: LSH, PCA-ITQ and spectral hashing.

Each is a small estimator: ``fit(x)`` learns the hash functions from training features (N, D) and
``encode(x)`` returns packed codes (N, ceil(n_bits / 8)) uint8 (``np.packbits`` big-endian bit order,
bit j = hash function j); ``encode_bits(x)`` returns the 0/1 bits (N, n_bits) for teaching displays.
They are the comparison methods of the latent-hash paper's Figs. 3-4 and 7 (LSH, ITQ, SH).

References
----------
A. Gionis, P. Indyk, R. Motwani, "Similarity Search in High Dimensions via Hashing", VLDB 1999;
M. Charikar, "Similarity Estimation Techniques from Rounding Algorithms", STOC 2002 (random hyperplanes).
Y. Gong, S. Lazebnik, A. Gordo, F. Perronnin, "Iterative Quantization: A Procrustean Approach to
Learning Binary Codes for Large-scale Image Retrieval", IEEE TPAMI 35(12), 2013, Sec. 2.
Y. Weiss, A. Torralba, R. Fergus, "Spectral Hashing", NIPS 2008, Sec. 3-4.
"""

from __future__ import annotations

import numpy as np

__all__ = ["LSH", "PCAITQ", "SpectralHashing", "make_hasher"]


def _check_n_bits(n_bits: int) -> int:
    if isinstance(n_bits, bool) or not isinstance(n_bits, (int, np.integer)) or n_bits < 1:
        raise ValueError(f"n_bits={n_bits!r} is not a positive integer; choose a code length >= 1 (e.g. 48)")
    return int(n_bits)


def _check_x(x: np.ndarray, dim: int | None = None, name: str = "x") -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.number):
        raise TypeError(f"{name} must be a numeric array of shape (N, D), got dtype={x.dtype} shape={x.shape}")
    if dim is not None and x.shape[1] != dim:
        raise ValueError(f"{name} has {x.shape[1]} columns but the hasher was fitted on D={dim}")
    x = x.astype(np.float64, copy=False)
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf; clean the features before hashing")
    return x


def _one_lapack_thread():
    """Context in which BLAS/LAPACK run single-threaded (used around ``fit``).

    The fits are small (D x D eigh, B x B SVDs, (N, B) products): OpenBLAS threading gains little and, on
    a CPU shared with other jobs, its threaded eigh/svd can be 40x slower than one thread (measured:
    10 s vs 0.25 s for a 784 x 784 eigh).
    """
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def _pca(xc: np.ndarray, n_components: int) -> np.ndarray:
    """Top principal directions (D, n_components) of centred data, from the eigenvectors of X^T X.

    The D x D scatter matrix is cheaper than an SVD of the (N, D) data when N >> D.  Eigenvector
    signs are fixed so that the largest-magnitude entry of each direction is positive (deterministic).
    """
    evals, evecs = np.linalg.eigh(xc.T @ xc)
    comps = evecs[:, np.argsort(evals)[::-1][:n_components]]
    flip = np.sign(comps[np.argmax(np.abs(comps), axis=0), np.arange(comps.shape[1])])
    return comps * np.where(flip == 0, 1.0, flip)


def _pack(bits: np.ndarray) -> np.ndarray:
    from cbir.hashing import pack_bits

    return pack_bits(bits)


class _Hasher:
    """Common fit/encode plumbing; subclasses implement ``_fit`` and ``_project`` (sign -> bits)."""

    def __init__(self, n_bits: int, seed: int = 0, fit_sample: int | None = 10000) -> None:
        self.n_bits = _check_n_bits(n_bits)
        self.seed = int(seed)
        if fit_sample is not None and fit_sample < 2:
            raise ValueError(f"fit_sample={fit_sample} must be >= 2 or None (use every training row)")
        self.fit_sample = fit_sample
        self.mean_: np.ndarray | None = None

    def fit(self, x: np.ndarray) -> "_Hasher":
        """Learn the hash functions from training features ``x`` of shape (N, D).

        At most ``fit_sample`` rows (a seeded random subset) are used to learn the projections, the usual
        practice for PCA-ITQ and spectral hashing on large databases; the codes of every row are computed
        by :meth:`encode`.
        """
        x = _check_x(x)
        if x.shape[0] < 2:
            raise ValueError(f"need at least 2 training rows to fit {type(self).__name__}, got {x.shape[0]}")
        if self.fit_sample is not None and x.shape[0] > self.fit_sample:
            rows = np.random.default_rng(self.seed).choice(x.shape[0], self.fit_sample, replace=False)
            x = x[np.sort(rows)]
        self.mean_ = x.mean(axis=0)
        with _one_lapack_thread():
            self._fit(x - self.mean_)
        return self

    def encode_bits(self, x: np.ndarray) -> np.ndarray:
        """0/1 bits of shape (N, n_bits), uint8."""
        if self.mean_ is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call .fit(train_features) first")
        x = _check_x(x, dim=self.mean_.shape[0])
        return (self._project(x - self.mean_) > 0).astype(np.uint8)

    def encode(self, x: np.ndarray) -> np.ndarray:
        """Packed codes of shape (N, ceil(n_bits / 8)), uint8 (``np.packbits`` bit order)."""
        return _pack(self.encode_bits(x))

    def fit_encode(self, x: np.ndarray) -> np.ndarray:
        """``fit(x)`` then ``encode(x)``."""
        return self.fit(x).encode(x)

    def _fit(self, xc: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _project(self, xc: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


class LSH(_Hasher):
    """Random-hyperplane LSH: bit j = [w_j . (x - mean) > 0], w_j ~ N(0, I) (Charikar 2002).

    Parameters
    ----------
    n_bits : int
        Code length (number of random hyperplanes).
    seed : int, default 0
        Seed of the Gaussian hyperplanes.
    fit_sample : int or None, default 10000
        Rows used to estimate the centring mean (None = all).

    Notes
    -----
    Features are centred on the training mean so that the hyperplanes through the origin split the
    data (without centring, non-negative ReLU features would give nearly constant bits).
    """

    def _fit(self, xc: np.ndarray) -> None:
        rng = np.random.default_rng(self.seed)
        self.projection_ = rng.standard_normal((xc.shape[1], self.n_bits))

    def _project(self, xc: np.ndarray) -> np.ndarray:
        return xc @ self.projection_


class PCAITQ(_Hasher):
    """PCA followed by iterative quantization (Gong et al. 2013, Sec. 2.2-2.3).

    Centred data are projected on the top ``n_bits`` principal directions, V = X W, then an orthogonal
    rotation R is learned to minimise the quantization loss Q(B, R) = ||B - V R||_F^2 (Eq. 2 of
    Gong et al.) by alternating B = sgn(V R) and the orthogonal Procrustes solution R = S_hat S^T from
    the SVD B^T V = S Omega S_hat^T.  ``loss_history_`` records Q after each update of R; it never
    increases (each half-step minimises Q over one variable).

    Parameters
    ----------
    n_bits : int
        Code length, at most the feature dimension D.
    n_iter : int, default 50
        Alternating iterations (the paper uses 50).
    seed : int, default 0
        Seed of the random orthogonal initial rotation (and of the ``fit_sample`` subset).
    fit_sample : int or None, default 10000
        Rows used to learn PCA and the rotation (None = all).
    """

    def __init__(self, n_bits: int, n_iter: int = 50, seed: int = 0, fit_sample: int | None = 10000) -> None:
        super().__init__(n_bits, seed, fit_sample)
        if n_iter < 0:
            raise ValueError(f"n_iter={n_iter} must be >= 0")
        self.n_iter = int(n_iter)

    def _fit(self, xc: np.ndarray) -> None:
        n, d = xc.shape
        if self.n_bits > min(n, d):
            raise ValueError(
                f"PCA-ITQ needs n_bits <= min(N, D) = {min(n, d)}, got n_bits={self.n_bits}; "
                "use fewer bits or LSH for longer codes"
            )
        self.pca_ = _pca(xc, self.n_bits)  # (D, B) principal directions
        v = xc @ self.pca_
        rng = np.random.default_rng(self.seed)
        r, _ = np.linalg.qr(rng.standard_normal((self.n_bits, self.n_bits)))
        losses = []
        for _ in range(self.n_iter):
            b = np.where(v @ r >= 0, 1.0, -1.0)
            s, _, s_hat_t = np.linalg.svd(b.T @ v)
            r = (s @ s_hat_t).T
            losses.append(float(np.sum((np.where(v @ r >= 0, 1.0, -1.0) - v @ r) ** 2)))
        self.rotation_ = r
        self.loss_history_ = np.asarray(losses)

    def quantization_loss(self, x: np.ndarray) -> float:
        """Q(B, R) = ||sgn(V R) - V R||_F^2 for features ``x`` with the fitted PCA and rotation."""
        if self.mean_ is None:
            raise RuntimeError("PCAITQ is not fitted; call .fit(train_features) first")
        vr = (_check_x(x, dim=self.mean_.shape[0]) - self.mean_) @ self.pca_ @ self.rotation_
        return float(np.sum((np.where(vr >= 0, 1.0, -1.0) - vr) ** 2))

    def _project(self, xc: np.ndarray) -> np.ndarray:
        return xc @ self.pca_ @ self.rotation_


class SpectralHashing(_Hasher):
    """Spectral hashing (Weiss et al. 2008, Sec. 3-4), the analytical eigenfunction version.

    Data are rotated to their principal axes (top ``min(n_bits, D)`` components); along each axis the
    data are assumed uniform on [min, max] and the Laplacian eigenfunctions are
    sin(pi/2 + k pi / (max - min) (x - min)) with eigenvalue growing with (k / (max - min))^2.  The
    ``n_bits`` one-dimensional eigenfunctions with the smallest eigenvalues (excluding the constant one)
    are thresholded at zero.

    Parameters
    ----------
    n_bits : int
        Code length.
    seed : int, default 0
        Seed of the ``fit_sample`` subset.
    fit_sample : int or None, default 10000
        Rows used to learn PCA and the box (None = all).
    """

    def _fit(self, xc: np.ndarray) -> None:
        n, d = xc.shape
        n_pca = min(self.n_bits, d, n)
        self.pca_ = _pca(xc, n_pca)
        v = xc @ self.pca_
        eps = np.finfo(np.float64).eps
        self.mn_ = v.min(axis=0) - eps
        mx = v.max(axis=0) + eps
        self.range_ = mx - self.mn_
        max_mode = np.ceil((self.n_bits + 1) * self.range_ / self.range_.max()).astype(int)
        # Candidate modes: for every axis i, modes k = 1 .. max_mode[i] - 1 on that axis alone, plus the
        # constant mode 0 (dropped below); eigenvalue ~ sum_i (k_i / range_i)^2.
        axis = np.repeat(np.arange(n_pca), max_mode - 1)
        k = np.concatenate([np.arange(1, m) for m in max_mode]) if axis.size else np.zeros(0, int)
        modes = np.zeros((axis.size + 1, n_pca))
        modes[np.arange(1, axis.size + 1), axis] = k
        eig = np.sum((modes * (np.pi / self.range_)) ** 2, axis=1)
        order = np.argsort(eig, kind="stable")
        chosen = order[1 : self.n_bits + 1]
        if chosen.size < self.n_bits:
            raise ValueError(f"spectral hashing found only {chosen.size} modes for n_bits={self.n_bits}")
        self.modes_ = modes[chosen]  # (B, n_pca)

    def _project(self, xc: np.ndarray) -> np.ndarray:
        v = xc @ self.pca_ - self.mn_  # (N, n_pca)
        omegas = self.modes_ * (np.pi / self.range_)  # (B, n_pca)
        # Each chosen mode is non-zero on exactly one axis, so the product over axes reduces to that axis.
        ax = np.argmax(self.modes_ > 0, axis=1)
        return np.sin(np.pi / 2 + v[:, ax] * omegas[np.arange(self.n_bits), ax])


def make_hasher(name: str, n_bits: int, seed: int = 0) -> _Hasher:
    """Build a baseline hasher by name: ``"lsh"``, ``"itq"`` (PCA-ITQ) or ``"sh"`` (spectral hashing)."""
    table = {"lsh": LSH, "itq": PCAITQ, "sh": SpectralHashing}
    key = name.lower()
    if key not in table:
        raise ValueError(f"unknown hashing baseline {name!r}; choose one of {sorted(table)}")
    return table[key](n_bits, seed=seed)
