"""Dataset loaders: real datasets (torchvision, the shared CIFAR-10 npz, image folders) and offline defaults.

Every loader returns a :class:`Dataset` with images as ``uint8`` (N, H, W, 3) RGB (grey images are repeated
to three channels) — or, for image folders of mixed sizes loaded without ``image_size``, a list of
(H, W, 3) arrays — ``int64`` labels, class names and a one-line protocol that is printed.

Offline defaults are named as what they are, never under a real dataset's name:

* ``digits``: scikit-learn's 1,797 real 8x8 handwritten digits (UCI), scaled to 0..255; a fixed stratified
  70/30 split (seed 0) defines ``train``/``test``.
* ``sample_photos``: the photographs bundled with scikit-image and scikit-learn (one class per photo).
* ``synthetic``: deterministic class-structured colour images (per-class colour, grating orientation and
  blob), generated from the seed; ``train`` and ``test`` use disjoint random streams.

Real datasets are looked up under ``data_dir`` (argument, then ``CBIR_DATA_DIR``, then ``<repo>/data``,
then ``<repo>/../shared/data``): ``mnist``, ``fashion_mnist``, ``cifar10``, ``cifar100``, ``stl10``
(torchvision layout; downloaded only with ``allow_download=True``), ``cifar10_subset``
(``cifar10_jpeg_subset.npz``), ``caltech101_subset`` and ``folder:<path>`` (one sub-folder per class).
"""
from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from cbir.params import repo_root

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")
OFFLINE = ("digits", "sample_photos", "synthetic")
TORCHVISION = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10",
               "cifar100": "CIFAR100", "stl10": "STL10"}
REAL = (*TORCHVISION, "cifar10_subset", "caltech101_subset")
#: Set to "1" by the capped ``paper`` test (tests/test_paper_profile.py) only: its small fixture files in
#: torchvision's layouts are read without torchvision's md5 check, and every protocol line says FIXTURE.
FIXTURE_ENV = "CBIR_FIXTURE_DATA"


def _fixture_mode() -> bool:
    return os.environ.get(FIXTURE_ENV) == "1"


class DatasetNotFoundError(FileNotFoundError):
    """A real dataset is not on disk; the message says where it was looked for and how to get it."""


class ImageDecodeError(ValueError):
    """Unreadable or unsupported image files (raised in ``strict`` mode, else a warning)."""


class DataError(ValueError):
    """A dataset file is unreadable or holds arrays of the wrong kind; the message names the file and the fix."""


def read_npz(path: str | os.PathLike, keys: Sequence[str], fix: str = "") -> dict[str, np.ndarray]:
    """Read arrays ``keys`` from an ``.npz`` without pickle; any failure is one :class:`DataError`.

    A truncated, empty or non-zip file, a missing array or an object array (which would need the unsafe
    ``allow_pickle``) is reported with the file's path and ``fix``.
    """
    import zipfile

    path = Path(path)
    hint = f" {fix}" if fix else ""
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in keys if k not in z.files]
            if missing:
                raise DataError(f"{path} lacks array(s) {missing} (it has {sorted(z.files)}).{hint}")
            return {k: z[k] for k in keys}
    except DataError:
        raise
    except ValueError as err:  # object arrays: numpy suggests allow_pickle=True, which we never do
        if "pickle" in str(err) and zipfile.is_zipfile(path):
            raise DataError(f"{path} holds object (pickled) arrays, which are not loaded for safety; save plain "
                            f"numeric arrays with np.savez.{hint}") from None
        raise DataError(f"{path} is not a readable .npz file ({err}).{hint}") from None
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        raise DataError(f"{path} is not a readable .npz file ({type(err).__name__}: {err}); it is truncated, "
                        f"empty or not an npz.{hint}") from None


