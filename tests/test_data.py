import numpy as np
import pytest

from cbir import data as D


@pytest.mark.parametrize("name", ["digits", "synthetic"])
def test_offline_loaders_shapes_and_determinism(name):
    a = D.load_dataset(name, "train", n_per_class=5, seed=3, image_size=16, verbose=False)
    b = D.load_dataset(name, "train", n_per_class=5, seed=3, image_size=16, verbose=False)
    assert a.images.dtype == np.uint8 and a.images.shape == (50, 16, 16, 3)
    assert a.labels.dtype == np.int64 and np.bincount(a.labels).tolist() == [5] * 10
    np.testing.assert_array_equal(a.images, b.images)
    c = D.load_dataset(name, "train", n_per_class=5, seed=4, image_size=16, verbose=False)
    assert not np.array_equal(a.images, c.images)
    assert ("NOT a real dataset" in a.source) == (name == "synthetic")


def test_digits_split_is_disjoint_and_complete():
    tr, te = D.load_dataset("digits", "train", verbose=False), D.load_dataset("digits", "test", verbose=False)
    assert len(tr) + len(te) == 1797 and np.bincount(te.labels).tolist() == [54] * 10


def test_sample_photos_are_real_rgb_photos():
    ds = D.load_dataset("sample_photos", "all", verbose=False)
    assert len(ds) >= 10 and all(im.ndim == 3 and im.shape[2] == 3 and im.dtype == np.uint8 for im in ds.images)
    assert len(set(ds.classes)) == len(ds)


def test_stratified_subset_deterministic_and_small_classes():
    y = np.array([0] * 10 + [1] * 3 + [2] * 7)
    idx = D.stratified_subset(y, 4, seed=1)
    assert np.bincount(y[idx]).tolist() == [4, 3, 4]
    np.testing.assert_array_equal(idx, D.stratified_subset(y, 4, seed=1))
    assert np.all(np.diff(idx) > 0)


def test_missing_real_dataset_error_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("CBIR_ROOT", str(tmp_path))
    monkeypatch.delenv("CBIR_DATA_DIR", raising=False)
    with pytest.raises(D.DatasetNotFoundError, match="smoke profile runs offline"):
        D.load_dataset("cifar10", "train", data_dir=tmp_path / "nowhere", verbose=False)
    with pytest.raises(ValueError, match="unknown dataset 'cifar11'"):
        D.load_dataset("cifar11")


def _write_folder(root):
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)).save(root / c / f"{i}.png")
    Image.fromarray(rng.integers(0, 255, (20, 24), dtype=np.uint8)).save(root / "a" / "grey.png")
    Image.fromarray(rng.integers(0, 255, (20, 24, 4), dtype=np.uint8), "RGBA").save(root / "b" / "rgba.png")
    Image.fromarray(rng.integers(0, 65535, (20, 24), dtype=np.uint16)).save(root / "b" / "deep16.png")
    Image.fromarray(rng.integers(0, 255, (20, 24), dtype=np.uint8)).convert("P").save(root / "a" / "pal.png")
    (root / "a" / "broken.jpg").write_bytes(b"not a jpeg")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(root / "b" / "tiny.png")


def test_folder_loader_modes_corrupt_and_strict(tmp_path):
    _write_folder(tmp_path / "imgs")
    with pytest.warns(UserWarning, match="skipped 2 unreadable"):
        ds = D.load_dataset(f"folder:{tmp_path / 'imgs'}", "all", verbose=False)
    assert ds.classes == ["a", "b"] and len(ds) == 10
    assert all(im.shape == (20, 24, 3) and im.dtype == np.uint8 for im in ds.images)
    assert any("at least 8x8" in s for s in ds.skipped) and any("cannot decode" in s for s in ds.skipped)
    with pytest.raises(D.ImageDecodeError):
        D.load_dataset(f"folder:{tmp_path / 'imgs'}", "all", strict=True, verbose=False)
    with pytest.warns(UserWarning, match="skipped 2"):
        sized = D.load_dataset(f"folder:{tmp_path / 'imgs'}", "all", image_size=16, verbose=False)
    assert sized.images.shape == (10, 16, 16, 3)
    with pytest.raises(D.DatasetNotFoundError, match="does not exist"):
        D.load_dataset(f"folder:{tmp_path / 'nope'}", verbose=False)


