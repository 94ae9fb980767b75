"""Tests of cbir.transforms: the six modifications of Gaillard et al. 2018, Sec. 5.2."""
import numpy as np
import pytest
from PIL import Image

from cbir import transforms as T


@pytest.fixture(scope="module")
def photo():
    rng = np.random.default_rng(0)
    # smooth deterministic colour image 60 x 80 (gradients + a block), no external data needed
    y, x = np.mgrid[0:60, 0:80]
    img = np.stack([x * 3, y * 4, (x + y) * 2], axis=2).astype(np.uint8)
    img[20:40, 30:50] = rng.integers(0, 256, (20, 20, 3), dtype=np.uint8)
    return img


@pytest.mark.parametrize("mod", T.MODIFICATIONS)
def test_each_modification_is_deterministic_and_keeps_rgb_uint8(photo, mod):
    a = T.apply(photo, mod)
    b = T.apply(photo.copy(), mod)
    assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3
    np.testing.assert_array_equal(a, b)
    assert not np.shares_memory(a, photo)


def test_resize_half_rounds_like_imagemagick(photo):
    out = T.resize(photo[:, :79])  # 79 * 0.5 = 39.5 -> 40 (floor(x + 0.5))
    assert out.shape == (30, 40, 3)


def test_crop_keeps_left_90_percent(photo):
    out = T.crop(photo)  # 80 * 0.9 = 72 columns
    np.testing.assert_array_equal(out, photo[:, :72])
    assert T.crop(photo, 0.0).shape == photo.shape


def test_rotate_clockwise_grows_canvas_with_white_corners(photo):
    out = T.rotate(photo, 5.0)
    h, w = photo.shape[:2]
    a = np.radians(5)
    assert abs(out.shape[1] - (w * np.cos(a) + h * np.sin(a))) <= 2
    assert abs(out.shape[0] - (h * np.cos(a) + w * np.sin(a))) <= 2
    np.testing.assert_array_equal(out[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(out[-1, -1], [255, 255, 255])
    # clockwise: a marker in the top-left moves right and down relative to the upper-left corner
    img = np.zeros((41, 41, 3), np.uint8)
    img[20, 35] = 255  # on the right of the centre
    rot = T.rotate(img, 90.0)  # clockwise 90 degrees: right of centre -> below the centre
    yy, xx = np.unravel_index(np.argmax(rot[..., 0]), rot.shape[:2])
    assert yy > rot.shape[0] // 2 and abs(xx - rot.shape[1] // 2) <= 1


def test_gray_uses_rec601_luma_and_three_equal_channels():
    img = np.zeros((8, 8, 3), np.uint8)
    img[..., 0] = 255  # pure red -> 0.299 * 255 = 76.245 -> 76
    out = T.gray(img)
    assert out.shape == (8, 8, 3)
    assert (out == 76).all()
    half = T.gray(img, 0.5)  # blend: R = 0.5 * 255 + 0.5 * 76.245
    assert half[0, 0, 0] == round(0.5 * 255 + 0.5 * 76.245) and half[0, 0, 1] == round(0.5 * 76.245)


def test_blur_matches_truncated_gaussian_reference():
    img = np.zeros((21, 21, 3), np.uint8)
    img[10, 10] = 255
    out = T.blur(img, 2.0).astype(float)
    # separable Gaussian, sigma 2, radius 4 (9 taps), normalised
    t = np.arange(-4, 5)
    g = np.exp(-(t**2) / (2 * 4.0))
    g /= g.sum()
    ref = 255 * np.outer(g, g)
    np.testing.assert_allclose(out[6:15, 6:15, 0], ref, atol=1.0)
    assert out[10, 0, 0] == 0  # outside the 9x9 support
    const = np.full((16, 16, 3), 77, np.uint8)
    np.testing.assert_array_equal(T.blur(const), const)


def test_jpeg_quality_orders_error(photo):
    e10 = np.abs(T.jpeg(photo, 10).astype(int) - photo).mean()
    e90 = np.abs(T.jpeg(photo, 90).astype(int) - photo).mean()
    assert e10 > e90 > 0


def test_strength_out_of_range_names_value():
    img = np.zeros((16, 16, 3), np.uint8)
    with pytest.raises(ValueError, match=r"crop strength=0.95"):
        T.crop(img, 0.95)
    with pytest.raises(ValueError, match="unknown"):
        T.apply(img, "sharpen")


def test_accepted_modes_gray_rgba_palette():
    g = np.arange(256, dtype=np.uint8).reshape(16, 16)
    out = T.as_rgb_uint8(g)
    assert out.shape == (16, 16, 3) and (out[..., 0] == out[..., 2]).all()
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:8, :, 3] = 255  # top opaque red, bottom fully transparent -> white (ImageMagick background)
    out = T.as_rgb_uint8(rgba)
    np.testing.assert_array_equal(out[0, 0], [200, 0, 0])
    np.testing.assert_array_equal(out[-1, -1], [255, 255, 255])
    pal = Image.fromarray(np.zeros((16, 16, 3), np.uint8)).convert("P")
    assert T.as_rgb_uint8(pal).shape == (16, 16, 3)
    assert T.as_rgb_uint8(Image.fromarray(rgba, "RGBA"))[-1, -1].tolist() == [255, 255, 255]


def test_refused_16bit_float_and_tiny_images_with_fix():
    with pytest.raises(TypeError, match=r">> 8"):
        T.as_rgb_uint8(np.zeros((16, 16), np.uint16))
    with pytest.raises(TypeError, match="I;16"):
        T.as_rgb_uint8(Image.fromarray(np.zeros((16, 16), np.uint16)))
    with pytest.raises(TypeError, match="float"):
        T.as_rgb_uint8(np.zeros((16, 16, 3), np.float32))
    with pytest.raises(ValueError, match="below the 8x8 minimum"):
        T.as_rgb_uint8(np.zeros((4, 40, 3), np.uint8))
    with pytest.raises(ValueError, match="not an image"):
        T.as_rgb_uint8(np.zeros((16, 16, 2), np.uint8))
