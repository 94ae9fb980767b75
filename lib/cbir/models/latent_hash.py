"""Latent-layer hashing network (Li & Li; the DLBHC idea of Lin et al. 2015).

A fully connected *latent layer* H of ``h`` sigmoid units sits between the feature layer F ("F4" in the
paper) and the classifier ("F5").  The network is trained point-wise with cross-entropy on class labels
only; thresholding H at 0.5 (Eq. 1) gives an ``h``-bit binary code per image.

Two trunks are provided:

* :func:`small_cnn` — three convolution + pooling blocks trained from scratch (the paper's Fig. 1, used
  for 28 x 28 digits);
* no trunk (``trunk=None``) — the network takes pre-computed, frozen backbone features as input and only
  F -> H -> classifier are trained (used for CIFAR-10 features from ``pretrained_backbone``).

Bit order: bit ``j`` of a code is latent unit ``j``; codes are packed with ``np.packbits`` (big-endian
within each byte: unit 0 is the most significant bit of byte 0), zero-padded to whole bytes.

References
----------
J.-y. Li, J.-h. Li, "Prompt Image Search with Deep Convolutional Neural Network via Efficient Hashing
Code and Addictive Latent Semantic Layer", Sec. 1.1 (latent layer, LSH-like initialisation) and
Sec. 1.2, Eq. (1) (threshold 0.5).
K. Lin, H.-F. Yang, J.-H. Hsiao, C.-S. Chen, "Deep Learning of Binary Hash Codes for Fast Image
Retrieval", CVPR Workshops 2015.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

__all__ = [
    "LatentHashNet",
    "small_cnn",
    "lsh_init_",
    "Embeddings",
    "train_latent_hash",
    "train_and_embed",
    "Arm",
    "run_arm",
    "accuracy_table",
    "retrieval_sweep",
    "two_step_table",
]


def _check_n_bits(n_bits: int | None) -> None:
    if n_bits is None:
        return
    if isinstance(n_bits, bool) or not isinstance(n_bits, (int, np.integer)) or n_bits < 1:
        raise ValueError(
            f"n_bits={n_bits!r} is not a positive integer; use h >= 1 latent units "
            "(the paper uses 48), or n_bits=None for the same network without the latent layer"
        )


def small_cnn(in_channels: int = 1, widths: tuple[int, int, int] = (32, 64, 64)) -> tuple[nn.Module, int]:
    """Three convolution-pooling blocks (the paper's Fig. 1 trunk), trained from scratch.

    Parameters
    ----------
    in_channels : int, default 1
        Input channels (1 for grey digits, 3 for colour).
    widths : tuple of 3 int, default (32, 64, 64)
        Output channels of the three 3 x 3 convolution blocks.

    Returns
    -------
    trunk : nn.Module
        Maps a float tensor (N, C, H, W) to a flat (N, out_dim) tensor: the third block's map is
        average-pooled to 3 x 3 (any input size >= 8 px works) and flattened.  Keeping a coarse spatial
        layout matters for digits: global average pooling instead cost 16 points of MNIST accuracy in a
        short run (74 % vs 90 %, 5,000 training images, 2 epochs).
    out_dim : int
        Width of the trunk output (``9 * widths[-1]``).
    """
    if in_channels < 1:
        raise ValueError(f"in_channels={in_channels} must be >= 1 (1 for grey, 3 for RGB)")
    layers: list[nn.Module] = []
    c = in_channels
    for w in widths:
        layers += [nn.Conv2d(c, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True), nn.MaxPool2d(2, ceil_mode=True)]
        c = w
    layers += [nn.AdaptiveAvgPool2d(3), nn.Flatten()]
    return nn.Sequential(*layers), c * 9


def lsh_init_(linear: nn.Linear, generator: torch.Generator | None = None) -> nn.Linear:
    """Initialise a linear layer like LSH random projections (paper Sec. 1.1).

    Weights are drawn i.i.d. from N(0, 1/fan_in) — Gaussian random hyperplanes as in random-projection
    LSH (Gionis et al. 1999; Charikar 2002), scaled by 1/sqrt(fan_in) so that the sigmoid of a unit-norm
    input is not saturated at the start — and the bias is zero, so every hyperplane passes through the
    origin (thresholding the sigmoid at 0.5 is then exactly the sign of a random projection).

    Parameters
    ----------
    linear : nn.Linear
        The layer to initialise in place.
    generator : torch.Generator, optional
        Source of randomness (seeded by the caller).

    Returns
    -------
    nn.Linear
        The same layer.
    """
    fan_in = linear.weight.shape[1]
    with torch.no_grad():
        w = torch.randn(linear.weight.shape, generator=generator) / np.sqrt(fan_in)
        linear.weight.copy_(w)
        if linear.bias is not None:
            linear.bias.zero_()
    return linear


@dataclass
class Embeddings:
    """Outputs of :meth:`LatentHashNet.embed` for a batch of inputs.

    Attributes
    ----------
    features : ndarray of shape (N, feature_dim), float32
        Activations of the feature layer F (input of H), used by the fine step of two-step search.
    latent : ndarray of shape (N, h), float32, or None
        Sigmoid activations of H in (0, 1); None for a network without H.
    logits : ndarray of shape (N, n_classes), float32
    """

    features: np.ndarray
    latent: np.ndarray | None
    logits: np.ndarray


class LatentHashNet(nn.Module):
    """Trunk -> feature layer F -> latent sigmoid layer H (h bits) -> classifier (paper Fig. 1, Sec. 1.1).

    Parameters
    ----------
    n_classes : int
        Classifier width (10 for MNIST and CIFAR-10).
    n_bits : int or None, default 48
        Number h of latent units = code length. ``None`` builds the same network without H (the
        classifier reads F directly), the "without latent layer" control.
    trunk : nn.Module, optional
        Maps the input to a flat (N, in_dim) tensor, e.g. :func:`small_cnn`.  ``None``: the input is
        already a feature vector of width ``in_dim`` (frozen pretrained-backbone features).
    in_dim : int
        Width of the trunk output (or of the input features when ``trunk`` is None).
    feature_dim : int, default 512
        Width of the feature layer F (ReLU), the "F4" of the paper.
    dropout : float in [0, 1), default 0.5
        Dropout before F (0 disables).
    seed : int, default 0
        Seed of the LSH-like initialisation of H and of the other new layers.

    Notes
    -----
    Training uses the logits and ``nn.CrossEntropyLoss``; no pairwise term (point-wise learning).
    """

    def __init__(
        self,
        n_classes: int,
        n_bits: int | None = 48,
        *,
        trunk: nn.Module | None = None,
        in_dim: int,
        feature_dim: int = 512,
        dropout: float = 0.5,
        seed: int = 0,
    ) -> None:
        super().__init__()
        _check_n_bits(n_bits)
        if n_classes < 2:
            raise ValueError(f"n_classes={n_classes} must be >= 2 for a classifier")
        if in_dim < 1 or feature_dim < 1:
            raise ValueError(f"in_dim={in_dim} and feature_dim={feature_dim} must be >= 1")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout={dropout} outside [0, 1)")
        g = torch.Generator().manual_seed(int(seed))
        self.n_bits = None if n_bits is None else int(n_bits)
        self.n_classes = int(n_classes)
        self.trunk = trunk if trunk is not None else nn.Identity()
        self.feature = nn.Sequential(nn.Dropout(dropout), nn.Linear(in_dim, feature_dim), nn.ReLU(inplace=True))
        self._init_linear(self.feature[1], g)
        if self.n_bits is None:
            self.latent = None
            self.classifier = nn.Linear(feature_dim, n_classes)
        else:
            self.latent = lsh_init_(nn.Linear(feature_dim, self.n_bits), g)
            self.classifier = nn.Linear(self.n_bits, n_classes)
        self._init_linear(self.classifier, g)

    @staticmethod
    def _init_linear(layer: nn.Linear, g: torch.Generator) -> None:
        bound = 1.0 / np.sqrt(layer.weight.shape[1])
        with torch.no_grad():
            layer.weight.copy_(torch.empty(layer.weight.shape).uniform_(-bound, bound, generator=g))
            layer.bias.zero_()

    def forward_all(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """Return (features F, latent sigmoid H or None, logits) for a batch."""
        f = self.feature(self.trunk(x))
        if self.latent is None:
            return f, None, self.classifier(f)
        h = torch.sigmoid(self.latent(f))
        return f, h, self.classifier(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits (N, n_classes), for cross-entropy training."""
        return self.forward_all(x)[2]

    @torch.no_grad()
    def embed(self, x: np.ndarray | torch.Tensor, batch_size: int = 512, device: str | torch.device | None = None) -> Embeddings:
        """Run the network in eval mode and collect F, H and logits as NumPy arrays.

        Parameters
        ----------
        x : ndarray or Tensor
            Float inputs the trunk accepts: (N, C, H, W) normalised images (see
            :func:`cbir.train.images_to_tensor`) or (N, in_dim) features when there is no trunk.
        batch_size : int, default 512
        device : torch device, optional
            Defaults to the device of the model's parameters.

        Returns
        -------
        Embeddings
        """
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size} must be >= 1")
        was_training = self.training
        self.eval()
        dev = torch.device(device) if device is not None else next(self.parameters()).device
        xt = torch.as_tensor(x)
        feats, lats, logits = [], [], []
        for i in range(0, len(xt), batch_size):
            f, h, z = self.forward_all(xt[i : i + batch_size].to(dev, torch.float32))
            feats.append(f.cpu().numpy())
            logits.append(z.cpu().numpy())
            if h is not None:
                lats.append(h.cpu().numpy())
        self.train(was_training)
        cat = lambda parts, w: np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, w), np.float32)  # noqa: E731
        return Embeddings(
            features=cat(feats, self.feature[1].out_features),
            latent=None if self.latent is None else cat(lats, self.n_bits),
            logits=cat(logits, self.n_classes),
        )

    def encode(self, x: np.ndarray | torch.Tensor, batch_size: int = 512, threshold: float = 0.5) -> np.ndarray:
        """Packed binary codes: bit j = [H_j(x) > threshold] (Eq. 1), packed with ``np.packbits``.

        Uses :func:`cbir.hashing.binarize` (strict ``>``; the paper's Eq. 1 writes ``>=``, which differs
        only for a unit exactly at 0.5) and :func:`cbir.hashing.pack_bits`.

        Parameters
        ----------
        x : ndarray or Tensor
            Inputs as for :meth:`embed`.
        batch_size : int, default 512
        threshold : float, default 0.5
            Eq. (1) of the paper.

        Returns
        -------
        ndarray of shape (N, ceil(h / 8)), uint8
            Big-endian bit order within each byte (unit 0 = most significant bit of byte 0).
        """
        if self.latent is None:
            raise ValueError("this LatentHashNet has no latent layer (n_bits=None); build it with n_bits=h to encode")
        from cbir.hashing import binarize, pack_bits

        h = self.embed(x, batch_size=batch_size).latent
        return pack_bits(binarize(h, threshold=threshold))


