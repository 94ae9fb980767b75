"""Named-layer CNN features for reverse image search (Gaillard et al. 2018, Sec. 6.2).

"The feature vector consists of the activations of the units of one specific layer. If the layer is a
convolutional or pooling layer, the results are 2D features maps. In this case, the activations are
flattened using a global average or maximum pooling. [...] If needed the feature vectors can be
normalized to unit length" (Sec. 6.2). Names follow the paper's ``[network]_[layer]`` convention with the
pooling appended and ``_norm_l2`` when L2-normalised, e.g. ``ResNet50_activation_46_max`` in the paper,
``EfficientNetLite0_block15_max_norm_l2`` here.

Layers are the backbone's :meth:`cbir.models.backbones.Backbone.named_layers` (EfficientNet-Lite0:
``stem``, ``block00`` .. ``block15``, ``head``), plus ``predictions`` (softmax class probabilities, the
paper's last layer). ``head`` is taken after the network's activation (the paper's Keras ``activation_*``
layers are post-ReLU); block outputs are the residual sums (EfficientNet's blocks end linearly).
One forward pass per batch feeds every requested layer through forward hooks, and each map is pooled in
the hook, so memory stays at (batch, channels) per layer.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["POOLS", "NETWORK_NAMES", "KERAS_LAYERS", "KERAS_FLATTENED", "feature_name", "keras_layer", "l2_normalize",
           "layer_features", "cached_layer_features"]

#: Spatial reductions of a (C, H, W) map: global average, global max, or flatten (C * H * W).
POOLS: tuple[str, ...] = ("avg", "max", "flatten")

#: Paper-style network names (Keras model names) for our backbones.
NETWORK_NAMES: dict[str, str] = {
    "efficientnet_lite0": "EfficientNetLite0",
    "vgg16": "VGG16",
    "vgg19": "VGG19",
    "resnet50": "ResNet50",
    "resnet18": "ResNet18",
    "inception_v3": "InceptionV3",
    "alexnet": "AlexNet",
    "googlenet": "GoogLeNet",
}


def feature_name(network: str, layer: str, pool: str, l2: bool = False) -> str:
    """Paper-style name ``[network]_[layer]_[pool]`` (+ ``_norm_l2``), Sec. 6.2.

    >>> feature_name("efficientnet_lite0", "block15", "max", l2=True)
    'EfficientNetLite0_block15_max_norm_l2'
    """
    net = NETWORK_NAMES.get(network, network)
    base = f"{net}_{layer}" if layer == "predictions" else f"{net}_{layer}_{pool}"
    return base + ("_norm_l2" if l2 else "")


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit Euclidean length (zero rows stay zero), float32."""
    x = np.asarray(x, np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(n, 1e-12)).astype(np.float32)


def _pool(t: torch.Tensor, pool: str) -> torch.Tensor:
    if t.ndim == 2:  # already a vector (fc layers)
        return t
    if pool == "avg":
        return t.mean(dim=(2, 3))
    if pool == "max":
        return t.amax(dim=(2, 3))
    return t.flatten(1)


def _preprocess(backbone: Any, images: Any, size: int) -> torch.Tensor:
    """Resize to size x size with OpenCV's pixel-area filter (antialiased, fast on CPU), then normalise."""
    import cv2

    from cbir.train import images_to_tensor

    if isinstance(images, np.ndarray) and images.ndim == 4 and images.shape[1:3] == (size, size):
        x = images
    else:
        x = np.stack([cv2.resize(np.ascontiguousarray(im), (size, size), interpolation=cv2.INTER_AREA)
                      for im in images])
    return images_to_tensor(x, backbone.mean, backbone.std)


