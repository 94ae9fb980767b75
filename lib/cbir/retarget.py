"""Retargeting retraining of Tzelepi & Tefas (2018), "Deep convolutional image retrieval: a general framework".

The framework never uses a triplet loss. For every training image it *builds a target representation* in
the layer of interest from the information at hand and then regresses the network's output onto that
target with a Euclidean (MSE) loss (Sec. 3.1):

* **FU** — fully unsupervised (Sec. 3.1.1, Eq. 1-3): move each representation toward the mean ``mu_i`` of
  its ``n`` nearest representations, ``t_i = x_i - 2 eta (x_i - mu_i)``, ``eta`` in [0, 0.5];
* **RRI** — retraining with relevance information (Sec. 3.1.2, Eq. 4-8): toward the mean ``mu+`` of the
  ``m`` nearest relevant and away from the mean ``mu-`` of the ``n`` nearest irrelevant representations,
  ``t_i = x_i - (1 - beta)(x_i - mu+) + beta (x_i - mu-)``; distractors are pushed away from the training
  image that gathered them (Eq. 9-10, ``theta``);
* **RF** — relevance-feedback retraining (Sec. 3.1.3, Eq. 11-14): for each user query ``q``, the images the
  user marked relevant move toward ``q`` (``x - 2 alpha (x - q)``) and the irrelevant ones away from it
  (``x + 2 alpha (x - q)``).

The paper retrains CaffeNet's FC6/FC7 (4096-d, ReLU after FC7 replaced by a PReLU, FC6 with a small and
FC7 with a larger learning rate, Adam, lr 1e-5, batch 64, 50 epochs; Sec. 3.2 and 5.3). Here the
convolutional trunk is a frozen ImageNet backbone whose pooled features are computed once; two fully
connected layers on top of them play FC6/FC7 (:class:`RetargetHead`). Both are initialised to the
identity (PReLU slopes 1), so the untrained head reproduces the backbone's features exactly (the "CaffeNet => FC7" baseline
row) and retraining only moves away from them.

All neighbour searches go through :mod:`cbir.index` (faiss, Euclidean distance as in Sec. 5.3); no Python
loop runs over database items (RRI loops over classes, RF rounds over user queries).

References
----------
M. Tzelepi and A. Tefas, "Deep convolutional image retrieval: A general framework", Signal Processing:
Image Communication, 2018 (text: shared/papers/05_retraining_framework_query_expansion.txt).
"""
from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Literal, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from cbir import index as cindex
from cbir import metrics as cmetrics

Method = Literal["fu", "rri", "rf"]
METHODS: tuple[str, ...] = ("fu", "rri", "rf")
LAYERS: tuple[str, ...] = ("fc6", "fc7")


# ============================================================================================ checks
def _feats(x: np.ndarray, name: str = "x") -> np.ndarray:
    return cindex.as_float32(x, name)


def _check_unit(value: float, name: str, hi: float, eq: str, key: str) -> float:
    if not (0.0 <= float(value) <= hi):
        raise ValueError(f"{name}={value} outside [0, {hi}] ({eq}); set retarget.{key} in params/<profile>.yaml")
    return float(value)


