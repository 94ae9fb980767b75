"""The weights registry: where files are looked for, the error that names them, random weights marked."""
import numpy as np
import pytest

from cbir.models import backbones as B


@pytest.fixture
def no_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("CBIR_WEIGHTS_DIR", str(tmp_path / "w"))
    monkeypatch.setattr(B.torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setattr("cbir.data.data_dirs", lambda data_dir=None: [tmp_path / "data"])
    return tmp_path


def test_registry_names_files_from_torchvision():
    assert B.WEIGHTS["resnet50"].filename.startswith("resnet50-") and B.WEIGHTS["resnet50"].filename.endswith(".pth")
    assert "IMAGENET1K_V1" in B.WEIGHTS["vgg16"].weights
    with pytest.raises(ValueError, match="no Xception"):
        B.pretrained_backbone("xception")


def test_missing_weights_error_names_file_and_folders(no_weights):
    assert B.weights_file("vgg16") is None
    with pytest.raises(B.WeightsNotFoundError) as err:
        B.pretrained_backbone("vgg16", fallback=False, verbose=False)
    msg = str(err.value)
    assert B.WEIGHTS["vgg16"].filename in msg and str(no_weights / "hub" / "checkpoints") in msg
    assert "CBIR_WEIGHTS_DIR" in msg
    with pytest.raises(B.WeightsNotFoundError, match="does not exist"):
        B.weights_file("vgg16", no_weights / "nope.pth")


def test_weights_found_in_cbir_weights_dir(no_weights):
    d = no_weights / "w"
    d.mkdir()
    (d / B.WEIGHTS["alexnet"].filename).write_bytes(b"x")
    assert B.weights_file("alexnet") == d / B.WEIGHTS["alexnet"].filename


def test_random_weights_are_marked_and_seeded(no_weights):
    a = B.pretrained_backbone("alexnet", weights="random", seed=3, verbose=False)
    b = B.pretrained_backbone("alexnet", weights="random", seed=3, verbose=False)
    assert a.name == "alexnet" and "RANDOM weights" in a.source and a.feature_dim == 4096
    x = np.random.default_rng(0).integers(0, 255, (2, 64, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(a.features(x, 64, progress=False), b.features(x, 64, progress=False))


def test_local_inception_weights_get_torchvision_input_transform(no_weights):
    import torch
    import torchvision

    f = no_weights / "w" / B.WEIGHTS["googlenet"].filename
    f.parent.mkdir()
    net = torchvision.models.googlenet(weights=None, aux_logits=False, init_weights=True)
    torch.save(net.state_dict(), f)
    bb = B.pretrained_backbone("googlenet", verbose=False)
    assert "from" in bb.source and bb.module.trunk.transform_input is True