def validate_arrays(images: Any, labels: np.ndarray, classes: Sequence[str], where: str) -> None:
    """Check what a loader read: uint8 images (N, H, W) or (N, H, W, 3) (or a list of (H, W, 3)), one integer
    label per image, each in ``0 .. len(classes) - 1``. Raises :class:`DataError` naming ``where`` and the fix."""
    labels = np.asarray(labels)
    ims = [images] if isinstance(images, np.ndarray) else list(images)
    for a in ims[:1] if isinstance(images, np.ndarray) else ims:
        a = np.asarray(a)
        if a.dtype != np.uint8:
            raise DataError(f"{where}: images are {a.dtype}, expected uint8 0..255; convert with "
                            f"(x * 255).round().astype(np.uint8) for floats in [0, 1]")
    if isinstance(images, np.ndarray):
        ok = images.ndim == 3 or (images.ndim == 4 and images.shape[-1] in (1, 3))
        if not ok:
            raise DataError(f"{where}: images have shape {images.shape}; expected N x H x W or N x H x W x 3")
    elif any(np.ndim(a) != 3 or np.shape(a)[-1] != 3 for a in ims):
        raise DataError(f"{where}: every image of a list must be H x W x 3")
    n = len(images)
    if labels.ndim != 1 or len(labels) != n:
        raise DataError(f"{where}: {n} images but labels of shape {labels.shape}; need one label per image")
    if len(labels) and not np.issubdtype(labels.dtype, np.integer):
        raise DataError(f"{where}: labels are {labels.dtype}, expected integers (class indices)")
    if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
        raise DataError(f"{where}: labels span {int(labels.min())}..{int(labels.max())} but there are "
                        f"{len(classes)} classes; labels must be 0..{len(classes) - 1}")


@dataclass
class Dataset:
    """Images, labels and provenance of one split.

    Attributes
    ----------
    images : uint8 ndarray (N, H, W, 3) or list of (H, W, 3) uint8 arrays (ragged image folders)
    labels : int64 ndarray (N,)
    classes : list[str]
    protocol : str
        One line: dataset, split, counts, size, subset rule and source.
    files : list[str]
        Source file of each image when it came from files (for manifests), else empty.
    """

    name: str
    split: str
    images: Any
    labels: np.ndarray
    classes: list[str]
    source: str
    protocol: str = ""
    files: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def digest(self) -> str:
        """sha256 (16 hex) of the pixels, shapes and labels: the identity of what was loaded."""
        if getattr(self, "_digest", None) is None:
            h = hashlib.sha256()
            ims = [self.images] if isinstance(self.images, np.ndarray) else self.images
            for im in ims:
                a = np.ascontiguousarray(im)
                h.update(str(a.shape).encode())
                h.update(memoryview(a).cast("B"))
            h.update(np.ascontiguousarray(self.labels, np.int64).tobytes())
            self._digest = h.hexdigest()[:16]
        return self._digest

    def manifest(self) -> dict[str, Any]:
        """Name, counts per class and a SHA-256 of the pixels (or of each source file)."""
        counts = np.bincount(self.labels, minlength=len(self.classes)).tolist()
        if isinstance(self.images, np.ndarray):
            digest = hashlib.sha256(np.ascontiguousarray(self.images).tobytes()).hexdigest()
        else:
            h = hashlib.sha256()
            for im in self.images:
                h.update(np.ascontiguousarray(im).tobytes())
            digest = h.hexdigest()
        return {"name": self.name, "split": self.split, "n": len(self), "classes": len(self.classes),
                "counts_per_class": counts, "pixels_sha256": digest, "source": self.source,
                "protocol": self.protocol, "skipped": self.skipped}


# --------------------------------------------------------------------------------------------- helpers
def data_dirs(data_dir: str | os.PathLike | None = None) -> list[Path]:
    """Folders searched for real data, in order."""
    dirs = []
    if data_dir:
        dirs.append(Path(data_dir))
    if os.environ.get("CBIR_DATA_DIR"):
        dirs.append(Path(os.environ["CBIR_DATA_DIR"]))
    root = repo_root()
    dirs += [root / "data", root.parent / "shared" / "data"]
    return [d.resolve() for d in dirs]


