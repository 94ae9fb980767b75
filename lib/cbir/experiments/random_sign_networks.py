"""Notebook 01 (Xue & Roshan 2019): cached RDCNN features, the paper's linear-SVM evaluation, the
random-ResNet18 and small trained CNN baselines, augmentations and the row-wise cosine used by the
retrieval sections. The network itself is :class:`cbir.models.rdcnn.RandomDepthwiseSignNet`.
"""
from __future__ import annotations

import time
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
             ks: tuple[int, ...] = (1, 2, 3), per_image: bool = False) -> dict:
    """Train the paper's linear SVM (``-s 2 -B 1 -c C``) and report train/test accuracy in percent and
    top-k test accuracy from the decision values (Sec. 2.3, Fig. 3 and Fig. 6).

    With ``per_image=True`` the result also holds ``"correct"``: ``k -> bool (N_test,)``, whether each test
    image's label is among the top-k decision values (for paired McNemar / Wilson intervals); the other
    keys are floats either way."""
    from cbir.metrics import topk_accuracy
    from cbir.svm import LinearSVM

    svm = LinearSVM(C=C).fit(f_train, y_train)
    scores = svm.decision_function(f_test)
    top = topk_accuracy(scores, np.searchsorted(svm.classes_, y_test), ks=ks)
    out = {"train_acc_pct": 100 * svm.score(f_train, y_train), "test_acc_pct": 100 * top[1]}
    out.update({f"top{k}_pct": 100 * v for k, v in top.items()})
    if per_image:
        out["correct"] = topk_correct(scores, np.searchsorted(svm.classes_, y_test), ks=ks)
    return out


def random_net_features(name: str, images: np.ndarray, seed: int = 0, batch_size: int = 256) -> np.ndarray:
    """Pooled features of a CIFAR-style network with random weights (Fig. 5 / Sec. 3.4), see
    :func:`cbir.models.cifar_nets.random_features` (ResNet18 with the CIFAR 3x3 stride-1 stem, VGG16,
    DenseNet40).

    Returns
    -------
    ndarray (N, dim) float32.
    """
    from cbir.models.cifar_nets import random_features

    return random_features(name, images, seed=seed, batch_size=batch_size)


def standardize(f_train: np.ndarray, f_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Z-score features with the *training* mean and standard deviation (a feature with zero spread is left
    centred). Random networks' pooled features differ in scale by 10^5 between architectures (VGG16 ~0.005,
    DenseNet40 ~700), so a linear SVM with the paper's fixed C sees them on one scale."""
    mu = f_train.mean(0, dtype=np.float64)
    sd = f_train.std(0, dtype=np.float64)
    sd = np.where(sd > 0, sd, 1.0)
    return ((f_train - mu) / sd).astype(np.float32), ((f_test - mu) / sd).astype(np.float32)


def random_net_eval(names, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                    C: float, seed: int = 0, cache_dir: str | Path | None = None) -> dict[str, dict]:
    """Fig. 5 / Sec. 3.4: a linear SVM (the "trained final layer") on the standardised pooled features of each
    random-weight network in ``names`` (:data:`cbir.models.cifar_nets.NETS`); features cached by pixels.

    Returns
    -------
    dict ``name -> svm_eval(..., per_image=True)`` (accuracies in percent and ``"correct"``).
    """
    from cbir.cache import cached_npz

    out = {}
    for name in names:
        f = []
        for x in (x_train, x_test):
            compute = lambda x=x: {"f": random_net_features(name, x, seed=seed)}  # noqa: E731
            f.append(compute()["f"] if cache_dir is None else
                     cached_npz(f"rdcnn_random_{name}_cifar", {"pixels": x, "seed": seed, "v": 1}, compute,
                                cache_dir)["f"])
        a, b = standardize(f[0], f[1])
        out[name] = svm_eval(a, y_train, b, y_test, C, per_image=True)
    return out


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


def topk_correct(scores: np.ndarray, labels: np.ndarray, ks: tuple[int, ...] = (1, 2, 3)) -> dict[int, np.ndarray]:
    """Per-image top-k correctness, ``k -> bool (N,)``: the true label is among the k highest scores.

    Ties are broken by class index (stable sort), exactly as :func:`cbir.metrics.topk_accuracy`, so
    ``topk_correct(s, y)[k].mean() == topk_accuracy(s, y)[k]``. ``labels`` index the columns of ``scores``.
    """
    order = np.argsort(-np.asarray(scores), axis=1, kind="stable")
    labels = np.asarray(labels)
    return {int(k): (order[:, :k] == labels[:, None]).any(1) for k in ks}


# ============================================================================ sweeps (Table 1 grid, Fig. 3 m-sweep)
def grid_cell(k: int, b: int, *, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray,
              y_test: np.ndarray, m: int, C: float, seed: int, tags: tuple[str, str], cache_dir: str | None,
              batch_size: int = 256, kernel_chunk: int = 2048) -> dict[str, np.ndarray]:
    """One (k, b) cell of Table 1: RDCNN features (cached) of both splits, the linear SVM of
    :func:`svm_eval`; scalars as 0-d arrays, ``correct_top1`` bool (N_test,), ``seconds`` of the cell."""
    t0 = time.perf_counter()
    feats = [cached_rdcnn_features(x, k=int(k), b=int(b), m=int(m), seed=int(seed), tag=tag, cache_dir=cache_dir,
                                   batch_size=batch_size, kernel_chunk=kernel_chunk)
             for x, tag in zip((x_train, x_test), tags)]
    r = svm_eval(feats[0], y_train, feats[1], y_test, C, per_image=True)
    correct = r.pop("correct")
    return {**r, "correct_top1": correct[1], "seconds": time.perf_counter() - t0}


def grid_sweep(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, P, *,
               tags: tuple[str, str] | None = None, log=print):
    """Table 1: test accuracy of every (k, b) in ``P.grid_k x P.grid_b`` at ``m = P.grid_m`` (Sec. 3.2).

    The cells run through :func:`cbir.sweep.map_cells` (one after another with ``shared.workers: 1``,
    else as Dask tasks at ``shared.threads`` threads each) and are cached per cell.

    Returns
    -------
    grid : DataFrame ``k, b, m, train_acc_pct, test_acc_pct, top1_pct, top2_pct, top3_pct, seconds``
        (``seconds``: wall time of the cell when it was computed).
    correct : dict (k, b) -> bool (N_test,), top-1 correctness per test image (paired intervals).
    """
    import pandas as pd

    from cbir import sweep

    tags = tags or (f"{P['dataset']}-train-grid", f"{P['dataset']}-test-grid")
    cells = [{"k": int(k), "b": int(b)} for k in P["grid_k"] for b in P["grid_b"]]
    cache_dir = str(P.cache_dir) if hasattr(P, "cache_dir") else P.get("cache_dir")
    shared = dict(x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, m=int(P["grid_m"]),
                  C=float(P["svm_C"]), seed=int(P["seed"]), tags=tuple(tags), cache_dir=cache_dir,
                  batch_size=int(P.get("batch_size", 256)), kernel_chunk=int(P.get("kernel_chunk", 2048)))
    key = {k: v for k, v in shared.items() if k not in ("cache_dir", "batch_size", "kernel_chunk")}
    out = sweep.map_cells(grid_cell, cells, name="rdcnn_grid_cell", shared=shared, key=key, P=P,
                          cache_dir=cache_dir, desc="Table 1 (k, b) grid", log=log)
    rows, correct = [], {}
    for c, r in zip(cells, out):
        correct[(c["k"], c["b"])] = r.pop("correct_top1").astype(bool)
        rows.append({"k": c["k"], "b": c["b"], "m": shared["m"], **{n: float(v) for n, v in r.items() if n != "seconds"},
                     "seconds": float(r["seconds"])})
    return pd.DataFrame(rows), correct


def m_sweep_cell(m: int, *, f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray, y_test: np.ndarray,
                 C: float) -> dict[str, np.ndarray]:
    """One point of Fig. 3: the linear SVM on the first ``m`` features; ``correct_top<k>`` bool (N_test,)."""
    r = svm_eval(f_train[:, :m], y_train, f_test[:, :m], y_test, C, per_image=True)
    correct = r.pop("correct")
    return {**r, **{f"correct_top{k}": v for k, v in correct.items()}}


