"""Random depthwise signed convolutional network (RDCNN), Xue & Roshan (2019).

The network has no trained weights. Block 1 applies ``m`` random ``k x k`` kernels (N(0, 1) weights and
bias, i.e. random affine hyperplanes in the space of image patches, Sec. 2.1) to the colour channels, then
the sign activation and 2x2 average pooling with stride 2. Blocks ``2..b`` apply one random ``k x k``
kernel per channel (depthwise, ``groups=m``), sign and 2x2 average pooling. Global average pooling of the
last block gives one feature per kernel, so ``m`` kernels give an ``m``-dimensional feature space
(Sec. 2.2, Fig. 2).

Block 1 is computed as one tiled matrix product (unfolded patches x all kernels of a chunk), never as one
convolution per kernel; the depthwise blocks use grouped convolution. Kernels are drawn in fixed chunks of
:data:`SEED_CHUNK` from ``numpy.random.SeedSequence([seed, chunk])``, so the network with ``m`` kernels is
exactly the first ``m`` features of any larger network with the same ``(k, b, seed)``: an m-sweep can
compute the largest ``m`` once and slice.

What we follow: the paper's text (Sec. 2.2) for the block, "a convolutional kernel followed by 2x2 average
pooling with stride 2", one depthwise kernel per channel in blocks 2..b. The authors' released code
(github.com/xyzacademic/RandomDepthwiseCNN, ``cifar10/random_hp.py``, class ``Rh``) differs, and we take only
some of it:

* taken: N(0, 1) weights *and* biases; images in [0, 1] (``ToTensor``, no normalisation); the depthwise
  convolutions' padding ``(k - 1) // 2``.
* not taken: its first convolution pads **1 for every k** (ours ``(k - 1) // 2``: k=5 gives 32x32 responses on
  32 px input, the code 30x30); its block is **pool -> depthwise conv -> sign -> depthwise conv -> sign** (two
  depthwise convolutions, pooling first, nothing pooled before the global average), applied ``--layers``
  times after conv -> sign; ours is conv -> sign -> pool per block. How the paper's b maps to ``--layers`` is
  not stated. sign(0) is 0 there (``torch.sign``), +1 here (probability 0 with a random bias).

For b = 1 both reduce to the mean over positions of sign(w.p + bias) (ours over a 32x32 grid with
``(k - 1) // 2`` padding, the code's over 30x30 at k=5 with padding 1).

References
----------
Y. Xue and U. Roshan, "Image classification and retrieval with random depthwise signed convolutional
neural networks", 2019, Sec. 2.1-2.2. Released code: github.com/xyzacademic/RandomDepthwiseCNN.
"""
from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SEED_CHUNK = 256
"""Kernels are generated in chunks of this many (prefix-stable across ``m``)."""

_MAX_TILE_ELEMENTS = 2**23
"""Largest (images x positions x kernels) tile of block-1 responses held at once (32 MiB of float32)."""

_B1_KERNEL_TILE = 128
"""Kernels per matrix product in the one-block (b=1) path: one image's (L x tile) responses stay in cache
(0.5 MiB at L=1024), so thresholding and counting them in place costs ~10 % of the product itself."""


def sign_pm1(z: torch.Tensor) -> torch.Tensor:
    """Sign activation with values in {-1, +1}: ``+1`` where ``z >= 0`` else ``-1``.

    ``torch.sign`` maps 0 to 0; with a N(0, 1) bias an exact zero has probability 0 but we fix the
    convention so that outputs are always +-1 (Sec. 2.2, "sign function").
    """
    return torch.where(z >= 0, 1.0, -1.0).to(z.dtype)


def _sign_pool_nhwc(z: torch.Tensor, thr: torch.Tensor | float) -> torch.Tensor:
    """Fused ``avg_pool2d(sign(z - thr), 2, 2)`` on a channels-last (B, H, W, C) tensor, floor mode.

    The mean of four +-1 values is ``count(z >= thr) / 2 - 1``; counting on the boolean map avoids
    materialising the full-size float sign map (the step is memory-bound).
    """
    B, H, W, C = z.shape
    H2, W2 = H // 2, W // 2
    ge = (z[:, :2 * H2, :2 * W2] >= thr).reshape(B, H2, 2, W2, 2, C)
    return ge.sum(dim=(2, 4), dtype=torch.float32).mul_(0.5).sub_(1.0)


