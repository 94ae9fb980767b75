"""Notebook 01 (Xue & Roshan 2019): cached RDCNN features, the paper's linear-SVM evaluation, the
random-ResNet18 and small trained CNN baselines, augmentations and the row-wise cosine used by the
retrieval sections. The network itself is :class:`cbir.models.rdcnn.RandomDepthwiseSignNet`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from cbir.models.rdcnn import RandomDepthwiseSignNet


# ============================================================================ experiment helpers (notebook 01)
def cached_rdcnn_features(images: np.ndarray, *, k: int, b: int, m: int, seed: int, tag: str,
                          cache_dir: str | Path | None = None, batch_size: int = 256,
                          kernel_chunk: int = 2048, progress: bool = False) -> np.ndarray:
    """RDCNN features of ``images`` (float16 on disk), cached under ``cache_dir`` by content and settings.

    Parameters
    ----------
    images : ndarray (N, H, W, 3) uint8
    k, b, m, seed : network settings (see :class:`RandomDepthwiseSignNet`).
    tag : str
        Human-readable name of the image set (e.g. ``"cifar10_subset-train-500pc"``); the cache key also
        hashes the pixels, so a wrong tag cannot return wrong features.

    Returns
    -------
    ndarray (N, m) float32.
    """
    from cbir.cache import cached_npz

    net = RandomDepthwiseSignNet(k=k, b=b, m=m, seed=seed, in_channels=images.shape[-1],
                                 batch_size=batch_size, kernel_chunk=kernel_chunk)
    if cache_dir is None:
        return net.transform(images, progress=progress, desc=f"rdcnn k={k} b={b} m={m}")
    params = {"tag": tag, "pixels": images, "k": k, "b": b, "m": m, "seed": seed, "v": 1}
    compute = lambda: {"f": net.transform(images, dtype=np.float16, progress=progress,  # noqa: E731
                                          desc=f"rdcnn k={k} b={b} m={m}")}
    return cached_npz("rdcnn_features", params, compute, cache_dir)["f"].astype(np.float32)


def svm_eval(f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray, y_test: np.ndarray, C: float,
             ks: tuple[int, ...] = (1, 2, 3)) -> dict[str, float]:
    """Train the paper's linear SVM (``-s 2 -B 1 -c C``) and report train/test accuracy in percent and
    top-k test accuracy from the decision values (Sec. 2.3, Fig. 3 and Fig. 6)."""
    from cbir.metrics import topk_accuracy
    from cbir.svm import LinearSVM

    svm = LinearSVM(C=C).fit(f_train, y_train)
    scores = svm.decision_function(f_test)
    top = topk_accuracy(scores, np.searchsorted(svm.classes_, y_test), ks=ks)
    out = {"train_acc_pct": 100 * svm.score(f_train, y_train), "test_acc_pct": 100 * top[1]}
    out.update({f"top{k}_pct": 100 * v for k, v in top.items()})
    return out


def random_resnet18_features(images: np.ndarray, seed: int = 0, batch_size: int = 256) -> np.ndarray:
    """512-d pooled features of a randomly initialised torchvision ResNet18 (``weights=None``), eval mode.

    The comparison of Fig. 5: a random network whose final (linear) layer alone is trained. Images are
    scaled to [0, 1] and normalised with mean = std = 0.5 per channel.

    Returns
    -------
    ndarray (N, 512) float32.
    """
    import torchvision

    from cbir.train import images_to_tensor

    g = torch.random.fork_rng()
    with g:
        torch.manual_seed(seed)
        model = torchvision.models.resnet18(weights=None)
    model.fc = nn.Identity()
    model.eval()
    out = []
    with torch.no_grad():
        for s in range(0, len(images), batch_size):
            out.append(model(images_to_tensor(images[s:s + batch_size])).numpy())
    return np.concatenate(out).astype(np.float32)


class SmallCNN(nn.Module):
    """A small trained CNN (3 conv blocks + 256-d hidden layer) used as the "trained network" of the
    retrieval sections (Fig. 8, Fig. 9). Returns ``(hidden, logits)``; ``hidden`` is the last hidden layer
    used for retrieval, as in Sec. 3.6. Not the paper's VGG16/ResNet18 (those need a GPU budget)."""

    def __init__(self, in_channels: int = 3, n_classes: int = 10, width: int = 32, hidden: int = 256):
        super().__init__()

        def block(i, o):
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2))

        self.features = nn.Sequential(block(in_channels, width), block(width, 2 * width),
                                      block(2 * width, 4 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.hidden = nn.Sequential(nn.Linear(4 * width, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, n_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.hidden(self.features(x))
        return h, self.head(h)


def augmentations(images: np.ndarray, seed: int = 0, cutout: float = 0.5, angle: float = 20.0
                  ) -> dict[str, np.ndarray]:
    """Flips, rotations and cutout of uint8 NHWC images (Sec. 3.5 "Data augmentation", Fig. 7).

    ``rotate`` turns each image by a random angle in [-angle, angle] degrees (bilinear, edge padding);
    ``cutout`` zeroes one random square of side ``cutout * size`` (DeVries & Taylor 2017).
    """
    from scipy.ndimage import rotate as nd_rotate

    rng = np.random.default_rng(seed)
    n, h, w, _ = images.shape
    angles = rng.uniform(-angle, angle, n)
    rot = np.stack([nd_rotate(im, a, axes=(0, 1), reshape=False, order=1, mode="nearest")
                    for im, a in zip(images, angles)])
    side = max(1, int(round(cutout * min(h, w))))
    ys, xs = rng.integers(0, h - side + 1, n), rng.integers(0, w - side + 1, n)
    yy, xx = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
    mask = ((yy >= ys[:, None, None]) & (yy < ys[:, None, None] + side)
            & (xx >= xs[:, None, None]) & (xx < xs[:, None, None] + side))
    cut = np.where(mask[..., None], 0, images).astype(np.uint8)
    return {"horizontal flip": images[:, :, ::-1].copy(), "vertical flip": images[:, ::-1].copy(),
            "rotate 90": np.rot90(images, 1, axes=(1, 2)).copy(), f"rotate +-{angle:g} deg": rot,
            "cutout": cut}


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (N, D) arrays."""
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return num / np.maximum(den, 1e-12)