def m_sweep(f_train: np.ndarray, y_train: np.ndarray, f_test: np.ndarray, y_test: np.ndarray, P, *,
            ms=None, log=print):
    """Fig. 3: train/test accuracy of the linear SVM on the first ``m`` of the features, for each ``m`` of
    ``ms`` (default ``P.m_sweep``; features computed once at the largest ``m``). Cells run through
    :func:`cbir.sweep.map_cells` and are cached per ``m``.

    Returns
    -------
    sweep : DataFrame ``m, train_acc_pct, test_acc_pct, top1_pct, top2_pct, top3_pct``, sorted by ``m``.
    correct : dict m -> {k: bool (N_test,)}, top-k correctness per test image.
    """
    import pandas as pd

    from cbir import sweep

    ms = sorted(int(m) for m in (ms if ms is not None else P["m_sweep"]))
    if ms and ms[-1] > f_train.shape[1]:
        raise ValueError(f"m_sweep asks for m={ms[-1]} but the features have {f_train.shape[1]} columns; "
                         f"compute them at m={ms[-1]}")
    cache_dir = str(P.cache_dir) if hasattr(P, "cache_dir") else P.get("cache_dir")
    shared = dict(f_train=f_train, y_train=y_train, f_test=f_test, y_test=y_test, C=float(P["svm_C"]))
    out = sweep.map_cells(m_sweep_cell, [{"m": m} for m in ms], name="rdcnn_m_sweep_cell", shared=shared, P=P,
                          cache_dir=cache_dir, desc="Fig. 3 m-sweep", log=log)
    rows, correct = [], {}
    for m, r in zip(ms, out):
        correct[m] = {int(n.removeprefix("correct_top")): v.astype(bool) for n, v in r.items() if n.startswith("correct_")}
        rows.append({"m": m, **{n: float(v) for n, v in r.items() if not n.startswith("correct_")}})
    return pd.DataFrame(rows), correct


# ============================================================================ paper-vs-ours rows (notebook 01)
PAPER = "01_rdcnn"

#: The paper's Sec. 3.3 class pairs on STL-10 (airplane, bird, car, cat, deer, dog, horse, ...): (0, 1) and
#: (0, 6) by index, i.e. airplane/bird and airplane/horse, with the reported rows' setting labels.
PAPER_JS_PAIRS = (("airplane", "bird", "classes (0,1), input pixels, 6+4 images",
                   "classes (0,1), RDCNN final layer, 6+4 images"),
                  ("airplane", "horse", "classes (0,6), input pixels", "classes (0,6), RDCNN final layer"))

SVM_FLAGS = "liblinear -s 2 -B 1"


def _set(values) -> str:
    if isinstance(values, (list, tuple)):
        return "{" + ",".join(str(v) for v in values) + "}"
    return "unstated" if values is None else str(values)


def model_text(kind: str, **f) -> str:
    """The wording of the *model* axis (architecture + weights), for ours and for the paper's settings CSV.

    Kinds and their facts:

    * ``"rdcnn"``: ``k``, ``b``, ``m`` — ``"RDCNN k=5 b=1 m=100000"``; a list is a grid (``k={3,5,7}``),
      a 2-tuple ``m=(lo, hi)`` a sweep (``m=10..100000``), None an unstated value.
    * ``"pixels"``: the input pixels themselves.
    * ``"resnet18_random"``: ``stem`` (``"torchvision"``: ImageNet 7x7 stride-2 conv + max-pool;
      ``"cifar"``: 3x3 stride-1 conv, no pool) — random weights, only a linear final layer trained.
    * ``"random_net"``: ``name`` (``resnet18``, ``vgg16``, ``densenet40``) — the CIFAR-style networks of
      :mod:`cbir.models.cifar_nets` with random weights, only a linear final layer trained.
    * ``"small_cnn"``: ``width``, ``hidden`` — our 3-block CNN trained from scratch (:class:`SmallCNN`).
    * ``"trained_nets"``: ``names`` — the paper's networks trained from scratch.
    * ``"rdcnn_mlp"``: ``k``, ``b``, ``m``, ``hidden`` — RDCNN followed by a trained one-hidden-layer MLP.
    * ``"vs"``: ``models`` — a comparison of several models, the first one being the claim's subject.
    """
    if kind == "rdcnn":
        m = f.get("m")
        m = f"{m[0]}..{m[1]}" if isinstance(m, tuple) else _set(m)
        return f"RDCNN k={_set(f.get('k'))} b={_set(f.get('b'))} m={m}"
    if kind == "pixels":
        return "input pixels"
    if kind == "resnet18_random":
        stems = {"torchvision": "torchvision ImageNet stem (7x7 stride-2 conv + 3x3 max-pool)",
                 "cifar": "CIFAR stem (3x3 stride-1 conv, no max-pool)"}
        if f["stem"] not in stems:
            raise ValueError(f"stem={f['stem']!r}; use one of {sorted(stems)}")
        return f"ResNet18 random weights, {stems[f['stem']]}, trained linear final layer"
    if kind == "random_net":
        if f["name"] == "resnet18":
            return model_text("resnet18_random", stem="cifar")
        names = {"vgg16": "VGG16 (CIFAR form: 13 conv + BN, 512-d)", "densenet40": "DenseNet40 (growth 12)"}
        if f["name"] not in names:
            raise ValueError(f"random net {f['name']!r}; use resnet18, vgg16 or densenet40")
        return f"{names[f['name']]} random weights, trained linear final layer"
    if kind == "small_cnn":
        return f"small CNN (3 conv blocks of width {f['width']}, {f['hidden']}-d hidden) trained from scratch"
    if kind == "trained_nets":
        return f"{' / '.join(f['names'])} trained from scratch"
    if kind == "rdcnn_mlp":
        return f"{model_text('rdcnn', k=f.get('k'), b=f.get('b'), m=f.get('m'))} + MLP ({f['hidden']} sigmoid) trained"
    if kind == "vs":
        return " vs ".join(f["models"])
    raise ValueError(f"model kind {kind!r}; use rdcnn, pixels, resnet18_random, random_net, small_cnn, trained_nets, "
                     "rdcnn_mlp or vs")


def protocol_text(kind: str, **f) -> str:
    """The wording of the *protocol* axis, for ours and for the paper's settings CSV.

    * ``"svm"``: ``C``, ``top`` — a linear SVM (``liblinear -s 2 -B 1 -c C``) trained on the train split,
      top-``top`` accuracy on the test split from its decision values.
    * ``"svm_vs_head"``: ``C``, ``head`` — RDCNN's SVM against a baseline whose final layer is ``head``.
    * ``"topk_gain"``: ``C`` — top-2 minus top-1 test accuracy; RDCNN ranked by the SVM decision values,
      the trained network by its logits.
    * ``"trend_m"``: ``C``, ``what`` — the SVM protocol at every m of the sweep, ``what`` the trend.
    * ``"js"``: ``pair`` (two class names or ``None``), ``classes`` (two indices), ``n`` (images per class),
      ``draws`` — the across/within avgJS ratio of value histograms (Sec. 3.3).
    * ``"knn"``: ``relevance``, ``metric`` — queries vs database, k-NN, averaged over k > 10.
    * ``"aug_cosine"``: ``augmentations`` — cosine(original, augmented) in RDCNN space, geometric vs cutout.
    """
    if kind == "svm":
        return f"linear SVM ({SVM_FLAGS} -c {f['C']:g}) on train, top-{f.get('top', 1)} test accuracy"
    if kind == "svm_vs_head":
        return (f"top-1 test accuracy, RDCNN: linear SVM ({SVM_FLAGS} -c {f['C']:g}), "
                f"baseline final layer: {f['head']}")
    if kind == "topk_gain":
        return (f"top-2 minus top-1 test accuracy, RDCNN ranked by linear SVM ({SVM_FLAGS} -c {f['C']:g}) "
                "decision values, trained network by its logits")
    if kind == "trend_m":
        return f"{protocol_text('svm', C=f['C'])}, {f['what']} over the m sweep"
    if kind == "js":
        pair = (f"{f['pair'][0]} vs {f['pair'][1]}" if f.get("pair")
                else f"class indices {f['classes'][0]} vs {f['classes'][1]} (no class names)")
        draws = f"{f['draws']} draw" + ("" if f["draws"] == 1 else "s (mean)")
        return (f"avgJS(c0,c1) / (avgJS(c0,c0) + avgJS(c1,c1)) of per-image value histograms, {pair}, "
                f"{f['n'][0]}+{f['n'][1]} random images, {draws}")
    if kind == "knn":
        return (f"queries vs database, k-NN, relevant = {f['relevance']}, {f['metric']}, mean over k > 10, "
                "subject minus best other space")
    if kind == "aug_cosine":
        return (f"cosine(original, augmented) in RDCNN space, augmentations: [{f['augmentations']}], "
                "worst flip/rotation minus cutout, mean over images")
    raise ValueError(f"protocol kind {kind!r}; use svm, svm_vs_head, topk_gain, trend_m, js, knn or aug_cosine")