class RandomDepthwiseSignNet(nn.Module):
    """Random depthwise signed CNN feature extractor (RDCNN), Sec. 2.2 and Fig. 2 of Xue & Roshan.

    Parameters
    ----------
    k : int, >= 1
        Kernel size (``k x k``) in every block. The paper searches k in {3, 5, 7} (Table 2).
    b : int, >= 1
        Number of convolutional blocks (conv -> sign -> 2x2 average pool).
    m : int, >= 1
        Number of kernels per block = feature dimension. Paper: 100,000.
    seed : int, default 0
        Seed of the random kernels; the network is a deterministic function of ``(k, b, m, seed,
        in_channels)``.
    in_channels : {1, 3}, default 3
        Channels of the input images (3 = RGB).
    padding : {"same", "valid"}, default "same"
        ``"same"`` pads ``(k - 1) // 2`` zeros in every block (the released code does so in its depthwise
        blocks but pads its first convolution by 1 for every k; see the module docstring). It keeps deep or
        large-k settings such as k=7, b=3 valid on 32x32 images. ``"valid"`` gives the ``(p - k + 1)``
        output of the paper's Sec. 2.2 text.
    bias : bool, default True
        Add an N(0, 1) bias to every kernel (random affine hyperplanes, as in the released code; the paper's
        text gives no bias).
    batch_size : int, default 256
        Images processed per step in :meth:`transform`.
    kernel_chunk : int, default 2048
        Kernels processed per step (bounds memory for large ``m``; 100,000 kernels work).

    Notes
    -----
    Input scaling: uint8 images are divided by 255 (``ToTensor`` in the released code); no mean/std
    normalisation. The last block is pooled like the others (2x2, floor mode) before the global average.

    Examples
    --------
    >>> net = RandomDepthwiseSignNet(k=5, b=1, m=64, seed=0)
    >>> x = np.zeros((2, 32, 32, 3), np.uint8)
    >>> net.transform(x).shape
    (2, 64)
    """

    def __init__(self, k: int = 5, b: int = 1, m: int = 1000, seed: int = 0, in_channels: int = 3,
                 padding: Literal["same", "valid"] = "same", bias: bool = True, batch_size: int = 256,
                 kernel_chunk: int = 2048):
        super().__init__()
        for name, val, lo in (("k", k, 1), ("b", b, 1), ("m", m, 1), ("batch_size", batch_size, 1),
                              ("kernel_chunk", kernel_chunk, 1)):
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < lo:
                raise ValueError(f"{name}={val!r} must be an integer >= {lo}; set rdcnn.{name} in params "
                                 f"(the paper uses k in {{3,5,7}}, b in {{1,2,3}}, m=100000)")
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels={in_channels!r} must be 1 (grayscale) or 3 (RGB)")
        if padding not in ("same", "valid"):
            raise ValueError(f"padding={padding!r} must be 'same' ((k-1)//2 per block) or 'valid' (paper text)")
        if seed < 0:
            raise ValueError(f"seed={seed} must be >= 0")
        self.k, self.b, self.m, self.seed = int(k), int(b), int(m), int(seed)
        self.in_channels, self.padding, self.use_bias = in_channels, padding, bool(bias)
        self.batch_size, self.kernel_chunk = int(batch_size), int(kernel_chunk)
        self.pad = (self.k - 1) // 2 if padding == "same" else 0
        w1, b1, wd, bd = self._draw_weights()
        # Buffers, not parameters: nothing here is trained.
        self.register_buffer("w1", torch.from_numpy(w1))  # (m, C*k*k), unfold order (C, kh, kw)
        self.register_buffer("b1", torch.from_numpy(b1))  # (m,)
        self.register_buffer("wd", torch.from_numpy(wd))  # (b-1, m, 1, k, k)
        self.register_buffer("bd", torch.from_numpy(bd))  # (b-1, m)

    # ------------------------------------------------------------------ weights
    def _draw_weights(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        k, b, m, C = self.k, self.b, self.m, self.in_channels
        d1, kk = C * k * k, k * k
        n_chunks = -(-m // SEED_CHUNK)
        w1 = np.empty((n_chunks * SEED_CHUNK, d1), np.float32)
        b1 = np.empty(n_chunks * SEED_CHUNK, np.float32)
        wd = np.empty((b - 1, n_chunks * SEED_CHUNK, kk), np.float32)
        bd = np.empty((b - 1, n_chunks * SEED_CHUNK), np.float32)
        for c in range(n_chunks):  # loop over chunks of kernels (not over pixels or images)
            rng = np.random.default_rng(np.random.SeedSequence([self.seed, c]))
            s = slice(c * SEED_CHUNK, (c + 1) * SEED_CHUNK)
            w1[s] = rng.standard_normal((SEED_CHUNK, d1), dtype=np.float32)
            b1[s] = rng.standard_normal(SEED_CHUNK, dtype=np.float32)
            for j in range(b - 1):
                wd[j, s] = rng.standard_normal((SEED_CHUNK, kk), dtype=np.float32)
                bd[j, s] = rng.standard_normal(SEED_CHUNK, dtype=np.float32)
        if not self.use_bias:
            b1[:] = 0.0
            bd[:] = 0.0
        return (w1[:m].copy(), b1[:m].copy(), wd[:, :m].reshape(b - 1, m, 1, k, k).copy(),
                bd[:, :m].copy())

    # ------------------------------------------------------------------ input checks
    def _check_images(self, images: np.ndarray) -> np.ndarray:
        if isinstance(images, torch.Tensor):
            raise TypeError("transform expects a NumPy uint8 array (N, H, W, C); for float NCHW tensors "
                            "call the module directly (forward)")
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise TypeError(f"images must be uint8 (N, H, W, C) in [0, 255], got dtype {images.dtype}; "
                            "convert with (x * 255).round().astype(np.uint8) if x is float in [0, 1]")
        if images.ndim == 3 and self.in_channels == 1:
            images = images[..., None]
        if images.ndim != 4:
            raise ValueError(f"images must have shape (N, H, W, C), got {images.shape}")
        if images.shape[0] == 0:
            raise ValueError("images is an empty batch (N=0); pass at least one image")
        c = images.shape[3]
        if c != self.in_channels:
            fix = ("repeat the grey channel (np.repeat(x, 3, axis=3)) or build the net with in_channels=1"
                   if c == 1 else "build the net with in_channels=3 or convert to grey")
            raise ValueError(f"images have {c} channel(s) but the network expects in_channels="
                             f"{self.in_channels}; {fix}")
        h, w = images.shape[1:3]
        size = min(h, w)
        for _ in range(self.b):
            size = size + 2 * self.pad - self.k + 1
            if size < 2:
                raise ValueError(f"images of size {h}x{w} are too small for k={self.k}, b={self.b}, "
                                 f"padding={self.padding!r} (each block needs a conv output >= 2x2 to "
                                 "pool); use padding='same', a smaller k or fewer blocks")
            size //= 2
        return images

    # ------------------------------------------------------------------ compute
    def forward(self, x: torch.Tensor, lo: int = 0, hi: int | None = None) -> torch.Tensor:
        """Features of float images ``x`` (B, C, H, W) scaled to [0, 1] for kernels ``lo:hi``.

        For b = 1, feature j is f_j = mean over patch positions p of sign(w_j . p + c_j) (Sec. 2.1-2.2: a random
        hyperplane on patches, sign, 2x2 average pool, global average); blocks 2..b apply pool(sign(v_j * z_j +
        d_j)) depthwise before the global average.

        Block 1 is one matrix product of the unfolded patches (B, L, C*k*k) with the kernel chunk
        (C*k*k, mc), tiled over images so that at most ``_MAX_TILE_ELEMENTS`` responses live at once. Its
        output is already channels-last, which makes the grouped (depthwise) convolutions of blocks 2..b fast.

        Returns
        -------
        torch.Tensor of shape (B, hi - lo), values in [-1, 1].
        """
        hi = self.m if hi is None else hi
        B, C, H, W = x.shape
        k, p, mc = self.k, self.pad, hi - lo
        Ho, Wo = H + 2 * p - k + 1, W + 2 * p - k + 1
        He, We = (Ho // 2) * 2, (Wo // 2) * 2  # 2x2 pooling, floor mode, drops the last odd row/col
        patches = F.unfold(x, k, padding=p).transpose(1, 2)  # (B, L, C*k*k)
        w = self.w1[lo:hi].T  # (C*k*k, mc)
        thr = -self.b1[lo:hi]  # w.p + bias >= 0  <=>  w.p >= -bias
        out = torch.empty(B, mc, dtype=x.dtype, device=x.device)
        if self.b == 1 and (He, We) == (Ho, Wo):
            # avg-pool then global average == mean of the sign map: count(w.p + bias >= 0) per kernel. The
            # bias rides in the product (a ones column on the patches, a bias row on the kernels); per image
            # and tile of kernels the (L, tile) responses land in a cache-resident buffer, are thresholded in
            # place and summed over positions.
            L = Ho * Wo
            ones = torch.ones(B, L, 1, dtype=x.dtype, device=x.device)
            pa = torch.cat([patches, ones], 2)  # (B, L, C*k*k + 1)
            wa = torch.cat([w, self.b1[lo:hi][None]], 0)  # (C*k*k + 1, mc)
            t = min(_B1_KERNEL_TILE, mc)
            buf = torch.empty(L, t, dtype=x.dtype, device=x.device)
            for i in range(B):  # loop over images and kernel tiles; each step is one BLAS product
                for j in range(0, mc, t):
                    e = min(mc, j + t)
                    z = torch.mm(pa[i], wa[:, j:e], out=buf[:, :e - j])
                    torch.sum(z.ge_(0.0), 0, out=out[i, j:e])
            return out.mul_(2.0 / float(L)).sub_(1.0)
        step = max(1, _MAX_TILE_ELEMENTS // max(1, Ho * Wo * mc))
        for s in range(0, B, step):  # tiles of images
            z = patches[s:s + step] @ w  # (bs, L, mc)
            z = z.view(-1, Ho, Wo, mc)[:, :He, :We]
            if self.b == 1:
                # avg-pool then global average == mean of the sign map over the even-cropped grid
                frac = (z >= thr).sum(dim=(1, 2), dtype=torch.float32) / float(He * We)
                out[s:s + step] = 2.0 * frac.to(x.dtype) - 1.0
                continue
            z = _sign_pool_nhwc(z, thr).permute(0, 3, 1, 2)  # channels-last NCHW
            for j in range(self.b - 1):
                z = F.conv2d(z, self.wd[j, lo:hi], self.bd[j, lo:hi], padding=p, groups=mc)
                z = _sign_pool_nhwc(z.permute(0, 2, 3, 1), 0.0).permute(0, 3, 1, 2)
            out[s:s + step] = z.mean(dim=(2, 3))
        return out

    def sign_maps(self, images: np.ndarray, block: int = 1) -> np.ndarray:
        """Sign maps (before pooling) of block ``block`` for a few images; for teaching and tests.

        Returns
        -------
        ndarray of shape (N, m, H', W'), float32 with values in {-1, +1}.
        """
        images = self._check_images(images)
        x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
        with torch.no_grad():
            B, C, H, W = x.shape
            k, p = self.k, self.pad
            Ho, Wo = H + 2 * p - k + 1, W + 2 * p - k + 1
            z = F.unfold(x, k, padding=p).transpose(1, 2) @ self.w1.T + self.b1
            z = sign_pm1(z).view(B, Ho, Wo, self.m).permute(0, 3, 1, 2)
            for j in range(block - 1):
                z = F.conv2d(F.avg_pool2d(z, 2, 2), self.wd[j], self.bd[j], padding=p, groups=self.m)
                z = sign_pm1(z)
        return z.numpy()

    def transform(self, images: np.ndarray, *, dtype: np.dtype | type = np.float32,
                  out: np.ndarray | None = None, memmap_path: str | Path | None = None,
                  progress: bool = False, desc: str = "rdcnn") -> np.ndarray:
        """Compute the ``m`` RDCNN features of uint8 images, batched over images and kernels.

        Parameters
        ----------
        images : ndarray of shape (N, H, W, C), uint8
            C must equal ``in_channels``.
        dtype : numpy dtype, default float32
            Output dtype; ``np.float16`` halves memory (features are means of +-1 values).
        out : ndarray of shape (N, m), optional
            Preallocated output (e.g. a ``np.memmap``).
        memmap_path : path, optional
            Write the features to a memory-mapped ``.npy`` file there (needed for large N x m: 60k images
            x 100k features are 24 GB in float32).
        progress : bool, default False
            Show a tqdm bar over image batches.

        Returns
        -------
        ndarray of shape (N, m), ``dtype``, values in [-1, 1].
        """
        images = self._check_images(images)
        n = images.shape[0]
        if out is None:
            if memmap_path is not None:
                out = np.lib.format.open_memmap(str(memmap_path), mode="w+", dtype=dtype, shape=(n, self.m))
            else:
                out = np.empty((n, self.m), dtype=dtype)
        elif out.shape != (n, self.m):
            raise ValueError(f"out has shape {out.shape}, expected {(n, self.m)}")
        starts = range(0, n, self.batch_size)
        if progress:
            from tqdm.auto import tqdm

            starts = tqdm(starts, desc=desc, unit="batch", total=-(-n // self.batch_size))
        with torch.no_grad():
            for s in starts:
                x = torch.from_numpy(np.ascontiguousarray(images[s:s + self.batch_size]))
                x = x.permute(0, 3, 1, 2).float().div_(255.0)
                for lo in range(0, self.m, self.kernel_chunk):
                    hi = min(self.m, lo + self.kernel_chunk)
                    out[s:s + len(x), lo:hi] = self.forward(x, lo, hi).numpy().astype(dtype, copy=False)
        return out

    def fit_transform(self, images: np.ndarray, y: np.ndarray | None = None, **kw) -> np.ndarray:
        """Same as :meth:`transform` (nothing is fitted; scikit-learn style)."""
        return self.transform(images, **kw)

    def extra_repr(self) -> str:
        return (f"k={self.k}, b={self.b}, m={self.m}, seed={self.seed}, in_channels={self.in_channels}, "
                f"padding={self.padding!r}, bias={self.use_bias}")


def naive_rdcnn_features(net: RandomDepthwiseSignNet, images: np.ndarray) -> np.ndarray:
    """Reference implementation: one convolution per kernel ("repeat this k times", Abstract).

    Slow on purpose (a Python loop over the ``m`` kernels); used by tests and the benchmark to check
    :meth:`RandomDepthwiseSignNet.transform` and to measure its speed-up.

    Returns
    -------
    ndarray of shape (N, m), float32.
    """
    images = net._check_images(images)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
    C, k = net.in_channels, net.k
    feats = np.empty((len(x), net.m), np.float32)
    with torch.no_grad():
        for i in range(net.m):
            w = net.w1[i].view(1, C, k, k)
            z = F.avg_pool2d(sign_pm1(F.conv2d(x, w, net.b1[i:i + 1], padding=net.pad)), 2, 2)
            for j in range(net.b - 1):
                z = F.conv2d(z, net.wd[j, i:i + 1], net.bd[j, i:i + 1], padding=net.pad)
                z = F.avg_pool2d(sign_pm1(z), 2, 2)
            feats[:, i] = z.mean(dim=(1, 2, 3)).numpy()
    return feats