# --------------------------------------------------------------------------------------------------
# Experiment helpers of notebook 02 (train, embed, cache) — thin wrappers over cbir.train / cbir.cache.
# --------------------------------------------------------------------------------------------------
def train_latent_hash(
    x: np.ndarray | torch.Tensor,
    y: np.ndarray | torch.Tensor,
    *,
    n_classes: int,
    n_bits: int | None,
    in_dim: int,
    trunk_fn: Callable[[], nn.Module] | None = None,
    feature_dim: int = 512,
    dropout: float = 0.2,
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    progress: bool = True,
    device: str | torch.device | None = None,
    desc: str = "latent hash",
):
    """Build a :class:`LatentHashNet` and train it with cross-entropy (point-wise, class labels only).

    Adam with learning rate ``lr``; no validation split and no model selection (the last epoch is kept,
    as in the paper, which trains for a fixed number of iterations).

    Parameters
    ----------
    x, y : training inputs (float NCHW images or (N, in_dim) features) and int64 labels
    n_classes, n_bits, in_dim, feature_dim, dropout : see :class:`LatentHashNet`
    trunk_fn : callable returning the trunk module, optional
        Called after ``torch.manual_seed(seed)`` so the trunk's initial weights are seeded.
    epochs, lr, batch_size, seed : training settings (``cbir.train.fit``)

    Returns
    -------
    cbir.train.FitResult
        ``.model`` is the trained network, ``.history`` the per-epoch loss/accuracy.
    """
    from cbir.train import fit

    torch.manual_seed(seed)
    trunk = trunk_fn() if trunk_fn is not None else None
    model = LatentHashNet(n_classes, n_bits, trunk=trunk, in_dim=in_dim, feature_dim=feature_dim,
                          dropout=dropout, seed=seed)
    return fit(model, (x, y), epochs=epochs, batch_size=batch_size, seed=seed,
               optimizer=lambda m: torch.optim.Adam(m.parameters(), lr=lr), desc=desc, progress=progress,
               device=device)