@torch.no_grad()
def layer_features(
    backbone: Any,
    images: np.ndarray | Sequence[np.ndarray],
    layers: Sequence[str],
    pools: Sequence[str] = ("avg", "max"),
    size: int = 128,
    batch_size: int = 32,
    device: torch.device | str | None = None,
    progress: bool = False,
    flatten_layers: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """Pooled activations of several named layers in one pass, float32, NOT normalised.

    Parameters
    ----------
    backbone : cbir.models.backbones.Backbone
        From :func:`cbir.models.backbones.pretrained_backbone`.
    images : uint8 (N, H, W, 3) array or list of (H, W, 3) arrays
        Resized to ``size`` x ``size`` (no crop, as Keras ``load_img(target_size=...)``) with OpenCV's
        pixel-area filter.
    layers : names from ``backbone.layer_names`` or ``"predictions"``
    pools : subset of :data:`POOLS` (``predictions`` ignores the pooling), applied to every layer
    flatten_layers : layers (among ``layers``) that are ALSO returned flattened (C * H * W values;
        keep to small maps, a 3 x 3 x 1280 head is 11,520-d)
    size : int
        Input side in pixels (the paper uses the networks' 224 / 299; small sizes keep CPU runs short).

    Returns
    -------
    dict ``"{layer}_{pool}"`` (or ``"predictions"``) -> float32 (N, D)
    """
    named = dict(backbone.named_layers())
    module = backbone.module
    resolved: dict[str, torch.nn.Module] = {}
    bad = []
    for l in layers:
        if l == "predictions":
            continue
        if l in named:
            resolved[l] = named[l]
        else:  # dotted sub-module path, e.g. "trunk.layer4" for torchvision ResNet50
            try:
                resolved[l] = module.get_submodule(l)
            except AttributeError:
                bad.append(l)
    if bad:
        raise ValueError(f"layers {bad} unknown for {backbone.name}; choose from {list(named) + ['predictions']} "
                         "or a dotted sub-module path of backbone.module")
    badp = [p for p in pools if p not in POOLS]
    if set(flatten_layers) - set(resolved):
        raise ValueError(f"flatten_layers={list(flatten_layers)} must be among layers={list(layers)}")
    if badp or not pools:
        raise ValueError(f"pools={list(pools)} invalid; choose a non-empty subset of {list(POOLS)}")
    if int(size) < 32:
        raise ValueError(f"size={size} too small for an ImageNet CNN; use >= 32 (e.g. 96-224)")
    fc = getattr(module, "_fc", None) or getattr(module, "fc", None)
    if "predictions" in layers and fc is None:
        raise ValueError(f"'predictions' is not available for {backbone.name} (no classifier attribute)")
    act = getattr(module, "_swish", None)  # EfficientNet's head activation (ReLU6 for Lite)
    device = torch.device(device or "cpu")
    module.to(device).eval()
    backbone.trunk.to(device).eval()

    store: dict[str, list[np.ndarray]] = {}
    current: dict[str, torch.Tensor] = {}
    hooks = []
    for name, mod in resolved.items():
        def hook(_m, _i, out, name=name):
            out = out[0] if isinstance(out, (tuple, list)) else out
            if name == "head" and act is not None:
                out = act(out)
            current[name] = out
        hooks.append(mod.register_forward_hook(hook))

    from tqdm.auto import tqdm

    try:
        n = len(images)
        for s in tqdm(range(0, n, batch_size), desc=f"{backbone.name} layers @{size}px", disable=not progress,
                      leave=False):
            x = _preprocess(backbone, images[s : s + batch_size], int(size)).to(device)
            current.clear()
            pooled = backbone.trunk(x)
            for layer in resolved:
                extra = ("flatten",) if layer in flatten_layers and "flatten" not in pools else ()
                for p in (*pools, *extra):
                    store.setdefault(f"{layer}_{p}", []).append(_pool(current[layer], p).float().cpu().numpy())
            if "predictions" in layers:
                probs = torch.softmax(fc(pooled), 1)
                store.setdefault("predictions", []).append(probs.float().cpu().numpy())
    finally:
        for h in hooks:
            h.remove()
    return {k: np.concatenate(v).astype(np.float32) for k, v in store.items()}


def cached_layer_features(
    backbone: Any,
    images: np.ndarray | Sequence[np.ndarray],
    layers: Sequence[str],
    pools: Sequence[str],
    size: int,
    cache_dir: str | Path,
    key: dict[str, Any],
    batch_size: int = 32,
    progress: bool = False,
    flatten_layers: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """:func:`layer_features` stored once under ``cache_dir`` (``cbir.cache``), keyed by ``key`` + settings.

    ``key`` names the images (dataset, subset, modification, strength ...); the key also holds the pixels
    themselves and the code version of :func:`layer_features`, so neither can be stale.
    """
    from cbir.cache import cached_npz

    params = {**key, "backbone": backbone.name, "source": backbone.source, "layers": list(layers),
              "pools": list(pools), "flatten": list(flatten_layers), "size": int(size), "n": len(images),
              "pixels": images, "v": 1}
    return cached_npz("layer_features", params,
                      lambda: layer_features(backbone, images, layers, pools, size, batch_size, progress=progress,
                                             flatten_layers=flatten_layers),
                      cache_dir, code=(layer_features, type(backbone)))


def _resnet50_keras() -> dict[str, str]:
    blocks = [(s, i) for s, n in ((1, 3), (2, 4), (3, 6), (4, 3)) for i in range(n)]
    out = {f"activation_{4 + 3 * b}": f"trunk.layer{s}.{i}" for b, (s, i) in enumerate(blocks)}
    out.update({"avg_pool": "trunk.avgpool", "flatten_1": "trunk.avgpool"})
    return out


def _vgg_keras(pools: Sequence[int]) -> dict[str, str]:
    out = {f"block{i + 1}_pool": f"features.{p}" for i, p in enumerate(pools)}
    out.update({"flatten": f"features.{pools[-1]}", "fc1": "classifier.1", "fc2": "classifier.4"})
    return out


#: Keras layer names of Gaillard et al. (2018), Sec. 6.2, -> module paths of our torchvision backbones
#: (:func:`cbir.models.backbones.pretrained_backbone`; hooks of :func:`layer_features`).
#:
#: ============  =====================================  ===========================================  =========
#: network       Keras layer (paper)                    torchvision module (``layers=``)             at 224 px
#: ============  =====================================  ===========================================  =========
#: ResNet50      ``activation_{4+3b}``, b = 0..15: the  ``trunk.layer{s}.{i}``: bottleneck ``i`` of  (C, H, W)
#:               ReLU after the add of bottleneck b     stage ``s`` (its output ReLU; torchvision's
#:                                                      one ``relu`` module runs three times, so
#:                                                      the block, not ``.relu``, is hooked)
#: ResNet50      ``activation_40``                      ``trunk.layer3.5`` (= ``trunk.layer3``)      1024x14x14
#: ResNet50      ``activation_43``                      ``trunk.layer4.0``                           2048x7x7
#: ResNet50      ``activation_46``                      ``trunk.layer4.1``                           2048x7x7
#: ResNet50      ``activation_49`` (not in the paper)   ``trunk.layer4.2`` (= ``trunk.layer4``)      2048x7x7
#: ResNet50      ``avg_pool``, ``flatten_1``            ``trunk.avgpool`` (avg / flatten)            2048x1x1
#: VGG16         ``block3/4/5_pool``                    ``features.16`` / ``features.23`` /          512x7x7
#:                                                      ``features.30`` (MaxPool2d)                  (block5)
#: VGG16         ``flatten``                            ``features.30`` with pool ``flatten``        25088
#: VGG19         ``block3/4/5_pool``, ``flatten``       ``features.18`` / ``.27`` / ``.36``;         512x7x7
#:                                                      ``features.36`` flattened                    / 25088
#: VGG16/19      ``fc1``, ``fc2``                       ``classifier.1``, ``classifier.4`` (ReLUs)   4096
#: InceptionV3   ``mixed0`` .. ``mixed10``              ``trunk.Mixed_5b``, ``5c``, ``5d``, ``6a``,  mixed9:
#:                                                      ``6b``, ``6c``, ``6d``, ``6e``, ``7a``,      2048x8x8
#:                                                      ``7b``, ``7c`` (299 px input)                at 299
#: Xception      ``add_*``, ``block14_sepconv*_act``    none: torchvision has no Xception; not run   --
#: ============  =====================================  ===========================================  =========
#:
#: Differences that remain: torchvision's ResNet50 (V1 weights) puts the stride-2 in the 3x3 convolution of a
#: bottleneck, Keras' (converted Caffe) model in the 1x1; Keras flattens (H, W, C), torchvision (C, H, W): a
#: fixed permutation, so cosine and Euclidean distances are unchanged; Keras' VGG/ResNet inputs are
#: Caffe-style BGR mean-subtracted, ours are torchvision-normalised RGB. ``b = 3`` (``activation_13``) is
#: ``trunk.layer2.0``.
KERAS_LAYERS: dict[str, dict[str, str]] = {
    "resnet50": _resnet50_keras(),
    "vgg16": _vgg_keras((4, 9, 16, 23, 30)),
    "vgg19": _vgg_keras((4, 9, 18, 27, 36)),
    "inception_v3": {f"mixed{i}": f"trunk.Mixed_{m}"
                     for i, m in enumerate(("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"))},
}

#: Keras layers the paper flattens instead of pooling (``flatten``, ``flatten_1``).
KERAS_FLATTENED: frozenset[str] = frozenset({"flatten", "flatten_1"})


def keras_layer(network: str, keras_name: str) -> str:
    """The torchvision module path of the paper's Keras layer ``keras_name`` (:data:`KERAS_LAYERS`).

    >>> keras_layer("resnet50", "activation_46")
    'trunk.layer4.1'
    """
    from cbir.models.backbones import NOT_IN_TORCHVISION

    if network in NOT_IN_TORCHVISION:
        raise ValueError(f"network {network!r}: {NOT_IN_TORCHVISION[network]}")
    if network not in KERAS_LAYERS:
        raise ValueError(f"network {network!r} has no Keras layer table; known: {sorted(KERAS_LAYERS)}")
    table = KERAS_LAYERS[network]
    if keras_name not in table:
        raise ValueError(f"Keras layer {keras_name!r} unknown for {network}; known: {sorted(table)}")
    return table[keras_name]
