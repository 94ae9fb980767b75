"""Image modifications of the reverse-image-search benchmark (Gaillard et al. 2018, Sec. 5.2).

The paper modifies every base image with six ImageMagick commands (Fig. 3)::

    convert in.jpg -blur 4x2               blur.jpg     # Gaussian blur, radius 4, sigma 2
    convert in.jpg -colorspace Gray        gray.jpg     # black and white
    convert in.jpg -resize 50%             resize.jpg   # half height and width
    convert in.jpg -quality 10             compr.jpg    # JPEG quality 10
    convert in.jpg -rotate 5               rotate.jpg   # 5 degrees clockwise, canvas grows
    convert in.jpg -crop 90%x100%+0+0      crop.jpg     # keep the left 90 %

This module re-implements them with Pillow / OpenCV so that the benchmark runs without ImageMagick.
Every function is deterministic (no randomness at all), takes and returns ``np.uint8`` RGB images of shape
(H, W, 3) and has a ``strength`` argument used for the degree sweeps of Sec. 5.3.1 (rotation angle,
crop fraction, ...). The default strength reproduces the paper's command.

Image mode contract: inputs are converted by :func:`as_rgb_uint8` (grayscale is repeated to 3 channels,
RGBA / LA are composited over white like ImageMagick's ``-flatten`` with the default white background,
palette images are expanded; 16-bit and float images are refused with an error that says how to convert).
Outputs are always (H', W', 3) uint8; :func:`gray` keeps 3 equal channels so that every modified set has
the same layout as the base set.
"""
from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np
from PIL import Image

__all__ = [
    "MODIFICATIONS",
    "DEFAULT_STRENGTH",
    "MIN_SIDE",
    "as_rgb_uint8",
    "blur",
    "gray",
    "resize",
    "jpeg",
    "rotate",
    "crop",
    "apply",
    "apply_batch",
]

#: Smallest accepted side in pixels (a 32 x 32 DCT hash of a 2-pixel image is meaningless).
MIN_SIDE: int = 8

#: The six modifications of Sec. 5.2, in the paper's order (Fig. 3 / Table 4 columns).
MODIFICATIONS: tuple[str, ...] = ("blur", "gray", "resize", "compr", "rotate", "crop")

#: Default strength of each modification = the paper's ImageMagick command.
DEFAULT_STRENGTH: dict[str, float] = {
    "blur": 2.0,  # sigma of -blur 4x2 (radius = 2 * sigma = 4)
    "gray": 1.0,  # fraction of desaturation (1 = full grayscale)
    "resize": 0.5,  # scale factor of -resize 50%
    "compr": 10.0,  # JPEG quality of -quality 10
    "rotate": 5.0,  # degrees clockwise of -rotate 5
    "crop": 0.10,  # fraction removed on the right of -crop 90%x100%+0+0
}