def train_and_embed(
    x_train: np.ndarray | torch.Tensor,
    y_train: np.ndarray,
    x_test: np.ndarray | torch.Tensor,
    *,
    fit_idx: np.ndarray | None = None,
    cache_dir,
    cache_params: dict,
    n_bits: int | None,
    **train_kw,
) -> dict[str, np.ndarray]:
    """Train one network (see :func:`train_latent_hash`) and return its embeddings, cached on disk.

    The network is trained on ``x_train[fit_idx]`` (all of ``x_train`` when ``fit_idx`` is None) and
    embeds every row of ``x_train`` (the database) and ``x_test``.

    The result is stored with :func:`cbir.cache.cached_npz` under a key made of ``cache_params`` (the
    data identity: dataset, split sizes, input size, seed) plus ``n_bits`` and every training setting, so
    a rerun with the same parameters reuses it.

    Returns
    -------
    dict of ndarray
        ``db_features`` (N, feature_dim) and ``test_features`` (M, feature_dim): feature layer F;
        ``db_latent`` / ``test_latent`` (N|M, h): sigmoid activations of H (absent without H);
        ``test_logits`` (M, n_classes); ``train_loss``, ``train_acc``, ``epoch_seconds`` per epoch.
    """
    fit_key = None if fit_idx is None else np.asarray(fit_idx)
    key = {**cache_params, "n_bits": n_bits, "fit_idx": fit_key,
           **{k: v for k, v in train_kw.items() if k not in ("trunk_fn", "progress", "device", "desc")}}

    def compute() -> dict[str, np.ndarray]:
        xf, yf = (x_train, y_train) if fit_idx is None else (x_train[fit_idx], y_train[fit_idx])
        res = train_latent_hash(xf, yf, n_bits=n_bits, **train_kw)
        m = res.model
        e_db, e_te = m.embed(x_train), m.embed(x_test)
        out = {"db_features": e_db.features, "test_features": e_te.features, "test_logits": e_te.logits,
               "train_loss": res.history["train_loss"].to_numpy(float),
               "train_acc": res.history["train_acc"].to_numpy(float),
               "epoch_seconds": res.history["seconds"].to_numpy(float)}
        if n_bits is not None:
            out["db_latent"], out["test_latent"] = e_db.latent, e_te.latent
        return out

    from cbir.cache import cached_npz

    return cached_npz(f"latent_hash_h{n_bits or 0}", key, compute, cache_dir)


