"""Deep Residual Hashing Neural Network (DRHN), Jiménez Lepe thesis, chapter 4.

The network is the CIFAR ResNet of He et al. (2016) widened to six residual groups (Table 4.1) with a
sigmoid *hash layer* (Eq. 4.6) between the global average pool and the softmax classifier. It is trained
only for classification (cross-entropy, Eq. 5.4); binary codes are the hash-layer activations thresholded
at 0.5 (Eq. 4.7).

Layer order inside a block
--------------------------
Eq. 4.4 writes a block as ``Add(BN(conv(BN(ReLU(conv(x))))), x)``. The thesis built the model on the
Lasagne ResNet recipe it cites (footnote 1, chapter 5), whose ``batch_norm(Conv(nonlinearity=rectify))``
helper *inserts BN before the ReLU* and whose blocks end with a ReLU after the addition. We implement
what that code computes::

    conv3x3(stride s) -> BN -> ReLU -> conv3x3 -> BN -> (+ shortcut) -> ReLU

with bias-free convolutions (BN makes the bias redundant, as in Lasagne) and He-normal initialisation.

Shortcuts (option A of He et al.)
---------------------------------
When a group doubles the channels (Table 4.1 rows marked ``*``) its first convolution has stride 2, and
the identity shortcut subsamples ``x[:, :, ::2, ::2]`` and zero-pads the channel axis symmetrically
(``(c_out - c_in) / 2`` zero channels before and after), so the shortcut has no parameters.

References
----------
E. Jiménez Lepe, "Deep Residual Hashing", MSc thesis, ch. 4 (Table 4.1, Eqs. 4.4, 4.6, 4.7), 2017.
K. He, X. Zhang, S. Ren, J. Sun, "Deep Residual Learning for Image Recognition", CVPR 2016
(option A shortcuts, section 4.2). https://arxiv.org/abs/1512.03385
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

#: Table 4.1: (output channels, stride of the group's first block) of the six residual groups.
GROUPS: tuple[tuple[int, int], ...] = ((16, 1), (32, 2), (64, 2), (64, 1), (64, 1), (128, 2))
#: Table 4.1: channels of the first convolution (``BN(ReLU(conv(x, w1)))``, 16x3x3x3).
STEM_CHANNELS = 16


def _check_positive_int(name: str, value: int, hint: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}={value!r} must be a positive integer; {hint}")
    return int(value)


class ZeroPadShortcut(nn.Module):
    """Parameter-free identity shortcut with stride and zero channel padding (option A, He et al. 2016).

    Parameters
    ----------
    c_in, c_out : int
        Input and output channels, ``c_out >= c_in`` and ``c_out - c_in`` even.
    stride : int
        Spatial subsampling factor (1 or 2).
    """

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        if c_out < c_in or (c_out - c_in) % 2:
            raise ValueError(f"option-A shortcut needs c_out >= c_in with an even difference, got {c_in}->{c_out}")
        self.c_in, self.c_out, self.stride = c_in, c_out, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        pad = (self.c_out - self.c_in) // 2
        if pad:
            x = F.pad(x, (0, 0, 0, 0, pad, pad))  # (W_l, W_r, H_t, H_b, C_front, C_back)
        return x

    def extra_repr(self) -> str:
        return f"{self.c_in}->{self.c_out}, stride={self.stride}"


class ResidualBlock(nn.Module):
    """One residual block, Eq. 4.4: two 3x3 convolutions with BN, added to the (option-A) shortcut.

    Parameters
    ----------
    c_in, c_out : int
        Channels in and out. ``c_out > c_in`` marks a block "with inc. dim." (Table 4.1).
    stride : int
        Stride of the first convolution (2 in the first block of a group that halves the resolution).
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = ZeroPadShortcut(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class DRHN(nn.Module):
    """Deep Residual Hashing Neural Network, Table 4.1 of the thesis.

    Input 3x32x32 -> 3x3 conv (16) + BN + ReLU -> six residual groups of ``n`` blocks with
    16 (32x32), 32 (16x16), 64 (8x8), 64, 64, 128 (4x4) channels -> global average pool (128) ->
    hash layer ``H = sigmoid(W x + b)`` with ``bits`` units (Eq. 4.6) -> fully connected softmax.
    Depth is ``6 * 2 * n + 3`` weight layers (DRHN-15: 183); DRHN-15 has about 8 M parameters (ch. 1).

    Parameters
    ----------
    n : int >= 1
        Residual blocks per group ("DRHN-n"; thesis: 1..16).
    bits : int >= 1
        Hash-layer width ``h`` = code length (thesis: 12, 24, 32, 48, 128).
    num_classes : int >= 2, default 10
        Softmax outputs (CIFAR-10: 10, CIFAR-100: 100).
    in_channels : int, default 3
    hash_layer : bool, default True
        ``False`` builds the *plain* ResNet of the same depth (pool -> softmax, no hash layer; ``bits`` must
        be ``None``): the baseline of the thesis' "the hash layer does not hurt accuracy" comparison
        (Sec. 5.1.2: 93.70 % with the hash layer vs ~93.25 % for the original ResNet implementation).

    Notes
    -----
    ``forward`` returns the logits (the softmax of Eq. 4.5 is folded into the cross-entropy loss);
    :meth:`hash_layer` returns ``H`` in (0, 1) and :meth:`codes` the bits ``H > 0.5`` (Eq. 4.7).
    """

    def __init__(self, n: int, bits: int | None, num_classes: int = 10, in_channels: int = 3,
                 hash_layer: bool = True):
        super().__init__()
        self.n = _check_positive_int("n", n, "DRHN-n needs at least one residual block per group (thesis: 1..16)")
        if not hash_layer and bits is not None:
            raise ValueError(f"bits={bits} with hash_layer=False: the plain ResNet has no hash layer; pass bits=None")
        self.has_hash = bool(hash_layer)
        self.bits = (_check_positive_int("bits", bits, "the hash layer needs at least one unit (thesis: 12..128)")
                     if hash_layer else 0)
        num_classes = _check_positive_int("num_classes", num_classes, "use the dataset's number of classes")
        if num_classes < 2:
            raise ValueError(f"num_classes={num_classes} must be >= 2 for a softmax classifier")
        self.num_classes = num_classes
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, STEM_CHANNELS, 3, padding=1, bias=False),
            nn.BatchNorm2d(STEM_CHANNELS),
            nn.ReLU(inplace=True),
        )
        groups, c = [], STEM_CHANNELS
        for c_out, stride in GROUPS:
            blocks = [ResidualBlock(c, c_out, stride)] + [ResidualBlock(c_out, c_out, 1) for _ in range(self.n - 1)]
            groups.append(nn.Sequential(*blocks))
            c = c_out
        self.groups = nn.Sequential(*groups)
        self.feature_dim = c
        self.hash = nn.Linear(c, self.bits) if self.has_hash else None  # Eq. 4.6, sigmoid in hash_layer()
        self.classifier = nn.Linear(self.bits if self.has_hash else c, num_classes)  # softmax layer, Eq. 4.5
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Initialisation of the authors' code (lepe92/DRHN, ``build_cnn``), exactly.

        Convolutions: ``HeNormal(gain='relu')``, std ``sqrt(2 / fan_in)``. Hash and softmax layers:
        ``DenseLayer(W=lasagne.init.HeNormal())``, whose default gain is 1, i.e. std ``sqrt(1 / fan_in)``
        (not Lasagne's DenseLayer default GlorotUniform, and not the ReLU gain). Biases 0, BN at (1, 0).
        """
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu" if isinstance(m, nn.Conv2d) else "linear")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    # ------------------------------------------------------------------ forward passes
    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """Global-average-pooled trunk features, shape (N, 128)."""
        if x.ndim != 4 or x.shape[1] != self.stem[0].in_channels:
            raise ValueError(
                f"DRHN expects float input of shape (N, {self.stem[0].in_channels}, H, W), got {tuple(x.shape)}; "
                "convert uint8 NHWC images with cbir.models.drhn.to_tensor"
            )
        return self.groups(self.stem(x)).mean(dim=(2, 3))

    def hash_layer(self, x: torch.Tensor) -> torch.Tensor:
        """Hash-layer activations ``H = sigmoid(W x + b)`` in (0, 1), shape (N, bits); Eq. 4.6."""
        if not self.has_hash:
            raise ValueError("this is the plain ResNet (hash_layer=False): it has no hash layer and no codes")
        return torch.sigmoid(self.hash(self.pooled(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits, shape (N, num_classes) (softmax of Eq. 4.5 applied by the loss)."""
        if not self.has_hash:
            return self.classifier(self.pooled(x))
        return self.classifier(torch.sigmoid(self.hash(self.pooled(x))))

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> torch.Tensor:
        """Binary codes ``H > 0.5`` as uint8 0/1, shape (N, bits); Eq. 4.7. Uses eval-mode BN."""
        return (self.hash_layer(x) > 0.5).to(torch.uint8)


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable) parameters, as Lasagne's ``count_params(trainable=True)`` reports them."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only))