def as_rgb_uint8(image: Any, *, name: str = "image") -> np.ndarray:
    """Convert one image to a C-contiguous ``np.uint8`` RGB array of shape (H, W, 3).

    Parameters
    ----------
    image : ndarray or PIL.Image.Image
        (H, W) grayscale, (H, W, 1), (H, W, 3) RGB or (H, W, 4) RGBA ``uint8`` array, or a Pillow image
        of any 8-bit mode ("L", "P", "RGB", "RGBA", "LA", "CMYK", ...).
    name : str
        Name used in error messages.

    Returns
    -------
    ndarray of shape (H, W, 3), uint8
        Grayscale is repeated, alpha is composited over white (ImageMagick's default background).

    Raises
    ------
    TypeError
        For 16-bit, float or bool images (with the conversion to apply) and unsupported objects.
    ValueError
        For a wrong number of channels or an image smaller than ``MIN_SIDE`` pixels.
    """
    if isinstance(image, Image.Image):
        if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
            raise TypeError(
                f"{name}: Pillow mode {image.mode!r} is not 8-bit; convert it first, e.g. "
                "Image.fromarray((np.asarray(img) >> 8).astype(np.uint8)) for 16-bit data"
            )
        if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
            image = image.convert("RGBA")
        elif image.mode != "RGB":
            image = image.convert("RGB")
        arr = np.asarray(image)
    elif isinstance(image, np.ndarray):
        arr = image
    else:
        raise TypeError(f"{name}: expected a numpy array or PIL image, got {type(image).__name__}")

    if arr.dtype != np.uint8:
        if arr.dtype == np.uint16:
            fix = "(x >> 8).astype(np.uint8)"
        elif np.issubdtype(arr.dtype, np.floating):
            fix = "np.clip(np.rint(x * 255), 0, 255).astype(np.uint8) for images in [0, 1]"
        else:
            fix = "an explicit rescale to 0..255 and .astype(np.uint8)"
        raise TypeError(f"{name}: dtype {arr.dtype} is not supported, expected uint8; convert with {fix}")
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.ndim == 3 and arr.shape[2] == 4:
        alpha = arr[:, :, 3:4].astype(np.float32) / 255.0
        arr = np.rint(arr[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    elif not (arr.ndim == 3 and arr.shape[2] == 3):
        raise ValueError(
            f"{name}: shape {arr.shape} is not an image; expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)"
        )
    h, w = arr.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise ValueError(
            f"{name}: size {h}x{w} is below the {MIN_SIDE}x{MIN_SIDE} minimum; upscale it or drop it"
        )
    return np.ascontiguousarray(arr)


def _check_strength(kind: str, value: float, lo: float, hi: float) -> float:
    value = float(value)
    if not (lo <= value <= hi):
        raise ValueError(f"{kind} strength={value} outside [{lo}, {hi}]; pass a value in that range")
    return value


def blur(image: Any, strength: float = 2.0) -> np.ndarray:
    """Gaussian blur, ImageMagick ``-blur {2s}x{s}`` (Sec. 5.2 item 1: r = 4, sigma = 2).

    The kernel is a normalised Gaussian of standard deviation ``strength`` truncated at radius
    ``round(2 * strength)`` (the paper's 4x2), with replicated borders (ImageMagick's edge virtual pixels).

    Parameters
    ----------
    image : array-like image (see :func:`as_rgb_uint8`)
    strength : float in [0, 20]
        Sigma in pixels; 0 returns a copy.
    """
    img = as_rgb_uint8(image)
    sigma = _check_strength("blur", strength, 0.0, 20.0)
    if sigma == 0:
        return img.copy()
    radius = max(1, int(round(2.0 * sigma)))
    k = 2 * radius + 1
    return cv2.GaussianBlur(img, (k, k), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REPLICATE)


def gray(image: Any, strength: float = 1.0) -> np.ndarray:
    """Black-and-white transformation (Sec. 5.2 item 2), ImageMagick ``-colorspace Gray``.

    Luma Y = 0.299 R + 0.587 G + 0.114 B (Rec. 601, ImageMagick 6's ``Rec601Luma``), repeated on three
    channels; ``strength`` in [0, 1] blends the original (0) with the grayscale image (1).
    """
    img = as_rgb_uint8(image)
    s = _check_strength("gray", strength, 0.0, 1.0)
    y = img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    out = s * y[:, :, None] + (1.0 - s) * img.astype(np.float32)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def resize(image: Any, strength: float = 0.5) -> np.ndarray:
    """Resize by a factor, ImageMagick ``-resize 50%`` (Sec. 5.2 item 3: half height and width).

    New size ``floor(side * strength + 0.5)`` (at least 1 px), Lanczos filter with antialiasing
    (ImageMagick's default filter for photo minification; Pillow's ``LANCZOS``).

    Parameters
    ----------
    strength : float in [0.05, 4]
        Scale factor.
    """
    img = as_rgb_uint8(image)
    s = _check_strength("resize", strength, 0.05, 4.0)
    h, w = img.shape[:2]
    nw, nh = max(1, int(np.floor(w * s + 0.5))), max(1, int(np.floor(h * s + 0.5)))
    return np.asarray(Image.fromarray(img).resize((nw, nh), Image.Resampling.LANCZOS))


def jpeg(image: Any, strength: float = 10.0) -> np.ndarray:
    """JPEG compression, ImageMagick ``-quality 10`` (Sec. 5.2 item 4), then decoding.

    libjpeg through Pillow with the IJG tables scaled to ``quality = strength`` and 4:2:0 chroma
    subsampling (ImageMagick's default below quality 90). The output is the decoded RGB image.

    Parameters
    ----------
    strength : float in [1, 100]
        JPEG quality (rounded to an integer); lower is stronger.
    """
    img = as_rgb_uint8(image)
    q = int(round(_check_strength("compr", strength, 1.0, 100.0)))
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=q, subsampling=2, optimize=False)
    buf.seek(0)
    return np.asarray(Image.open(buf).convert("RGB"))


def rotate(image: Any, strength: float = 5.0, *, background: tuple[int, int, int] = (255, 255, 255)) -> np.ndarray:
    """Clockwise rotation, ImageMagick ``-rotate 5`` (Sec. 5.2 item 5).

    The canvas grows to the rotated bounding box and the corners are filled with ``background``
    (ImageMagick's default ``-background`` is white). Bicubic interpolation.

    Parameters
    ----------
    strength : float in [-180, 180]
        Angle in degrees, positive = clockwise as in ImageMagick.
    background : tuple of 3 ints
        Fill colour of the uncovered corners.
    """
    img = as_rgb_uint8(image)
    angle = _check_strength("rotate", strength, -180.0, 180.0)
    if angle == 0:
        return img.copy()
    pil = Image.fromarray(img)
    # Pillow rotates counter-clockwise for positive angles.
    out = pil.rotate(-angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=tuple(background))
    return np.asarray(out)


def crop(image: Any, strength: float = 0.10) -> np.ndarray:
    """Crop on the right, ImageMagick ``-crop 90%x100%+0+0`` (Sec. 5.2 item 6: remove 10 % on the right).

    Keeps the left ``floor(W * (1 - strength) + 0.5)`` columns (at least 1) and all rows.

    Parameters
    ----------
    strength : float in [0, 0.9]
        Fraction of the width removed on the right.
    """
    img = as_rgb_uint8(image)
    s = _check_strength("crop", strength, 0.0, 0.9)
    w = img.shape[1]
    keep = max(1, int(np.floor(w * (1.0 - s) + 0.5)))
    return np.ascontiguousarray(img[:, :keep])


_FUNCS: dict[str, Callable[..., np.ndarray]] = {
    "blur": blur,
    "gray": gray,
    "resize": resize,
    "compr": jpeg,
    "rotate": rotate,
    "crop": crop,
}


def apply(image: Any, modification: str, strength: float | None = None) -> np.ndarray:
    """Apply one named modification of :data:`MODIFICATIONS` (``strength=None`` = the paper's setting)."""
    if modification not in _FUNCS:
        raise ValueError(f"modification={modification!r} unknown; choose one of {list(MODIFICATIONS)}")
    s = DEFAULT_STRENGTH[modification] if strength is None else strength
    return _FUNCS[modification](image, s)


def apply_batch(
    images: Sequence[Any] | np.ndarray, modification: str, strength: float | None = None
) -> list[np.ndarray]:
    """Apply one modification to every image; returns a list (sizes may change, e.g. rotate/resize/crop)."""
    if modification not in _FUNCS:
        raise ValueError(f"modification={modification!r} unknown; choose one of {list(MODIFICATIONS)}")
    return [apply(im, modification, strength) for im in images]