def find_data(relpath: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """First existing ``<dir>/<relpath>`` among :func:`data_dirs`, else ``None``."""
    for d in data_dirs(data_dir):
        if (d / relpath).exists():
            return d / relpath
    return None


def _not_found(name: str, what: str, data_dir, hint: str) -> DatasetNotFoundError:
    searched = ", ".join(str(d) for d in data_dirs(data_dir))
    return DatasetNotFoundError(
        f"dataset {name!r} not found: looked for {what} in [{searched}]. {hint} "
        "Set `data_dir` in params (or CBIR_DATA_DIR). The smoke profile runs offline with "
        f"{list(OFFLINE)}."
    )


def stratified_subset(labels: np.ndarray, n_per_class: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of ``n_per_class`` random items per class (all of a smaller class), deterministic."""
    if n_per_class < 1:
        raise ValueError(f"n_per_class={n_per_class} must be >= 1")
    order, rank = class_ranks(labels, seed)
    return np.sort(order[rank < n_per_class])


def class_ranks(labels: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random order of the items grouped by class, and each item's rank within its class.

    Returns ``(order, rank)``: ``order`` is a permutation of ``arange(N)`` sorted by label (random within
    a class), ``rank[i]`` the position of ``order[i]`` inside its class. Taking ``rank < n`` selects ``n``
    random items per class — the basis of stratified subsets and splits.
    """
    labels = np.asarray(labels)
    perm = np.random.default_rng(seed).permutation(len(labels))
    order = perm[np.argsort(labels[perm], kind="stable")]
    lab = labels[order]
    rank = np.arange(len(lab)) - np.searchsorted(lab, lab, side="left")
    return order, rank


def to_rgb_uint8(arr: np.ndarray) -> np.ndarray:
    """uint8 (..., H, W, 3) from (..., H, W), (..., H, W, 1), RGB or RGBA uint8 arrays."""
    arr = np.asarray(arr)
    if arr.dtype != np.uint8:
        raise TypeError(f"images must be uint8 0..255, got {arr.dtype}; convert with skimage.util.img_as_ubyte")
    if arr.ndim >= 3 and arr.shape[-1] == 3:
        return arr
    if arr.ndim >= 3 and arr.shape[-1] == 4:
        return np.ascontiguousarray(arr[..., :3])
    if arr.ndim >= 3 and arr.shape[-1] == 1:
        return np.repeat(arr, 3, axis=-1)
    return np.repeat(arr[..., None], 3, axis=-1)


def resize_batch(images: np.ndarray | Sequence[np.ndarray], size: int) -> np.ndarray:
    """Resize uint8 RGB images to (size, size) with antialiased bilinear interpolation (torch, batched)."""
    import torch
    import torch.nn.functional as F

    if isinstance(images, np.ndarray) and images.ndim == 4:
        if images.shape[1] == size and images.shape[2] == size:
            return images
        out = []
        for s in range(0, len(images), 2048):  # chunks bound memory
            t = torch.from_numpy(np.array(images[s:s + 2048])).permute(0, 3, 1, 2).float()
            t = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
            out.append(t.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy())
        return np.concatenate(out) if out else np.zeros((0, size, size, 3), np.uint8)
    return np.stack([resize_batch(im[None], size)[0] for im in images]) if len(images) else \
        np.zeros((0, size, size, 3), np.uint8)


def decode_image(path: str | os.PathLike) -> np.ndarray:
    """Decode one image file to uint8 (H, W, 3) RGB.

    Grey (L), palette (P), RGBA/LA and CMYK are converted to RGB; 16-bit grey (I;16) is scaled to 8 bits.
    Raises :class:`ImageDecodeError` for unreadable files or images smaller than 8x8.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                a = np.asarray(im, dtype=np.float64)
                a = (a / max(a.max(), 1) * 255).round().astype(np.uint8)
                arr = np.repeat(a[..., None], 3, axis=-1)
            else:
                arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise ImageDecodeError(f"cannot decode {path}: {err}") from None
    if arr.shape[0] < 8 or arr.shape[1] < 8:
        raise ImageDecodeError(f"{path} is {arr.shape[1]}x{arr.shape[0]} px; images must be at least 8x8")
    return arr


# --------------------------------------------------------------------------------------------- offline
def _digits(split: str) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    from sklearn.datasets import load_digits

    d = load_digits()
    x = (d.images * (255.0 / 16.0)).round().astype(np.uint8)
    y = d.target.astype(np.int64)
    test_idx = stratified_subset(y, 54, seed=0)  # fixed split: 54/class test (~30%), rest train
    mask = np.zeros(len(y), bool)
    mask[test_idx] = True
    if split == "train":
        x, y = x[~mask], y[~mask]
    elif split == "test":
        x, y = x[mask], y[mask]
    return to_rgb_uint8(x), y, [str(i) for i in range(10)], "scikit-learn load_digits (UCI optdigits 8x8, real)"


SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry",
                  "camera", "coins", "moon", "page", "text", "clock", "horse", "cell", "brick", "gravel",
                  "grass", "colorwheel", "logo", "retina", "microaneurysms")


def _sample_photos() -> tuple[list[np.ndarray], np.ndarray, list[str], str]:
    import skimage.data
    from sklearn.datasets import load_sample_images

    images, names = [], []
    for name in SKIMAGE_PHOTOS:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                im = getattr(skimage.data, name)()
        except Exception:  # noqa: BLE001 - some need a download; offline we keep the bundled ones
            continue
        if im.dtype != np.uint8:
            im = (im.astype(float) / max(float(im.max()), 1) * 255).round().astype(np.uint8)
        images.append(to_rgb_uint8(im))
        names.append(f"skimage.{name}")
    for fname, im in zip(("china", "flower"), load_sample_images().images):
        images.append(to_rgb_uint8(np.asarray(im, np.uint8)))
        names.append(f"sklearn.{fname}")
    labels = np.arange(len(images), dtype=np.int64)
    return images, labels, names, "photos bundled with scikit-image and scikit-learn (real photos, 1 per class)"


def synthetic_images(n_per_class: int, n_classes: int = 10, size: int = 32, seed: int = 0
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic class-structured colour images (NOT a real dataset).

    Class c has its own background/foreground colours, grating orientation and frequency, and a Gaussian
    blob; each image draws a random phase, blob position, contrast and pixel noise. Classes are separable
    but not trivially (noise and jitter overlap), which makes the offline smoke runs meaningful.
    """
    rng = np.random.default_rng(seed)
    n = n_per_class * n_classes
    y = np.repeat(np.arange(n_classes), n_per_class)
    crng = np.random.default_rng(12345)  # class prototypes are fixed across splits and seeds
    bg = crng.uniform(0.1, 0.9, (n_classes, 3))
    fg = crng.uniform(0.1, 0.9, (n_classes, 3))
    theta = np.linspace(0, np.pi, n_classes, endpoint=False) + crng.uniform(0, 0.2, n_classes)
    freq = crng.uniform(0.15, 0.45, n_classes)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    phase = rng.uniform(0, 2 * np.pi, n)
    cx, cy = rng.uniform(0.25, 0.75, (2, n)) * size
    contrast = rng.uniform(0.5, 1.0, n)
    t = theta[y][:, None, None]
    grating = np.sin(freq[y][:, None, None] * size / 4 * (np.cos(t) * xx + np.sin(t) * yy) / size * 2 * np.pi * 2
                     + phase[:, None, None])
    blob = np.exp(-((xx - cx[:, None, None]) ** 2 + (yy - cy[:, None, None]) ** 2) / (2 * (size / 6) ** 2))
    mix = np.clip(0.5 + 0.5 * contrast[:, None, None] * (0.6 * grating + 0.8 * blob - 0.3), 0, 1)
    img = bg[y][:, None, None, :] * (1 - mix[..., None]) + fg[y][:, None, None, :] * mix[..., None]
    img = img + rng.normal(0, 0.08, img.shape)
    return (np.clip(img, 0, 1) * 255).round().astype(np.uint8), y.astype(np.int64)


# --------------------------------------------------------------------------------------------- real
def _torchvision(name: str, split: str, data_dir, allow_download: bool):
    import torchvision.datasets as tvd

    cls = getattr(tvd, TORCHVISION[name])
    root = None
    marker = {"mnist": "MNIST/raw", "fashion_mnist": "FashionMNIST/raw", "cifar10": "cifar-10-batches-py",
              "cifar100": "cifar-100-python", "stl10": "stl10_binary"}[name]
    found = find_data(marker, data_dir)
    if found is not None:
        root = found.parents[len(Path(marker).parts) - 1]
    elif allow_download:
        root = data_dirs(data_dir)[0]
    else:
        raise _not_found(name, marker, data_dir,
                         f"Download it once with torchvision ({TORCHVISION[name]}(root, download=True)) "
                         "or set allow_download: true.")
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r}; {name} has 'train' and 'test'")
    kw = {"split": split} if name == "stl10" else {"train": split == "train"}
    fixture = _fixture_mode() and found is not None
    if fixture:  # a test's small files in torchvision's layout: their md5 cannot match the official ones
        attrs = {"_check_integrity": lambda self: True}
        if isinstance(getattr(cls, "meta", None), dict):  # CIFAR's batches.meta / meta file
            attrs["meta"] = {**cls.meta, "md5": None}
        cls = type(cls.__name__, (cls,), attrs)
    try:
        ds = cls(str(root), download=allow_download and found is None, **kw)
    except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"
        raise DatasetNotFoundError(
            f"{name} under {root} is incomplete or corrupted ({err}); its files must be torchvision's "
            f"{TORCHVISION[name]} files ({marker}/) with their official checksums: delete the folder and "
            f"download it again ({TORCHVISION[name]}(root, download=True))") from None
    data = ds.data if not hasattr(ds.data, "numpy") else ds.data.numpy()
    if name == "stl10":
        data = data.transpose(0, 2, 3, 1)
    labels = np.asarray(ds.labels if name == "stl10" else ds.targets, dtype=np.int64)
    source = f"torchvision {TORCHVISION[name]} at {root}"
    if fixture:
        source = f"TEST FIXTURE in torchvision's {TORCHVISION[name]} layout at {root} (NOT the real {name})"
    return to_rgb_uint8(np.asarray(data, np.uint8)), labels, list(ds.classes), source


def _cifar10_subset(split: str, data_dir):
    path = find_data("cifar10_jpeg_subset.npz", data_dir)
    if path is None:
        raise _not_found("cifar10_subset", "cifar10_jpeg_subset.npz", data_dir,
                         "It is the 20k/5k JPEG-derived CIFAR-10 subset described in shared/data/README.md.")
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r}; cifar10_subset has 'train' (20,000) and 'test' (5,000)")
    z = read_npz(path, [f"x_{split}", f"y_{split}", "classes"],
                 fix="Copy it again from shared/data and check it with `sha256sum -c MANIFEST.sha256`.")
    x, y, classes = z[f"x_{split}"], z[f"y_{split}"], [str(c) for c in z["classes"]]
    validate_arrays(x, y, classes, str(path))
    return x, y.astype(np.int64), classes, f"{path.name} (JPEG-derived CIFAR-10 subset; not bit-identical to official CIFAR-10)"