def _paper(name: str):
    from cbir import reported

    return reported.setting(PAPER, name)


def _wilson(correct: np.ndarray) -> tuple[tuple[float, float], str]:
    from cbir import intervals

    c = np.asarray(correct, bool)
    return intervals.wilson(int(c.sum()), c.size), f"Wilson, {c.size} test images"


def _mcnemar(a: np.ndarray, b: np.ndarray) -> tuple[tuple[float, float], str]:
    from cbir import intervals

    return intervals.mcnemar_difference(a, b), f"McNemar (paired), {np.asarray(a).size} test images"


def _over_draws(values: np.ndarray, what: str) -> tuple[tuple[float, float], str]:
    """Interval over seeded draws: bootstrap of the mean with >= 10 draws, else their spread."""
    from cbir import intervals

    v = np.asarray(values, np.float64)
    if v.size >= 10:
        return intervals.bootstrap_mean(v), f"bootstrap over {v.size} draws ({what})"
    return intervals.seed_spread(v), f"spread over {v.size} draws ({what})"


def _ours(dataset: str, scale: dict, model: str, protocol: str, budget: dict | None = None):
    from cbir.report import Setting

    return Setting(dataset=dataset, scale=scale, model=model, budget=budget or {}, protocol=protocol)


def grid_rows(grid, correct: dict, *, P, dataset: str, n_train: int) -> list:
    """Rows of Table 1 (value, per (k, b) the paper reports) and Table 2 ("k=5, b=1 is the best", direction).

    Parameters
    ----------
    grid : DataFrame with columns ``k, b, m, test_acc_pct`` (one row per (k, b), one m).
    correct : dict ``(k, b) -> bool (N,)`` top-1 correctness on the grid's test images.
    P : the ``rdcnn`` params; dataset : the loaded dataset's name; n_train : the grid's training images.
    """
    from cbir import report, reported

    rows = []
    m = int(grid.m.iloc[0])
    n_test = int(np.asarray(next(iter(correct.values()))).size)
    scale = {"train": n_train, "test": n_test}
    proto = protocol_text("svm", C=P.svm_C)
    for (k, b) in [(3, 1), (3, 2), (5, 1), (5, 2)]:
        if (k, b) not in correct:
            continue
        ref = reported.get(PAPER, "Table 1", "cifar10", f"k={k},b={b},m=100000", "accuracy_pct")
        acc = float(grid[(grid.k == k) & (grid.b == b)].test_acc_pct.iloc[0])
        iv, ivk = _wilson(correct[(k, b)])
        rows.append(report.value_row(f"Table 1 CIFAR-10 accuracy k={k}, b={b} (grid)", ref, acc, interval=iv,
                                     interval_kind=ivk,
                                     setting=_ours(dataset, scale, model_text("rdcnn", k=k, b=b, m=m), proto)))
    if (5, 1) in correct and len(correct) > 1:
        others = grid[~((grid.k == 5) & (grid.b == 1))].sort_values(["test_acc_pct", "k", "b"],
                                                                   ascending=[False, True, True])
        ru = others.iloc[0]
        ru_kb = (int(ru.k), int(ru.b))
        acc51 = float(grid[(grid.k == 5) & (grid.b == 1)].test_acc_pct.iloc[0])
        iv, ivk = _mcnemar(correct[(5, 1)], correct[ru_kb])
        model = model_text("rdcnn", k=sorted(set(int(v) for v in grid.k)), b=sorted(set(int(v) for v in grid.b)), m=m)
        rows.append(report.direction_row(
            "k=5, b=1 is the best (k, b) on CIFAR-10", "Table 2", acc51 - float(ru.test_acc_pct), interval=iv,
            interval_kind=ivk, setting=_ours(dataset, scale, model, proto), paper=_paper("t2_cifar10_grid"),
            metric="accuracy margin of k=5 b=1 over the runner-up (pts)",
            note=f"runner-up k={ru_kb[0]}, b={ru_kb[1]} ({float(ru.test_acc_pct):.1f} %)"))
    return rows


def mnist_rows(res: dict, *, P, dataset: str, n_train: int) -> list:
    """The Sec. 3.4 MNIST accuracy (value row); ``res`` is :func:`svm_eval` with ``per_image=True``."""
    from cbir import report, reported

    c = res["correct"][1]
    iv, ivk = _wilson(c)
    ref = reported.get(PAPER, "Sec. 3.4", "mnist", "k=7,b=1,m=100000", "accuracy_pct")
    model = model_text("rdcnn", k=P.dataset2_k, b=P.dataset2_b, m=P.dataset2_m)
    return [report.value_row(f"MNIST accuracy with random weights (k={P.dataset2_k}, b={P.dataset2_b})", ref,
                             res["test_acc_pct"], interval=iv, interval_kind=ivk,
                             setting=_ours(dataset, {"train": n_train, "test": int(c.size)}, model,
                                           protocol_text("svm", C=P.dataset2_C)))]


def sweep_rows(sweep, correct: dict, *, P, dataset: str, n_train: int) -> list:
    """Fig. 3 rows: test accuracy rises with m; train accuracy reaches 100 % while test still rises; and the
    Table 1 value at the headline m.

    sweep : DataFrame ``m, train_acc_pct, test_acc_pct``; correct : ``m -> bool (N,)`` top-1 correctness.
    """
    from cbir import report, reported

    sweep = sweep.sort_values("m").reset_index(drop=True)
    ms = [int(v) for v in sweep.m]
    m_min, m_max = ms[0], ms[-1]
    n_test = int(np.asarray(correct[m_max]).size)
    scale = {"train": n_train, "test": n_test}
    model = model_text("rdcnn", k=P.k, b=P.b, m=(m_min, m_max))
    acc = dict(zip(ms, sweep.test_acc_pct.astype(float)))
    rows = []
    iv, ivk = _mcnemar(correct[m_max], correct[m_min])
    rows.append(report.direction_row(
        "test accuracy rises with m", "Fig. 3 / Sec. 3.2", acc[m_max] - acc[m_min], interval=iv, interval_kind=ivk,
        setting=_ours(dataset, scale, model, protocol_text("trend_m", C=P.svm_C, what="test(m_max) - test(m_min)")),
        paper=_paper("fig3_cifar10_rises"), metric=f"test accuracy gain m={m_max} minus m={m_min} (pts)"))
    full = sweep[(sweep.train_acc_pct >= 99.95) & (sweep.m < m_max)]
    proto = protocol_text("trend_m", C=P.svm_C, what="train hits 100 % at m1 < m_max, test(m_max) - test(m1)")
    if len(full):  # both halves: train 100 % at m1 < m_max, and test still rises from m1 to m_max
        m1 = int(full.m.iloc[0])
        iv, ivk = _mcnemar(correct[m_max], correct[m1])
        effect, note = acc[m_max] - acc[m1], f"train accuracy first 100 % at m1={m1}"
        metric = "test accuracy gain from m1 (train 100 %) to m_max (pts)"
    else:  # the first half fails: the effect is the shortfall of train accuracy below 100 % (negative)
        from cbir import intervals

        m1 = ms[-2]
        tr = float(sweep.train_acc_pct.iloc[-2])
        lo, hi = intervals.wilson(int(round(tr * n_train / 100)), n_train)
        effect, iv, ivk = tr - 100, (lo - 100, hi - 100), f"Wilson, {n_train} training images"
        note = f"train accuracy {tr:.1f} % < 100 % at m={m1} (every m < m_max): the claim's first half fails"
        metric = f"train accuracy at m={m1} minus 100 (pts)"
    rows.append(report.direction_row(
        "train accuracy reaches 100 % while test accuracy still rises", "Fig. 3", effect, interval=iv,
        interval_kind=ivk, setting=_ours(dataset, scale, model, proto), paper=_paper("fig3_cifar10_train100"),
        metric=metric, note=note))
    if P.m in correct:
        try:
            ref = reported.get(PAPER, "Table 1", "cifar10", f"k={P.k},b={P.b},m=100000", "accuracy_pct")
        except KeyError:
            ref = None
        if ref is not None:
            iv, ivk = _wilson(correct[P.m])
            rows.append(report.value_row(
                f"CIFAR-10 accuracy k={P.k}, b={P.b} (full training set, m={P.m})", ref, acc[P.m], interval=iv,
                interval_kind=ivk,
                setting=_ours(dataset, scale, model_text("rdcnn", k=P.k, b=P.b, m=P.m), protocol_text("svm", C=P.svm_C))))
    return rows