@dataclass
class Arm:
    """One experiment arm of notebook 02: data, inputs and the trained networks' embeddings.

    Attributes
    ----------
    arm : {"cnn", "feat"}
        ``cnn``: small CNN trained from scratch on the images; ``feat``: F -> H -> classifier trained on
        frozen pretrained-backbone features.
    dataset : str
    protocol : str
        Database / query / training protocol line printed beside every number.
    db_images, test_images : uint8 (N, H, W, 3) / (M, H, W, 3) images (for grids)
    db_labels, test_labels : int64 (N,) / (M,)
    db_input, test_input : float32 (N, D0) / (M, D0)
        The features the unsupervised baselines hash and the float linear scan ranks: raw pixels in
        [0, 1] (``cnn``) or the frozen backbone's pooled features (``feat``).
    query_idx : int64 (Q,)
        Indices into the test split of the random queries.
    nets : dict
        ``h -> arrays`` of :func:`train_and_embed` for every code length ``h`` and ``None`` (no H).
    classes : list of str
    input_name : str
        What ``db_input`` is, for tables.
    """

    arm: str
    dataset: str
    protocol: str
    db_images: np.ndarray
    test_images: np.ndarray
    db_labels: np.ndarray
    test_labels: np.ndarray
    db_input: np.ndarray
    test_input: np.ndarray
    query_idx: np.ndarray
    nets: dict
    classes: list
    input_name: str

    @property
    def q_labels(self) -> np.ndarray:
        return self.test_labels[self.query_idx]


