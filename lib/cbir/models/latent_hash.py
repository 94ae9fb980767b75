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
    "build_latent_hash_net",
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
        """Return (features F, latent sigmoid H or None, logits) for a batch.

        H = sigmoid(W_H F + b_H) is the latent layer of Li & Li Sec. 1.1 (DLBHC), whose 0.5 threshold is Eq. (1)
        (:func:`cbir.hashing.binarize`); the logits are W_C H + b_C (or W_C F + b_C without H)."""
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
    lr_decay: float = 1.0,
    monitor: tuple | None = None,
):
    """Build a :class:`LatentHashNet` and train it with cross-entropy (point-wise, class labels only).

    Adam with learning rate ``lr`` (multiplied by ``lr_decay`` after every epoch); no validation split and
    no model selection (the last epoch is kept, as in the paper, which trains for a fixed number of
    iterations, Sec. 2.2: "10,000 repetitions with the learning rate of 0.001").

    Parameters
    ----------
    x, y : training inputs (float NCHW images or (N, in_dim) features) and int64 labels
    n_classes, n_bits, in_dim, feature_dim, dropout : see :class:`LatentHashNet`
    trunk_fn : callable returning the trunk module, optional
        Called after ``torch.manual_seed(seed)`` so the trunk's initial weights are seeded.
    epochs, lr, batch_size, seed : training settings (``cbir.train.fit``)
    lr_decay : float in (0, 1], default 1.0
        Per-epoch factor of an exponential learning-rate schedule (1.0 = constant ``lr``).
    monitor : (x, y), optional
        Data scored (accuracy) after every epoch for the learning curve only (``history["val_score"]``);
        it never selects the weights (``restore_best=False``), so the test split may be monitored.

    Returns
    -------
    cbir.train.FitResult
        ``.model`` is the trained network, ``.history`` the per-epoch loss/accuracy.
    """
    from cbir.train import fit

    if not 0.0 < lr_decay <= 1.0:
        raise ValueError(f"lr_decay={lr_decay} outside (0, 1]; use 1.0 for a constant learning rate")
    model = build_latent_hash_net(n_classes, n_bits, in_dim=in_dim, trunk_fn=trunk_fn, feature_dim=feature_dim,
                                  dropout=dropout, seed=seed)
    sched = None if lr_decay == 1.0 else (lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=lr_decay))
    return fit(model, (x, y), epochs=epochs, batch_size=batch_size, seed=seed,
               optimizer=lambda m: torch.optim.Adam(m.parameters(), lr=lr), scheduler=sched, desc=desc,
               progress=progress, device=device, val_data=monitor, restore_best=False)


def build_latent_hash_net(n_classes: int, n_bits: int | None, *, in_dim: int,
                          trunk_fn: Callable[[], nn.Module] | None = None, feature_dim: int = 512,
                          dropout: float = 0.2, seed: int = 0) -> LatentHashNet:
    """The untrained :class:`LatentHashNet` that :func:`train_latent_hash` starts from (seeded trunk).

    Also used to time feature extraction: a forward pass costs the same for any weights of one architecture.
    """
    torch.manual_seed(seed)
    trunk = trunk_fn() if trunk_fn is not None else None
    return LatentHashNet(n_classes, n_bits, trunk=trunk, in_dim=in_dim, feature_dim=feature_dim,
                         dropout=dropout, seed=seed)