def _folder(root: Path, n_per_class: int | None, seed: int, strict: bool, image_size: int | None):
    if not root.is_dir():
        raise DatasetNotFoundError(
            f"image folder {root} ({root.resolve()}) does not exist; expected one sub-folder per class "
            f"(<root>/<class>/*.jpg). A relative path is read from the working directory (the notebooks/ "
            f"folder under papermill): give an absolute path or place the images there")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    per_class = {c: sorted(f for f in (root / c).iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS) for c in folders}
    empty = [c for c in folders if not per_class[c]]
    if empty:
        warnings.warn(f"{root}: skipped {len(empty)} class folder(s) without images ({empty[:5]}); they are not "
                      f"classes", stacklevel=3)
    classes = [c for c in folders if per_class[c]]
    if not classes:
        raise DatasetNotFoundError(f"image folder {root} has no class sub-folders with images "
                                   f"(expected <root>/<class>/*.jpg, extensions {sorted(IMAGE_EXTENSIONS)})")
    files, labels = [], []
    for ci, c in enumerate(classes):
        files += per_class[c]
        labels += [ci] * len(per_class[c])
    labels_arr = np.asarray(labels, np.int64)
    if n_per_class is not None:
        keep = stratified_subset(labels_arr, n_per_class, seed)
        files, labels_arr = [files[i] for i in keep], labels_arr[keep]
    images, ok, skipped = [], [], []
    from tqdm.auto import tqdm

    for i, f in enumerate(tqdm(files, desc=f"decode {root.name}", leave=False, disable=len(files) < 500)):
        try:
            images.append(decode_image(f))
            ok.append(i)
        except ImageDecodeError as err:
            if strict:
                raise
            skipped.append(str(err))
    if skipped:
        warnings.warn(f"skipped {len(skipped)} unreadable image(s) in {root}: " + "; ".join(skipped[:5]),
                      stacklevel=3)
    labels_arr = labels_arr[ok]
    files = [str(files[i]) for i in ok]
    if image_size is not None:
        images = resize_batch(images, image_size)
    return images, labels_arr, classes, files, skipped