def js_class_pairs(classes: list[str], configured: list) -> list[dict]:
    """The Sec. 3.3 class pairs: the paper's airplane/bird and airplane/horse picked by class *name* where the
    dataset has those names, else the configured indices ``P.js_pairs`` (in the paper's order).

    Returns one dict per paper pair: ``c0, c1`` (indices), ``pair`` (the two names, or None when picked by
    configured index), ``paper`` (index into :data:`PAPER_JS_PAIRS`).
    """
    out = []
    for i, (a, b, _, _) in enumerate(PAPER_JS_PAIRS):
        if a in classes and b in classes:
            out.append({"c0": classes.index(a), "c1": classes.index(b), "pair": (a, b), "paper": i})
        elif i < len(configured):
            c0, c1 = (int(v) for v in configured[i][:2])
            out.append({"c0": c0, "c1": c1, "pair": None, "paper": i})
    return out


def js_rows(js, pairs: list[dict], *, P, dataset: str, net: tuple[int, int, int] | None = None) -> list:
    """Sec. 3.3 rows: the JS ratio per pair and space (value rows) and "higher after the network" (direction:
    ratio(RDCNN) - ratio(pixels), interval over the seeded draws of the paired per-draw differences).

    js : DataFrame ``space, c0, c1, n0, n1, ratio, draw`` (spaces ``input pixels``, ``RDCNN features``);
    pairs : :func:`js_class_pairs`; net : ``(k, b, m)`` of the features (default the headline ``P.k, P.b, P.m``).
    """
    from cbir import report, reported

    rows = []
    k, b, m = net or (P.k, P.b, P.m)
    rd = model_text("rdcnn", k=k, b=b, m=m)
    px = model_text("pixels")
    for p in pairs:
        g = js[(js.c0 == p["c0"]) & (js.c1 == p["c1"])]
        if not len(g):
            continue
        w = g.pivot(index="draw", columns="space", values="ratio")
        n = (int(g.n0.iloc[0]), int(g.n1.iloc[0]))
        proto = protocol_text("js", pair=p["pair"], classes=(p["c0"], p["c1"]), n=n, draws=len(w))
        scale = {"images": n[0] + n[1]}
        a, b, lab_px, lab_rd = PAPER_JS_PAIRS[p["paper"]]
        label = f"{a}/{b}" if p["pair"] else f"classes ({p['c0']},{p['c1']}) by index"
        note = ("picked by class name" if p["pair"]
                else f"dataset has no classes named {a}/{b}: configured indices ({p['c0']},{p['c1']})")
        note += f"; histogram bins {P.js_bins} (paper: unstated)"
        for space, lab, model in (("input pixels", lab_px, px), ("RDCNN features", lab_rd, rd)):
            ref = reported.get(PAPER, "Sec. 3.3", "stl10", lab, "js_ratio")
            iv, ivk = _over_draws(w[space].to_numpy(), "JS ratio")
            rows.append(report.value_row(f"JS ratio {label}, {space}", ref, float(w[space].mean()), interval=iv,
                                         interval_kind=ivk, setting=_ours(dataset, scale, model, proto), note=note))
        d = (w["RDCNN features"] - w["input pixels"]).to_numpy()
        iv, ivk = _over_draws(d, "paired differences")
        paper_gain = (reported.value(PAPER, "Sec. 3.3", "stl10", lab_rd, "js_ratio")
                      - reported.value(PAPER, "Sec. 3.3", "stl10", lab_px, "js_ratio"))
        rows.append(report.direction_row(
            f"JS ratio higher after the network, {label}", "Sec. 3.3", float(d.mean()), interval=iv,
            interval_kind=ivk, setting=_ours(dataset, scale, model_text("vs", models=[rd, px]), proto),
            paper=_paper(f"s33_stl10_{a}_{b}_gain"), metric="JS ratio RDCNN minus pixels", reported=paper_gain,
            note=note))
    return rows


#: Claim wording and paper setting of the Fig. 5 comparison, per random network.
RANDOM_NETS = {"resnet18": ("ResNet18", "fig5_cifar10_resnet18_random"),
               "vgg16": ("VGG16", "fig5_cifar10_vgg16_random"),
               "densenet40": ("DenseNet40", "fig5_cifar10_densenet40_random")}


def random_net_rows(correct_rd: np.ndarray, correct_nets: dict, *, P, dataset: str, n_train: int) -> list:
    """Fig. 5 / Sec. 3.4 (and the Abstract for VGG16): RDCNN beats each random-weight network with a trained
    final layer (one direction row per network, paired McNemar interval on the same test images).

    correct_rd : bool (N,) RDCNN's top-1 correctness; correct_nets : ``name -> bool (N,)`` for names of
    :data:`RANDOM_NETS`, each a linear SVM on the network's standardised pooled features.
    """
    from cbir import report

    a = np.asarray(correct_rd, bool)
    rd = model_text("rdcnn", k=P.k, b=P.b, m=P.m)
    proto = protocol_text("svm_vs_head", C=P.svm_C,
                          head=f"linear SVM ({SVM_FLAGS} -c {P.svm_C:g}) on standardised pooled features")
    rows = []
    for name, c in correct_nets.items():
        if name not in RANDOM_NETS:
            raise ValueError(f"random net {name!r}; use one of {sorted(RANDOM_NETS)}")
        label, paper = RANDOM_NETS[name]
        b = np.asarray(c, bool)
        iv, ivk = _mcnemar(a, b)
        rows.append(report.direction_row(
            f"RDCNN beats random-weight {label} + trained final layer", "Fig. 5 / Sec. 3.4",
            100 * (a.mean() - b.mean()), interval=iv, interval_kind=ivk,
            setting=_ours(dataset, {"train": n_train, "test": int(a.size)},
                          model_text("vs", models=[rd, model_text("random_net", name=name)]), proto),
            paper=_paper(paper), metric=f"test accuracy RDCNN minus {label}-random (pts)",
            note=f"{label}: seeded default initialisation, eval mode, CIFAR-style (cbir.models.cifar_nets)"))
    return rows


def topk_rows(rd_correct: dict, cnn_correct: dict, *, P, dataset: str, n_train: int, cnn_width: int = 32,
              cnn_hidden: int = 256, trained: dict | None = None) -> list:
    """Fig. 6 / Sec. 3.5: RDCNN's top-2 accuracy (value, Wilson) and its top-1 -> top-2 gain larger than the
    trained network's (direction; paired bootstrap over test images of the per-image gain difference): one row
    for the small CNN and one per paper network in ``trained``.

    rd_correct, cnn_correct : ``k -> bool (N,)`` per-image top-k correctness (:func:`topk_correct`) on the
    same test images; ``trained`` maps a network name (:data:`RANDOM_NETS`) to the same (:func:`trained_nets_topk`).
    """
    from cbir import intervals, report, reported

    n_test = int(np.asarray(rd_correct[2]).size)
    scale = {"train": n_train, "test": n_test}
    rd = model_text("rdcnn", k=P.k, b=P.b, m=P.m)
    iv, ivk = _wilson(rd_correct[2])
    ref = reported.get(PAPER, "Sec. 3.5 / Abstract", "cifar10", "k=5,b=1,m=100000", "top2_accuracy_pct")
    rows = [report.value_row("CIFAR-10 top-2 accuracy of RDCNN", ref, 100 * float(np.mean(rd_correct[2])),
                             interval=iv, interval_kind=ivk,
                             setting=_ours(dataset, scale, rd, protocol_text("svm", C=P.svm_C, top=2)),
                             note="paper: 'about 90 %' (read from Fig. 6)")]
    g_rd = np.asarray(rd_correct[2], float) - np.asarray(rd_correct[1], float)
    others = [("the trained CNN", "trained CNN", model_text("small_cnn", width=cnn_width, hidden=cnn_hidden),
               cnn_correct, P.cnn_epochs)]
    others += [(f"trained {RANDOM_NETS[n][0]}", f"trained {RANDOM_NETS[n][0]}",
                model_text("trained_nets", names=[RANDOM_NETS[n][0]]), c, P.trained_epochs)
               for n, c in (trained or {}).items()]
    for title, short, other, correct, epochs in others:
        g = np.asarray(correct[2], float) - np.asarray(correct[1], float)
        d = 100 * (g_rd - g)
        rows.append(report.direction_row(
            f"top-1 -> top-2 gain larger for RDCNN than for {title}", "Sec. 3.5 / Fig. 6", float(d.mean()),
            interval=intervals.bootstrap_mean(d), interval_kind=f"paired bootstrap over {d.size} test images",
            setting=_ours(dataset, scale, model_text("vs", models=[rd, other]), protocol_text("topk_gain", C=P.svm_C),
                          {"epochs": epochs}),
            paper=_paper("s35_cifar10_topk_gain"), metric=f"top-2 gain RDCNN minus {short} (pts)",
            note=f"gain RDCNN {g_rd.mean() * 100:.1f} pts, {short} {g.mean() * 100:.1f} pts"))
    return rows