def run_arm(P, arm: str, device: str | torch.device | None = None) -> Arm:
    """Load an arm's data, build its inputs and train one network per code length (cached).

    Parameters
    ----------
    P : cbir.params.Params
        Section ``latent_hash``: ``cnn_*`` keys for ``arm="cnn"``, ``feat_*`` and ``head_*`` for
        ``arm="feat"``; ``bits_sweep``, ``n_bits``, ``feature_dim``, ``dropout``, ``batch_size``,
        ``n_queries``, ``seed``.
    arm : {"cnn", "feat"}
    device : torch device, optional

    Returns
    -------
    Arm
        Database = the training split (as in the paper), queries = ``n_queries`` random test images.
    """
    from cbir.data import load_dataset
    from cbir.train import images_to_tensor

    if arm not in ("cnn", "feat"):
        raise ValueError(f"arm={arm!r}; use 'cnn' (small CNN from scratch) or 'feat' (frozen backbone features)")
    if arm == "cnn":
        kw = dict(seed=P.seed, image_size=P.cnn_image_size, data_dir=P.data_dir)
        tr = load_dataset(P.cnn_dataset, "train", n_per_class=P.cnn_train_per_class, **kw)
        te = load_dataset(P.cnn_dataset, "test", n_per_class=P.cnn_test_per_class, **kw)
        x_tr, x_te = images_to_tensor(tr.images[..., :1]), images_to_tensor(te.images[..., :1])
        db_input = tr.images[..., 0].reshape(len(tr), -1).astype(np.float32) / 255.0
        test_input = te.images[..., 0].reshape(len(te), -1).astype(np.float32) / 255.0
        widths = tuple(P.cnn_widths)
        trunk_fn, in_dim = (lambda: small_cnn(1, widths)[0]), small_cnn(1, widths)[1]
        epochs, lr, input_name = P.cnn_epochs, P.cnn_lr, f"raw pixels ({db_input.shape[1]}-d)"
        model_desc = f"small CNN {list(widths)} from scratch, {epochs} epochs"
        extra = {"widths": list(widths), "trunk": "3x(conv3-bn-relu-maxpool2)+avgpool3"}
    else:
        from cbir.models.backbones import pretrained_backbone

        kw = dict(seed=P.seed, data_dir=P.data_dir)
        tr = load_dataset(P.feat_dataset, "train", n_per_class=P.feat_train_per_class, **kw)
        te = load_dataset(P.feat_dataset, "test", n_per_class=P.feat_test_per_class, **kw)
        bb = pretrained_backbone("auto")
        size = P.feat_image_size
        x_tr = bb.cached_features(tr.images, size, P.cache_dir, {"protocol": tr.protocol}, progress=P.progress)
        x_te = bb.cached_features(te.images, size, P.cache_dir, {"protocol": te.protocol}, progress=P.progress)
        db_input, test_input = x_tr, x_te
        trunk_fn, in_dim = None, bb.feature_dim
        epochs, lr = P.head_epochs, P.head_lr
        input_name = f"{bb.name} pooled features @{size}px ({bb.feature_dim}-d, frozen)"
        model_desc = f"frozen {bb.name} @{size}px + trained F->H->classifier, {epochs} epochs"
        extra = {"backbone": bb.name, "source": bb.source, "size": size}
    from cbir.data import stratified_subset

    fit_idx = None if P.fit_per_class is None else stratified_subset(tr.labels, P.fit_per_class, P.seed)
    n_fit = len(tr) if fit_idx is None else len(fit_idx)
    rng = np.random.default_rng(P.seed)
    n_q = min(P.n_queries, len(te))
    query_idx = np.sort(rng.choice(len(te), size=n_q, replace=False)).astype(np.int64)
    cache_params = {"arm": arm, "train": tr.protocol, "test": te.protocol, "seed": P.seed, **extra}
    nets = {}
    for h in [*sorted(set(P.bits_sweep) | {P.n_bits}), None]:
        nets[h] = train_and_embed(
            x_tr, tr.labels, x_te, fit_idx=fit_idx, cache_dir=P.cache_dir, cache_params=cache_params, n_bits=h,
            n_classes=len(tr.classes), in_dim=in_dim, trunk_fn=trunk_fn, feature_dim=P.feature_dim,
            dropout=P.dropout, epochs=epochs, lr=lr, batch_size=P.batch_size, seed=P.seed,
            progress=P.progress, device=device, desc=f"{arm} h={h if h else 'none'}")
    protocol = (f"{tr.name}: database = train split ({len(tr)} images), queries = {n_q} random test images "
                f"(of {len(te)}, seed {P.seed}); relevance = same class label; model: {model_desc} on "
                f"{n_fit} training images; "
                f"profile {P.profile}")
    return Arm(arm, tr.name, protocol, tr.images, te.images, tr.labels, te.labels, db_input, test_input,
               query_idx, nets, list(tr.classes), input_name)