# official per-class counts of the torchvision datasets whose files are pickles (reading them is a full load)
OFFICIAL_CLASS_COUNTS = {("cifar10", "train"): (10, 5000), ("cifar10", "test"): (10, 1000),
                         ("cifar100", "train"): (100, 500), ("cifar100", "test"): (100, 100),
                         ("stl10", "train"): (10, 500), ("stl10", "test"): (10, 800)}


def class_counts(name: str, split: str = "train", data_dir: str | os.PathLike | None = None) -> np.ndarray | None:
    """Images per class of a dataset split, read cheaply (labels or file names only), for size checks.

    Returns None where the size is not fixed (``synthetic`` generates what it is asked for) or the data is
    not on disk (loading it then fails with its own message). Used by the parameter checks
    (:func:`cbir.params.fits_dataset`) so that a size that cannot fit fails when params load, not after
    minutes of work.
    """
    if name == "synthetic":
        return None
    if name == "digits":
        return np.bincount(_digits(split)[1])
    if name == "sample_photos":
        return np.ones(len(SKIMAGE_PHOTOS) + 2, np.int64)  # at most; one photo per class
    if (name, split) in OFFICIAL_CLASS_COUNTS:
        if _fixture_mode():
            return None  # a test fixture in the layout holds far fewer than the official counts
        marker = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python", "stl10": "stl10_binary"}[name]
        if find_data(marker, data_dir) is None:
            return None
        n_classes, per = OFFICIAL_CLASS_COUNTS[(name, split)]
        return np.full(n_classes, per, np.int64)
    if name in ("mnist", "fashion_mnist"):
        raw = find_data(("MNIST" if name == "mnist" else "FashionMNIST") + "/raw", data_dir)
        f = raw / f"{'train' if split == 'train' else 't10k'}-labels-idx1-ubyte" if raw else None
        if f is None or not f.is_file() or f.stat().st_size <= 8:
            return None
        return np.bincount(np.frombuffer(f.read_bytes(), np.uint8, offset=8), minlength=10)
    if name == "cifar10_subset":
        path = find_data("cifar10_jpeg_subset.npz", data_dir)
        if path is None or split not in ("train", "test"):
            return None
        return np.bincount(read_npz(path, [f"y_{split}"])[f"y_{split}"].astype(np.int64))
    if name == "caltech101_subset" or name.startswith("folder:"):
        root = (Path(name.split(":", 1)[1]).expanduser() if name.startswith("folder:")
                else find_data("caltech101_subset", data_dir))
        if root is None or not root.is_dir():
            return None
        counts = [sum(f.suffix.lower() in IMAGE_EXTENSIONS for f in p.iterdir())
                  for p in sorted(root.iterdir()) if p.is_dir() and not p.name.startswith(".")]
        return np.asarray([c for c in counts if c], np.int64)
    return None


