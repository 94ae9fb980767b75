"""Tests of cbir.hashing.perceptual (DCT / Marr-Hildreth / radial-variance hashes, Sec. 3.3)."""
import cv2
import numpy as np
import pytest
import scipy.fft
from PIL import Image

from cbir import transforms as T
from cbir.hashing import perceptual as P


@pytest.fixture(scope="module")
def photos():
    import skimage.data

    names = ("chelsea", "coffee", "astronaut", "rocket")
    return [T.as_rgb_uint8(getattr(skimage.data, n)()) for n in names]


def _reference_dct_bits(img_rgb):
    """OpenCV PHash step by step with independent tools (scipy DCT): resize, gray, DCT, mean threshold."""
    small = cv2.resize(img_rgb[:, :, ::-1].copy(), (32, 32), interpolation=cv2.INTER_LINEAR_EXACT)
    gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float64)
    d = scipy.fft.dctn(gray, type=2, norm="ortho")[:8, :8].copy()
    d[0, 0] = 0.0
    return (d > d.mean()).astype(np.uint8).reshape(-1)


def test_fast_dct_matches_step_by_step_reference_and_opencv(photos):
    fast = P.FastDCTHash()
    bits = fast.bits(photos)
    ref = np.stack([_reference_dct_bits(im) for im in photos])
    np.testing.assert_array_equal(bits, ref)
    ocv = P.OpenCVHash("dct").hash_batch(photos)
    agree = P.bit_agreement(fast.hash_batch(photos), ocv)
    assert agree["bit_error_rate"] == 0.0 and agree["identical_fraction"] == 1.0


def test_equal_size_batch_path_equals_list_path(photos):
    arr = np.stack([np.asarray(Image.fromarray(im).resize((90, 70))) for im in photos] * 3)
    fast = P.FastDCTHash()
    np.testing.assert_array_equal(fast.hash_batch(arr), fast.hash_batch(list(arr)))


def test_dct_matrix_is_orthonormal_dct2():
    c = P.dct_matrix(8)
    np.testing.assert_allclose(c @ c.T, np.eye(8), atol=1e-12)
    x = np.arange(8.0)
    np.testing.assert_allclose(c @ x, scipy.fft.dct(x, norm="ortho"), atol=1e-12)


def test_dct_invariant_to_resize_and_mild_jpeg_but_not_large_rotation(photos):
    h = P.FastDCTHash()
    im = photos[0]
    c0 = h.hash_batch([im])[0]
    assert h.distance(c0, c0) == 0
    assert h.distance(c0, h.hash_batch([T.resize(im, 0.5)])[0]) <= 2
    assert h.distance(c0, h.hash_batch([T.jpeg(im, 50)])[0]) <= 2
    assert h.distance(c0, h.hash_batch([T.rotate(im, 45)])[0]) >= 16


def test_code_sizes_and_identical_images_distance_zero(photos):
    mh = P.OpenCVHash("mh")
    codes = mh.hash_batch(photos[:2])
    assert codes.shape == (2, 72) and mh.n_bits == 576
    assert mh.normalized_distance(codes[0], codes[0]) == 0.0
    assert P.OpenCVHash("dct").hash_batch(photos[:1]).shape == (1, 8)
    assert P.OpenCVHash("rv").hash_batch(photos[:1]).shape == (1, 40)
    # our Hamming distance equals OpenCV's compare on the same codes
    assert mh.distance(codes[0], codes[1]) == mh.compare_opencv(codes[0], codes[1])


def test_radial_variance_peak_crosscorr_matches_opencv(photos):
    rv = P.OpenCVHash("rv")
    codes = rv.hash_batch(photos)
    mine = P.peak_crosscorr_matrix(codes, codes)
    theirs = np.array([[rv.compare_opencv(a, b) for b in codes] for a in codes])
    np.testing.assert_allclose(mine, theirs, atol=1e-5)
    d = rv.pairwise(codes, codes)
    assert d.min() >= 0 and d.max() <= 1 and np.allclose(np.diag(d), 0, atol=1e-5)


def test_peak_crosscorr_of_circular_shift_is_one():
    x = np.array([[3, 1, 4, 1, 5, 9, 2, 6, 5, 3]], np.uint8)
    y = np.roll(x, 3, axis=1)
    assert P.peak_crosscorr_matrix(x, y)[0, 0] == pytest.approx(1.0, abs=1e-6)


def test_hamming_matrix_hand_values():
    a = np.packbits(np.array([[0] * 8, [1] * 8], np.uint8), axis=1)
    b = np.packbits(np.array([[1, 1, 0, 0, 0, 0, 0, 0]], np.uint8), axis=1)
    np.testing.assert_array_equal(P.hamming_matrix(a, b), [[2], [6]])


def test_bit_agreement_hand_values():
    a = np.array([[0b11110000], [0b00000000]], np.uint8)
    b = np.array([[0b11110001], [0b00000000]], np.uint8)
    r = P.bit_agreement(a, b)
    assert r["bit_error_rate"] == pytest.approx(1 / 16) and r["identical_fraction"] == 0.5
    assert r["max_bits_differing"] == 1


