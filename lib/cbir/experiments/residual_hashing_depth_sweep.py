"""Depth x bits sweep of the Deep Residual Hashing Network (Jiménez Lepe thesis, chapter 5).

One DRHN (:mod:`cbir.models.drhn`) is trained from scratch per grid cell ``(n, bits)`` — the hash layer
sits inside the network and is learnt only through the classification loss, so a trunk cannot be shared
across bit lengths. Each cell is trained with the shared loop :func:`cbir.train.fit` (seeded, per-epoch
checkpoints in the cache, resume after an interruption, model selection on a validation split carved from
the *training* images — never on the test set), then evaluated:

* classification accuracy on the test split (Tables 5.1/5.6, Eq. 5.5);
* codes ``H > 0.5`` (Eq. 4.7) for the database (all training images) and the queries (the test split);
  Hamming ranking through :class:`cbir.index.BinaryIndex`; mAP@k with the "retrieved" denominator of
  Eq. 5.3 and P@k of Eq. 5.1 (Tables 5.3/5.7, Figs. 5.5/5.6);
* seconds per training epoch (Table 5.4, measured while training) and milliseconds to generate one code
  (Table 5.5, measured on the running machine, one image at a time).

Results come back as tidy DataFrames (:class:`SweepResult`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from cbir import cache, metrics
from cbir.hashing import pack_bits
from cbir.index import BinaryIndex
from cbir.models.drhn import DRHN, count_parameters, mirror, pixel_mean, to_tensor

#: Parameters that change a trained cell (everything else — e.g. plots — can change freely).
TRAIN_KEYS = ("dataset", "image_size", "n_per_class_train", "val_fraction", "epochs", "batch_size", "lr",
              "momentum", "weight_decay", "lr_drop_epochs", "lr_drop_factor", "augment", "seed", "patience")
#: ``augment`` choices: per-batch transform, and whether an epoch is the originals + their mirrored copies
#: (the authors' ``load_data``: 2N images per epoch). ``mirror_copies_crop`` is the authors' recipe.
AUGMENTS = {"none": (None, False), "mirror": ("mirror", False), "crop": ("crop", False),
            "mirror_crop": ("mirror_crop", False), "mirror_copies": (None, True),
            "mirror_copies_crop": ("crop", True)}


# ------------------------------------------------------------------------------------------- data
@dataclass
class SweepData:
    """Training/validation split, retrieval database and queries (uint8 NHWC images, int64 labels).

    ``x_db`` is every training image (train + validation, the thesis/DLBHC protocol: training set as
    database) and ``x_query`` the test split.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_db: np.ndarray
    y_db: np.ndarray
    x_query: np.ndarray
    y_query: np.ndarray
    classes: list[str]
    dataset: str
    source: str

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def protocol(self, P: Mapping[str, Any] | None = None, map_k: int | None = None) -> str:
        """One line with dataset, split sizes, relevance rule, metric variant, profile and seed."""
        line = (f"{self.dataset}: train {len(self.y_train)} + val {len(self.y_val)} (model selection), "
                f"database {len(self.y_db)} (all training images), queries {len(self.y_query)} (test split); "
                f"relevant = same class label; Hamming ranking of H>0.5 codes; "
                f"mAP@{map_k if map_k else 'k'} with the 'retrieved' denominator (Eq. 5.3)")
        if P is not None:
            line += f"; profile {getattr(P, 'profile', None) or P.get('profile', '?')}, seed {P['seed']}"
        return line


