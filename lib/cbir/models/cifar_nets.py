"""CIFAR-style ResNet18, VGG16 and DenseNet40: the comparison networks of Xue & Roshan (2019), Sec. 2.3.

The paper compares RDCNN with ResNet18, VGG16 and DenseNet40, "implemented ourselves with PyTorch", on 32 px
(CIFAR) input: with random weights and only the final layer trained (Fig. 5, Sec. 3.4) and trained from
scratch (Fig. 6). The CIFAR variants differ from torchvision's ImageNet ones in the stem:

* ResNet18 (He et al. 2016): torchvision's ``resnet18`` with the CIFAR stem, a 3x3 stride-1 convolution and
  no max-pool (the 7x7 stride-2 + max-pool ImageNet stem shrinks 32 px input to 1x1 by the last stage);
  512-d pooled features.
* VGG16 (Simonyan & Zisserman 2014): the 13 convolutions of configuration D with batch norm, five 2x2 max
  pools (32 px -> 1x1), a 512-d flattened feature and one linear classifier (the CIFAR form).
* DenseNet40 (Huang et al. 2017): depth 40, growth rate 12, three dense blocks of 12 BN-ReLU-3x3 conv layers,
  transitions BN-ReLU-1x1 conv-2x2 average pool, no bottleneck or compression; 456-d pooled features.

Random weights are each library's default initialisation, seeded; in eval mode a freshly built batch norm
(running mean 0, variance 1) is the identity. :func:`cifar_net` returns a module whose ``forward`` gives
``(features, logits)``, so :func:`cbir.train.fit` trains it and :func:`random_features` reads the features.

References
----------
Y. Xue and U. Roshan, 2019, Sec. 2.3 and 3.4. K. He et al., CVPR 2016. K. Simonyan and A. Zisserman,
arXiv:1409.1556. G. Huang et al., CVPR 2017 (DenseNet, L=40, k=12).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

NETS = ("resnet18", "vgg16", "densenet40")
"""The networks of the paper's comparisons (Sec. 2.3)."""

_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


class _Net(nn.Module):
    """``trunk`` (images -> pooled features) and a linear ``head``; ``forward`` returns both."""

    def __init__(self, trunk: nn.Module, dim: int, n_classes: int):
        super().__init__()
        self.trunk, self.dim = trunk, dim
        self.head = nn.Linear(dim, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return h, self.head(h)


def _resnet18_cifar(in_channels: int) -> tuple[nn.Module, int]:
    import torchvision

    net = torchvision.models.resnet18(weights=None)
    net.conv1 = nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(net.conv1.weight, mode="fan_out", nonlinearity="relu")  # torchvision's init
    net.maxpool = nn.Identity()
    net.fc = nn.Identity()
    return net, 512


def _vgg16_cifar(in_channels: int) -> tuple[nn.Module, int]:
    layers, c = [], in_channels
    for v in _VGG16:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU(inplace=True)]
            c = v
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]  # 1x1 at 32 px: a no-op there, any size elsewhere
    return nn.Sequential(*layers), 512


class _DenseLayer(nn.Module):
    def __init__(self, c: int, growth: int):
        super().__init__()
        self.f = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True), nn.Conv2d(c, growth, 3, padding=1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.f(x)], 1)


def _densenet40(in_channels: int, growth: int = 12, depth: int = 40) -> tuple[nn.Module, int]:
    n = (depth - 4) // 3
    c = 2 * growth
    layers: list[nn.Module] = [nn.Conv2d(in_channels, c, 3, padding=1, bias=False)]
    for block in range(3):
        for _ in range(n):
            layers.append(_DenseLayer(c, growth))
            c += growth
        if block < 2:
            layers += [nn.BatchNorm2d(c), nn.ReLU(inplace=True), nn.Conv2d(c, c, 1, bias=False), nn.AvgPool2d(2)]
    layers += [nn.BatchNorm2d(c), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    trunk = nn.Sequential(*layers)
    for mod in trunk.modules():
        if isinstance(mod, nn.Conv2d):
            nn.init.kaiming_normal_(mod.weight, mode="fan_out", nonlinearity="relu")
    return trunk, c


def cifar_net(name: str, n_classes: int = 10, in_channels: int = 3, seed: int = 0) -> nn.Module:
    """Build a CIFAR-style comparison network with seeded random weights (Sec. 2.3).

    Parameters
    ----------
    name : {"resnet18", "vgg16", "densenet40"}
    n_classes : int
        Outputs of the linear head.
    in_channels : int
        Image channels (3 = RGB).
    seed : int
        Torch seed of the initialisation (the global RNG state is restored afterwards).

    Returns
    -------
    nn.Module whose ``forward(x)`` returns ``(features (B, dim), logits (B, n_classes))``; ``.dim`` is the
    feature size (512, 512, 456).
    """
    builders = {"resnet18": _resnet18_cifar, "vgg16": _vgg16_cifar, "densenet40": _densenet40}
    if name not in builders:
        raise ValueError(f"network {name!r}; use one of {list(NETS)} (set rdcnn.random_nets in params)")
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        trunk, dim = builders[name](in_channels)
        return _Net(trunk, dim, n_classes)


def random_features(name: str, images: np.ndarray, seed: int = 0, batch_size: int = 256) -> np.ndarray:
    """Pooled features of a CIFAR-style network with random weights, eval mode (Fig. 5, Sec. 3.4).

    The comparison of Fig. 5: a random network whose final (linear) layer alone is trained on these features.
    Images are scaled to [0, 1] and normalised with mean = std = 0.5 per channel.

    Parameters
    ----------
    name : {"resnet18", "vgg16", "densenet40"}
    images : ndarray (N, H, W, C) uint8

    Returns
    -------
    ndarray (N, dim) float32.
    """
    from cbir.train import images_to_tensor

    net = cifar_net(name, in_channels=np.asarray(images).shape[-1], seed=seed).eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(images), batch_size):
            out.append(net(images_to_tensor(images[s:s + batch_size]))[0].numpy())
    return np.concatenate(out).astype(np.float32)