@pytest.mark.parametrize("method", ["ahash", "dhash", "phash", "whash"])
def test_imagehash_baselines_match_package(photos, method):
    import imagehash

    h = P.ImageHashBaseline(method)
    code = h.hash_batch(photos[:1])
    func = {"ahash": imagehash.average_hash, "dhash": imagehash.dhash,
            "phash": imagehash.phash, "whash": imagehash.whash}[method]
    ref = func(Image.fromarray(photos[0])).hash.reshape(-1).astype(np.uint8)
    np.testing.assert_array_equal(np.unpackbits(code[0]), ref)


def test_modes_accepted_or_refused_clearly(photos):
    h = P.make_hash("dct")
    gray = np.asarray(Image.fromarray(photos[0]).convert("L"))
    rgba = np.dstack([photos[0], np.full(photos[0].shape[:2], 255, np.uint8)])
    pal = Image.fromarray(photos[0]).convert("P")
    codes = h.hash_batch([gray, rgba, pal, photos[0]])
    assert codes.shape == (4, 8)
    assert h.distance(codes[1], codes[3]) == 0  # opaque RGBA == RGB
    with pytest.raises(TypeError, match=r">> 8"):
        h.hash_batch([np.zeros((32, 32), np.uint16)])
    with pytest.raises(ValueError, match="minimum"):
        h.hash_batch([np.zeros((3, 3, 3), np.uint8)])
    with pytest.raises(TypeError, match=r"wrap a single image"):
        h.hash_batch(photos[0])
    with pytest.raises(ValueError, match="unknown"):
        P.make_hash("sha256")


# ---------------------------------------------------------------- pHash 0.9.6 ph_dct_imagehash reference
_REF_DIR = __import__("pathlib").Path(__file__).resolve().parent / "fixtures" / "phash_ref"


def _ref_fixture():
    import json

    return json.loads((_REF_DIR / "phash_dct_ref.json").read_text())


def _as_uint64_hex(codes):
    return [f"{int(v):016x}" for v in P.PHashDCTHash.to_uint64(codes)]


def test_phash_dct_bit_exact_on_generated_images():
    """`dct` = pHash's ph_dct_imagehash: every bit equal to the CImg reference on the stored synthetic images."""
    fx = _ref_fixture()["generated"]
    gen = np.load(_REF_DIR / "generated.npz")
    names = sorted(fx)
    ours = _as_uint64_hex(P.make_hash("dct").hash_batch([gen[n] for n in names]))
    assert dict(zip(names, ours)) == fx
    assert fx["flat_33x33"] == "0000000000000000"  # ties at the median: no coefficient is > it


def test_phash_dct_bit_exact_on_shared_photos():
    """30 Caltech-101 photos decoded by Pillow: all 64 x 30 bits equal to the CImg reference."""
    import sys

    from cbir.data import find_data

    root = find_data("caltech101_subset")
    if root is None:
        pytest.skip("caltech101_subset not on this machine (shared data absent)")
    sys.path.insert(0, str(_REF_DIR))
    from make_fixture import load_photo

    fx = _ref_fixture()["photos"]
    names = sorted(fx)
    ours = _as_uint64_hex(P.PHashDCTHash().hash_batch([load_photo(root / n) for n in names]))
    assert dict(zip(names, ours)) == fx


def test_phash_dct_batch_equals_list_and_steps():
    """Equal-size batch path = list path; nearest-neighbour rows/cols floor(i H / 32); 7x7 box SUM."""
    rng = np.random.default_rng(3)
    batch = rng.integers(0, 256, (3, 40, 70, 3), dtype=np.uint8)
    h = P.PHashDCTHash()
    assert np.array_equal(h.hash_batch(batch), h.hash_batch(list(batch)))
    assert h._window_index(64)[:, 3].tolist() == list(range(0, 64, 2))
    assert h._window_index(10)[0].tolist() == [0, 0, 0, 0, 1, 2, 3]  # Neumann border: edge repeated
    flat = np.full((1, 20, 20, 3), 255, np.uint8)
    assert h.filtered32(flat)[0, 0, 0] == 49 * 235  # Y(255, 255, 255) = 235, summed over 49 pixels
    c = P.phash_dct_matrix(32).astype(np.float64)
    np.testing.assert_allclose(c @ c.T, np.eye(32), atol=1e-6)
    assert P.PHashDCTHash.to_uint64(np.packbits(np.eye(64, dtype=np.uint8)[[0, 63]], axis=1)).tolist() == [1, 2**63]


def test_dct_opencv_is_opencv_phash(photos):
    assert isinstance(P.make_hash("dct_opencv"), P.OpenCVHash)
    assert np.array_equal(P.make_hash("dct_opencv").hash_batch(photos), P.OpenCVHash("dct").hash_batch(photos))


def test_phash_luma_exact_on_every_rgb_triple():
    """The cv2.transform luma equals pHash's integer Y = ((66 R + 129 G + 25 B + 128) >> 8) + 16 for all 2^24 colours."""
    v = np.arange(2**24, dtype=np.uint32)
    rgb = np.stack([(v >> 16) & 255, (v >> 8) & 255, v & 255], -1).astype(np.uint8).reshape(4096, 4096, 3)
    y = cv2.transform(rgb, P.PHashDCTHash._LUMA).astype(np.int32)
    w = rgb.astype(np.int32)
    assert np.array_equal(y, ((66 * w[..., 0] + 129 * w[..., 1] + 25 * w[..., 2] + 128) >> 8) + 16)