def retrieval_rows(per_query: dict, *, P, dataset: str, n_database: int, k_values: list, cnn_width: int = 32,
                   cnn_hidden: int = 256) -> list:
    """Fig. 8 / Sec. 3.6: RDCNN + MLP has the highest k-NN precision for k > 10 (direction; paired bootstrap
    over queries of RDCNN + MLP minus the best other space).

    per_query : ``{"rdcnn_mlp", "rdcnn", "small_cnn"} -> float (Q,)``: each query's precision@k averaged over
    ``k_values`` (all > 10), the same queries in every space.
    """
    from cbir import intervals, report

    models = {"rdcnn_mlp": model_text("rdcnn_mlp", k=P.k, b=P.b, m=P.mlp_m, hidden=P.mlp_hidden),
              "rdcnn": model_text("rdcnn", k=P.k, b=P.b, m=P.m),
              "small_cnn": model_text("small_cnn", width=cnn_width, hidden=cnn_hidden)}
    unknown = set(per_query) - set(models)
    if unknown or "rdcnn_mlp" not in per_query:
        raise ValueError(f"per_query keys {sorted(per_query)}; expected 'rdcnn_mlp' and others of {sorted(models)}")
    others = [s for s in models if s in per_query and s != "rdcnn_mlp"]
    best = max(others, key=lambda s: float(np.mean(per_query[s])))
    d = np.asarray(per_query["rdcnn_mlp"], float) - np.asarray(per_query[best], float)
    model = model_text("vs", models=[models[s] for s in ["rdcnn_mlp", *others]])
    proto = protocol_text("knn", relevance="same class label", metric="precision@k (cosine)")
    return [report.direction_row(
        "RDCNN + MLP has the highest k-NN precision for k > 10", "Fig. 8 / Sec. 3.6", float(d.mean()),
        interval=intervals.bootstrap_mean(d), interval_kind=f"paired bootstrap over {d.size} queries",
        setting=_ours(dataset, {"queries": int(d.size), "database": n_database}, model, proto,
                      {"cnn_epochs": P.cnn_epochs, "mlp_iterations": P.mlp_max_iter}),
        paper=_paper("s36_corel_mlp"), metric="mean precision@k, k>10: RDCNN+MLP minus best other",
        note=f"k in {list(k_values)}; runner-up: {best}")]


def augmentation_rows(cos, *, P, dataset: str, net: tuple[int, int, int] | None = None) -> list:
    """Fig. 7: flips/rotations stay closer to the original than cutout (direction; effect = the worst
    geometric augmentation's mean cosine minus cutout's, paired bootstrap over images).

    cos : DataFrame ``augmentation, cosine`` with the images in the same order for every augmentation;
    net : ``(k, b, m)`` of the features (default the headline ``P.k, P.b, P.m``).
    """
    from cbir import intervals, report

    k, b, m = net or (P.k, P.b, P.m)
    per = {a: g.cosine.to_numpy(float) for a, g in cos.groupby("augmentation", sort=False)}
    geo = [a for a in per if a != "cutout"]
    worst = min(geo, key=lambda a: float(np.mean(per[a] - per["cutout"])))
    d = per[worst] - per["cutout"]
    proto = protocol_text("aug_cosine", augmentations=", ".join(per))
    return [report.direction_row(
        "flips/rotations closer to the original than cutout", "Fig. 7 / Sec. 3.5", float(d.mean()),
        interval=intervals.bootstrap_mean(d), interval_kind=f"paired bootstrap over {d.size} images",
        setting=_ours(dataset, {"images": int(d.size)}, model_text("rdcnn", k=k, b=b, m=m), proto),
        paper=_paper("fig7_stl10_aug"), metric="mean cosine: worst flip/rotation minus cutout",
        note=f"worst geometric: {worst}; medians " + "; ".join(f"{a} {np.median(v):.3f}" for a, v in per.items()))]


# ============================================================================ CIFAR-100 / STL-10 (runs when present)
#: Table 2: the (k, b) the paper used per benchmark; Sec. 2.3: liblinear C per benchmark.
TABLE2 = {"mnist": (7, 1), "cifar10": (5, 1), "cifar100": (5, 1), "stl10": (3, 3), "mini_imagenet": (5, 2)}
SVM_C = {"mnist": 0.01, "cifar10": 0.5, "cifar100": 0.5, "stl10": 0.5, "mini_imagenet": 0.01}
#: Table 1's (k, b) settings (CIFAR-10 and CIFAR-100).
TABLE1_KB = ((3, 1), (3, 2), (5, 1), (5, 2))


def extra_settings(name: str) -> list[tuple[int, int]]:
    """The (k, b) settings run on an extra benchmark: Table 1's four on CIFAR-100, Table 2's on STL-10."""
    if name == "cifar100":
        return list(TABLE1_KB)
    if name in TABLE2:
        return [TABLE2[name]]
    raise ValueError(f"extra dataset {name!r}; use cifar100 or stl10 (torchvision layout)")


def extra_dataset_eval(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, *,
                       name: str, m: int, feat) -> tuple:
    """Table 1 (CIFAR-100) / Table 2 and Fig. 6 (STL-10): RDCNN features at each setting of
    :func:`extra_settings` and the paper's linear SVM (C of Sec. 2.3), top-1/2/3 from its decision values.

    feat : callable ``(images, split_tag, k, b) -> (N, m) features`` (cached by the notebook).

    Returns
    -------
    (DataFrame ``dataset, k, b, m, train_acc_pct, test_acc_pct, top1_pct, top2_pct, top3_pct``,
    dict ``(k, b) -> {k_top: bool (N_test,)}``).
    """
    import pandas as pd

    table, correct = [], {}
    for k, b in extra_settings(name):
        r = svm_eval(feat(x_train, "train", k, b), y_train, feat(x_test, "test", k, b), y_test, SVM_C[name],
                     per_image=True)
        correct[(k, b)] = r.pop("correct")
        table.append({"dataset": name, "k": k, "b": b, "m": m, **r})
    return pd.DataFrame(table), correct


def extra_rows(name: str, table, correct: dict, *, dataset: str, n_train: int) -> list:
    """Value rows of an extra benchmark: Table 1 CIFAR-100 accuracies per (k, b); STL-10 top-2 (85 %, Sec. 3.5).

    table, correct : :func:`extra_dataset_eval`; dataset : the loaded dataset's name.
    """
    from cbir import report, reported

    rows = []
    for r in table.itertuples():
        k, b, m = int(r.k), int(r.b), int(r.m)
        c = correct[(k, b)]
        scale = {"train": n_train, "test": int(np.asarray(c[1]).size)}
        model = model_text("rdcnn", k=k, b=b, m=m)
        if name == "cifar100":
            ref = reported.get(PAPER, "Table 1", "cifar100", f"k={k},b={b},m=100000", "accuracy_pct")
            iv, ivk = _wilson(c[1])
            rows.append(report.value_row(f"Table 1 CIFAR-100 accuracy k={k}, b={b}", ref, float(r.test_acc_pct),
                                         interval=iv, interval_kind=ivk,
                                         setting=_ours(dataset, scale, model, protocol_text("svm", C=SVM_C[name]))))
        elif name == "stl10":
            ref = reported.get(PAPER, "Sec. 3.5 / Abstract", "stl10", f"k={k},b={b},m=100000", "top2_accuracy_pct")
            iv, ivk = _wilson(c[2])
            rows.append(report.value_row("STL-10 top-2 accuracy of RDCNN", ref, float(r.top2_pct), interval=iv,
                                         interval_kind=ivk, note="paper: '85%' (Sec. 3.5 / Abstract)",
                                         setting=_ours(dataset, scale, model,
                                                       protocol_text("svm", C=SVM_C[name], top=2))))
    return rows


