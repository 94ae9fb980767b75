"""Notebook 04's paper profile: the Keras layers of Sec. 6.2 on torchvision networks, and the weights stop.

Random-weight torchvision models (``pretrained_backbone(..., weights="random")``, marked as such): the
mapped modules exist and their hooked outputs have the Keras layers' shapes. Without the ImageNet weights
file the paper profile's backbone cell raises one WeightsNotFoundError naming the file and the folders.
"""
from functools import lru_cache

import numpy as np
import pytest
import torch

import cbir.params
from cbir.experiments import perceptual_hash_vs_cnn as xp
from cbir.models import backbones
from cbir.models.backbones import WeightsNotFoundError, pretrained_backbone
from cbir.models.layer_features import KERAS_LAYERS, keras_layer, layer_features

@lru_cache(maxsize=None)
def _random(network):
    return pretrained_backbone(network, weights="random", verbose=False)


@pytest.fixture(scope="module", autouse=True)
def _free_models():
    yield
    _random.cache_clear()  # ~1.3 GB of random-weight VGG/ResNet/Inception


#: (network, input side, {Keras layer: expected (C, H, W) of the hooked module's output})
SHAPES = [
    ("resnet50", 224, {"activation_4": (256, 56, 56), "activation_22": (512, 28, 28), "activation_40": (1024, 14, 14),
                       "activation_43": (2048, 7, 7), "activation_46": (2048, 7, 7), "avg_pool": (2048, 1, 1)}),
    ("vgg16", 224, {"block3_pool": (256, 28, 28), "block4_pool": (512, 14, 14), "block5_pool": (512, 7, 7),
                    "fc1": (4096,), "fc2": (4096,)}),
    ("vgg19", 224, {"block5_pool": (512, 7, 7), "fc2": (4096,)}),
    ("inception_v3", 299, {"mixed0": (256, 35, 35), "mixed3": (768, 17, 17), "mixed8": (1280, 8, 8),
                           "mixed9": (2048, 8, 8), "mixed10": (2048, 8, 8)}),
]


@pytest.mark.parametrize("network,size,shapes", SHAPES, ids=[s[0] for s in SHAPES])
def test_keras_layers_resolve_on_random_weight_torchvision_models(network, size, shapes):
    bb = _random(network)
    assert bb.source.startswith("RANDOM weights")
    got, hooks = {}, []
    for k in shapes:
        mod = bb.module.get_submodule(keras_layer(network, k))
        hooks.append(mod.register_forward_hook(lambda _m, _i, out, k=k: got.__setitem__(k, tuple(out.shape[1:]))))
    try:
        with torch.no_grad():
            bb.trunk(torch.zeros(1, 3, size, size))
    finally:
        for h in hooks:
            h.remove()
    assert got == shapes


def test_paper_flatten_layers_have_the_papers_dimensions():
    """Table 3: VGG16_flatten is 25,088-d, ResNet50_activation_46_max 2,048-d (random weights, one image)."""
    img = [np.zeros((224, 224, 3), np.uint8)]
    o = xp.paper_network("vgg16")
    assert o["cnn_flatten_layers"] == ["features.30"] and o["cnn_size"] == 224
    f = layer_features(_random("vgg16"), img, ["features.30"], ["max"],
                       224, flatten_layers=["features.30"])
    assert {k: v.shape for k, v in f.items()} == {"features.30_max": (1, 512), "features.30_flatten": (1, 25088)}
    f = layer_features(_random("resnet50"), img,
                       [keras_layer("resnet50", "activation_46")], ["max"], 224)
    assert f["trunk.layer4.1_max"].shape == (1, 2048)


def test_paper_params_are_the_papers_resnet50_layers_and_overrides_validate():
    P = cbir.params.load("paper", "phash")
    assert P.backbone == "resnet50"
    assert P.cnn_layers == xp.paper_network("resnet50")["cnn_layers"]
    assert keras_layer("resnet50", "activation_43") == "trunk.layer4.0" in P.cnn_layers
    assert keras_layer("resnet50", "activation_46") == "trunk.layer4.1" in P.cnn_layers
    for net in ("vgg16", "vgg19", "inception_v3"):
        assert cbir.params.load("paper", "phash", xp.paper_network(net)).backbone == net
    with pytest.raises(ValueError, match="torchvision has no Xception"):
        xp.paper_network("xception")
    with pytest.raises(ValueError, match="Keras layer 'activation_45' unknown for resnet50"):
        keras_layer("resnet50", "activation_45")
    assert set(KERAS_LAYERS) == set(xp.PAPER_NETWORKS)


def test_paper_profile_stops_at_the_backbone_with_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(backbones, "weights_dirs", lambda: [tmp_path / "weights"])
    P = cbir.params.load("paper", "phash")
    with pytest.raises(WeightsNotFoundError) as e:
        xp.cnn_backbone(P)  # the notebook's backbone cell
    msg = str(e.value)
    assert "resnet50 ImageNet weights (ResNet50_Weights.IMAGENET1K_V1) are not on this machine" in msg
    assert f"place resnet50-0676ba61.pth (from https://download.pytorch.org/models/resnet50-0676ba61.pth) in " \
           f"{tmp_path / 'weights'}" in msg
    # the same path with random weights (marked) runs the paper's layers
    bb = xp.cnn_backbone(P, weights="random")
    assert bb.name == "resnet50" and "RANDOM weights" in bb.source


def test_medium_keeps_the_auto_stand_in():
    P = cbir.params.load("medium", "phash")
    assert P.backbone == "auto"