def test_manifest_written(tmp_path):
    ds = D.load_dataset("digits", "test", n_per_class=2, verbose=False)
    path = D.write_manifest([ds], tmp_path / "m.json")
    import json

    m = json.loads(path.read_text())[0]
    assert m["n"] == 20 and m["counts_per_class"] == [2] * 10 and len(m["pixels_sha256"]) == 64


@pytest.mark.realdata
def test_shared_real_data_loaders(shared_data):
    c = D.load_dataset("cifar10_subset", "test", n_per_class=3, data_dir=shared_data, verbose=False)
    assert c.images.shape == (30, 32, 32, 3) and c.classes[0] == "airplane"
    m = D.load_dataset("mnist", "test", data_dir=shared_data, verbose=False)
    assert m.images.shape == (10000, 28, 28, 3) and m.labels[0] == 7
    k = D.load_dataset("caltech101_subset", "all", n_per_class=1, data_dir=shared_data, verbose=False)
    assert len(k) == 99 and all(im.shape[2] == 3 for im in k.images)
    assert set(D.available_real(shared_data)) >= {"mnist", "cifar10_subset", "caltech101_subset"}


def _subset_npz(folder, **over):
    rng = np.random.default_rng(0)
    arrays = dict(x_train=rng.integers(0, 255, (20, 8, 8, 3), dtype=np.uint8), y_train=np.arange(20) % 2,
                  x_test=rng.integers(0, 255, (4, 8, 8, 3), dtype=np.uint8), y_test=np.arange(4) % 2,
                  classes=np.array(["a", "b"]))
    arrays.update(over)
    path = folder / "cifar10_jpeg_subset.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("content,match", [
    (b"", "truncated, empty or not an npz"),
    (b"\x00\x01garbage-not-a-zip" * 10, "not a readable .npz"),
    (None, "truncated, empty or not an npz"),  # a valid file cut in half
])
def test_unreadable_npz_names_the_file(tmp_path, content, match):
    path = _subset_npz(tmp_path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2] if content is None else content)
    with pytest.raises(D.DataError, match=match) as err:
        D.load_dataset("cifar10_subset", "train", data_dir=tmp_path, verbose=False)
    assert str(path) in str(err.value) and "sha256sum" in str(err.value)


def test_pickled_npz_is_refused_without_advice_to_unpickle(tmp_path):
    _subset_npz(tmp_path, classes=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(D.DataError, match="object .pickled. arrays, which are not loaded") as err:
        D.load_dataset("cifar10_subset", "train", data_dir=tmp_path, verbose=False)
    assert "allow_pickle" not in str(err.value)


@pytest.mark.parametrize("over,match", [
    (dict(x_train=np.zeros((20, 8, 8, 3), np.float32)), "float32, expected uint8"),
    (dict(y_train=np.arange(19) % 2), "20 images but labels of shape"),
    (dict(y_train=np.arange(20) % 3), r"labels span 0..2 but there are 2 classes"),
    (dict(y_train=(np.arange(20) % 2).astype(float)), "expected integers"),
    (dict(x_train=np.zeros((20, 8, 8, 5), np.uint8)), "expected N x H x W or N x H x W x 3"),
])
def test_bad_arrays_are_reported(tmp_path, over, match):
    _subset_npz(tmp_path, **over)
    with pytest.raises(D.DataError, match=match):
        D.load_dataset("cifar10_subset", "train", data_dir=tmp_path, verbose=False)


def test_empty_class_folder_is_skipped_with_a_warning(tmp_path):
    from PIL import Image

    for c in ("a", "b"):
        (tmp_path / c).mkdir()
        for i in range(2):
            Image.new("RGB", (10, 10), (i * 50, 0, 0)).save(tmp_path / c / f"{i}.png")
    (tmp_path / "empty").mkdir()
    with pytest.warns(UserWarning, match=r"skipped 1 class folder\(s\) without images \(\['empty'\]\)"):
        ds = D.load_dataset(f"folder:{tmp_path}", "all", verbose=False)
    assert ds.classes == ["a", "b"] and len(ds) == 4


def test_query_without_relevant_item_warns():
    from cbir.metrics import relevance

    with pytest.warns(UserWarning, match="1 of 2 queries have no relevant item"):
        relevance(np.array([[0, 1], [1, 0]]), np.array([0, 5]), np.array([0, 0]))