# ============================================================================ notebook sections (thin cells)
NOTEBOOK = "01_random_sign_networks"


def plot_toy_hyperplanes(image: np.ndarray, seed: int = 0):
    """Sec. 2.1 / Fig. 1 (teaching): four random lines split 2-D points into sign-code regions (left); the sign
    maps of 4 random 5x5 kernels of :class:`RandomDepthwiseSignNet` on one image and the pooled feature of each
    (right). ``image`` is uint8 (H, W, 3). Returns ``(fig, axes)``."""
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(seed)
    pts = np.concatenate([rng.normal(c, 0.35, (40, 2)) for c in ([-1, -1], [1, -0.5], [0, 1.2])])
    W, bias = rng.normal(size=(4, 2)), rng.normal(size=4)
    gx, gy = np.meshgrid(np.linspace(-2.5, 2.5, 300), np.linspace(-2.5, 2.5, 300))
    code = ((np.c_[gx.ravel(), gy.ravel()] @ W.T + bias) >= 0).astype(int) @ (2 ** np.arange(4))
    net = RandomDepthwiseSignNet(k=5, b=1, m=4, seed=seed)
    img = image[None]
    signs, feats = net.sign_maps(img)[0], net.transform(img)[0]
    fig, axes = plt.subplots(1, 6, figsize=(14, 2.8))
    axes[0].contourf(gx, gy, code.reshape(gx.shape), levels=16, cmap="tab20", alpha=0.5)
    axes[0].scatter(*pts.T, s=6, c=np.repeat([0, 1, 2], 40), cmap="viridis")
    axes[0].set(xlim=(-2.5, 2.5), ylim=(-2.5, 2.5))
    axes[0].set_title("4 random hyperplanes\n(colour = sign code)", fontsize=9)
    axes[1].imshow(image); axes[1].set_title("input", fontsize=9)
    for i in range(4):
        axes[2 + i].imshow(signs[i], cmap="gray", vmin=-1, vmax=1)
        axes[2 + i].set_title(f"sign map {i}\nfeature = {feats[i]:+.2f}", fontsize=9)
    for ax in axes[1:]:
        ax.axis("off")
    return fig, axes


def run_grid(P, x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray) -> tuple:
    """Table 1 / Table 2: the linear SVM on RDCNN features for every (k, b) of ``P.grid_k`` x ``P.grid_b`` at
    ``P.grid_m`` kernels, on a class-balanced subset (``grid_n_*_per_class``), through :func:`grid_sweep` (sweep
    cells: in the kernel, or as Dask tasks with ``shared.workers`` / ``scheduler``). Returns ``(grid, correct,
    g_tr, g_te)``: one row per (k, b) (accuracies in percent and the ``seconds`` it took), ``(k, b) -> bool
    (N_test,)`` top-1 correctness (paired intervals) and the subset indices."""
    from cbir.data import stratified_subset

    g_tr = stratified_subset(y_tr, P.grid_n_train_per_class, P.seed) if P.grid_n_train_per_class else np.arange(len(y_tr))
    g_te = stratified_subset(y_te, P.grid_n_test_per_class, P.seed) if P.grid_n_test_per_class else np.arange(len(y_te))
    grid, correct = grid_sweep(x_tr[g_tr], y_tr[g_tr], x_te[g_te], y_te[g_te], P, log=print if P.progress else None)
    return grid, correct, g_tr, g_te


def plot_heatmap(pivot, title: str):
    """A (k x b) table of accuracies as an annotated heatmap (Table 1 layout). Returns ``(fig, ax)``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.imshow(pivot.values, cmap="viridis")
    ax.set(xticks=range(len(pivot.columns)), xticklabels=pivot.columns, yticks=range(len(pivot.index)),
           yticklabels=pivot.index, xlabel="blocks b", ylabel="kernel size k")
    ax.set_title(title, fontsize=10)
    for (i, j), v in np.ndenumerate(pivot.values):
        ax.text(j, i, f"{v:.1f}", ha="center", va="center", color="w", fontsize=9)
    return fig, ax


def run_m_sweep(F_tr: np.ndarray, y_tr: np.ndarray, F_te: np.ndarray, y_te: np.ndarray, P) -> tuple:
    """Fig. 3: the linear SVM on the first ``m`` features of the largest network for each ``m`` in ``P.m_sweep``
    (kernels are prefix-stable, see :mod:`cbir.models.rdcnn`), through :func:`m_sweep` (sweep cells). Returns
    ``(sweep, correct)``: one row per m (accuracies in percent) and ``m -> {k: bool (N_test,)}``."""
    return m_sweep(F_tr, y_tr, F_te, y_te, P, log=print if P.progress else None)


def sweep_summary(sweep) -> str:
    """One sentence on Fig. 3's two claims: the rank correlation of m with test accuracy, and the smallest m at
    which train accuracy reaches 100 % (or the highest train accuracy reached, when it never does)."""
    from scipy.stats import spearmanr

    rho = spearmanr(sweep.m, sweep.test_acc_pct).statistic
    full = sweep[sweep.train_acc_pct >= 99.95]
    if len(full):
        train = f"train accuracy first reaches 100 % at m = {int(full.m.min())}"
    else:
        best = sweep.loc[sweep.train_acc_pct.idxmax()]
        train = f"train accuracy never reaches 100 % (highest {best.train_acc_pct:.1f} % at m = {int(best.m)})"
    return f"Spearman(m, test accuracy) = {rho:.2f}; {train}"


def plot_lines(df, x: str, ys: dict, title: str, xlabel: str, ylabel: str, logx: bool = True, group: str | None = None):
    """Line plot of columns ``ys`` (column -> label) against ``x``, or of ``ys``'s single column per ``group``.
    Returns ``(fig, ax)``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    if group is None:
        for (col, label), marker in zip(ys.items(), "os^dv"):
            ax.plot(df[x], df[col], f"{marker}-", label=label)
    else:
        (col,) = ys
        for name, g in df.groupby(group, sort=False):
            ax.plot(g[x], g[col], "o-", label=name)
    ax.set(xscale="log" if logx else "linear", xlabel=xlabel, ylabel=ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return fig, ax


def js_summaries(js) -> tuple:
    """(the first draw — the paper's one-draw protocol —, the mean over all draws) of a JS-ratio table
    (:func:`cbir.divergence.js_ratio_table` with a ``draw`` column), indexed by ``c0, c1, space``."""
    cols = ["across", "within0", "within1", "ratio"]
    first = js[js.draw == 0].set_index(["c0", "c1", "space"])[cols]
    mean = js.groupby(["c0", "c1", "space"])[cols].mean()
    return first, mean


def plot_js_histograms(spaces: dict, labels: np.ndarray, pair: tuple[int, int], n_per_class, bins: int):
    """Fig. 4: the value histograms of the first ``n_per_class`` test images of each class of ``pair``, in each
    space (input pixels, RDCNN features). Returns ``(fig, axes)``."""
    import matplotlib.pyplot as plt

    from cbir.divergence import value_histograms

    c0, c1 = pair
    i0 = np.flatnonzero(labels == c0)[:n_per_class[0]]
    i1 = np.flatnonzero(labels == c1)[:n_per_class[1]]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.2))
    for ax, (tag, (name, X)) in zip(axes, zip("ab", spaces.items())):
        h, edges = value_histograms(np.asarray(X)[np.r_[i0, i1]], bins=bins)
        mid = (edges[:-1] + edges[1:]) / 2
        for j, hh in enumerate(h):
            ax.plot(mid, hh, color="C0" if j < len(i0) else "C3", alpha=0.7,
                    label=f"class {c0}" if j == 0 else f"class {c1}" if j == len(i0) else None)
        ax.set(xlabel="value", ylabel="fraction")
        ax.set_title(f"({tag}) {name}", fontsize=10)
        ax.legend()
    return fig, axes


