"""CIFAR-style comparison networks of notebook 01 (cbir.models.cifar_nets) and the Fig. 5 helpers."""
import numpy as np
import pytest
import torch

from cbir.experiments import random_sign_networks as xp
from cbir.models import cifar_nets


@pytest.mark.parametrize("name,dim", [("resnet18", 512), ("vgg16", 512), ("densenet40", 456)])
def test_features_shape_and_seed(name, dim):
    x = np.random.default_rng(0).integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    f = cifar_nets.random_features(name, x, seed=3)
    assert f.shape == (2, dim) and f.dtype == np.float32
    np.testing.assert_array_equal(f, cifar_nets.random_features(name, x, seed=3))
    assert not np.array_equal(f, cifar_nets.random_features(name, x, seed=4))
    h, logits = cifar_nets.cifar_net(name, n_classes=7)(torch.zeros(1, 3, 32, 32))
    assert h.shape == (1, dim) and logits.shape == (1, 7)


def test_resnet18_has_the_cifar_stem():
    net = cifar_nets.cifar_net("resnet18").trunk
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1) and net.conv1.padding == (1, 1)
    assert isinstance(net.maxpool, torch.nn.Identity)
    x = torch.zeros(1, 3, 32, 32)
    x = net.layer4(net.layer3(net.layer2(net.layer1(net.relu(net.bn1(net.conv1(x)))))))
    assert x.shape[-2:] == (4, 4)  # 32 -> 32 -> 16 -> 8 -> 4 (the ImageNet stem gives 1x1)


def test_global_rng_untouched_and_bad_name():
    torch.manual_seed(0)
    a = torch.rand(1)
    torch.manual_seed(0)
    cifar_nets.cifar_net("vgg16", seed=5)
    assert torch.rand(1) == a
    with pytest.raises(ValueError, match="densenet40"):
        cifar_nets.cifar_net("resnet50")


def test_standardize_uses_training_statistics():
    tr = np.array([[1.0, 5.0], [3.0, 5.0]], np.float32)
    te = np.array([[2.0, 7.0]], np.float32)
    a, b = xp.standardize(tr, te)
    np.testing.assert_allclose(a, [[-1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(b, [[0.0, 2.0]])  # zero spread: centred, not scaled