def _check_count(value: int, name: str, lo: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < lo:
        raise ValueError(f"{name}={value!r} must be an integer >= {lo}")
    return int(value)


def _labels(labels: np.ndarray, n: int, name: str = "labels") -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match the features, got {labels.shape}")
    return labels.astype(np.int64)


# ============================================================================================ neighbours
def nearest_neighbours(x: np.ndarray, n: int, *, exclude_self: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean ``n`` nearest neighbours of every row of ``x`` within ``x`` (faiss, :func:`cbir.index.knn`).

    Parameters
    ----------
    x : ndarray (N, D), float32
    n : int >= 1
        Neighbours per row.
    exclude_self : bool
        Drop each row itself from its own list (the FU neighbourhood of Eq. 1 excludes ``x_i``).
        Exact duplicates of a row are kept as neighbours.

    Returns
    -------
    D, I : (N, n) float32 distances and int64 indices, sorted by (distance, index).
    """
    x = _feats(x)
    n = _check_count(n, "n")
    if n + int(exclude_self) > len(x):
        raise ValueError(f"n={n} neighbours requested but x has only {len(x)} rows")
    k = n + int(exclude_self)
    D, I = cindex.knn(x, x, k, metric="l2")
    if not exclude_self:
        return D, I
    own = I == np.arange(len(x))[:, None]
    # rows where faiss did not return the row itself first (duplicates): drop the last column instead
    drop = np.where(own.any(1), own.argmax(1), k - 1)
    keep = np.ones_like(I, dtype=bool)
    keep[np.arange(len(x)), drop] = False
    return D[keep].reshape(len(x), n), I[keep].reshape(len(x), n)


# ============================================================================================ FU
def fu_targets(x: np.ndarray, *, n_neighbors: int = 2, eta: float = 0.5) -> np.ndarray:
    """Fully unsupervised targets, Eq. (1)-(3) of Tzelepi & Tefas (2018).

    One gradient step on ``J = sum_i ||x_i - mu_i||^2`` (Eq. 1), whose gradient is ``2 (x_i - mu_i)``
    (Eq. 2), gives the target (Eq. 3)::

        t_i = x_i - 2 eta (x_i - mu_i)

    with ``mu_i`` the mean of the ``n_neighbors`` nearest representations of ``x_i`` (itself excluded).
    ``eta = 0`` keeps ``x_i``; ``eta = 0.5`` (the paper's value, Sec. 5.3.1) sets ``t_i = mu_i``.

    Parameters
    ----------
    x : ndarray (N, D), float32
        Representations in the layer of interest.
    n_neighbors : int >= 1
        ``n`` of Eq. (1); the paper uses 2 (1 on Holidays).
    eta : float in [0, 0.5]

    Returns
    -------
    targets : ndarray (N, D), float32
    """
    x = _feats(x)
    eta = _check_unit(eta, "eta", 0.5, "Eq. 3", "eta")
    _, I = nearest_neighbours(x, n_neighbors)
    mu = x[I].mean(axis=1)
    return (x - 2.0 * eta * (x - mu)).astype(np.float32)


# ============================================================================================ RRI
def _class_mean_excluding_self(x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mean of all *other* rows of the same class (vectorised with ``np.add.at``).

    A row alone in its class (possible in a random training subset) has no relevant neighbour: its
    ``mu+`` is the row itself, so Eq. 8 only pushes it away from ``mu-``.
    """
    uniq, inv = np.unique(labels, return_inverse=True)
    sums = np.zeros((len(uniq), x.shape[1]), np.float64)
    np.add.at(sums, inv, x)
    counts = np.bincount(inv).astype(np.float64)[inv]
    others = np.maximum(counts - 1, 1)[:, None]
    mu = np.where(counts[:, None] > 1, (sums[inv] - x) / others, x)
    return mu.astype(np.float32)


def relevant_irrelevant_means(x: np.ndarray, labels: np.ndarray, *, m: int | None = None,
                              n: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """``mu+`` (mean of the ``m`` nearest relevant) and ``mu-`` (mean of the ``n`` nearest irrelevant), Eq. 4-5.

    Parameters
    ----------
    x : ndarray (N, D), float32
    labels : int array (N,)
        Relevance = same label.
    m : int or None
        Nearest relevant representations averaged into ``mu+``; ``None`` uses every relevant one
        (the paper's setting, Sec. 5.3.2: "each relevant and 5 nearest irrelevant images").
    n : int >= 1
        Nearest irrelevant representations averaged into ``mu-``.

    Returns
    -------
    mu_pos, mu_neg : ndarray (N, D), float32
    """
    x = _feats(x)
    labels = _labels(labels, len(x))
    n = _check_count(n, "n")
    if m is None:
        mu_pos = _class_mean_excluding_self(x, labels)
    else:
        m = _check_count(m, "m")
        mu_pos = np.empty_like(x)
    mu_neg = np.empty_like(x)
    for c in np.unique(labels):  # loop over classes; each search is vectorised over the class's rows
        inside = np.flatnonzero(labels == c)
        outside = np.flatnonzero(labels != c)
        if len(outside) < n:
            raise ValueError(f"class {c}: only {len(outside)} irrelevant rows for n={n} (Eq. 5)")
        _, I = cindex.knn(x[outside], x[inside], n, metric="l2")
        mu_neg[inside] = x[outside[I]].mean(axis=1)
        if m is not None:
            if len(inside) - 1 < m:
                raise ValueError(f"class {c}: only {len(inside) - 1} other relevant rows for m={m} (Eq. 4)")
            _, J = nearest_neighbours(x[inside], m)
            mu_pos[inside] = x[inside[J]].mean(axis=1)
    return mu_pos, mu_neg


def rri_targets(x: np.ndarray, labels: np.ndarray, *, m: int | None = None, n: int = 5,
                beta: float = 0.2) -> np.ndarray:
    """Retraining-with-relevance-information targets, Eq. (4)-(8) of Tzelepi & Tefas (2018).

    Adding the steps toward ``mu+`` (Eq. 6, step ``zeta = 1 - beta``) and away from ``mu-`` (Eq. 7)
    gives Eq. (8)::

        t_i = x_i - (1 - beta)(x_i - mu+_i) + beta (x_i - mu-_i)

    ``beta = 0`` gives ``t_i = mu+_i``; the paper uses ``beta = 0.2`` (Sec. 5.3.2).

    Parameters
    ----------
    x : ndarray (N, D), float32
    labels : int array (N,)
    m, n : see :func:`relevant_irrelevant_means`
    beta : float in [0, 1]

    Returns
    -------
    targets : ndarray (N, D), float32
    """
    beta = _check_unit(beta, "beta", 1.0, "Eq. 8", "beta")
    mu_pos, mu_neg = relevant_irrelevant_means(x, labels, m=m, n=n)
    x = _feats(x)
    return (x - (1.0 - beta) * (x - mu_pos) + beta * (x - mu_neg)).astype(np.float32)


def distractor_targets(x: np.ndarray, labels: np.ndarray, d: np.ndarray, *, n: int = 5,
                       theta: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Targets of distractor images, Eq. (9)-(10) of Tzelepi & Tefas (2018).

    A distractor ``d_j`` is *gathered* when it is among the ``n`` nearest irrelevant representations of
    some training image (Sec. 3.1.2, "Distractors"); it then moves away from that image ``x_i^j``
    (the nearest such image when several gather it)::

        t_j = d_j + 2 theta (d_j - x_i^j)

    Parameters
    ----------
    x : ndarray (N, D), float32
        Labelled training representations.
    labels : int array (N,)
    d : ndarray (P, D), float32
        Distractor representations (belong to no class).
    n : int >= 1
        Size of the irrelevant neighbourhood (as in :func:`rri_targets`).
    theta : float in [0, 0.5]

    Returns
    -------
    gathered : int64 array (P',)
        Indices into ``d`` of the gathered distractors, ascending.
    targets : ndarray (P', D), float32
    """
    x, d = _feats(x), _feats(d, "d")
    labels = _labels(labels, len(x))
    theta = _check_unit(theta, "theta", 0.5, "Eq. 10", "theta")
    n = _check_count(n, "n")
    pool = np.concatenate([x, d])
    pool_lab = np.concatenate([labels, np.full(len(d), -1, np.int64)])  # distractors irrelevant to all
    pairs_i, pairs_j, pairs_dist = [], [], []
    for c in np.unique(labels):
        inside = np.flatnonzero(labels == c)
        outside = np.flatnonzero(pool_lab != c)
        D, I = cindex.knn(pool[outside], x[inside], min(n, len(outside)), metric="l2")
        g = outside[I]  # pool indices
        hit = g >= len(x)
        pairs_i.append(np.broadcast_to(inside[:, None], g.shape)[hit])
        pairs_j.append(g[hit] - len(x))
        pairs_dist.append(D[hit])
    i, j, dist = (np.concatenate(a) for a in (pairs_i, pairs_j, pairs_dist))
    if len(j) == 0:
        return np.zeros(0, np.int64), np.zeros((0, x.shape[1]), np.float32)
    order = np.lexsort((i, dist, j))  # per distractor: nearest gathering image first
    j, i = j[order], i[order]
    first = np.r_[True, j[1:] != j[:-1]]
    gathered, owner = j[first], i[first]
    t = d[gathered] + 2.0 * theta * (d[gathered] - x[owner])
    return gathered.astype(np.int64), t.astype(np.float32)


# ============================================================================================ RF
@dataclass
class Feedback:
    """Simulated users' judgements (Sec. 3.1.3): one row per (user query, judged database image).

    Attributes
    ----------
    query : int64 (M,)  index of the user query (row of the query features).
    item : int64 (M,)   database index of the judged image.
    relevant : bool (M,) the user's verdict.
    """

    query: np.ndarray
    item: np.ndarray
    relevant: np.ndarray

    def __len__(self) -> int:
        return len(self.item)


def simulate_feedback(xq: np.ndarray, q_labels: np.ndarray, xb: np.ndarray, db_labels: np.ndarray, *,
                      n_relevant: int, n_irrelevant: int, depth: int = 100,
                      exclude: np.ndarray | None = None) -> Feedback:
    """Simulate users who mark the first relevant and irrelevant images of their result list (Sec. 5.3.3).

    Each user issues one query, scans its Euclidean ranking from the top and marks the first
    ``n_relevant`` images of the query's class as relevant and the first ``n_irrelevant`` others as
    irrelevant (within the top ``depth``; fewer when the list runs out). The paper's users judge "the top
    13 retrieved images" on CIFAR-10 (12 relevant + 1 irrelevant); labels stand in for the users here.

    Parameters
    ----------
    xq : ndarray (K, D), q_labels : int (K,)
        User queries and their classes.
    xb : ndarray (N, D), db_labels : int (N,)
        Database the users browse (the images the retraining moves).
    n_relevant, n_irrelevant : int >= 0
    depth : int >= 1
        How far down its list a user scans.
    exclude : int array (K,), optional
        Database index of each query itself (``-1`` for none) when queries are database images.

    Returns
    -------
    Feedback
    """
    xq, xb = _feats(xq, "xq"), _feats(xb, "xb")
    q_labels, db_labels = _labels(q_labels, len(xq), "q_labels"), _labels(db_labels, len(xb), "db_labels")
    n_relevant = _check_count(n_relevant, "n_relevant", 0)
    n_irrelevant = _check_count(n_irrelevant, "n_irrelevant", 0)
    depth = _check_count(depth, "depth")
    k = min(depth + int(exclude is not None), len(xb))
    _, I = cindex.knn(xb, xq, k, metric="l2")
    valid = np.ones_like(I, dtype=bool)
    if exclude is not None:
        exclude = np.asarray(exclude, np.int64)
        valid &= I != exclude[:, None]
    rel = cmetrics.relevance(I, q_labels, db_labels)
    pos = rel & valid
    neg = ~rel & valid
    take_pos = pos & (np.cumsum(pos, axis=1) <= n_relevant)
    take_neg = neg & (np.cumsum(neg, axis=1) <= n_irrelevant)
    take = take_pos | take_neg
    qq, cc = np.nonzero(take)
    return Feedback(query=qq.astype(np.int64), item=I[qq, cc].astype(np.int64),
                    relevant=take_pos[qq, cc].astype(bool))


def rf_targets(xq: np.ndarray, xb: np.ndarray, feedback: Feedback, *, alpha: float = 0.5) -> np.ndarray:
    """Relevance-feedback targets, Eq. (11)-(14) of Tzelepi & Tefas (2018).

    For a judged image ``x`` of user query ``q``::

        relevant   (Eq. 13):  t = x - 2 alpha (x - q)
        irrelevant (Eq. 14):  t = x + 2 alpha (x - q)

    ``alpha = 0.5`` (the paper's value, Sec. 5.3.3) puts relevant images *on* the query.

    Parameters
    ----------
    xq : ndarray (K, D)   user-query representations.
    xb : ndarray (N, D)   database representations.
    feedback : Feedback   from :func:`simulate_feedback` (or real users).
    alpha : float in [0, 0.5]

    Returns
    -------
    targets : ndarray (M, D), float32, aligned with ``feedback.item``.
    """
    xq, xb = _feats(xq, "xq"), _feats(xb, "xb")
    alpha = _check_unit(alpha, "alpha", 0.5, "Eq. 13-14", "alpha")
    x = xb[feedback.item]
    q = xq[feedback.query]
    sign = np.where(feedback.relevant, -1.0, 1.0).astype(np.float32)[:, None]
    return (x + sign * 2.0 * alpha * (x - q)).astype(np.float32)


# ============================================================================================ the head
class RetargetHead(nn.Module):
    """Two fully connected layers over frozen pooled backbone features, playing CaffeNet's FC6/FC7 (Sec. 3.2).

    ``layer="fc7"``: ``FC6 -> PReLU -> FC7 -> PReLU``; ``layer="fc6"``: ``FC6 -> PReLU`` (FC7 removed). The
    paper replaces the ReLU after the retrained layer by a PReLU; here both activations are PReLUs whose
    slope starts at ``prelu_init = 1`` and both square linear layers start as the identity with zero bias,
    so the untrained head returns its (possibly signed, e.g. PCA-centred) input exactly and retraining
    learns any non-linearity from there.

    Parameters
    ----------
    dim : int
        Feature dimension (input = FC6 = FC7 width).
    layer : {"fc6", "fc7"}
        Layer whose output is the representation.
    prelu_init : float
        Initial PReLU slope for negative inputs (1 = identity).
    """

    def __init__(self, dim: int, layer: str = "fc7", prelu_init: float = 1.0):
        super().__init__()
        if layer not in LAYERS:
            raise ValueError(f"layer={layer!r}; use 'fc6' or 'fc7'")
        self.dim, self.layer = int(dim), layer
        self.fc6 = nn.Linear(dim, dim)
        self.act6 = nn.PReLU(init=prelu_init)
        self.fc7 = nn.Linear(dim, dim) if layer == "fc7" else None
        self.act7 = nn.PReLU(init=prelu_init) if layer == "fc7" else None
        with torch.no_grad():
            for fc in (self.fc6, self.fc7):
                if fc is not None:
                    fc.weight.copy_(torch.eye(dim))
                    fc.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act6(self.fc6(x))
        if self.fc7 is not None:
            h = self.act7(self.fc7(h))
        return h

    def param_groups(self, lr_fc6: float, lr_fc7: float) -> list[dict]:
        """Adam parameter groups: a small rate for FC6 and a larger one for FC7 (+ PReLU), Sec. 3.2."""
        if self.fc7 is None:  # FC6 is the retrained layer of interest
            return [{"params": list(self.fc6.parameters()) + list(self.act6.parameters()), "lr": lr_fc7}]
        return [{"params": list(self.fc6.parameters()) + list(self.act6.parameters()), "lr": lr_fc6},
                {"params": list(self.fc7.parameters()) + list(self.act7.parameters()), "lr": lr_fc7}]


@torch.no_grad()
def transform(head: RetargetHead, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Representations ``head(x)`` of backbone features ``x`` (N, D) -> float32 (N, D)."""
    head.eval()
    x = _feats(x)
    dev = next(head.parameters()).device
    out = [head(torch.from_numpy(x[s:s + batch_size]).to(dev)).cpu().numpy()
           for s in range(0, len(x), batch_size)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, head.dim), np.float32)


@dataclass
class TrainConfig:
    """Retraining settings (Sec. 5.3: Adam, beta1 0.9, beta2 0.999, eps 1e-8, lr 1e-5, batch 64, 50 epochs)."""

    epochs: int = 50
    batch_size: int = 64
    lr_fc6: float = 1e-5
    lr_fc7: float = 1e-5
    seed: int = 0


def fit_targets(head: RetargetHead, x: np.ndarray, targets: np.ndarray, cfg: TrainConfig,
                device: torch.device | str = "cpu", progress: bool = False, desc: str = "retarget"
                ) -> pd.DataFrame:
    """Regress ``head(x)`` onto ``targets`` with the Euclidean (MSE) loss and Adam (Sec. 3.1, 5.3).

    Runs the suite's single training loop, :func:`cbir.train.fit` (seeded shuffles), with Adam's
    parameter groups from :meth:`RetargetHead.param_groups`; the head is trained in place.

    Parameters
    ----------
    head : RetargetHead
    x : ndarray (M, D)        backbone features of the training images (rows may repeat, e.g. RF).
    targets : ndarray (M, D)  target representations.
    cfg : TrainConfig
    device : torch device
    progress : bool           show the per-epoch progress bar.

    Returns
    -------
    history : DataFrame with columns ``epoch, loss`` (mean MSE per sample over the epoch).
    """
    from cbir.train import fit

    x, targets = _feats(x), _feats(targets, "targets")
    if x.shape != targets.shape:
        raise ValueError(f"x {x.shape} and targets {targets.shape} must have the same shape")
    _check_count(cfg.epochs, "epochs")
    _check_count(cfg.batch_size, "batch_size")
    res = fit(head, (torch.from_numpy(x), torch.from_numpy(targets)), epochs=int(cfg.epochs),
              batch_size=int(cfg.batch_size), seed=int(cfg.seed),
              optimizer=lambda m: torch.optim.Adam(m.param_groups(cfg.lr_fc6, cfg.lr_fc7),
                                                   betas=(0.9, 0.999), eps=1e-8),
              loss_fn=nn.functional.mse_loss, device=device, progress=progress, desc=desc)
    head.eval()
    return res.history.rename(columns={"train_loss": "loss"})[["epoch", "loss"]]


# ============================================================================================ pipelines
@dataclass
class RetrainData:
    """Everything a retraining step may use (features are the frozen backbone's pooled outputs).

    Attributes
    ----------
    x_train : (N, D)      features of the images the model is retrained on (FU / RRI).
    y_train : (N,)        their labels (RRI).
    x_db, y_db : (Nb, D), (Nb,)     database browsed by RF users (often = the train set).
    x_users, y_users : (K, D), (K,) RF user queries (disjoint from the evaluation queries).
    users_in_db : (K,) or None      database index of each user query (excluded from its list), -1 none.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_db: np.ndarray
    y_db: np.ndarray
    x_users: np.ndarray | None = None
    y_users: np.ndarray | None = None
    users_in_db: np.ndarray | None = None


@dataclass
class MethodConfig:
    """Target-construction settings (paper values, Sec. 5.3.1-5.3.3)."""

    fu_neighbors: int = 2
    eta: float = 0.5
    rri_m: int | None = None
    rri_n: int = 5
    beta: float = 0.2
    rf_relevant: int = 12
    rf_irrelevant: int = 1
    rf_depth: int = 100
    alpha: float = 0.5


def build_targets(method: str, head: RetargetHead, data: RetrainData, mcfg: MethodConfig
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Training inputs and targets of one step, with targets built in the *current* head's output space.

    Returns
    -------
    x_in : (M, D) backbone features to feed; targets : (M, D).
    """
    if method == "fu":
        z = transform(head, data.x_train)
        return data.x_train, fu_targets(z, n_neighbors=mcfg.fu_neighbors, eta=mcfg.eta)
    if method == "rri":
        z = transform(head, data.x_train)
        return data.x_train, rri_targets(z, data.y_train, m=mcfg.rri_m, n=mcfg.rri_n, beta=mcfg.beta)
    if method == "rf":
        if data.x_users is None or data.y_users is None:
            raise ValueError("method 'rf' needs user queries: set RetrainData.x_users / y_users")
        zb, zq = transform(head, data.x_db), transform(head, data.x_users)
        fb = simulate_feedback(zq, data.y_users, zb, data.y_db, n_relevant=mcfg.rf_relevant,
                               n_irrelevant=mcfg.rf_irrelevant, depth=mcfg.rf_depth, exclude=data.users_in_db)
        return data.x_db[fb.item], rf_targets(zq, zb, fb, alpha=mcfg.alpha)
    raise ValueError(f"method={method!r}; use one of {METHODS}")


def check_pipeline(pipeline: Sequence[str]) -> list[str]:
    """Validate a pipeline such as ``["fu", "rri", "rf"]`` (each step pretrains the next, Sec. 3)."""
    steps = [str(s).lower() for s in pipeline]
    if not steps:
        raise ValueError("empty pipeline; use e.g. ['fu'] or ['fu', 'rri'] (retarget.pipelines in params)")
    bad = [s for s in steps if s not in METHODS]
    if bad:
        raise ValueError(f"unknown steps {bad} in pipeline {list(pipeline)}; allowed: {list(METHODS)}")
    return steps


def pipeline_name(pipeline: Sequence[str], layer: str) -> str:
    """Paper notation, e.g. ``FU(FC6,FC7; FC7) -> RRI(FC6,FC7; FC7)``."""
    lay = "FC6; FC6" if layer == "fc6" else "FC6,FC7; FC7"
    return " -> ".join(f"{s.upper()}({lay})" for s in check_pipeline(pipeline))


def run_pipeline(pipeline: Sequence[str], data: RetrainData, *, layer: str, mcfg: MethodConfig,
                 cfg: TrainConfig, device: torch.device | str = "cpu",
                 head: RetargetHead | None = None, progress: bool = False
                 ) -> tuple[RetargetHead, pd.DataFrame]:
    """Retrain a fresh (identity) head through the steps of ``pipeline`` in order (Sec. 5.4).

    Returns
    -------
    head : the retrained RetargetHead
    history : DataFrame ``step, method, epoch, loss, n_samples, seconds``
    """
    steps = check_pipeline(pipeline)
    head = head if head is not None else RetargetHead(data.x_train.shape[1], layer)
    hist = []
    for i, method in enumerate(steps):
        t0 = time.perf_counter()
        x_in, t = build_targets(method, head, data, mcfg)
        h = fit_targets(head, x_in, t, TrainConfig(cfg.epochs, cfg.batch_size, cfg.lr_fc6, cfg.lr_fc7,
                                                   cfg.seed + 1000 * i), device, progress=progress,
                        desc=f"{method} ({layer})")
        h.insert(0, "step", i + 1)
        h.insert(1, "method", method)
        h["n_samples"] = len(x_in)
        h["seconds"] = time.perf_counter() - t0
        hist.append(h)
    return head, pd.concat(hist, ignore_index=True)


# ============================================================================================ evaluation
def full_ranking(xb: np.ndarray, xq: np.ndarray, *, chunk: int = 256) -> np.ndarray:
    """Euclidean ranking of the whole database for every query, ties broken by index: int64 (Q, N).

    Dense distances (:func:`cbir.index.pairwise_distances`) and a stable argsort, chunked over queries.
    """
    xb, xq = _feats(xb, "xb"), _feats(xq, "xq")
    out = np.empty((len(xq), len(xb)), np.int64)
    for s in range(0, len(xq), chunk):
        d = cindex.pairwise_distances(xb, xq[s:s + chunk], metric="l2")
        out[s:s + chunk] = np.argsort(d, axis=1, kind="stable")
    return out


def evaluate(xq: np.ndarray, q_labels: np.ndarray, xb: np.ndarray, db_labels: np.ndarray, *,
             k: int = 50, rankings: np.ndarray | None = None) -> dict[str, float]:
    """mAP over the full ranking (Eq. 18: AP denominator = all relevant items of the database) and mAP@k.

    ``map_at_k`` uses ``denominator="retrieved"`` (relevant items within the top k), the usual reading of
    the paper's "mAP within the top 50 retrieved images" (Tables 5-8); ``map_at_k_min_rk`` divides by
    ``min(R, k)`` instead. Also returns ``p_at_10``.
    """
    if rankings is None:
        rankings = full_ranking(xb, xq)
    rel = cmetrics.relevance(rankings, q_labels, db_labels)
    n_rel = rel.sum(1)
    kk = min(k, rel.shape[1])
    return {
        "map_all": cmetrics.map_all(rel),
        f"map_at_{k}": cmetrics.map_at_k(rel, kk, "retrieved"),
        f"map_at_{k}_min_rk": cmetrics.map_at_k(rel, kk, "min_rk", n_relevant=n_rel),
        "p_at_10": cmetrics.precision_at_k(rel, min(10, rel.shape[1])),
    }


# ============================================================================================ RF rounds
def feedback_rounds(head: RetargetHead, x_db: np.ndarray, y_db: np.ndarray, x_q: np.ndarray,
                    y_q: np.ndarray, *, rounds: int = 3, n_relevant: int = 3, n_irrelevant: int = 3,
                    depth: int = 100, alpha: float = 0.5, cfg: TrainConfig = TrainConfig(epochs=2),
                    k: int = 3, device: torch.device | str = "cpu") -> pd.DataFrame:
    """Iterative relevance feedback for single users (Sec. 5.5, Fig. 20).

    For every query independently: start from a copy of ``head``; in each round the user marks the first
    ``n_relevant`` relevant and ``n_irrelevant`` irrelevant images of the current ranking that were not
    judged in an earlier round; the head is retrained on them for ``cfg.epochs`` epochs with the Eq. (13)-(14)
    targets, initialised from the previous round, and the database is re-represented. Precision@k is
    recorded before feedback (round 0) and after every round. The loop runs over queries and rounds; every
    step inside is vectorised over the database.

    Returns
    -------
    DataFrame ``query, round, precision_at_k, k`` (one row per query and round).
    """
    x_db, x_q = _feats(x_db, "x_db"), _feats(x_q, "x_q")
    y_db, y_q = _labels(y_db, len(x_db), "y_db"), _labels(y_q, len(x_q), "y_q")
    rounds = _check_count(rounds, "rounds", 0)
    rows = []
    for qi in range(len(x_q)):
        h = copy.deepcopy(head)
        judged = np.zeros(len(x_db), bool)
        for r in range(rounds + 1):
            zb, zq = transform(h, x_db), transform(h, x_q[qi:qi + 1])
            _, I = cindex.knn(zb, zq, min(max(depth, k), len(x_db)), metric="l2")
            rel = y_db[I[0]] == y_q[qi]
            rows.append({"query": qi, "round": r, "precision_at_k": float(rel[:k].mean()), "k": k})
            if r == rounds:
                break
            fresh = ~judged[I[0]]
            pos = rel & fresh
            neg = ~rel & fresh
            take_pos = pos & (np.cumsum(pos) <= n_relevant)
            take_neg = neg & (np.cumsum(neg) <= n_irrelevant)
            sel = take_pos | take_neg
            if not sel.any():
                continue
            fb = Feedback(query=np.zeros(int(sel.sum()), np.int64), item=I[0][sel], relevant=take_pos[sel])
            judged[fb.item] = True
            t = rf_targets(zq, zb, fb, alpha=alpha)
            fit_targets(h, x_db[fb.item], t, TrainConfig(cfg.epochs, cfg.batch_size, cfg.lr_fc6, cfg.lr_fc7,
                                                         cfg.seed + r), device)
    return pd.DataFrame(rows, columns=["query", "round", "precision_at_k", "k"])


# ============================================================================================ 2-D picture
def toy_updates(seed: int = 0, n_per_class: int = 12) -> dict[str, np.ndarray]:
    """A 2-D, two-class point cloud with its FU, RRI and RF targets, for the notebook's first figure.

    Returns a dict with ``x, y, fu, rri, rf_items, rf_targets, rf_query``.
    """
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [3.0, 1.0]], np.float32)
    y = np.repeat([0, 1], n_per_class)
    x = (centres[y] + rng.normal(scale=0.9, size=(len(y), 2))).astype(np.float32)
    fu = fu_targets(x, n_neighbors=2, eta=0.5)
    rri = rri_targets(x, y, n=3, beta=0.2)
    fb = simulate_feedback(x[:1], y[:1], x, y, n_relevant=3, n_irrelevant=2, depth=len(x),
                           exclude=np.array([0]))
    rf = rf_targets(x[:1], x, fb, alpha=0.25)
    return {"x": x, "y": y, "fu": fu, "rri": rri, "rf_items": fb.item, "rf_relevant": fb.relevant,
            "rf_targets": rf, "rf_query": x[0]}


# ============================================================================================ experiment drivers
@dataclass
class SplitFeatures:
    """Frozen backbone features of one dataset's database and query pool (computed once, cached).

    ``q_pool`` holds every candidate query; ``q_idx`` the evaluation queries drawn from it.
    """

    dataset: str
    x_db: np.ndarray
    y_db: np.ndarray
    x_pool: np.ndarray
    y_pool: np.ndarray
    q_idx: np.ndarray
    db_images: object
    pool_images: object
    image_size: int
    protocol: str
    relevance: str = "same class label"
    proj: dict | None = None

    def project(self, x: np.ndarray) -> np.ndarray:
        """Apply the split's feature projection (PCA, see :func:`fit_projection`) to raw backbone features."""
        return apply_projection(x, self.proj)

    @property
    def x_q(self) -> np.ndarray:
        return self.x_pool[self.q_idx]

    @property
    def y_q(self) -> np.ndarray:
        return self.y_pool[self.q_idx]

    def queries(self, n: int, seed: int) -> np.ndarray:
        """``n`` pool indices drawn with ``seed`` (the stability study's query sets)."""
        return np.sort(np.random.default_rng(seed).permutation(len(self.y_pool))[:n])


def fit_projection(x_fit: np.ndarray, dim: int | None) -> dict | None:
    """PCA to ``dim`` components fitted on ``x_fit`` (unlabelled database features); ``None`` = no projection.

    The projected features are centred and signed; :class:`RetargetHead` (PReLU slope 1 at start) keeps them
    unchanged before retraining. With ``dim`` = the full dimension the map is a rotation (distances kept).
    """
    if dim is None:
        return None
    x_fit = _feats(x_fit)
    if not 1 <= dim <= x_fit.shape[1]:
        raise ValueError(f"pca_dim={dim} must be in [1, {x_fit.shape[1]}] (feature dimension); "
                         "set retarget.pca_dim in params/<profile>.yaml or null")
    mean = x_fit.mean(0, dtype=np.float64)
    w, v = np.linalg.eigh(np.cov((x_fit - mean).T.astype(np.float64)))
    comp = v[:, ::-1][:, :dim]
    comp *= np.sign(comp[np.abs(comp).argmax(0), np.arange(dim)])  # deterministic signs
    return {"mean": mean.astype(np.float32), "components": comp.astype(np.float32),
            "explained": float(w[::-1][:dim].sum() / w.sum())}


def apply_projection(x: np.ndarray, proj: dict | None) -> np.ndarray:
    """``(x - mean) @ components`` (float32), or ``x`` unchanged when ``proj`` is None."""
    x = _feats(x)
    if proj is None:
        return x
    return ((x - proj["mean"]) @ proj["components"]).astype(np.float32)


def _subset(images, idx):
    return images[idx] if isinstance(images, np.ndarray) else [images[i] for i in idx]


def prepare_dataset(name: str, P, backbone, *, verbose: bool = True) -> SplitFeatures:
    """Database / query split and cached pooled backbone features of ``name`` (params section ``retarget``).

    Datasets with a test split (``cifar10_subset``, ``digits``, ...): database = train split (optionally
    ``db_per_class`` per class), query pool = test split, ``n_queries`` evaluation queries drawn from it
    with the seed (the paper draws 1,000 CIFAR-10 queries from the 10,000 test images, Sec. 5.2).
    Image folders (``caltech101_subset``): ``queries_per_class`` images of each class form the query pool
    (all of it is queried), the rest the database. Query images are never used for retraining.
    """
    from cbir.data import load_dataset, stratified_subset

    size = int(dict(P.image_sizes).get(name, P.image_size))
    folder = name == "caltech101_subset" or name.startswith("folder:")
    if folder:
        ds = load_dataset(name, "all", data_dir=P.data_dir, verbose=verbose)
        q_sel = np.zeros(len(ds.labels), bool)
        q_sel[stratified_subset(ds.labels, P.queries_per_class, P.seed)] = True
        feats = backbone.cached_features(ds.images, size, P.cache_dir, {"dataset": name, "split": "all"},
                                         progress=P.progress)
        db_idx, pool_idx = np.flatnonzero(~q_sel), np.flatnonzero(q_sel)
        if P.db_per_class is not None:
            db_idx = db_idx[stratified_subset(ds.labels[db_idx], P.db_per_class, P.seed)]
        x_db, y_db, db_images = feats[db_idx], ds.labels[db_idx], _subset(ds.images, db_idx)
        x_pool, y_pool, pool_images = feats[pool_idx], ds.labels[pool_idx], _subset(ds.images, pool_idx)
        q_idx = np.arange(len(pool_idx))
        how = f"{P.queries_per_class} queries/class held out of the image folder"
    else:
        tr = load_dataset(name, "train", data_dir=P.data_dir, verbose=verbose)
        te = load_dataset(name, "test", data_dir=P.data_dir, verbose=verbose)
        x_tr = backbone.cached_features(tr.images, size, P.cache_dir, {"dataset": name, "split": "train"},
                                        progress=P.progress)
        x_te = backbone.cached_features(te.images, size, P.cache_dir, {"dataset": name, "split": "test"},
                                        progress=P.progress)
        db_idx = (np.arange(len(tr.labels)) if P.db_per_class is None
                  else stratified_subset(tr.labels, P.db_per_class, P.seed))
        x_db, y_db, db_images = x_tr[db_idx], tr.labels[db_idx], _subset(tr.images, db_idx)
        x_pool, y_pool, pool_images = x_te, te.labels, te.images
        n_q = min(P.n_queries, len(y_pool))
        q_idx = np.sort(np.random.default_rng(P.seed).permutation(len(y_pool))[:n_q])
        how = f"{n_q} queries drawn from the {len(y_pool)} test images (seed {P.seed})"
    proj = fit_projection(x_db, P.pca_dim)
    x_db, x_pool = apply_projection(x_db, proj), apply_projection(x_pool, proj)
    feat = (f"{backbone.feature_dim}-d" if proj is None else
            f"{backbone.feature_dim}-d -> PCA {P.pca_dim} ({100 * proj['explained']:.0f}% variance, fitted on the database)")
    protocol = (f"{name}: database {len(y_db)} images, {len(q_idx)} queries ({how}), "
                f"{len(np.unique(y_db))} classes; relevance = same class; backbone {backbone.name} pooled "
                f"{feat} @ {size}px; Euclidean distance")
    return SplitFeatures(name, x_db, y_db, x_pool, y_pool, q_idx, db_images, pool_images, size, protocol, proj=proj)


def method_config(P) -> MethodConfig:
    """:class:`MethodConfig` from the ``retarget`` params section."""
    return MethodConfig(fu_neighbors=P.fu_neighbors, eta=P.eta, rri_m=P.rri_m, rri_n=P.rri_n, beta=P.beta,
                        rf_relevant=P.rf_relevant, rf_irrelevant=P.rf_irrelevant, rf_depth=P.rf_depth,
                        alpha=P.alpha)


def train_config(P, seed: int | None = None) -> TrainConfig:
    """:class:`TrainConfig` from the ``retarget`` params section."""
    return TrainConfig(epochs=P.epochs, batch_size=P.batch_size, lr_fc6=P.lr_fc6, lr_fc7=P.lr_fc7,
                       seed=P.seed if seed is None else seed)


def retrain_data(sf: SplitFeatures, n_train: int, n_users: int, seed: int) -> RetrainData:
    """FU/RRI training subset (``n_train`` database images) and RF users (``n_users`` database images).

    Both are drawn from the database with ``seed`` (the paper retrains on the search set, e.g. 13,000 of
    NUS-WIDE's 40,000 images, Sec. 5.4); evaluation queries are never among them.
    """
    rng = np.random.default_rng(seed)
    tr = np.sort(rng.permutation(len(sf.y_db))[:min(n_train, len(sf.y_db))])
    us = np.sort(rng.permutation(len(sf.y_db))[:min(n_users, len(sf.y_db))])
    return RetrainData(sf.x_db[tr], sf.y_db[tr], sf.x_db, sf.y_db, sf.x_db[us], sf.y_db[us], us)


def scheme_list(P) -> list[tuple[list[str], str]]:
    """(pipeline, layer) pairs: single-step pipelines on each of ``single_step_layers``, others on FC7
    (the layout of Tables 1-8)."""
    out = []
    for pipe in P.pipelines:
        steps = check_pipeline(pipe)
        for layer in (P.single_step_layers if len(steps) == 1 else ["fc7"]):
            out.append((steps, layer))
    return out


def compare_schemes(sf: SplitFeatures, P, device: torch.device | str = "cpu", *,
                    schemes: Sequence[tuple[Sequence[str], str]] | None = None, seed: int | None = None,
                    q_idx: np.ndarray | None = None, progress: bool = False
                    ) -> tuple[pd.DataFrame, dict[str, RetargetHead]]:
    """Baseline and every retraining scheme on one dataset: mAP (Eq. 18) and mAP@k (Tables 1-8 analogue).

    Returns
    -------
    table : DataFrame ``dataset, scheme, pipeline, layer, map_all, map_at_<k>, map_at_<k>_min_rk, p_at_10,
        train_seconds, n_db, n_queries, n_train, n_users, seed``
    heads : dict ``"<pipeline>@<layer>" -> RetargetHead``
    """
    seed = P.seed if seed is None else seed
    q_idx = sf.q_idx if q_idx is None else q_idx
    xq, yq = sf.x_pool[q_idx], sf.y_pool[q_idx]
    data = retrain_data(sf, P.n_train, P.n_users, seed)
    mcfg, cfg = method_config(P), train_config(P, seed)
    schemes = scheme_list(P) if schemes is None else schemes
    common = {"dataset": sf.dataset, "n_db": len(sf.y_db), "n_queries": len(q_idx), "n_train": len(data.y_train),
              "n_users": len(data.y_users), "seed": seed}
    rows = [{"scheme": "Backbone => pooled", "pipeline": "none", "layer": "pooled",
             **evaluate(xq, yq, sf.x_db, sf.y_db, k=P.map_k), "train_seconds": 0.0}]
    heads: dict[str, RetargetHead] = {}
    for steps, layer in schemes:
        t0 = time.perf_counter()
        head, _ = run_pipeline(steps, data, layer=layer, mcfg=mcfg, cfg=cfg, device=device, progress=progress)
        secs = time.perf_counter() - t0
        head.cpu()
        r = evaluate(transform(head, xq), yq, transform(head, sf.x_db), sf.y_db, k=P.map_k)
        key = "+".join(steps) + "@" + layer
        heads[key] = head
        rows.append({"scheme": pipeline_name(steps, layer) + f" => {layer.upper()}", "pipeline": "+".join(steps),
                     "layer": layer, **r, "train_seconds": secs})
    df = pd.DataFrame(rows)
    for k, v in common.items():
        df[k] = v
    cols = ["dataset", "scheme", "pipeline", "layer"] + [c for c in df.columns if c.startswith(("map", "p_at"))]
    return df[cols + ["train_seconds", "n_db", "n_queries", "n_train", "n_users", "seed"]], heads


def crop_features(sf: SplitFeatures, items: np.ndarray, P, backbone) -> np.ndarray:
    """Features of the nine half-size crops (Sec. 4) of database images ``items`` (pooled backbone features,
    projected like the split's): (U, 9, D)."""
    from cbir import cache
    from cbir.expansion import nine_crops

    items = np.asarray(items, np.int64)
    crops = nine_crops(_subset(sf.db_images, items))
    x = backbone.cached_features(crops, sf.image_size, P.cache_dir,
                                 {"dataset": sf.dataset, "crops_of": cache.key(items=items), "n_db": len(sf.y_db)},
                                 progress=P.progress)
    return sf.project(x).reshape(len(items), 9, -1)


def expansion_table(sf: SplitFeatures, head: RetargetHead, P, backbone) -> pd.DataFrame:
    """QE, alpha-QE, DBA and SVQE on top of a retrained head (Tables 11-12 analogue).

    Every variant is scored on the same ``sv_queries`` queries (the first of the evaluation queries), so
    the spatially verified rows compare like with like; ``space`` says whether vectors were L2-normalised
    (alpha-QE and DBA are defined on the unit sphere).
    """
    from cbir import expansion as ex

    q = sf.q_idx[:min(P.sv_queries, len(sf.q_idx))]
    zq, zb = transform(head, sf.x_pool[q]), transform(head, sf.x_db)
    yq = sf.y_pool[q]
    k = P.map_k
    rows = []

    def add(variant, space, rank):
        rows.append({"variant": variant, "space": space, **evaluate(None, yq, None, sf.y_db, k=k, rankings=rank)})

    base = full_ranking(zb, zq)
    add("retrained (no expansion)", "euclidean", base)
    add(f"average QE, top {P.qe_k} (Eq. 15)", "euclidean", full_ranking(zb, ex.average_qe(zq, zb, base, P.qe_k)))
    nq, nb = ex._l2n(zq), ex._l2n(zb)
    nbase = full_ranking(nb, nq)
    add("retrained (no expansion)", "l2-normalised", nbase)
    add(f"alpha-QE, top {P.qe_k}, alpha={P.alpha_qe:g}", "l2-normalised",
        full_ranking(nb, ex.alpha_qe(nq, nb, nbase, P.qe_k, P.alpha_qe)))
    dba_b = ex.dba(nb, k=P.dba_k, metric="cosine")
    dba_rank = full_ranking(dba_b, nq)
    add(f"DBA, top {P.dba_k}", "l2-normalised", dba_rank)
    add(f"DBA + average QE", "l2-normalised", full_ranking(dba_b, ex.average_qe(nq, dba_b, dba_rank, P.qe_k)))
    # spatial verification: nine crops of each of the top-N results, rerank, then QE (Sec. 4)
    shortlist = base[:, :P.sv_shortlist]
    items, inv = np.unique(shortlist, return_inverse=True)
    cf = crop_features(sf, items, P, backbone)
    zc = transform(head, cf.reshape(-1, cf.shape[-1])).reshape(cf.shape)
    crops_qn = zc[inv.reshape(shortlist.shape)]
    reranked, q_new = ex.spatial_verification_qe(zq, zb, shortlist, crops_qn, P.qe_k)
    add(f"spatial rerank of top {P.sv_shortlist} (9 crops)", "euclidean", ex.merge_rankings(reranked, base))
    add("SVQE (rerank + average QE)", "euclidean", full_ranking(zb, q_new))
    df = pd.DataFrame(rows)
    df.insert(0, "dataset", sf.dataset)
    df["n_queries"] = len(q)
    return df


def rounds_table(sf: SplitFeatures, P, device: torch.device | str = "cpu") -> pd.DataFrame:
    """Iterative single-user relevance feedback (Sec. 5.5, Fig. 20) on a database subset.

    Starts from the untrained (identity) head, i.e. the backbone's own features, as the paper starts from
    CaffeNet's FC7. Returns the per-query rows of :func:`feedback_rounds` plus ``dataset``.
    """
    from cbir.data import stratified_subset

    db = (np.arange(len(sf.y_db)) if P.rounds_db_per_class is None
          else np.sort(stratified_subset(sf.y_db, P.rounds_db_per_class, P.seed)))
    q = sf.q_idx[:min(P.rounds_queries, len(sf.q_idx))]
    cfg = TrainConfig(P.rounds_epochs, P.batch_size, P.rounds_lr_fc6, P.rounds_lr_fc7, P.seed)
    df = feedback_rounds(RetargetHead(sf.x_db.shape[1], "fc7"), sf.x_db[db], sf.y_db[db], sf.x_pool[q],
                         sf.y_pool[q], rounds=P.rounds, n_relevant=P.rounds_relevant,
                         n_irrelevant=P.rounds_irrelevant, depth=P.rf_depth, alpha=P.alpha, cfg=cfg, k=3,
                         device=device)
    df.insert(0, "dataset", sf.dataset)
    df["n_db"] = len(db)
    return df


def stability_table(sf: SplitFeatures, P, device: torch.device | str = "cpu") -> pd.DataFrame:
    """Table 10 analogue: FU, RRI, RF (FC7) repeated with ``stability_repeats`` seeds; each repeat draws a
    new query set from the pool and a new training shuffle / subset. One row per (method, repeat)."""
    rows = []
    n_q = min(P.n_queries, len(sf.y_pool))
    for r in range(P.stability_repeats):
        seed = P.seed + 1 + r
        q = sf.queries(n_q, seed)
        df, _ = compare_schemes(sf, P, device, schemes=[(["fu"], "fc7"), (["rri"], "fc7"), (["rf"], "fc7")],
                                seed=seed, q_idx=q)
        df["repeat"] = r
        rows.append(df)
    return pd.concat(rows, ignore_index=True)


def summarize_stability(stab: pd.DataFrame, k: int = 50) -> pd.DataFrame:
    """Mean and standard deviation (ddof=1) over repeats per method (Table 10 layout)."""
    g = stab.assign(method=stab["pipeline"].replace({"none": "baseline"}).str.upper()
                    .replace({"BASELINE": "baseline"}))
    out = g.groupby(["dataset", "method"], sort=False).agg(
        map_mean=("map_all", "mean"), map_std=("map_all", "std"),
        map_at_k_mean=(f"map_at_{k}", "mean"), map_at_k_std=(f"map_at_{k}", "std"),
        repeats=("repeat", "nunique")).reset_index()
    return out


# ============================================================================================ figures
def plot_toy(toy: dict[str, np.ndarray]):
    """Three panels: FU, RRI and RF target updates on the 2-D toy cloud of :func:`toy_updates`."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.8), sharex=True, sharey=True)
    x, y = toy["x"], toy["y"]
    colors = np.array(["tab:blue", "tab:orange"])[y]
    for ax, key, title in ((axes[0], "fu", "FU (Eq. 3):\ntoward the mean of the 2 nearest"),
                           (axes[1], "rri", "RRI (Eq. 8):\ntoward relevant, away from irrelevant")):
        ax.scatter(x[:, 0], x[:, 1], c=colors, s=25, zorder=3)
        d = toy[key] - x
        ax.quiver(x[:, 0], x[:, 1], d[:, 0], d[:, 1], angles="xy", scale_units="xy", scale=1, width=0.004,
                  color="0.3")
        ax.set_title(title)
    ax = axes[2]
    ax.scatter(x[:, 0], x[:, 1], c=colors, s=25, alpha=0.35, zorder=2)
    q = toy["rf_query"]
    ax.scatter([q[0]], [q[1]], marker="*", s=250, c="k", zorder=4, label="user query")
    it, t = x[toy["rf_items"]], toy["rf_targets"]
    col = np.where(toy["rf_relevant"], "tab:green", "tab:red")
    ax.scatter(it[:, 0], it[:, 1], c=col, s=40, zorder=3)
    ax.quiver(it[:, 0], it[:, 1], (t - it)[:, 0], (t - it)[:, 1], angles="xy", scale_units="xy", scale=1,
              width=0.005, color=col)
    ax.set_title("RF (Eq. 13-14):\nrelevant onto / irrelevant away from the query")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig, axes


def plot_schemes(table: pd.DataFrame, k: int = 50):
    """Grouped bars of mAP (Eq. 18) and mAP@k per scheme and dataset (Tables 1-8 analogue)."""
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(table["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(6.5 * len(datasets), 4.2), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        t = table[table["dataset"] == ds]
        labels = [("baseline" if p == "none" else p.upper().replace("+", "+")) + f"\n{l}"
                  for p, l in zip(t["pipeline"], t["layer"])]
        pos = np.arange(len(t))
        ax.bar(pos - 0.2, t["map_all"], 0.4, label="mAP (full ranking, Eq. 18)")
        ax.bar(pos + 0.2, t[f"map_at_{k}"], 0.4, label=f"mAP@{k} (retrieved denominator)")
        ax.axhline(t["map_all"].iloc[0], color="0.4", lw=0.8, ls="--")
        ax.set_xticks(pos, labels, fontsize=7)
        ax.set_title(ds)
        ax.set_ylim(0, 1)
    axes[0, 0].legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig, axes


def plot_rounds(rounds: pd.DataFrame):
    """Mean precision@3 per relevance-feedback round (Fig. 20 analogue)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for ds, g in rounds.groupby("dataset", sort=False):
        m = g.groupby("round")["precision_at_k"].mean()
        ax.plot(m.index, m.values, marker="o", label=ds)
    ax.set_xlabel("feedback round (0 = before feedback)")
    ax.set_ylabel("mean precision@3")
    ax.set_xticks(sorted(rounds["round"].unique()))
    ax.legend()
    fig.tight_layout()
    return fig, ax


def plot_stability(stab: pd.DataFrame):
    """mAP of every repeat per method (dots) with mean +- std (Table 10 analogue)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    methods = list(dict.fromkeys(stab["pipeline"]))
    for i, m in enumerate(methods):
        v = stab.loc[stab["pipeline"] == m, "map_all"].to_numpy()
        ax.scatter(np.full(len(v), i), v, s=18, alpha=0.7)
        ax.errorbar([i + 0.15], [v.mean()], yerr=[v.std(ddof=1) if len(v) > 1 else 0], fmt="k_", capsize=4)
    ax.set_xticks(range(len(methods)), ["baseline" if m == "none" else m.upper() + " (FC7)" for m in methods])
    ax.set_ylabel("mAP (Eq. 18)")
    fig.tight_layout()
    return fig, ax


# ============================================================================================ paper vs ours
def _rep(source: str, dataset: str, setting: str, metric: str) -> float:
    from cbir import reported

    return reported.value("05_retarget", source, dataset, setting, metric)


def paper_rows(schemes: pd.DataFrame, qe: pd.DataFrame | None, rounds: pd.DataFrame | None,
               stab: pd.DataFrame | None, P, tol_gain: float = 0.05, tol_std: float = 0.01,
               min_gain: float = 0.005) -> list[dict]:
    """Rows for :func:`cbir.report.paper_vs_ours` (Tables 1, 7, 10, 11; Fig. 20).

    Absolute mAPs are never comparable (another backbone, database size and image source); the *gains*
    over the baseline on CIFAR-10 data are compared when the profile runs real CIFAR-10 data (``cifar10`` or
    ``cifar10_subset``), within half the reported gain (at most ``tol_gain``) so that a gain of the wrong
    sign never counts as reproduced; the Table 10 standard deviations within ``tol_std``. The qualitative
    claim of Sec. 5.4 ("each of the proposed approaches improve the baseline results", Tables 1-8) is checked
    on every dataset of the run as a 1 = yes row: a gain of at least ``min_gain`` mAP (the paper's smallest
    Table 7 gains are about 0.02); likewise the claim that the FU -> RRI pipeline beats RRI alone.
    """
    k = P.map_k
    rows: list[dict] = []
    cifar = [d for d in dict.fromkeys(schemes["dataset"]) if d.startswith("cifar10")]
    ds = cifar[0] if cifar else schemes["dataset"].iloc[0]
    real_cifar = bool(cifar) and P.profile != "smoke"
    t = schemes[schemes["dataset"] == ds].set_index(["pipeline", "layer"])
    base = t.loc[("none", "pooled")]
    scale = (f"{P.profile}: {ds}, {int(base['n_db'])} db / {int(base['n_queries'])} queries, "
             f"{P.epochs} epochs, head on frozen pooled features")
    proto = "relevance = same class; Euclidean; mAP Eq. 18 (denominator = all relevant); mAP@50 retrieved"
    why = ("EfficientNet-Lite0 pooled features + identity-initialised FC6/FC7 head instead of CaffeNet FC6/FC7; "
           "JPEG CIFAR-10 subset")
    rows.append({"claim": "baseline features, mAP", "source": "Table 7 row 2", "metric": "map",
                 "reported": _rep("Table 7", "cifar10", "CaffeNet => FC7", "map"), "ours": base["map_all"],
                 "tolerance": tol_gain, "comparable": False, "scale": scale, "protocol": proto,
                 "note": "different backbone: absolute values not comparable"})
    pairs = [(("fu",), "FU(FC6,FC7; FC7) => FC7"), (("rri",), "RRI(FC6,FC7; FC7) => FC7"),
             (("rf",), "RF(FC6,FC7; FC7) => FC7"),
             (("fu", "rri"), "FU(FC6,FC7; FC7) -> RRI(FC6,FC7; FC7) => FC7")]
    rep_base = {m: _rep("Table 7", "cifar10", "CaffeNet => FC7", m) for m in ("map", "map_at_50")}
    for steps, setting in pairs:
        key = ("+".join(steps), "fc7")
        if key not in t.index:
            continue
        for metric, col in (("map", "map_all"), ("map_at_50", f"map_at_{k}")):
            rep_gain = _rep("Table 7", "cifar10", setting, metric) - rep_base[metric]
            rows.append({
                "claim": f"{'+'.join(s.upper() for s in steps)} (FC7) gain over baseline, {metric}",
                "source": "Table 7", "metric": f"{metric} gain", "reported": rep_gain,
                "ours": t.loc[key, col] - base[col], "comparable": real_cifar,
                "tolerance": min(tol_gain, 0.5 * abs(rep_gain)),
                "scale": scale, "protocol": proto, "note": why})

    def direction_row(claim: str, source: str, value: float, scale_: str, note: str) -> dict:
        """A qualitative claim as a 1 = yes row: holds when ``value`` (an mAP difference) >= ``min_gain``."""
        return {"claim": claim, "source": source, "metric": "direction", "reported": 1.0,
                "ours": float(value >= min_gain), "tolerance": 0.0, "comparable": P.profile != "smoke",
                "scale": scale_, "protocol": proto, "note": note}

    for dsd in dict.fromkeys(schemes["dataset"]):
        td = schemes[schemes["dataset"] == dsd].set_index(["pipeline", "layer"])
        b = td.loc[("none", "pooled"), "map_all"]
        for method in ("fu", "rri", "rf"):
            if (method, "fc7") not in td.index:
                continue
            gain = td.loc[(method, "fc7"), "map_all"] - b
            rows.append(direction_row(
                f"{method.upper()} (FC7) improves mAP by >= {min_gain} over the baseline, {dsd} (1 = yes)",
                "Sec. 5.4, Tables 1-8", gain,
                f"{P.profile}: {dsd}, {int(td['n_db'].iloc[0])} db / {int(td['n_queries'].iloc[0])} queries, "
                f"{P.epochs} epochs", f"mAP gain {gain:+.4f}"))
        if ("fu+rri", "fc7") in td.index and ("rri", "fc7") in td.index:
            extra = td.loc[("fu+rri", "fc7"), "map_all"] - td.loc[("rri", "fc7"), "map_all"]
            rows.append(direction_row(f"FU -> RRI (FC7) beats RRI alone by >= {min_gain} mAP, {dsd} (1 = yes)",
                                      "Tables 1, 3, 5-7", extra, f"{P.profile}: {dsd}, {P.epochs} epochs per step",
                                      f"mAP FU->RRI minus RRI {extra:+.4f}"))
    if stab is not None and len(stab) and P.stability_repeats > 1:
        s = summarize_stability(stab, k).set_index("method")
        for ours_m, rep_m in (("baseline", "CaffeNet"), ("FU", "FU"), ("RRI", "RRI"), ("RF", "RF")):
            if ours_m in s.index:
                rows.append({"claim": f"{rep_m}: std of mAP over {int(s.loc[ours_m, 'repeats'])} repeats",
                             "source": "Table 10", "metric": "map_std",
                             "reported": _rep("Table 10", "cifar10", rep_m, "map_std"),
                             "ours": s.loc[ours_m, "map_std"], "tolerance": tol_std,
                             "comparable": P.profile != "smoke" and P.stability_dataset.startswith("cifar10"),
                             "scale": f"{P.profile}: {P.stability_dataset}, new query set + shuffle per repeat",
                             "protocol": proto, "note": "stability claim: small spread across runs"})
    if qe is not None and len(qe):
        for dsq, g in qe.groupby("dataset", sort=False):
            g = g.set_index("variant")
            none = g.iloc[0]["map_all"]
            qe_row = [v for v in g.index if v.startswith("average QE")][0]
            rows.append({"claim": f"average QE gain over the retrained features ({dsq})", "source": "Table 11",
                         "metric": "map gain",
                         "reported": _rep("Table 11", "paris6k", "QE", "map")
                         - _rep("Table 11", "paris6k", "best approach (RRI FC7)", "map"),
                         "ours": g.loc[qe_row, "map_all"] - none, "tolerance": tol_gain, "comparable": False,
                         "scale": f"{P.profile}: {dsq}, {int(g['n_queries'].iloc[0])} queries",
                         "protocol": proto, "note": "paper: Paris 6k landmarks; ours: class-level relevance"})
            rows.append({"claim": f"SVQE gain over average QE ({dsq})", "source": "Table 11",
                         "metric": "map gain",
                         "reported": _rep("Table 11", "paris6k", "SVQE", "map") - _rep("Table 11", "paris6k", "QE",
                                                                                     "map"),
                         "ours": g.loc["SVQE (rerank + average QE)", "map_all"] - g.loc[qe_row, "map_all"],
                         "tolerance": tol_gain, "comparable": False,
                         "scale": f"{P.profile}: {dsq}, top {P.sv_shortlist} x 9 crops",
                         "protocol": proto, "note": "paper: 'slightly boosts'; region queries not available here"})
    if rounds is not None and len(rounds):
        for dsr, g in rounds.groupby("dataset", sort=False):
            m = g.groupby("round")["precision_at_k"].mean()
            rows.append({"claim": f"P@3 gain after the first feedback round ({dsr})", "source": "Fig. 20",
                         "metric": "precision@3 gain", "reported": None,
                         "ours": float(m.get(1, np.nan) - m.get(0, np.nan)), "tolerance": tol_gain,
                         "comparable": False,
                         "scale": f"{P.profile}: {dsr}, {g['query'].nunique()} queries, db {int(g['n_db'].iloc[0])}",
                         "protocol": "3 relevant + 3 irrelevant per round, 2 epochs",
                         "note": "Fig. 20 values are not given in the text (Inria Holidays)"})
    return rows