def fig5_table(res_rd: dict, nets: dict, k: int, b: int, m: int):
    """Fig. 5: RDCNN's SVM result beside each random network's (``random_net_eval`` results, ``correct``
    removed), one row per model with accuracies in percent."""
    import pandas as pd

    return pd.DataFrame([{"model": f"RDCNN (k={k}, b={b}, m={m})", **res_rd},
                         *({"model": f"{RANDOM_NETS[n][0]}, random weights", **r} for n, r in nets.items())])


def plot_bars(labels, values, title: str, xlabel: str):
    """Horizontal bars, the first one highlighted (Fig. 5 layout). Returns ``(fig, ax)``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3))
    ax.barh(list(labels), list(values), color=["C0"] + ["C7"] * (len(values) - 1))
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    return fig, ax


def train_small_cnn(P, x_tr: np.ndarray, y_tr: np.ndarray, n_classes: int):
    """The trained comparison network of Figs. 6, 8, 9: :class:`SmallCNN` trained with :func:`cbir.train.fit`
    (SGD momentum 0.9, weight decay 5e-4, cosine schedule, random horizontal flips) for ``P.cnn_epochs`` epochs,
    checkpointed in the cache. Returns ``(fit, cnn)``."""
    import cbir.cache
    import cbir.train

    key = cbir.cache.key(pixels=x_tr, epochs=P.cnn_epochs, bs=P.cnn_batch_size, lr=P.cnn_lr, seed=P.seed, v=1,
                         code=cbir.cache.code_version(SmallCNN, cbir.train.fit))
    torch.manual_seed(P.seed)
    cnn = SmallCNN(in_channels=3, n_classes=n_classes)
    fit = _train_sgd(P, cnn, x_tr, y_tr, P.cnn_epochs,
                     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, P.cnn_epochs),
                     f"rdcnn_smallcnn-{key}", "small CNN")
    return fit, cnn


def _train_sgd(P, model, x_tr: np.ndarray, y_tr: np.ndarray, epochs: int, scheduler, ckpt_name: str, desc: str):
    """:func:`cbir.train.fit` with the recipe shared by the trained comparison networks: SGD (``P.cnn_lr``,
    momentum 0.9, weight decay 5e-4), batch ``P.cnn_batch_size``, random horizontal flips, checkpoints in
    ``P.cache_dir / ckpt_name``; ``scheduler(optimizer)`` sets the learning-rate schedule."""
    import cbir.train

    flip = lambda xb, gen: torch.where(torch.rand(len(xb), 1, 1, 1, generator=gen) < 0.5, xb.flip(3), xb)  # noqa: E731
    return cbir.train.fit(
        model, (cbir.train.images_to_tensor(x_tr), torch.as_tensor(y_tr)), epochs=epochs,
        batch_size=P.cnn_batch_size, seed=P.seed,
        optimizer=lambda mdl: torch.optim.SGD(mdl.parameters(), lr=P.cnn_lr, momentum=0.9, weight_decay=5e-4),
        scheduler=scheduler, augment=flip, ckpt_dir=P.cache_dir / ckpt_name, desc=desc, progress=P.progress)


def train_paper_net(P, name: str, x_tr: np.ndarray, y_tr: np.ndarray, n_classes: int):
    """One of the paper's networks of Fig. 6 (``resnet18``, ``vgg16``, ``densenet40``: the CIFAR forms of
    :func:`cbir.models.cifar_nets.cifar_net`) trained from scratch as Sec. 3 states: SGD, batch
    ``P.cnn_batch_size`` (paper 256), ``P.trained_epochs`` epochs (paper 300), learning rate ``P.cnn_lr``
    (paper 0.1) "progressively" reduced to 1/10 and 1/100 — the paper does not say when; we drop it after half
    and three quarters of the epochs. Momentum 0.9, weight decay 5e-4 and random horizontal flips are ours
    (unstated). Checkpointed in the cache. Returns the fit result."""
    import cbir.cache
    import cbir.train
    from cbir.models.cifar_nets import cifar_net

    epochs = P.trained_epochs
    drops = sorted({max(1, epochs // 2), max(1, 3 * epochs // 4)})
    key = cbir.cache.key(pixels=x_tr, net=name, epochs=epochs, bs=P.cnn_batch_size, lr=P.cnn_lr, seed=P.seed,
                         v=1, code=cbir.cache.code_version(cifar_net, cbir.train.fit))
    net = cifar_net(name, n_classes=n_classes, in_channels=x_tr.shape[-1], seed=P.seed)
    return _train_sgd(P, net, x_tr, y_tr, epochs, lambda o: torch.optim.lr_scheduler.MultiStepLR(o, drops, 0.1),
                      f"rdcnn_{name}_trained-{key}", f"{RANDOM_NETS[name][0]} trained")


def trained_nets_topk(P, x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray,
                      n_classes: int) -> tuple[dict, dict]:
    """Fig. 6 with the paper's networks: train each of ``P.trained_nets`` (:func:`train_paper_net`) and score
    the test images. Returns ``(top, correct)``: per network ``k -> top-k accuracy`` (fraction) and
    ``k -> bool (N,)`` per-image correctness (:func:`topk_correct`), k = 1, 2, 3; both empty when
    ``P.trained_nets`` is []."""
    import cbir.metrics
    import cbir.train

    top, correct = {}, {}
    for name in P.trained_nets:
        fit = train_paper_net(P, name, x_tr, y_tr, n_classes)
        _, logits = cbir.train.predict(fit.model, cbir.train.images_to_tensor(x_te))
        top[name] = cbir.metrics.topk_accuracy(logits, y_te, ks=(1, 2, 3))
        correct[name] = topk_correct(logits, y_te)
    return top, correct


def topk_table(res_rd: dict, nets: dict, top_cnn: dict, epochs: int, trained: dict | None = None,
               trained_epochs: int | None = None):
    """Fig. 6: top-1/2/3 test accuracy (%) of RDCNN + SVM, each random network + SVM, the trained small CNN
    and each of the paper's trained networks in ``trained`` (``name -> k -> fraction``,
    :func:`trained_nets_topk`; trained for ``trained_epochs``)."""
    import pandas as pd

    return pd.DataFrame([
        {"model": "RDCNN + linear SVM", **{f"top{k}": res_rd[f"top{k}_pct"] for k in (1, 2, 3)}},
        *({"model": f"{RANDOM_NETS[n][0]} random + linear SVM", **{f"top{k}": r[f"top{k}_pct"] for k in (1, 2, 3)}}
          for n, r in nets.items()),
        {"model": f"small CNN trained ({epochs} ep.)", **{f"top{k}": 100 * top_cnn[k] for k in (1, 2, 3)}},
        *({"model": f"{RANDOM_NETS[n][0]} trained ({trained_epochs} ep.)", **{f"top{k}": 100 * t[k] for k in (1, 2, 3)}}
          for n, t in (trained or {}).items())])


def fit_mlp(F_tr: np.ndarray, y_tr: np.ndarray, P):
    """Sec. 3.6: a one-hidden-layer MLP (``P.mlp_hidden`` logistic units, scikit-learn, ``P.mlp_max_iter``
    iterations) on RDCNN features. Returns ``(mlp, hidden)`` with ``hidden(X)`` its hidden-layer activations."""
    import warnings

    from sklearn.neural_network import MLPClassifier

    mlp = MLPClassifier(hidden_layer_sizes=(P.mlp_hidden,), activation="logistic", max_iter=P.mlp_max_iter,
                        random_state=P.seed, early_stopping=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning when max_iter is reached
        mlp.fit(F_tr, y_tr)
    return mlp, lambda X: 1 / (1 + np.exp(-(X @ mlp.coefs_[0] + mlp.intercepts_[0])))


def retrieval_precision(reps: dict, y_q: np.ndarray, y_db: np.ndarray, ks) -> tuple:
    """Fig. 8 analogue: cosine k-NN of the queries in each space of ``reps`` (name -> (database, queries)),
    relevant = same class. Returns ``(prec, per_query)``: precision@k per space and k, and per space index
    (``"rdcnn"``, ``"rdcnn_mlp"``, ``"small_cnn"`` in ``reps`` order) each query's precision@k averaged over
    the k > 10 (for the paired bootstrap of :func:`retrieval_rows`; empty when no k > 10)."""
    import pandas as pd

    from cbir.index import knn
    from cbir.metrics import precision_at_k, relevance

    kmax, big = max(ks), [k for k in ks if k > 10]
    prec, per_query = [], {}
    for kind, (name, (db, qq)) in zip(["rdcnn", "rdcnn_mlp", "small_cnn"], reps.items()):
        _, I = knn(db.astype(np.float32), qq.astype(np.float32), kmax, metric="cosine")
        rel = relevance(I, y_q, y_db)
        prec += [{"space": name, "k": k, "precision": precision_at_k(rel, k)} for k in ks]
        if big:
            per_query[kind] = np.mean([rel[:, :k].sum(1) / k for k in big], axis=0)
    return pd.DataFrame(prec), per_query


def augmentation_cosines(f0: np.ndarray, images: np.ndarray, feat, seed: int = 0):
    """Fig. 7: cosine similarity in RDCNN space between each image and each of its :func:`augmentations`;
    ``feat(x, name)`` returns the features of augmented images. Long table ``augmentation, cosine``."""
    import pandas as pd

    return pd.concat([pd.DataFrame({"augmentation": name, "cosine": cosine_rows(f0, feat(xa, name))})
                      for name, xa in augmentations(images, seed=seed).items()], ignore_index=True)


def plot_cosine_histograms(cos):
    """Fig. 7 analogue: one histogram of cosine similarity per augmentation. Returns ``(fig, ax)``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    for name, g in cos.groupby("augmentation", sort=False):
        ax.hist(g.cosine, bins=30, alpha=0.55, label=name)
    ax.set(xlabel="cosine similarity to the original", ylabel="images")
    ax.set_title("Fig. 7 analogue", fontsize=10)
    ax.legend(fontsize=8)
    return fig, ax