def accuracy_table(arms: list[Arm], n_bits: int) -> "pd.DataFrame":
    """Test accuracy of the network with an h-unit latent layer vs the same network without it (Table 1/2).

    Returns
    -------
    DataFrame
        Columns ``dataset, network, n_bits, test_accuracy, test_error_pct, n_test, final_train_loss``.
    """
    import pandas as pd

    rows = []
    for a in arms:
        for h, label in ((n_bits, f"with latent layer H (h={n_bits})"), (None, "without H")):
            e = a.nets[h]
            acc = float((e["test_logits"].argmax(1) == a.test_labels).mean())
            rows.append({"dataset": a.dataset, "network": label, "n_bits": h or 0, "test_accuracy": acc,
                         "test_error_pct": 100 * (1 - acc), "n_test": len(a.test_labels),
                         "final_train_loss": float(e["train_loss"][-1])})
    return pd.DataFrame(rows)


def retrieval_sweep(a: Arm, P) -> "pd.DataFrame":
    """Precision@k and mAP of every method and code length on one arm (Figs. 3-4, 7-8 analogue).

    Methods: latent-layer hashing (one-step Hamming ranking of the trained codes), the unsupervised
    baselines ``P.baselines`` (LSH / PCA-ITQ / spectral hashing fitted on the database's input features
    ``a.db_input``) and two float linear scans (cosine) without hashing: on the input features, and on
    the feature layer F of the h = ``P.n_bits`` network.

    Returns
    -------
    DataFrame
        Long table: ``dataset, method, n_bits, metric, k, value`` (value = fraction).
    """
    import pandas as pd

    from cbir.hashing import binarize, pack_bits
    from cbir.hashing.baselines import make_hasher
    from cbir.search import build_binary_index, cosine_linear_scan, one_step_search, score_rankings

    k = max(max(P.precision_ks), P.map_k, P.headline_k)
    qi = a.query_idx
    frames = []

    def add(method: str, h: int, rankings: np.ndarray) -> None:
        df = score_rankings(rankings, a.q_labels, a.db_labels, sorted({*P.precision_ks, P.headline_k}), P.map_k)
        df.insert(0, "n_bits", h)
        df.insert(0, "method", method)
        frames.append(df)

    bits = sorted(set(P.bits_sweep) | {P.n_bits})
    for h in bits:
        e = a.nets[h]
        db_codes = pack_bits(binarize(e["db_latent"], 0.5))
        q_codes = pack_bits(binarize(e["test_latent"][qi], 0.5))
        add("latent hash (ours, Hamming)", h, one_step_search(build_binary_index(db_codes, h), q_codes, k).rankings)
        for name in P.baselines:
            if name == "itq" and h > min(a.db_input.shape):
                continue  # PCA-ITQ needs h <= feature dimension
            hasher = make_hasher(name, h, seed=P.seed).fit(a.db_input)
            label = {"lsh": "LSH", "itq": "PCA-ITQ", "sh": "spectral hashing"}[name]
            add(f"{label} (Hamming)", h, one_step_search(build_binary_index(hasher.encode(a.db_input), h),
                                                         hasher.encode(a.test_input[qi]), k).rankings)
    add(f"linear scan, {a.input_name.split(' (')[0]} (cosine)", 0,
        cosine_linear_scan(a.db_input, a.test_input[qi], k).rankings)
    e = a.nets[P.n_bits]
    add(f"linear scan, F layer of h={P.n_bits} net (cosine)", 0,
        cosine_linear_scan(e["db_features"], e["test_features"][qi], k).rankings)
    out = pd.concat(frames, ignore_index=True)
    out.insert(0, "dataset", a.dataset)
    return out