def split_train_val(labels: np.ndarray, val_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Stratified split of training indices into (train, validation), deterministic in ``seed``.

    Each class keeps ``round(val_fraction * count)`` (at least 1) items for validation; ``val_fraction=0``
    gives an empty validation split.

    Returns
    -------
    train_idx, val_idx : sorted int64 arrays that partition ``arange(len(labels))``.
    """
    labels = np.asarray(labels)
    if val_fraction == 0:  # no validation split (the thesis' recipe: all training images, fixed epochs)
        return np.arange(len(labels), dtype=np.int64), np.zeros(0, np.int64)
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction={val_fraction} must be 0 or in (0, 1); set drhn.val_fraction in params")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(labels))
    order = perm[np.argsort(labels[perm], kind="stable")]
    lab = labels[order]
    first = np.searchsorted(lab, lab, side="left")
    rank = np.arange(len(lab)) - first
    counts = np.bincount(lab)[lab]
    n_val = np.maximum(1, np.round(val_fraction * counts)).astype(int)
    is_val = rank < n_val
    if is_val.all():
        raise ValueError(f"val_fraction={val_fraction} leaves no training images; use more images per class")
    return np.sort(order[~is_val]).astype(np.int64), np.sort(order[is_val]).astype(np.int64)


def prepare_data(P: Mapping[str, Any], verbose: bool = True) -> SweepData:
    """Load ``P['dataset']`` (train and test splits) and carve the validation split (see :class:`SweepData`)."""
    from cbir.data import load_dataset

    kw = dict(seed=int(P["seed"]), data_dir=P.get("data_dir"), image_size=int(P["image_size"]), verbose=verbose)
    tr = load_dataset(P["dataset"], "train", n_per_class=P["n_per_class_train"], **kw)
    te = load_dataset(P["dataset"], "test", n_per_class=P["n_per_class_test"], **kw)
    if not isinstance(tr.images, np.ndarray):
        raise TypeError(f"dataset {P['dataset']!r} has ragged images; set drhn.image_size so they are resized")
    itr, iva = split_train_val(tr.labels, float(P["val_fraction"]), int(P["seed"]))
    x_db, y_db = tr.images, tr.labels
    if P.get("database", "train") == "train_mirrored":  # the authors' code codes X_train incl. mirrored copies
        from cbir.models.drhn import with_mirrored_copies

        x_db, y_db = with_mirrored_copies(x_db, y_db)
    return SweepData(tr.images[itr], tr.labels[itr], tr.images[iva], tr.labels[iva], x_db, y_db,
                     te.images, te.labels, list(tr.classes), P["dataset"], tr.source)


# ------------------------------------------------------------------------------------------- training
def make_optimizer(model: nn.Module, lr: float, momentum: float, weight_decay: float
                   ) -> torch.optim.Optimizer:
    """SGD with momentum and the Lasagne recipe's L2 penalty ``weight_decay * sum(W**2)``.

    Lasagne regularises only weight matrices/kernels (not biases or BN), and its penalty's gradient is
    ``2 * weight_decay * W``, so torch's ``weight_decay`` is set to ``2 * weight_decay`` on those tensors.
    """
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    return torch.optim.SGD([{"params": decay, "weight_decay": 2.0 * weight_decay},
                            {"params": no_decay, "weight_decay": 0.0}], lr=lr, momentum=momentum)


def make_scheduler(optimizer: torch.optim.Optimizer, drop_epochs: Sequence[int], factor: float):
    """Step schedule: lr times ``factor`` after each epoch in ``drop_epochs`` (recipe: 41 and 61; thesis
    stops at 43, so one drop). Stepped once per epoch."""
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=sorted(int(e) for e in drop_epochs),
                                                gamma=factor)


def cell_params(P: Mapping[str, Any], n: int, bits: int, data: SweepData, plain: bool = False) -> dict[str, Any]:
    """Everything a trained cell depends on (the cache key); ``plain``: the ResNet without hash layer."""
    out = {k: P.get(k) for k in TRAIN_KEYS}
    out.update(n=int(n), bits=0 if plain else int(bits), plain=bool(plain), num_classes=data.num_classes,
               train_labels=data.y_train, val_labels=data.y_val, train_pixels=data.x_train, val_pixels=data.x_val,
               model="DRHN-v2", code=cache.code_version(train_cell))
    return out


@dataclass
class TrainedCell:
    """A trained (n, bits) cell: model with the selected weights, per-epoch history and timing."""

    n: int
    bits: int
    model: DRHN
    history: pd.DataFrame
    best_epoch: int
    sec_per_epoch: float
    timing_device: str
    mean: np.ndarray
    from_cache: bool
    stopped_by: str = "epochs"
    """``"patience"`` (validation loss stopped improving), ``"epochs"`` (the cap came first) or ``"fixed"``
    (no validation split: all epochs, final weights)."""


def train_cell(n: int, bits: int, data: SweepData, P: Mapping[str, Any], device: torch.device | None = None,
               cache_dir: str | Path | None = None, progress: bool = True,
               stop_after: int | None = None, plain: bool = False) -> TrainedCell:
    """Train DRHN-``n`` with ``bits`` hash units on ``data`` (or load it from the cache).

    ``plain=True`` trains the plain ResNet of the same depth instead (no hash layer, ``bits`` ignored and
    recorded as 0), with the same recipe: the baseline of "the hash layer does not hurt" (Sec. 5.1.2).

    Cross-entropy (Eq. 5.4), SGD with momentum and a step learning-rate schedule (:func:`make_optimizer`,
    :func:`make_scheduler`), augmentation ``P['augment']`` (:data:`AUGMENTS`), at most ``P['epochs']``
    epochs. With a validation split the weights kept are those of the epoch with the lowest *validation*
    loss (the thesis' criterion of Fig. 5.3, moved from the test to the validation split), and training
    stops once it has not improved for ``P['patience']`` epochs (``None``: run all epochs). Per epoch the
    history also records validation and test loss and accuracy (display only, never for selection).
    Without a validation split (``val_fraction=0``) all epochs run and the final weights are kept.
    Checkpoints go to ``<cache>/drhn_ckpt-<key>/`` after every epoch, so a killed run resumes there.
    ``stop_after`` (epochs in this call) simulates an interruption: it raises ``InterruptedError``
    after saving the checkpoint; the next call resumes.
    """
    from cbir.models.drhn import mirror_crop, pad_crop, with_mirrored_copies
    from cbir.runtime import describe_device
    from cbir.train import fit, predict

    device = device or torch.device("cpu")
    cache_dir = Path(cache_dir or P.cache_dir)
    params = cell_params(P, n, bits, data, plain)
    bits = 0 if plain else bits
    model_path = cache.artifact_path(cache_dir, "drhn_model", params, "pt")
    mean = pixel_mean(data.x_train)

    def build() -> DRHN:
        return DRHN(n, None, data.num_classes, hash_layer=False) if plain else DRHN(n, bits, data.num_classes)

    model = build()
    if model_path.exists():
        blob = cache.load_torch(model_path)
        model.load_state_dict(blob["state"])
        hist = pd.DataFrame({k: v.numpy() if torch.is_tensor(v) else np.asarray(v) for k, v in blob["history"].items()})
        return TrainedCell(n, bits, model.to(device).eval(), hist, int(blob["best_epoch"]),
                           float(blob["sec_per_epoch"]), str(blob["timing_device"]), mean, True,
                           str(blob.get("stopped_by", "epochs")))
    ckpt_dir = cache.artifact_path(cache_dir, "drhn_ckpt", params, "d")
    torch.manual_seed(int(P["seed"]))
    model = build()  # re-created after seeding: initial weights depend on seed only
    opt = make_optimizer(model, float(P["lr"]), float(P["momentum"]), float(P["weight_decay"]))
    aug_name = P.get("augment", "mirror")
    if aug_name not in AUGMENTS:
        raise ValueError(f"drhn.augment={aug_name!r}; use one of {sorted(AUGMENTS)}")
    batch_aug, copies = AUGMENTS[aug_name]
    x_tr, y_tr = data.x_train, data.y_train
    if copies:
        x_tr, y_tr = with_mirrored_copies(x_tr, y_tr)
    augment = {None: None, "mirror": mirror, "crop": pad_crop, "mirror_crop": mirror_crop}[batch_aug]
    has_val = len(data.y_val) > 0
    patience = P.get("patience")
    if patience is not None and not has_val:
        raise ValueError(f"drhn.patience={patience} needs a validation split; set val_fraction > 0 or patience: null")
    xv, yv = to_tensor(data.x_val, mean), torch.as_tensor(data.y_val)
    xq, yq = to_tensor(data.x_query, mean), torch.as_tensor(data.y_query)
    last: dict[str, float] = {}

    def loss_acc(m: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        logits = torch.from_numpy(np.asarray(predict(m, x, 500)))
        return float(nn.functional.cross_entropy(logits, y)), float((logits.argmax(1) == y).float().mean())

    def val_score(m: nn.Module, d) -> float:  # higher is better: minus the validation loss
        last["val_loss"], last["val_acc"] = loss_acc(m, *d)
        return -last["val_loss"]

    def epoch_metrics(m: nn.Module) -> dict[str, float]:
        test_loss, test_acc = loss_acc(m, xq, yq)
        out = {"val_loss": last.get("val_loss", np.nan), "val_acc": last.get("val_acc", np.nan)}
        return {**out, "test_loss": test_loss, "test_acc": test_acc}

    t0 = time.perf_counter()
    res = fit(model, (to_tensor(x_tr, mean), torch.as_tensor(y_tr)),
              loss_fn=nn.CrossEntropyLoss(), optimizer=opt, epochs=int(P["epochs"]),
              scheduler=lambda o: make_scheduler(o, P["lr_drop_epochs"], float(P["lr_drop_factor"])),
              batch_size=int(P["batch_size"]), seed=int(P["seed"]),
              val_data=(xv, yv) if has_val else None, val_metric=val_score if has_val else None,
              augment=augment, ckpt_dir=ckpt_dir, patience=patience, epoch_metrics=epoch_metrics,
              desc=f"plain ResNet-{n}" if plain else f"DRHN-{n} {bits} bits", device=device, progress=progress,
              stop_after=stop_after)
    wall = time.perf_counter() - t0
    hist = res.history.reset_index(drop=True)
    stopped_by = res.extra.get("stopped_by", "epochs") if has_val else "fixed"
    if stopped_by == "interrupted":  # stopped early on purpose (stop_after): nothing cached yet
        raise InterruptedError(f"DRHN-{n} {bits} bits stopped after epoch {len(hist)} of {P['epochs']}; "
                               f"rerun to resume from {ckpt_dir}")
    sec_per_epoch = float(hist["seconds"].mean()) if len(hist) else wall
    model = res.model  # fit loaded the weights of the lowest-validation-loss epoch (final ones without val)
    best_epoch = int(res.best_epoch)
    cache.save_torch_atomic({"state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                             "history": {c: torch.tensor(hist[c].to_numpy(dtype=np.float64, copy=True))
                                         for c in hist.columns if pd.api.types.is_numeric_dtype(hist[c])},
                             "best_epoch": best_epoch, "sec_per_epoch": sec_per_epoch,
                             "timing_device": describe_device(device), "stopped_by": stopped_by}, model_path)
    return TrainedCell(n, bits, model.to(device).eval(), hist, best_epoch, sec_per_epoch,
                       describe_device(device), mean, False, stopped_by)


# ------------------------------------------------------------------------------------------- inference
@torch.no_grad()
def hash_activations(model: DRHN, images: np.ndarray, mean: np.ndarray, batch_size: int = 500,
                     device: torch.device | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Hash-layer activations H (N, bits) float32 and class logits (N, K) float32, eval mode, batched."""
    device = device or next(model.parameters()).device
    model.eval()
    hs, logits = [], []
    for s in range(0, len(images), batch_size):
        x = to_tensor(images[s:s + batch_size], mean).to(device)
        h = torch.sigmoid(model.hash(model.pooled(x)))
        hs.append(h.cpu())
        logits.append(model.classifier(h).cpu())
    return torch.cat(hs).numpy().astype(np.float32), torch.cat(logits).numpy().astype(np.float32)


def code_times_ms(model: DRHN, images: np.ndarray, mean: np.ndarray, device: torch.device | None = None,
                  warmup: int = 3, batch_size: int = 1, repeats: int = 7, threads: int | None = 1) -> np.ndarray:
    """Milliseconds per binary code (Table 5.5): ``repeats`` timed passes over ``images``.

    One pass codes every image in forward passes of ``batch_size`` images and includes the uint8 -> tensor
    conversion, the forward pass to H and the thresholding (Eq. 4.7). ``warmup`` untimed passes come first.
    ``threads`` (default 1) fixes torch's intra-op threads during the timing (restored afterwards), so a
    shared machine's thread contention does not enter the numbers.

    Returns
    -------
    ms : float64 array (repeats,), per pass: wall-clock milliseconds divided by ``len(images)``.
    """
    if batch_size < 1 or repeats < 1 or warmup < 0 or len(images) == 0:
        raise ValueError(f"batch_size={batch_size}, repeats={repeats} must be >= 1, warmup={warmup} >= 0 and "
                         f"images non-empty ({len(images)})")
    device = device or next(model.parameters()).device
    model.eval()
    old = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        times = []
        for r in range(warmup + repeats):
            t0 = time.perf_counter()
            for s in range(0, len(images), batch_size):
                code = model.codes(to_tensor(images[s:s + batch_size], mean).to(device))
                if device.type == "cuda":  # pragma: no cover - GPU only
                    torch.cuda.synchronize()
                _ = code.cpu()
            if r >= warmup:
                times.append((time.perf_counter() - t0) / len(images))
    finally:
        torch.set_num_threads(old)
    return np.asarray(times, np.float64) * 1000.0


def ms_per_code(model: DRHN, images: np.ndarray, mean: np.ndarray, device: torch.device | None = None,
                warmup: int = 3, batch_size: int = 1, repeats: int = 7) -> float:
    """Median of :func:`code_times_ms` (milliseconds to generate one code)."""
    return float(np.median(code_times_ms(model, images, mean, device, warmup, batch_size, repeats)))


def retrieval_eval(codes_db: np.ndarray, y_db: np.ndarray, codes_q: np.ndarray, y_q: np.ndarray,
                   n_bits: int, map_k: int, ks: Sequence[int]) -> tuple[dict[str, float], np.ndarray]:
    """Hamming ranking of packed codes, mAP@k (Eq. 5.3, 'retrieved' denominator) and P@k (Eq. 5.1).

    Returns
    -------
    scores : dict with ``map_at_k`` and ``p_at_<k>`` for each k
    rankings : int64 (Q, min(map_k, N)) database indices, sorted by (distance, index)
    """
    k = min(int(map_k), len(y_db))
    _, I = BinaryIndex(n_bits).add(codes_db).search(codes_q, k)
    rel = metrics.relevance(I, y_q, y_db)
    out = {"map_at_k": metrics.map_at_k(rel, k, denominator="retrieved")}
    for kk in ks:
        if kk <= k:
            out[f"p_at_{int(kk)}"] = metrics.precision_at_k(rel, int(kk))
    return out, I


def evaluate_cell(cell: TrainedCell, data: SweepData, P: Mapping[str, Any], cache_dir: str | Path | None = None
                  ) -> dict[str, np.ndarray]:
    """Codes, logits and rankings of one trained cell (cached by the cell's parameters + eval settings)."""
    cache_dir = Path(cache_dir or P.cache_dir)
    params = {**cell_params(P, cell.n, cell.bits, data), "n_per_class_test": P["n_per_class_test"],
              "query_labels": data.y_query, "query_pixels": data.x_query, "db_pixels": data.x_db,
              "map_k": int(P["map_k"]), "eval": "v1"}

    def compute() -> dict[str, np.ndarray]:
        h_db, _ = hash_activations(cell.model, data.x_db, cell.mean)
        h_q, logits_q = hash_activations(cell.model, data.x_query, cell.mean)
        codes_db, codes_q = pack_bits((h_db > 0.5).astype(np.uint8)), pack_bits((h_q > 0.5).astype(np.uint8))
        _, I = retrieval_eval(codes_db, data.y_db, codes_q, data.y_query, cell.bits, int(P["map_k"]), [1])
        return {"codes_db": codes_db, "codes_q": codes_q, "h_q": h_q, "logits_q": logits_q, "rankings": I}

    return cache.cached_npz("drhn_eval", params, compute, cache_dir, verbose=False)


# ------------------------------------------------------------------------------------------- sweep
@dataclass
class SweepResult:
    """Outputs of :func:`run_sweep`.

    Attributes
    ----------
    cells : DataFrame, one row per (n, bits): ``n, bits, n_params, depth_layers, test_acc_pct,
        best_val_acc_pct, best_epoch, map_at_k_pct, p_at_<k>_pct..., sec_per_epoch, timing_device,
        ms_per_code, code_device, from_cache``.
    curves : long DataFrame ``n, bits, k, precision_pct`` (Figs. 5.5/5.6).
    histories : long DataFrame of the per-epoch training history with ``n, bits`` columns.
    trained : dict (n, bits) -> :class:`TrainedCell`; evals : dict (n, bits) -> arrays of
        :func:`evaluate_cell`.
    ap : dict (n, bits) -> float64 (Q,), per-query AP@k ('retrieved' denominator, Eq. 5.3) in [0, 1];
        its mean is ``map_at_k_pct / 100`` (computed from the cached rankings).
    correct : dict (n, bits) -> bool (Q,), whether each query (test) image is classified correctly.
    code_ms : dict (n, bits) -> float64 (T,), milliseconds per code of each timed image.
    """

    cells: pd.DataFrame
    curves: pd.DataFrame
    histories: pd.DataFrame
    trained: dict = field(repr=False, default_factory=dict)
    evals: dict = field(repr=False, default_factory=dict)
    ap: dict = field(repr=False, default_factory=dict)
    correct: dict = field(repr=False, default_factory=dict)
    code_ms: dict = field(repr=False, default_factory=dict)


def train_and_evaluate_cell(n: int, bits: int, data: SweepData, P: Mapping[str, Any], device: str,
                            cache_dir: str) -> bool:
    """One sweep cell as a task (:func:`cbir.sweep.map_cells`): :func:`train_cell` and
    :func:`evaluate_cell` write their artifacts into the cache; True when the cell was trained here."""
    cell = train_cell(int(n), int(bits), data, P, torch.device(device), cache_dir, progress=False)
    evaluate_cell(cell, data, P, cache_dir)
    return not cell.from_cache


def run_sweep(P: Mapping[str, Any], data: SweepData, device: torch.device | None = None,
              cache_dir: str | Path | None = None, progress: bool = True,
              log: Callable[[str], None] | None = print) -> SweepResult:
    """Train and evaluate every ``(n, bits)`` cell of ``P['depths'] x P['bits']``; cached per cell.

    With ``shared.workers > 1`` or a ``shared.scheduler`` the cells are first trained as Dask tasks
    (:func:`cbir.sweep.map_cells`, ``shared.threads`` threads each) into the cache, then assembled here
    exactly as cached cells are; a failed cell raises :class:`cbir.sweep.SweepError` naming it once the
    others are done.

    Parameters
    ----------
    P : Params of the ``drhn`` section (``depths``, ``bits``, training and evaluation keys).
    data : :class:`SweepData` from :func:`prepare_data`.
    device : torch device (default CPU).
    cache_dir : default ``P.cache_dir``.

    Returns
    -------
    SweepResult
    """
    from cbir import sweep
    from cbir.runtime import describe_device

    device = device or torch.device("cpu")
    for key, grid in (("depths", P["depths"]), ("bits", P["bits"])):
        if len(set(grid)) != len(grid):
            raise ValueError(f"drhn.{key}={list(grid)} has duplicates; list each value once")
    trained_now: set = set()
    if sweep.parallel(P):
        grid_cells = [{"n": int(n), "bits": int(b)} for n in P["depths"] for b in P["bits"]]
        done = sweep.map_cells(train_and_evaluate_cell, grid_cells, P=P, desc="DRHN depth x bits", log=log,
                               shared={"data": data, "P": P, "device": device.type,
                                       "cache_dir": str(cache_dir or P.cache_dir)})
        trained_now = {(c["n"], c["bits"]) for c, fresh in zip(grid_cells, done) if fresh}
    k = min(int(P["map_k"]), len(data.y_db))
    ks = [int(x) for x in P["precision_ks"] if int(x) <= k]
    rows, curves, hists, trained, evals, aps, corrects, code_ms = [], [], [], {}, {}, {}, {}, {}
    timing_imgs = data.x_query[: int(P["timing_images"])]
    for n in P["depths"]:
        for bits in P["bits"]:
            cell = train_cell(int(n), int(bits), data, P, device, cache_dir, progress)
            ev = evaluate_cell(cell, data, P, cache_dir)
            rel = metrics.relevance(ev["rankings"], data.y_query, data.y_db)
            pk = metrics.precision_curve(rel, ks)
            correct = ev["logits_q"].argmax(1) == data.y_query
            acc = float(correct.mean())
            ap = metrics.average_precision(rel[:, :k], denominator="retrieved")
            times = code_times_ms(cell.model, timing_imgs, cell.mean, device, batch_size=int(P.get("timing_batch", 1)),
                                  repeats=int(P.get("timing_repeats", 7)))
            hist = cell.history
            row = {"n": int(n), "bits": int(bits), "n_params": count_parameters(cell.model),
                   "depth_layers": 12 * int(n) + 3, "test_acc_pct": 100 * acc,
                   "best_val_acc_pct": _best_val_acc(hist, cell.best_epoch),
                   "best_epoch": cell.best_epoch, "epochs_run": int(len(hist)), "stopped_by": cell.stopped_by,
                   "map_at_k_pct": 100 * metrics.map_at_k(rel, k, denominator="retrieved"),
                   **{f"p_at_{kk}_pct": 100 * v for kk, v in zip(ks, pk)},
                   "sec_per_epoch": cell.sec_per_epoch, "timing_device": cell.timing_device,
                   "ms_per_code": float(np.median(times)), "ms_per_code_q25": float(np.percentile(times, 25)),
                   "ms_per_code_q75": float(np.percentile(times, 75)),
                   "timing_batch": int(P.get("timing_batch", 1)), "timing_repeats": int(len(times)),
                   "code_device": describe_device(device),
                   "from_cache": cell.from_cache and (int(n), int(bits)) not in trained_now}
            rows.append(row)
            curves.append(pd.DataFrame({"n": int(n), "bits": int(bits), "k": ks, "precision_pct": 100 * pk}))
            hists.append(hist.assign(n=int(n), bits=int(bits)))
            key = (int(n), int(bits))
            trained[key], evals[key], aps[key], corrects[key], code_ms[key] = cell, ev, ap, correct, times
            if log:
                log(f"DRHN-{n} {bits:>3} bits: test acc {row['test_acc_pct']:.2f}%  mAP@{k} "
                    f"{row['map_at_k_pct']:.2f}%  ({'cached' if row['from_cache'] else 'trained'})")
    return SweepResult(pd.DataFrame(rows), pd.concat(curves, ignore_index=True),
                       pd.concat(hists, ignore_index=True), trained, evals, aps, corrects, code_ms)


def _best_val_acc(hist: pd.DataFrame, best_epoch: int) -> float:
    """Validation accuracy (%) at the selected epoch; NaN without a validation split."""
    if "val_acc" not in hist.columns or hist["val_acc"].isna().all():
        return np.nan
    sel = hist.loc[hist["epoch"] == best_epoch, "val_acc"]
    return 100.0 * float(sel.iloc[0]) if len(sel) else np.nan


#: Columns of :attr:`SweepResult.cells` that are wall-clock measurements (vary run to run): they go to
#: the ``*_timing.csv`` table, never to the byte-identical result tables.
TIMING_COLUMNS = ("sec_per_epoch", "timing_device", "ms_per_code", "ms_per_code_q25", "ms_per_code_q75",
                  "timing_batch", "timing_repeats", "code_device", "from_cache")


def split_timing(cells: pd.DataFrame, histories: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(results, timing): ``cells`` and ``histories`` without their timing columns, and one timing table
    (``n, bits`` + :data:`TIMING_COLUMNS`, plus the per-epoch seconds summarised as min/max)."""
    res = cells.drop(columns=[c for c in TIMING_COLUMNS if c in cells.columns])
    timing = cells[["n", "bits"] + [c for c in TIMING_COLUMNS if c in cells.columns]].copy()
    if "seconds" in histories.columns:
        g = histories.groupby(["n", "bits"]).seconds
        timing = timing.merge(g.min().rename("sec_per_epoch_min").reset_index(), on=["n", "bits"]).merge(
            g.max().rename("sec_per_epoch_max").reset_index(), on=["n", "bits"])
    return res, timing


@dataclass
class PlainResult:
    """Outputs of :func:`run_plain`: one row per depth (``n, test_acc_pct, best_epoch, epochs_run,
    stopped_by, n_params``), the per-epoch histories and the per-test-image correctness."""

    cells: pd.DataFrame
    histories: pd.DataFrame
    correct: dict[int, np.ndarray]


def run_plain(P: Mapping[str, Any], data: SweepData, device: torch.device | None = None,
              cache_dir: str | Path | None = None, progress: bool = True,
              log: Callable[[str], None] | None = print) -> PlainResult:
    """Train the plain ResNet (no hash layer) at each depth of ``P['plain_depths']`` with the sweep's recipe.

    The baseline of the thesis' "the hash layer does not hurt accuracy" (Sec. 5.1.2: DRHN 93.70 % vs the
    original ResNet implementation ~93.25 %); :func:`paper_rows` compares it with DRHN-n at each code length.
    An empty ``plain_depths`` trains nothing.
    """
    from cbir.train import predict

    device = device or torch.device("cpu")
    rows, hists, correct = [], [], {}
    for n in P.get("plain_depths") or []:
        cell = train_cell(int(n), 0, data, P, device, cache_dir, progress, plain=True)
        logits = np.asarray(predict(cell.model, to_tensor(data.x_query, cell.mean), 500))
        ok = logits.argmax(1) == data.y_query
        correct[int(n)] = ok
        rows.append({"n": int(n), "model": plain_name(int(n)), "test_acc_pct": 100.0 * float(ok.mean()),
                     "best_epoch": cell.best_epoch, "epochs_run": int(len(cell.history)),
                     "stopped_by": cell.stopped_by, "n_params": count_parameters(cell.model)})
        hists.append(cell.history.assign(n=int(n)))
        if log:
            log(f"plain ResNet-{n}: test acc {rows[-1]['test_acc_pct']:.2f}% ({'cached' if cell.from_cache else 'trained'}, "
                f"stopped by {cell.stopped_by})")
    cols = ["n", "model", "test_acc_pct", "best_epoch", "epochs_run", "stopped_by", "n_params"]
    return PlainResult(pd.DataFrame(rows, columns=cols),
                       pd.concat(hists, ignore_index=True) if hists else pd.DataFrame(), correct)


def plain_name(n: int) -> str:
    """The model axis of the plain ResNet-n baseline (DRHN-n without its hash layer)."""
    return (f"plain ResNet-{int(n)} ({12 * int(n) + 2} weight layers, no hash layer), "
            "trained from scratch (cross-entropy, Eq. 5.4)")


def grid_table(cells: pd.DataFrame, value: str) -> pd.DataFrame:
    """Pivot a cell column into the thesis' layout: rows ``DRHN-n``, columns ``<bits> bits``."""
    t = cells.pivot(index="n", columns="bits", values=value).sort_index()
    t.index = [f"DRHN-{i}" for i in t.index]
    t.columns = [f"{b} bits" for b in t.columns]
    return t


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts (K, K): rows true class, columns predicted class (Fig. 5.4)."""
    y_true, y_pred = np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)
    return np.bincount(y_true * num_classes + y_pred, minlength=num_classes**2).reshape(num_classes, num_classes)


@torch.no_grad()
def first_layer_maps(model: DRHN, image: np.ndarray, mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First-layer filters (16, 3, 3, 3) and activation maps (16, H, W) of one image (Fig. 4.3)."""
    model.eval()
    x = to_tensor(image[None], mean).to(next(model.parameters()).device)
    return (model.stem[0].weight.detach().cpu().numpy(), model.stem(x)[0].cpu().numpy())


# ------------------------------------------------------------------------------------------- tables
def architecture_table(model: DRHN, image_size: int = 32) -> pd.DataFrame:
    """Table 4.1 rebuilt from the module: layer, convolution dims (filters x channels x 3 x 3), output dims."""
    rows = []
    x = torch.zeros(1, model.stem[0].in_channels, image_size, image_size)
    model.eval()
    with torch.no_grad():
        h = model.stem(x)
        w = model.stem[0].weight.shape
        rows.append(("BN(ReLU(conv(x, w1)))", "x".join(map(str, w)), "x".join(map(str, h.shape[1:]))))
        for g in model.groups:
            first = g[0]
            grow = first.conv1.in_channels != first.conv1.out_channels
            h = g(h)
            dims = (f"*{'x'.join(map(str, first.conv1.weight.shape))}, {'x'.join(map(str, first.conv2.weight.shape))}"
                    if grow else "x".join(map(str, first.conv2.weight.shape)))
            rows.append((f"Residual Group (n={model.n})" + (" with inc. dim." if grow else ""), dims,
                         "x".join(map(str, h.shape[1:]))))
        rows.append(("Average Pooling Layer", "", str(h.shape[1])))
        rows.append(("Hash Layer (sigmoid, Eq. 4.6)", f"{model.bits}x{h.shape[1]}", str(model.bits)))
        rows.append(("Fully Connected Layer with Softmax", f"{model.num_classes}x{model.bits}", str(model.num_classes)))
    return pd.DataFrame(rows, columns=["layer", "convolution dim.", "output dim."])


def parameter_table(depths: Sequence[int], bits: int = 48, num_classes: int = 10) -> pd.DataFrame:
    """Parameters and weight layers of DRHN-n (closed form, checked against the module in the tests)."""
    from cbir.models.drhn import expected_parameters

    return pd.DataFrame({"n": list(depths), "weight_layers": [12 * n + 3 for n in depths],
                         "params": [expected_parameters(n, bits, num_classes) for n in depths],
                         "params_millions": [expected_parameters(n, bits, num_classes) / 1e6 for n in depths]})


# ------------------------------------------------------------------------------------------- paper vs ours
PAPER = "03_drhn"
NOTEBOOK = "03_residual_hashing_depth_sweep"
THESIS_GPU = "the thesis' GPU (not named)"
#: The thesis' CIFAR-10/100 setting (ch. 5.1): 50,000 training images; the 10,000 test images are the
#: queries; 43 epochs. The database is the training set as the authors' code (lepe92/DRHN) coded it:
#: ``X_train`` after ``load_data`` appended the mirrored copies, i.e. 100,000 codes.
THESIS_SCALE = {"train": 50000, "test": 10000, "database": 100000, "queries": 10000}
THESIS_EPOCHS = 43
THESIS_MAP_K = 1000
#: Images per thesis epoch for Table 5.4: the Lasagne recipe it ran appends a mirrored copy of each of the
#: 50,000 training images (see the notebook's deviations).
THESIS_IMAGES_PER_EPOCH = 100000
DEPTH_PAIR = (3, 1)
"""'Deeper is better' is checked as DRHN-3 against DRHN-1 at the same code length."""
BITS_PAIR = (48, 12)
"""'Longer codes are better' is checked as 48 against 12 bits at the same depth."""
TIMING_METRICS = ("sec_per_epoch", "ms_per_code")


def model_name(n: int, bits: int | None = None, *, num_classes: int | None = None, trained: bool = True) -> str:
    """The model axis of a :class:`cbir.report.Setting`: ``"DRHN-<n> (<12n+3> weight layers), <bits> bits"``.

    Used for ours (from the trained cell) and, with the thesis' facts, in
    ``lib/cbir/reported/settings/03_drhn.csv`` (:func:`thesis_settings`). ``trained`` appends the weights
    (trained from scratch with the classification loss, Eq. 5.4); ``num_classes`` the softmax width (for the
    parameter count, an architecture-only comparison).
    """
    s = f"DRHN-{int(n)} ({12 * int(n) + 3} weight layers)"
    if bits is not None:
        s += f", {int(bits)} bits"
    if num_classes is not None:
        s += f", {int(num_classes)} classes"
    return s + (", trained from scratch (cross-entropy, Eq. 5.4)" if trained else ", architecture only")


def protocol(kind: str, *, k: int | None = None, device: str | None = None) -> str:
    """The protocol axis of a Setting, in one wording for ours and the thesis.

    kind : ``"accuracy"`` (Tables 5.1/5.6), ``"map"`` (Tables 5.3/5.7; needs ``k``), ``"sec_per_epoch"``
    (Table 5.4; needs ``device``), ``"ms_per_code"`` (Table 5.5; needs ``device``) or ``"params"``.
    """
    if kind == "accuracy":
        return "top-1 accuracy of the softmax layer on the test split (Eq. 5.5)"
    if kind == "map":
        if k is None:
            raise ValueError("protocol('map') needs k (the ranking cut, thesis: 1000)")
        return (f"queries = test split vs database = all training images; relevant = same class label; "
                f"Hamming ranking of H>0.5 codes; mAP@{int(k)} with the 'retrieved' denominator (Eq. 5.3)")
    if kind in TIMING_METRICS:
        if not device:
            raise ValueError(f"protocol({kind!r}) needs device (the hardware that was timed)")
        what = ("mean wall-clock seconds per training epoch" if kind == "sec_per_epoch"
                else "mean milliseconds to generate one image's code, one image per forward pass")
        return f"{what}, on {device}"
    if kind == "params":
        return "count of trainable parameters"
    raise ValueError(f"kind={kind!r}; use 'accuracy', 'map', 'sec_per_epoch', 'ms_per_code' or 'params'")


def _thesis_tables(dataset: str) -> tuple[str, str]:
    return ("Table 5.6", "Table 5.7") if dataset == "cifar100" else ("Table 5.1", "Table 5.3")


def thesis_settings() -> pd.DataFrame:
    """The thesis' settings (columns of ``cbir.reported.SETTING_COLUMNS``), typed from chapter 5.

    ``lib/cbir/reported/settings/03_drhn.csv`` is this table (a test keeps them equal), so the model and
    protocol wordings are those of :func:`model_name` / :func:`protocol`.
    """
    from cbir.report import _fmt_counts

    scale, budget = _fmt_counts(THESIS_SCALE), f"epochs={THESIS_EPOCHS}"
    rows = []
    for ds in ("cifar10", "cifar100"):
        acc_src, map_src = _thesis_tables(ds)
        for n in range(1, 17):
            for b in (12, 24, 32, 48, 128):
                rows.append((f"{ds}_accuracy_n{n}_b{b}", ds, scale, model_name(n, b), budget,
                             protocol("accuracy"), f"{acc_src}: 50k train / 10k test, 43 epochs"))
                rows.append((f"{ds}_map{THESIS_MAP_K}_n{n}_b{b}", ds, scale, model_name(n, b), budget,
                             protocol("map", k=THESIS_MAP_K), f"{map_src}: training set as database, test set as queries"))
        hi, lo = DEPTH_PAIR
        for b in (12, 24, 32, 48, 128):
            rows.append((f"{ds}_depth_n{hi}_vs_n{lo}_b{b}", ds, scale, f"{model_name(hi, b)} vs {model_name(lo, b)}",
                         budget, protocol("map", k=THESIS_MAP_K), f"{map_src} (and ch. 6): mAP grows with depth"))
            rows.append((f"{ds}_depth_acc_n{hi}_vs_n{lo}_b{b}", ds, scale,
                         f"{model_name(hi, b)} vs {model_name(lo, b)}", budget, protocol("accuracy"),
                         f"{acc_src}: accuracy grows with depth"))
        bhi, blo = BITS_PAIR
        for n in range(1, 17):
            rows.append((f"{ds}_bits_{bhi}_vs_{blo}_n{n}", ds, scale, f"{model_name(n, bhi)} vs {model_name(n, blo)}",
                         budget, protocol("map", k=THESIS_MAP_K), f"{map_src}: longer codes retrieve better"))
            rows.append((f"{ds}_bits_acc_{bhi}_vs_{blo}_n{n}", ds, scale, f"{model_name(n, bhi)} vs {model_name(n, blo)}",
                         budget, protocol("accuracy"), f"{acc_src}: accuracy with longer codes"))
    for n in range(1, 17):
        rows.append((f"cifar10_sec_per_epoch_n{n}", "cifar10", f"images_per_epoch={THESIS_IMAGES_PER_EPOCH}",
                     model_name(n), "", protocol("sec_per_epoch", device=THESIS_GPU),
                     "Table 5.4: 50k training images plus their mirrored copies per epoch (Lasagne recipe)"))
        for b in (12, 24, 32, 48, 128):
            rows.append((f"cifar10_ms_per_code_n{n}_b{b}", "cifar10", "", model_name(n, b), "",
                         protocol("ms_per_code", device=THESIS_GPU), "Table 5.5: average time per code"))
    rows.append(("cifar10_hash_layer_vs_plain", "cifar10", scale,
                 f"{model_name(9, 48)} vs the original ResNet implementation (Lasagne recipe, no hash layer)", budget,
                 protocol("accuracy"), "Section 5.1.2: 93.70 % with the hash layer vs ~93.25 % for the original "
                 "implementation: the hash layer does not hurt classification"))
    rows.append(("drhn15_params", "architecture only", "", model_name(15, 48, num_classes=10, trained=False), "",
                 protocol("params"), "ch. 1: about 8 million parameters; architecture only (bits/classes: 48/10)"))
    return pd.DataFrame(rows, columns=["name", "dataset", "scale", "model", "budget", "protocol", "note"])


def paper_setting_name(source: str, setting: str, metric: str, dataset: str) -> str:
    """Name (in :func:`thesis_settings`) of the setting a reported row of ``03_drhn.csv`` was measured in;
    ``""`` for rows the notebook does not compare (Table 5.2, Section 5.1.2's precision@1000)."""
    import re

    if source == "Section 5.1.2" and metric == "accuracy_pct":
        return "cifar10_hash_layer_vs_plain"
    m = re.fullmatch(r"n=(\d+)(?:,bits=(\d+))?", setting)
    if not m:
        return ""
    n, b = m.group(1), m.group(2)
    if metric == "accuracy_pct" and source in ("Table 5.1", "Table 5.6") and b:
        return f"{dataset}_accuracy_n{n}_b{b}"
    if metric == "map_at_1000_pct" and source in ("Table 5.3", "Table 5.7") and b:
        return f"{dataset}_map{THESIS_MAP_K}_n{n}_b{b}"
    if metric == "sec_per_epoch" and source == "Table 5.4":
        return f"cifar10_sec_per_epoch_n{n}"
    if metric == "ms_per_code" and source == "Table 5.5" and b:
        return f"cifar10_ms_per_code_n{n}_b{b}"
    if metric == "n_params_millions" and source == "Chapter 1":
        return "drhn15_params"
    return ""


def images_per_epoch(data: SweepData, P: Mapping[str, Any]) -> int:
    """Images seen per training epoch: the training split, doubled by ``mirror_copies*`` augmentation."""
    return len(data.y_train) * (2 if AUGMENTS[P.get("augment", "mirror")][1] else 1)


def run_scale(data: SweepData) -> dict[str, int]:
    """Scale axis of ours: images trained on (validation excluded), test images, database and queries."""
    return {"train": len(data.y_train), "test": len(data.y_query), "database": len(data.y_db),
            "queries": len(data.y_query)}


def paper_rows(sweep: SweepResult, P: Mapping[str, Any], data: SweepData, plain: PlainResult | None = None) -> list:
    """Paper-vs-ours rows (:mod:`cbir.report`) of the sweep, every axis of ours computed from the run.

    * value rows per grid cell: test accuracy (Table 5.1/5.6; Wilson interval over the test images), mAP@k
      (Table 5.3/5.7; bootstrap over the queries of the per-query AP) and ms per code (Table 5.5; bootstrap
      over the timed images); per depth: seconds per epoch (Table 5.4; bootstrap over the timed epochs of
      every code length); the parameter count of DRHN-15 (ch. 1; architecture alone on both sides);
    * direction rows: "deeper is better" (DRHN-3 - DRHN-1 mAP at each code length) and "longer codes are
      better" (48 - 12 bits mAP at each depth), in mAP points, paired bootstrap over the same queries, where
      the grid has both cells; with ``plain`` (:func:`run_plain`), "the hash layer does not hurt accuracy"
      (DRHN-n - plain ResNet-n). A direction with a cell stopped by its epoch cap (still improving) is
      ``inconclusive`` whatever its interval (``undecided``): an under-trained grid cannot test it.

    The thesis' tables are chosen by the number of classes (100: CIFAR-100 tables 5.6/5.7, else CIFAR-10).

    Parameters
    ----------
    sweep : :class:`SweepResult` (uses ``cells``, ``histories``, ``ap``, ``correct``, ``code_ms``).
    P : Params of the ``drhn`` section.
    data : :class:`SweepData` (uses the label arrays' lengths, ``dataset`` and ``num_classes``).

    Returns
    -------
    list of :class:`cbir.report.Row`
    """
    from cbir import intervals, reported
    from cbir.models.drhn import expected_parameters
    from cbir.report import Setting, direction_row, value_row

    ds = "cifar100" if data.num_classes == 100 else "cifar10"
    acc_src, map_src = _thesis_tables(ds)
    k = min(int(P["map_k"]), len(data.y_db))
    scale = run_scale(data)
    rep = reported.load(PAPER)

    def ref(source, setting, metric, dataset=ds):
        sel = rep[(rep.source == source) & (rep.dataset == dataset) & (rep.setting == setting) & (rep.metric == metric)]
        return reported.get(PAPER, source, dataset, setting, metric) if len(sel) == 1 else None

    def epochs(n, b):
        h = sweep.histories[(sweep.histories.n == n) & (sweep.histories.bits == b)]
        return {"epochs": int(h["epoch"].nunique())}

    def boot(x):
        return intervals.bootstrap_mean(np.asarray(x, np.float64), seed=int(P["seed"]))

    rows = []
    r = ref("Chapter 1", "n=15", "n_params_millions")
    if r is not None:
        p15 = expected_parameters(15, 48, 10) / 1e6
        rows.append(value_row("DRHN-15 has about 8 million parameters", r, p15, interval=(p15, p15),
                              interval_kind="exact count (no sampling)",
                              setting=Setting("architecture only", {}, model_name(15, 48, num_classes=10, trained=False),
                                              {}, protocol("params")),
                              note="architecture alone on both sides (48 bits, 10 classes; the thesis names neither): "
                                   "conv weights without bias + BN gamma/beta + hash + softmax layers"))
    for c in sweep.cells.itertuples():
        n, b = int(c.n), int(c.bits)
        label = f"n={n},bits={b}"
        budget = epochs(n, b)
        r = ref(acc_src, label, "accuracy_pct")
        if r is not None:
            corr = np.asarray(sweep.correct[(n, b)], bool)
            rows.append(value_row(f"DRHN-{n} {b} bits classification accuracy", r, 100.0 * corr.mean(),
                                  interval=intervals.wilson(int(corr.sum()), corr.size),
                                  interval_kind=f"Wilson, {corr.size} test images",
                                  setting=Setting(data.dataset, scale, model_name(n, b), budget, protocol("accuracy")),
                                  note=f"checkpoint: lowest validation loss of our split, stopped by {c.stopped_by} "
                                       "(thesis: final weights after 43 epochs)"))
        r = ref(map_src, label, "map_at_1000_pct")
        if r is not None:
            ap = 100.0 * np.asarray(sweep.ap[(n, b)], np.float64)
            rows.append(value_row(f"DRHN-{n} {b} bits retrieval mAP@{k} (thesis: mAP@{THESIS_MAP_K})", r, ap.mean(),
                                  interval=boot(ap), interval_kind=f"bootstrap over {ap.size} queries",
                                  setting=Setting(data.dataset, scale, model_name(n, b), budget, protocol("map", k=k))))
        r = ref("Table 5.5", label, "ms_per_code", "cifar10")
        if r is not None:
            t = np.asarray(sweep.code_ms[(n, b)], np.float64)
            tb = int(getattr(c, "timing_batch", 1))
            rows.append(value_row(f"DRHN-{n} {b} bits time to generate one code", r, float(np.median(t)),
                                  interval=(float(t.min()), float(t.max())),
                                  interval_kind=f"median, min-max over {t.size} timed passes (after warm-up) of "
                                                f"{int(P.get('timing_images', 0))} images, batch {tb}, 1 thread",
                                  setting=Setting(data.dataset, {}, model_name(n, b), {},
                                                  protocol("ms_per_code", device=str(c.code_device))),
                                  note="hardware-dependent: indicative only"))
    for n, g in sweep.cells.groupby("n"):
        r = ref("Table 5.4", f"n={int(n)}", "sec_per_epoch", "cifar10")
        if r is None:
            continue
        h = sweep.histories[sweep.histories.n == n]
        sec = h["seconds"].to_numpy(np.float64)
        rows.append(value_row(f"DRHN-{int(n)} training time per epoch", r, sec.mean(), interval=boot(sec),
                              interval_kind=f"bootstrap over {sec.size} timed epochs ({len(g)} code lengths)",
                              setting=Setting(data.dataset, {"images_per_epoch": images_per_epoch(data, P)}, model_name(int(n)),
                                              {}, protocol("sec_per_epoch", device=str(g.timing_device.iloc[0]))),
                              note="hardware-dependent: indicative only; ours includes the validation pass"))

    stopped = {(int(c.n), int(c.bits)): str(c.stopped_by) for c in sweep.cells.itertuples()}

    def training_note(hi, lo):
        """(note, undecided): a direction with a cell stopped by its epoch cap cannot be decided."""
        capped = [f"DRHN-{c[0]} {c[1]} bits" for c in (hi, lo) if stopped.get(c) == "epochs"]
        if capped:
            return "", capped_reason(capped)
        if all(stopped.get(c) == "patience" for c in (hi, lo)):
            return "; both cells stopped by patience (validation loss plateaued)", ""
        return "", ""

    def gain_row(claim, hi, lo, name, rep_hi, rep_lo, model):
        a, b_ = 100.0 * np.asarray(sweep.ap[hi], np.float64), 100.0 * np.asarray(sweep.ap[lo], np.float64)
        d = a - b_
        rh, rl = ref(map_src, rep_hi, "map_at_1000_pct"), ref(map_src, rep_lo, "map_at_1000_pct")
        budget = epochs(*hi)
        extra, undecided = training_note(hi, lo)
        return direction_row(claim, map_src, float(d.mean()), interval=boot(d),
                             interval_kind=f"paired bootstrap over {d.size} queries",
                             setting=Setting(data.dataset, scale, model, budget, protocol("map", k=k)),
                             paper=reported.setting(PAPER, name), metric=f"mAP@{k} gain (points)",
                             reported=(rh.value - rl.value) if rh is not None and rl is not None else None,
                             note="reported: the thesis' mAP@1000 difference" + extra, undecided=undecided)

    def acc_gain_row(claim, hi, lo, name, rep_hi, rep_lo, model):
        ca, cb = np.asarray(sweep.correct[hi], bool), np.asarray(sweep.correct[lo], bool)
        rh, rl = ref(acc_src, rep_hi, "accuracy_pct"), ref(acc_src, rep_lo, "accuracy_pct")
        extra, undecided = training_note(hi, lo)
        return direction_row(claim, acc_src, 100.0 * float(ca.mean() - cb.mean()),
                             interval=intervals.mcnemar_difference(ca, cb),
                             interval_kind=f"paired (McNemar discordant pairs) over {ca.size} test images",
                             setting=Setting(data.dataset, scale, model, epochs(*hi), protocol("accuracy")),
                             paper=reported.setting(PAPER, name), metric="accuracy gain (points)",
                             reported=(rh.value - rl.value) if rh is not None and rl is not None else None,
                             note="reported: the thesis' accuracy difference" + extra, undecided=undecided)

    have = {(int(n), int(b)) for n, b in zip(sweep.cells.n, sweep.cells.bits)}
    hi, lo = DEPTH_PAIR
    for b in sorted({b for _, b in have}):
        if (hi, b) in have and (lo, b) in have:
            for fn, what, tag in ((gain_row, "mAP", ""), (acc_gain_row, "accuracy", "acc_")):
                rows.append(fn(f"deeper is better: DRHN-{hi} beats DRHN-{lo} at {b} bits ({what} gain)", (hi, b), (lo, b),
                               f"{ds}_depth_{tag}n{hi}_vs_n{lo}_b{b}", f"n={hi},bits={b}", f"n={lo},bits={b}",
                               f"{model_name(hi, b)} vs {model_name(lo, b)}"))
    bhi, blo = BITS_PAIR
    for n in sorted({n for n, _ in have}):
        if (n, bhi) in have and (n, blo) in have:
            for fn, what, tag in ((gain_row, "mAP", ""), (acc_gain_row, "accuracy", "acc_")):
                rows.append(fn(f"longer codes are better: {bhi} beat {blo} bits at DRHN-{n} ({what} gain)", (n, bhi),
                               (n, blo), f"{ds}_bits_{tag}{bhi}_vs_{blo}_n{n}", f"n={n},bits={bhi}", f"n={n},bits={blo}",
                               f"{model_name(n, bhi)} vs {model_name(n, blo)}"))
    if plain is not None and ds == "cifar10":
        rows += _hash_layer_rows(sweep, plain, data, scale, stopped, epochs)
    return rows


def capped_reason(capped: Sequence[str]) -> str:
    """The ``undecided`` reason of a direction row with cells stopped by the epoch cap (:func:`paper_rows`)."""
    return (", ".join(capped) + " stopped by the epoch cap with the validation loss still improving "
            "(under-trained): the run cannot test the claim")


def _hash_layer_rows(sweep: SweepResult, plain: PlainResult, data: SweepData, scale: dict, stopped: dict,
                     epochs: Callable) -> list:
    """Direction rows "the hash layer does not hurt accuracy" (Sec. 5.1.2): DRHN-n minus the plain ResNet-n
    test accuracy at each code length of the grid, paired (McNemar) over the test images."""
    from cbir import intervals, reported
    from cbir.report import Setting, direction_row

    with_hash = reported.get(PAPER, "Section 5.1.2", "cifar10", "n=9,bits=48", "accuracy_pct").value
    without = reported.get(PAPER, "Section 5.1.2", "cifar10", "method=ResNet (Lasagne recipe)", "accuracy_pct").value
    plain_stop = dict(zip(plain.cells.n.astype(int), plain.cells.stopped_by.astype(str)))
    rows = []
    for (n, b), corr in sorted(sweep.correct.items()):
        if n not in plain.correct:
            continue
        ca, cb = np.asarray(corr, bool), np.asarray(plain.correct[n], bool)
        capped = ([f"DRHN-{n} {b} bits"] if stopped.get((n, b)) == "epochs" else []) + (
            [f"plain ResNet-{n}"] if plain_stop.get(n) == "epochs" else [])
        undecided = capped_reason(capped) if capped else ""
        rows.append(direction_row(
            f"the hash layer does not hurt accuracy: DRHN-{n} {b} bits vs plain ResNet-{n}", "Section 5.1.2",
            100.0 * float(ca.mean() - cb.mean()), interval=intervals.mcnemar_difference(ca, cb),
            interval_kind=f"paired (McNemar discordant pairs) over {ca.size} test images",
            setting=Setting(data.dataset, scale, f"{model_name(n, b)} vs {plain_name(n)}", epochs(n, b),
                            protocol("accuracy")),
            paper=reported.setting(PAPER, "cifar10_hash_layer_vs_plain"), metric="accuracy gain (points)",
            reported=with_hash - without,
            note="positive: the hash layer costs no accuracy; reported: 93.70 (DRHN) - 93.25 (the original ResNet "
                 "implementation), a one-off comparison of different depths in the thesis' text",
            undecided=undecided))
    return rows


def checked_table(pvo: pd.DataFrame) -> pd.DataFrame:
    """The seed-fixed columns of a paper-vs-ours table for the notebook's nbval-checked cell: claim, kind,
    verdict and ours rounded to 1 decimal (timings, which vary from run to run, left blank)."""
    ours = [("" if m in TIMING_METRICS or pd.isna(v) else f"{v:.1f}") for m, v in zip(pvo["metric"], pvo["ours"])]
    return pd.DataFrame({"claim": pvo["claim"], "kind": pvo["kind"], "verdict": pvo["verdict"], "ours": ours})


# ------------------------------------------------------------------------------------------- figures
def plot_heatmap(table: pd.DataFrame, title: str, fmt: str = ".1f", ax=None):
    """Heatmap of an ``n x bits`` table (Tables 5.1/5.3 layout). Returns ``(fig, ax)``."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    if ax is None:
        fig, ax = plt.subplots(figsize=(1.2 * table.shape[1] + 2, 0.5 * table.shape[0] + 1.5))
    else:
        fig = ax.figure
    sns.heatmap(table.astype(float), annot=True, fmt=fmt, cmap="viridis", cbar=False, ax=ax)
    ax.set_title(title)
    return fig, ax


def plot_history(hist: pd.DataFrame, title: str, best_epoch: int | None = None):
    """Loss and accuracy per epoch (Figs. 5.2/5.3): training, validation and test cross-entropy (the thesis'
    stopping criterion was the test loss; ours is the validation loss) and accuracies; the selected epoch
    dashed. Returns ``(fig, (ax_loss, ax_acc))``."""
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.2))
    for col, style, lab in (("train_loss", "o-", "train"), ("val_loss", "s-", "validation"), ("test_loss", "^-", "test")):
        if col in hist and hist[col].notna().any():
            a1.plot(hist.epoch, hist[col], style, label=f"{lab} loss")
    a1.set_xlabel("epoch"); a1.set_ylabel("cross-entropy"); a1.legend()
    for col, style, lab in (("train_acc", "o-", "train"), ("val_acc", "s-", "validation"), ("test_acc", "^-", "test")):
        if col in hist and hist[col].notna().any():
            a2.plot(hist.epoch, 100 * hist[col], style, label=f"{lab} accuracy")
    a2.set_xlabel("epoch"); a2.set_ylabel("%"); a2.legend()
    if best_epoch:
        for a in (a1, a2):
            a.axvline(best_epoch, color="k", lw=0.8, ls="--")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig, (a1, a2)


def plot_precision_curves(curves: pd.DataFrame):
    """Precision vs number of retrieved images, one panel per bit length (Figs. 5.5/5.6)."""
    import matplotlib.pyplot as plt

    bits = sorted(curves.bits.unique())
    fig, axes = plt.subplots(1, len(bits), figsize=(3.6 * len(bits), 3.2), squeeze=False, sharey=True)
    for ax, b in zip(axes[0], bits):
        for n, g in curves[curves.bits == b].groupby("n"):
            ax.plot(g.k, g.precision_pct, "o-", label=f"DRHN-{n}")
        ax.set_xscale("log"); ax.set_title(f"{b} bits"); ax.set_xlabel("retrieved images k")
    axes[0, 0].set_ylabel("precision@k (%)"); axes[0, -1].legend(fontsize=8)
    fig.tight_layout()
    return fig, axes


def plot_first_layer(image: np.ndarray, filters: np.ndarray, maps: np.ndarray):
    """Input, the 16 first-layer filters and their activation maps (Fig. 4.3)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 16, figsize=(16, 3.4))
    for ax in axes.ravel():
        ax.set_axis_off()
    axes[0, 0].imshow(image, interpolation="nearest"); axes[0, 0].set_title("input", fontsize=8)
    f = filters.transpose(0, 2, 3, 1)
    f = (f - f.min()) / max(float(f.max() - f.min()), 1e-12)
    for i in range(min(16, len(filters))):
        axes[1, i].imshow(f[i], interpolation="nearest")
        axes[2, i].imshow(maps[i], cmap="gray", interpolation="nearest")
    axes[1, 0].set_title("filters 16x3x3x3", fontsize=8, loc="left")
    axes[2, 0].set_title("BN-ReLU activations 16x32x32", fontsize=8, loc="left")
    fig.tight_layout()
    return fig, axes


def plot_code(image: np.ndarray, h: np.ndarray, title: str = ""):
    """One image, its hash-layer activations H and the code H > 0.5 (Fig. 4.4)."""
    import matplotlib.pyplot as plt

    fig, (a0, a1) = plt.subplots(1, 2, figsize=(10, 2.2), gridspec_kw={"width_ratios": [1, 6]})
    a0.imshow(image, interpolation="nearest"); a0.set_axis_off()
    colors = np.where(h > 0.5, "tab:blue", "tab:gray")
    a1.bar(np.arange(len(h)), h, color=colors)
    a1.axhline(0.5, color="k", lw=0.8, ls="--")
    a1.set_ylim(0, 1); a1.set_xlabel("hash unit"); a1.set_ylabel("H (sigmoid)")
    a1.set_title(title + "  code: " + "".join(str(int(v > 0.5)) for v in h), fontsize=8, family="monospace")
    fig.tight_layout()
    return fig, (a0, a1)


def depth_grid(data: SweepData, sweep: SweepResult, q: int, bits: int, depths: Sequence[int], top: int = 10):
    """Fig. 5.9 analogue: one query's top-``top`` at every depth, ``bits`` bits; ✓/✗ and green/red = same class."""
    from cbir.plots import image_grid

    imgs, titles, frames = [], [], []
    for n in depths:
        imgs.append(data.x_query[q]); titles.append(f"DRHN-{n}"); frames.append("black")
        for j in sweep.evals[(int(n), int(bits))]["rankings"][q, :top]:
            hit = data.y_db[j] == data.y_query[q]
            imgs.append(data.x_db[j]); titles.append(("✓ " if hit else "✗ ") + short_name(data.classes[data.y_db[j]], 8))
            frames.append("tab:green" if hit else "tab:red")
    return image_grid(imgs, titles, ncols=top + 1, frame_colors=frames, suptitle=f"{bits} bits, one query, all depths")


def short_name(name: str, width: int = 10) -> str:
    """Class name shortened for figure titles, keeping both ends (``synthetic_7`` -> ``syn..tic_7``)."""
    return name if len(name) <= width else name[:3] + ".." + name[-(width - 5):]


def retrieval_grid(data: SweepData, rankings: np.ndarray, query_ids: Sequence[int], top: int = 10,
                   suptitle: str | None = None):
    """Queries (first column) and their top-``top`` database images; same class = green frame and a "✓" in the
    title, other class = red frame and "✗" (Figs. 5.7-5.9)."""
    from cbir.plots import image_grid

    imgs, titles, frames = [], [], []
    for q in query_ids:
        imgs.append(data.x_query[q]); titles.append(f"query: {short_name(data.classes[data.y_query[q]])}"); frames.append("black")
        for j in rankings[q, :top]:
            hit = data.y_db[j] == data.y_query[q]
            imgs.append(data.x_db[j]); titles.append(("✓ " if hit else "✗ ") + short_name(data.classes[data.y_db[j]], 8))
            frames.append("tab:green" if hit else "tab:red")
    return image_grid(imgs, titles, ncols=top + 1, frame_colors=frames, suptitle=suptitle)


# ------------------------------------------------------------------------------------------- teaching
def classification_vs_retrieval(ev: Mapping[str, np.ndarray], data: SweepData, k: int = 10) -> pd.DataFrame:
    """How the softmax's answer and the Hamming ranking of the same network relate, per query group.

    Retrieval ranks the database by the Hamming distance of the thresholded hash layer (Eq. 4.7); the
    classifier reads the softmax *above* it (Eq. 4.5). They can disagree: a query can sit in its own class'
    code cluster (all top-k relevant) while the softmax, trained a few epochs, names another class. For the
    correctly and wrongly classified queries: how many there are, their mean P@k (same label as the query)
    and the share of their top-k that carries the *predicted* label.

    Returns
    -------
    DataFrame ``queries, classified, n, p_at_k_pct, topk_of_predicted_class_pct`` (two rows).
    """
    top = np.asarray(ev["rankings"])[:, :k]
    pred = np.asarray(ev["logits_q"]).argmax(1)
    same = data.y_db[top] == data.y_query[:, None]
    of_pred = data.y_db[top] == pred[:, None]
    ok = pred == data.y_query
    rows = []
    for name, m in (("correctly", ok), ("wrongly", ~ok)):
        rows.append({"classified": name, "n": int(m.sum()),
                     f"p_at_{k}_pct": 100.0 * float(same[m].mean()) if m.any() else np.nan,
                     "topk_of_predicted_class_pct": 100.0 * float(of_pred[m].mean()) if m.any() else np.nan})
    return pd.DataFrame(rows)


def _hamming_rank_checker(fn) -> bool:
    """``fn(codes_db, code_q)`` must return all database indices by (Hamming distance, index)."""
    from cbir.index import hamming_linear_scan

    rng = np.random.default_rng(3)
    for bits in (8, 12, 48):
        db = rng.integers(0, 2, (60, bits)).astype(np.uint8)
        q = rng.integers(0, 2, bits).astype(np.uint8)
        want = hamming_linear_scan(pack_bits(db), pack_bits(q[None]), len(db))[1][0]
        if not np.array_equal(np.asarray(fn(db, q)).ravel(), want):
            return False
    return True


def _hamming_rank_solution(codes_db: np.ndarray, code_q: np.ndarray) -> np.ndarray:
    d = (np.asarray(codes_db) != np.asarray(code_q)[None]).sum(1)
    return np.lexsort((np.arange(len(d)), d))


def _params_checker(fn) -> bool:
    """``fn(n, bits, num_classes)`` must equal the trainable parameter count of DRHN-n."""
    from cbir.models.drhn import expected_parameters

    return all(int(fn(n, b, c)) == expected_parameters(n, b, c) for n in (1, 2, 5) for b in (12, 48) for c in (10, 100))


def _params_solution(n: int, bits: int, num_classes: int) -> int:
    from cbir.models.drhn import GROUPS, STEM_CHANNELS

    total, c = STEM_CHANNELS * 3 * 9 + 2 * STEM_CHANNELS, STEM_CHANNELS
    for c_out, _ in GROUPS:
        for i in range(n):
            c_in = c if i == 0 else c_out
            total += c_out * c_in * 9 + 2 * c_out + c_out * c_out * 9 + 2 * c_out
        c = c_out
    return total + c * bits + bits + bits * num_classes + num_classes


def _exercises():
    from cbir.exercises import Exercise

    return {
        "03.1": Exercise(
            NOTEBOOK, "medium",
            "Write hamming_rank(codes_db, code_q): codes as 0/1 uint8 arrays (N, bits) and (bits,); return every "
            "database index ordered by Hamming distance to the query, ties by index (Eq. 4.7 ranking), no loop "
            "over database items. Pass the function itself.",
            _hamming_rank_checker,
            "d = (codes_db != code_q).sum(1), then np.lexsort((np.arange(len(d)), d)): the last key sorts first"),
        "03.2": Exercise(
            NOTEBOOK, "hard",
            "Write n_params(n, bits, num_classes): the trainable parameters of DRHN-n (Table 4.1): 3x3 convs "
            "without bias, BN gamma+beta per conv, option-A shortcuts (no parameters), hash layer and softmax "
            "with biases. Check: DRHN-15, 48 bits, 10 classes has ~8.02 M. Pass the function itself.",
            _params_checker,
            "stem 3->16; six groups (16, 32, 64, 64, 64, 128 channels), n blocks of two convs each, the first "
            "block of a group reads the previous group's width; then 128*bits + bits + bits*classes + classes"),
    }


EXERCISES = _exercises()
SOLUTIONS = {"03.1": _hamming_rank_solution, "03.2": _params_solution}