def top16_grid(x_q: np.ndarray, y_q: int, x_db: np.ndarray, y_db: np.ndarray, neighbours: dict, top: int = 16):
    """Fig. 9 analogue: per space (name -> database indices of the query's nearest neighbours), the query then
    its ``top`` neighbours, titled ✓ (same class, green frame) or ✗ (other class, red frame). Returns the figure."""
    from cbir.plots import image_grid

    imgs, titles, colors = [], [], []
    for name, idx in neighbours.items():
        idx = np.asarray(idx)[:top]
        same = int((y_db[idx] == y_q).sum())
        imgs.append(x_q); titles.append(f"query\n{name[:22]}: {same}/{len(idx)}"); colors.append("tab:blue")
        for j in idx:
            hit = y_db[j] == y_q
            imgs.append(x_db[j]); titles.append("✓" if hit else "✗"); colors.append("tab:green" if hit else "tab:red")
    return image_grid(imgs, titles, ncols=top + 1, frame_colors=colors, size=0.9,
                      suptitle="top-16 by cosine similarity per space (✓ green = same class as the query, blue)")


def neighbours(reps_db: dict, queries: dict, top: int = 16) -> dict:
    """Database indices of the ``top`` cosine nearest neighbours of one query per space (name -> (1, d) query)."""
    from cbir.index import knn

    return {name: knn(db.astype(np.float32), queries[name].astype(np.float32), top, metric="cosine")[1][0]
            for name, db in reps_db.items()}


# ============================================================================ exercises
def _feature_checker(fn) -> bool:
    """``fn(image, w, bias)`` (grey float image (H, W) in [0, 1], kernel (k, k), bias) must equal the b = 1
    RDCNN feature of :class:`RandomDepthwiseSignNet` ('same' zero padding, sign(0) = +1) on random cases."""
    rng = np.random.default_rng(5)
    for k, size in ((3, 8), (5, 12), (7, 10)):
        net = RandomDepthwiseSignNet(k=k, b=1, m=3, seed=int(rng.integers(100)), in_channels=1)
        img = rng.integers(0, 256, (size, size), dtype=np.uint8)
        want = net.transform(img[None, :, :, None])[0]
        for j in range(3):
            w, b = net.w1[j].numpy().reshape(k, k), float(net.b1[j])
            if not np.isclose(float(fn(img / 255.0, w, b)), float(want[j]), atol=1e-5):
                return False
    return True


def _feature_solution(image: np.ndarray, w: np.ndarray, bias: float) -> float:
    from numpy.lib.stride_tricks import sliding_window_view

    k = w.shape[0]
    x = np.pad(np.asarray(image, np.float64), (k - 1) // 2)
    z = (sliding_window_view(x, (k, k)) * w).sum((-2, -1)) + bias
    return float(np.where(z >= 0, 1.0, -1.0).mean())


def _count_checker(ans) -> bool:
    net = RandomDepthwiseSignNet(k=5, b=2, m=1000, seed=0, in_channels=3)
    want = {"features": net.m, "random_numbers": int(sum(t.numel() for t in (net.w1, net.b1, net.wd, net.bd)))}
    return isinstance(ans, dict) and set(ans) == set(want) and all(
        isinstance(ans[key], (int, np.integer)) and int(ans[key]) == v for key, v in want.items())


def _topk_checker(fn) -> bool:
    """``fn(scores, labels, k)`` must equal :func:`cbir.metrics.topk_accuracy` on random decision values."""
    from cbir.metrics import topk_accuracy

    rng = np.random.default_rng(9)
    for n, c in ((30, 10), (50, 4)):
        s, y = rng.standard_normal((n, c)), rng.integers(0, c, n)
        for k in (1, 2, 3):
            if not np.isclose(float(fn(s, y, k)), topk_accuracy(s, y, ks=(k,))[k]):
                return False
    return True


def _topk_solution(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    top = np.argsort(-np.asarray(scores), axis=1, kind="stable")[:, :k]
    return float((top == np.asarray(labels)[:, None]).any(1).mean())


def _exercises():
    from cbir.exercises import Exercise

    return {
        "01.1": Exercise(
            NOTEBOOK, "easy",
            "By hand: an RDCNN with k = 5, b = 2, m = 1000 on RGB images. How many features does it give per image, "
            "and how many random numbers define it (block-1 weights and biases, depthwise weights and biases of "
            "block 2)? Give {'features': ..., 'random_numbers': ...}.",
            _count_checker,
            "block 1: m kernels of 3*5*5 weights + 1 bias; block 2: m depthwise kernels of 5*5 weights + 1 bias; "
            "one feature per kernel"),
        "01.2": Exercise(
            NOTEBOOK, "medium",
            "Write rdcnn_feature(image, w, bias): image a grey float (H, W) array in [0, 1], w a (k, k) kernel, "
            "bias a float; return the one-block RDCNN feature, the mean over all positions of sign(w.p + bias) "
            "with p the k x k patch (zero padding (k-1)//2, sign(0) = +1, no kernel flip). Pass the function.",
            _feature_checker,
            "np.pad(image, (k - 1) // 2), numpy.lib.stride_tricks.sliding_window_view(x, (k, k)), multiply by w "
            "and sum the last two axes, add bias, then np.where(z >= 0, 1, -1).mean()"),
        "01.3": Exercise(
            NOTEBOOK, "medium",
            "Write topk_accuracy(scores, labels, k): scores (N, C) SVM decision values, labels (N,); the fraction "
            "of rows whose label is among the k highest scores (Fig. 6), ties by class index. Pass the function.",
            _topk_checker,
            "np.argsort(-scores, axis=1, kind='stable')[:, :k] == labels[:, None], any over axis 1, mean"),
    }


EXERCISES = _exercises()
SOLUTIONS = {"01.1": {"features": 1000, "random_numbers": 102000}, "01.2": _feature_solution, "01.3": _topk_solution}


def plot_topk(topk, title: str):
    """Fig. 6: top-k test accuracy (k = 1, 2, 3) of each model of :func:`topk_table`. Returns ``(fig, ax)``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    for _, r in topk.iterrows():
        ax.plot([1, 2, 3], [r.top1, r.top2, r.top3], "o-", label=r.model)
    ax.set(xticks=[1, 2, 3], xlabel="k", ylabel="top-k test accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return fig, ax
