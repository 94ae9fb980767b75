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
connected layers on top of them play FC6/FC7 (:class:`RetargetHead`, the *frozen-feature head*, used with
EfficientNet-Lite0, which has no FC layers). Both are initialised to the identity (per-channel PReLU slopes 1), so
the untrained head reproduces the backbone's features exactly and retraining only moves away from them.

With a network that has FC layers (torchvision AlexNet ~ CaffeNet, VGG16; :func:`has_fc_layers`) the paper's
own path runs: the trunk is cut at pool5 (:func:`pool5_backbone`, frozen, pool5 features cached once) and
:class:`FCRetargetHead` holds copies of the pretrained FC6 and FC7, retrained with the targets; the ReLU after
the layer of interest is replaced by a per-channel PReLU (Caffe's ``PReLU`` layer: one slope per channel,
filler constant 0.25; the paper says "initialized randomly"). :meth:`FCRetargetHead.reference` gives the
pretrained network's own FC6/FC7 (+ ReLU) responses, the "CaffeNet => FC6/FC7" baselines.

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
    paper replaces the ReLU after the retrained layer by a PReLU; here both activations are per-channel PReLUs
    (one slope per unit, as Caffe's) whose slopes start at ``prelu_init = 1`` and both square linear layers start as the identity with zero bias,
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
        self.dim, self.in_dim, self.layer = int(dim), int(dim), layer
        self.fc6 = nn.Linear(dim, dim)
        self.act6 = nn.PReLU(num_parameters=dim, init=prelu_init)
        self.fc7 = nn.Linear(dim, dim) if layer == "fc7" else None
        self.act7 = nn.PReLU(num_parameters=dim, init=prelu_init) if layer == "fc7" else None
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


FC_NETWORKS: tuple[str, ...] = ("alexnet", "vgg16", "vgg19")
"""Registry networks (:data:`cbir.models.backbones.WEIGHTS`) with CaffeNet-style FC6/FC7 layers."""


def has_fc_layers(backbone) -> bool:
    """Whether ``backbone`` (a :class:`cbir.models.backbones.Backbone`) has FC6/FC7 to retrain (AlexNet, VGG)."""
    return backbone.name in FC_NETWORKS or backbone.name.endswith("-pool5")


def _fc_linears(classifier: nn.Module) -> tuple[nn.Linear, nn.Linear]:
    lin = [m for m in classifier.modules() if isinstance(m, nn.Linear)]
    if len(lin) < 2:
        raise ValueError(f"classifier has {len(lin)} Linear layers; FC6/FC7 need at least 2 (AlexNet / VGG)")
    return lin[0], lin[1]


def pool5_backbone(backbone):
    """The backbone cut at pool5 (Sec. 3.2: "all the convolutional layers remain unchanged").

    ``backbone`` is a torchvision AlexNet/VGG :class:`cbir.models.backbones.Backbone`; the returned one has
    ``trunk = features -> avgpool -> flatten`` (9216-d for AlexNet, 25088-d for VGG16), name
    ``"<name>-pool5"`` (so its cached features are keyed apart from the FC7 ones) and the same source.
    """
    import dataclasses

    if backbone.name.endswith("-pool5"):
        return backbone
    if backbone.name not in FC_NETWORKS:
        raise ValueError(f"backbone {backbone.name!r} has no FC6/FC7 layers (pool5 cut needs one of {FC_NETWORKS}); "
                         "use the frozen-feature RetargetHead instead")
    net = backbone.module
    fc6, _ = _fc_linears(net.classifier)
    trunk = nn.Sequential(net.features, net.avgpool, nn.Flatten()).eval()
    return dataclasses.replace(backbone, name=f"{backbone.name}-pool5", trunk=trunk, feature_dim=fc6.in_features)


class FCRetargetHead(nn.Module):
    """The pretrained network's FC6 (and FC7) over cached pool5 features, retrained as in Sec. 3.2.

    ``layer="fc7"``: ``FC6 -> ReLU6 -> FC7 -> PReLU7`` (FC8 discarded, ReLU7 replaced by a PReLU);
    ``layer="fc6"``: ``FC6 -> PReLU6`` (FC7, FC8 removed). FC6 and FC7 are copies of the pretrained layers.
    The PReLU has one slope per channel (Caffe's default ``channel_shared: false``) starting at
    ``prelu_init`` (Caffe's filler: constant 0.25). Dropout is left out (the targets are regressed with MSE).

    Parameters
    ----------
    fc6, fc7 : nn.Linear
        Pretrained FC6 (pool5 -> 4096) and FC7 (4096 -> 4096); ``fc7`` is ignored for ``layer="fc6"``.
    layer : {"fc6", "fc7"}
    prelu_init : float
    """

    def __init__(self, fc6: nn.Linear, fc7: nn.Linear | None, layer: str = "fc7", prelu_init: float = 0.25):
        super().__init__()
        if layer not in LAYERS:
            raise ValueError(f"layer={layer!r}; use 'fc6' or 'fc7'")
        if layer == "fc7" and fc7 is None:
            raise ValueError("layer='fc7' needs the pretrained fc7")
        self.layer = layer
        self.fc6 = copy.deepcopy(fc6).float()
        self.fc7 = copy.deepcopy(fc7).float() if layer == "fc7" else None
        out = self.fc7 if self.fc7 is not None else self.fc6
        self.in_dim, self.dim = int(self.fc6.in_features), int(out.out_features)
        self.act = nn.PReLU(num_parameters=self.dim, init=prelu_init)
        for p in self.parameters():
            p.requires_grad_(True)

    @classmethod
    def from_classifier(cls, classifier: nn.Module, layer: str = "fc7", prelu_init: float = 0.25
                        ) -> "FCRetargetHead":
        """Head from a torchvision AlexNet/VGG ``classifier`` (its first two Linear layers are FC6, FC7)."""
        fc6, fc7 = _fc_linears(classifier)
        return cls(fc6, fc7, layer, prelu_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fc7 is None:
            return self.act(self.fc6(x))
        return self.act(self.fc7(torch.relu(self.fc6(x))))

    @torch.no_grad()
    def reference(self, x: torch.Tensor) -> torch.Tensor:
        """The pretrained network's response at the layer (after its ReLU): the untrained baseline."""
        h = torch.relu(self.fc6(x))
        return h if self.fc7 is None else torch.relu(self.fc7(h))

    def param_groups(self, lr_fc6: float, lr_fc7: float) -> list[dict]:
        """Adam parameter groups: FC6 slowly, FC7 (+ PReLU) faster; FC6 alone at ``lr_fc7`` (Sec. 3.2)."""
        if self.fc7 is None:
            return [{"params": list(self.fc6.parameters()) + list(self.act.parameters()), "lr": lr_fc7}]
        return [{"params": list(self.fc6.parameters()), "lr": lr_fc6},
                {"params": list(self.fc7.parameters()) + list(self.act.parameters()), "lr": lr_fc7}]


@torch.no_grad()
def reference_transform(head: FCRetargetHead, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """:meth:`FCRetargetHead.reference` of pool5 features ``x`` (N, in_dim) -> float32 (N, dim)."""
    x = _feats(x)
    dev = next(head.parameters()).device
    out = [head.reference(torch.from_numpy(x[s:s + batch_size]).to(dev)).cpu().numpy()
           for s in range(0, len(x), batch_size)]
    return np.concatenate(out).astype(np.float32) if out else np.zeros((0, head.dim), np.float32)


@torch.no_grad()
def transform(head: nn.Module, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """Representations ``head(x)`` of backbone features ``x`` (N, in_dim) -> float32 (N, dim); ``head`` is a
    :class:`RetargetHead` or an :class:`FCRetargetHead`."""
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


def fit_targets(head: RetargetHead | FCRetargetHead, x: np.ndarray, targets: np.ndarray, cfg: TrainConfig,
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
    if len(x) != len(targets) or targets.shape[1] != head.dim or x.shape[1] != getattr(head, "in_dim", x.shape[1]):
        raise ValueError(f"x {x.shape} and targets {targets.shape} must have one row each and widths "
                         f"({getattr(head, 'in_dim', '?')}, {head.dim}) of the head")
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


def build_targets(method: str, head: RetargetHead | FCRetargetHead, data: RetrainData, mcfg: MethodConfig
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
                 head: RetargetHead | FCRetargetHead | None = None, progress: bool = False
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


def run_rri_with_distractors(data: RetrainData, x_distractors: np.ndarray, *, layer: str, mcfg: MethodConfig,
                             cfg: TrainConfig, theta: float = 0.5, device: torch.device | str = "cpu",
                             head: RetargetHead | FCRetargetHead | None = None
                             ) -> tuple[RetargetHead | FCRetargetHead, pd.DataFrame, int]:
    """RRI retraining with distractors, Eq. (4)-(10) of Tzelepi & Tefas (2018), Sec. 3.1.2.

    The labelled images get the Eq. (8) targets; every distractor that is among the ``mcfg.rri_n`` nearest
    irrelevant representations of some training image is *gathered* and gets the Eq. (10) target (pushed
    away from that image, :func:`distractor_targets`); both sets are regressed together in one step.

    Parameters
    ----------
    data : RetrainData        ``x_train``, ``y_train`` (the labelled training images).
    x_distractors : (P, D)    backbone features of the distractor images (no class).
    layer, mcfg, cfg, device, head : as in :func:`run_pipeline`.
    theta : float in [0, 0.5] Eq. (10) (paper: 0.5, Sec. 5.3.2).

    Returns
    -------
    head, history (``step, method, epoch, loss, n_samples, seconds``), number of gathered distractors.
    """
    head = head if head is not None else RetargetHead(data.x_train.shape[1], layer)
    xd = _feats(x_distractors, "x_distractors")
    t0 = time.perf_counter()
    z, zd = transform(head, data.x_train), transform(head, xd)
    t_lab = rri_targets(z, data.y_train, m=mcfg.rri_m, n=mcfg.rri_n, beta=mcfg.beta)
    gathered, t_d = distractor_targets(z, data.y_train, zd, n=mcfg.rri_n, theta=theta)
    x_in = np.concatenate([data.x_train, xd[gathered]])
    h = fit_targets(head, x_in, np.concatenate([t_lab, t_d]), cfg, device, desc=f"rri+distractors ({layer})")
    h.insert(0, "step", 1)
    h.insert(1, "method", "rri+distractors")
    h["n_samples"] = len(x_in)
    h["seconds"] = time.perf_counter() - t0
    return head, h, int(len(gathered))


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
             k: int = 50, rankings: np.ndarray | None = None, per_query: bool = False) -> dict:
    """mAP over the full ranking (Eq. 18: AP denominator = all relevant items of the database) and mAP@k.

    ``map_at_k`` uses ``denominator="retrieved"`` (relevant items within the top k), the usual reading of
    the paper's "mAP within the top 50 retrieved images" (Tables 5-8); ``map_at_k_min_rk`` divides by
    ``min(R, k)`` instead. Also returns ``p_at_10``. With ``per_query=True`` the dict also holds the
    per-query APs behind the two means, ``ap_all`` and ``ap_at_<k>`` (float64 arrays (Q,), from
    :func:`cbir.metrics.average_precision`), for paired bootstrap intervals over the same queries.
    """
    if rankings is None:
        rankings = full_ranking(xb, xq)
    rel = cmetrics.relevance(rankings, q_labels, db_labels)
    n_rel = rel.sum(1)
    kk = min(k, rel.shape[1])
    out = {
        "map_all": cmetrics.map_all(rel),
        f"map_at_{k}": cmetrics.map_at_k(rel, kk, "retrieved"),
        f"map_at_{k}_min_rk": cmetrics.map_at_k(rel, kk, "min_rk", n_relevant=n_rel),
        "p_at_10": cmetrics.precision_at_k(rel, min(10, rel.shape[1])),
    }
    if per_query:
        out["ap_all"] = cmetrics.average_precision(rel, n_rel, "all")
        out[f"ap_at_{k}"] = cmetrics.average_precision(rel[:, :kk], None, "retrieved")
    return out


# ============================================================================================ RF rounds
def feedback_rounds(head: RetargetHead | FCRetargetHead, x_db: np.ndarray, y_db: np.ndarray, x_q: np.ndarray,
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