def two_step_table(a: Arm, P) -> "pd.DataFrame":
    """One-step vs two-step search on the h = ``P.n_bits`` network: precision, mAP, pool size and time.

    Returns
    -------
    DataFrame
        Columns ``dataset, search, pool, mean_pool_size, precision@<headline_k>, mAP@<map_k>, coarse_s,
        fine_s, total_s`` (times for all queries together).
    """
    import pandas as pd

    from cbir.hashing import binarize, pack_bits
    from cbir.search import build_binary_index, cosine_linear_scan, one_step_search, score_rankings, two_step_search

    h, qi = P.n_bits, a.query_idx
    k = max(P.headline_k, P.map_k)
    e = a.nets[h]
    index = build_binary_index(pack_bits(binarize(e["db_latent"], 0.5)), h)
    q_codes = pack_bits(binarize(e["test_latent"][qi], 0.5))
    dbf, qf = e["db_features"], e["test_features"][qi]
    runs = [("one-step (Hamming)", "-", one_step_search(index, q_codes, k))]
    for r in P.two_step_radii:
        runs.append(("two-step", f"radius <= {r}", two_step_search(index, q_codes, dbf, qf, k, radius=r)))
    for p in P.two_step_pools:
        if p >= k:
            runs.append(("two-step", f"top-{p}", two_step_search(index, q_codes, dbf, qf, k, pool_size=p)))
    runs.append(("linear scan F (cosine)", "all", cosine_linear_scan(dbf, qf, k)))
    rows = []
    for search, pool, res in runs:
        sc = score_rankings(res.rankings, a.q_labels, a.db_labels, [P.headline_k], P.map_k)
        rows.append({"dataset": a.dataset, "search": search, "pool": pool,
                     "mean_pool_size": float(res.pool_sizes.mean()) if res.pool_sizes is not None
                     else (float(len(a.db_labels)) if pool == "all" else np.nan),
                     f"precision@{P.headline_k}": float(sc.value.iloc[0]), f"mAP@{P.map_k}": float(sc.value.iloc[1]),
                     **{key: res.timings[key] for key in ("coarse_s", "fine_s", "total_s")}})
    return pd.DataFrame(rows)