# --------------------------------------------------------------------------------------------- public
def load_dataset(name: str, split: str = "train", n_per_class: int | None = None, seed: int = 0,
                 data_dir: str | os.PathLike | None = None, image_size: int | None = None,
                 strict: bool = False, allow_download: bool = False, verbose: bool = True) -> Dataset:
    """Load a dataset split as uint8 RGB images + int64 labels, printing its protocol line.

    Parameters
    ----------
    name : str
        Offline: ``digits``, ``sample_photos``, ``synthetic``. Real: ``mnist``, ``fashion_mnist``,
        ``cifar10``, ``cifar100``, ``stl10``, ``cifar10_subset``, ``caltech101_subset``,
        ``folder:<path>``.
    split : {"train", "test", "all"}
        ``all`` for folders and ``sample_photos`` (no official split).
    n_per_class : int, optional
        Deterministic stratified subset (``seed``); ``synthetic`` generates exactly this many (default 100).
    image_size : int, optional
        Resize every image to (image_size, image_size) (antialiased bilinear).
    strict : bool
        Raise on an unreadable image file instead of skipping it with a warning.
    allow_download : bool
        Let torchvision download a missing dataset (needs network).

    Raises
    ------
    DatasetNotFoundError
        A real dataset is not on disk (the message lists the folders searched and how to get it).
    """
    files: list[str] = []
    skipped: list[str] = []
    subset_done = False
    if name == "digits":
        x, y, classes, source = _digits(split)
    elif name == "sample_photos":
        x, y, classes, source = _sample_photos()
    elif name == "synthetic":
        n = n_per_class or 100
        stream = {"train": 0, "test": 1, "all": 2}.get(split)
        if stream is None:
            raise ValueError(f"split={split!r}; use 'train', 'test' or 'all'")
        x, y = synthetic_images(n, size=image_size or 32, seed=seed * 3 + stream)
        classes = [f"synthetic_{i}" for i in range(10)]
        source = "cbir.data.synthetic_images (deterministic synthetic, NOT a real dataset)"
        subset_done = True
    elif name in TORCHVISION:
        x, y, classes, source = _torchvision(name, split, data_dir, allow_download)
    elif name == "cifar10_subset":
        x, y, classes, source = _cifar10_subset(split, data_dir)
    elif name == "caltech101_subset" or name.startswith("folder:"):
        if name.startswith("folder:"):
            root = Path(name.split(":", 1)[1]).expanduser()
        else:
            root = find_data("caltech101_subset", data_dir)
            if root is None:
                raise _not_found(name, "caltech101_subset/", data_dir,
                                 "It is the 2,471-photo Caltech-101 subset described in shared/data/README.md.")
        x, y, classes, files, skipped = _folder(root, n_per_class, seed, strict, image_size)
        source = f"image folder {root}"
        subset_done = True
    else:
        raise ValueError(f"unknown dataset {name!r}; offline: {list(OFFLINE)}; real: {list(REAL)} or 'folder:<path>'")

    if n_per_class is not None and not subset_done:
        keep = stratified_subset(y, n_per_class, seed)
        x = x[keep] if isinstance(x, np.ndarray) else [x[i] for i in keep]
        y = y[keep]
    if image_size is not None and not (name == "synthetic" or name.startswith("folder:")
                                       or name == "caltech101_subset"):
        x = resize_batch(x, image_size)
    if isinstance(x, np.ndarray):
        shape = f"{x.shape[1]}x{x.shape[2]}"
    else:
        hs = [im.shape[0] for im in x] or [0]
        ws = [im.shape[1] for im in x] or [0]
        shape = f"{min(hs)}-{max(hs)} x {min(ws)}-{max(ws)} px"
    sub = f"{n_per_class}/class (seed {seed})" if n_per_class else "all"
    protocol = (f"{name} [{split}]: {len(y)} images, {len(classes)} classes, {shape}, subset {sub}; "
                f"source: {source}")
    if skipped:
        protocol += f"; skipped {len(skipped)} unreadable"
    if verbose:
        print(protocol)
    validate_arrays(x, y, classes, f"dataset {name!r} [{split}] ({source})")
    ds = Dataset(name, split, x, np.asarray(y, np.int64), classes, source, protocol, files, skipped)
    from cbir.records import note_dataset

    note_dataset(name, split, len(ds), ds.digest)
    return ds


def write_manifest(datasets: Sequence[Dataset], path: str | os.PathLike) -> Path:
    """Write a JSON manifest (name, counts, pixel SHA-256, source) of the datasets a run used."""
    from cbir.cache import save_json_atomic

    return save_json_atomic([d.manifest() for d in datasets], Path(path))


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def available_real(data_dir: str | os.PathLike | None = None) -> list[str]:
    """Real datasets found on disk (for the quickstart)."""
    checks = {"mnist": "MNIST/raw/train-images-idx3-ubyte", "fashion_mnist": "FashionMNIST/raw",
              "cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python", "stl10": "stl10_binary",
              "cifar10_subset": "cifar10_jpeg_subset.npz", "caltech101_subset": "caltech101_subset"}
    return [k for k, rel in checks.items() if find_data(rel, data_dir) is not None]


__all__ = ["Dataset", "DatasetNotFoundError", "ImageDecodeError", "load_dataset", "stratified_subset", "class_ranks",
           "synthetic_images", "resize_batch", "decode_image", "to_rgb_uint8", "write_manifest",
           "available_real", "find_data", "data_dirs", "sha256_file"]