def expected_parameters(n: int, bits: int, num_classes: int = 10, in_channels: int = 3) -> int:
    """Closed-form parameter count of :class:`DRHN` from Table 4.1 (used to check the implementation).

    Conv weights ``c_out * c_in * 9`` (no bias), BN ``2 * c`` per conv, hash layer ``128 * bits + bits``,
    classifier ``bits * K + K``.
    """
    total = STEM_CHANNELS * in_channels * 9 + 2 * STEM_CHANNELS
    c = STEM_CHANNELS
    for c_out, _ in GROUPS:
        for i in range(n):
            c_in = c if i == 0 else c_out
            total += c_out * c_in * 9 + c_out * c_out * 9 + 4 * c_out
        c = c_out
    return total + c * bits + bits + bits * num_classes + num_classes


def to_tensor(images: np.ndarray, mean: np.ndarray | Sequence[float] | None = None) -> torch.Tensor:
    """uint8 NHWC RGB images -> float32 NCHW in [0, 1] minus the per-pixel training mean.

    Parameters
    ----------
    images : ndarray of shape (N, H, W, 3), uint8
    mean : ndarray of shape (3, H, W), float32, optional
        Per-pixel mean of the *training* images (the Lasagne recipe subtracts it), see :func:`pixel_mean`.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise TypeError(
            f"expected uint8 images of shape (N, H, W, 3), got {images.dtype} {images.shape}; "
            "load them with cbir.data.load_dataset"
        )
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float().div_(255.0)
    if mean is not None:
        x -= torch.as_tensor(np.asarray(mean, dtype=np.float32))
    return x


def pixel_mean(images: np.ndarray) -> np.ndarray:
    """Per-pixel mean of uint8 NHWC images in [0, 1], shape (3, H, W) float32 (Lasagne recipe)."""
    images = np.asarray(images)
    return (images.mean(axis=0, dtype=np.float64) / 255.0).transpose(2, 0, 1).astype(np.float32)


def mirror(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mirror augmentation (ch. 5.1: "augmentation of the dataset by mirroring"): flip half the batch.

    Parameters
    ----------
    x : Tensor of shape (N, C, H, W)
    generator : torch.Generator, optional
        Seeded generator so a resumed run draws the same flips.
    """
    flip = torch.rand(x.shape[0], generator=generator, device=x.device if generator is None else "cpu") < 0.5
    flip = flip.to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def pad_crop(x: torch.Tensor, generator: torch.Generator | None = None, pad: int = 4) -> torch.Tensor:
    """Pad-``pad`` random crop of the authors' code (``iterate_minibatches(augment=True)``), vectorised.

    Each image is zero-padded by ``pad`` pixels per side (zero = the training mean, since inputs are
    mean-subtracted) and cropped back to ``H x W`` at an offset drawn uniformly from ``0..2*pad`` per axis
    (``np.random.random_integers(0, 8)`` for pad 4, both ends included).
    """
    n, c, h, w = x.shape
    xp = nn.functional.pad(x, (pad, pad, pad, pad))
    off = torch.randint(0, 2 * pad + 1, (n, 2), generator=generator).to(x.device)
    rows = (off[:, 0:1] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (off[:, 1:2] + torch.arange(w, device=x.device))[:, None, None, :]
    return xp[torch.arange(n, device=x.device)[:, None, None, None], torch.arange(c, device=x.device)[None, :, None, None],
              rows, cols]


def mirror_crop(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """:func:`mirror` then :func:`pad_crop` (random flips and pad-4 crops)."""
    return pad_crop(mirror(x, generator), generator)


def with_mirrored_copies(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The authors' ``load_data``: the training set followed by its left-right mirrored copy (2N images).

    ``x`` uint8 NHWC (or any array whose axis 2 is the width), ``y`` labels; returns new arrays.
    """
    x, y = np.asarray(x), np.asarray(y)
    return np.concatenate([x, x[:, :, ::-1]]), np.concatenate([y, y])
