"""One seeded training loop for every paper: progress bar, per-epoch checkpoints, resume, model selection.

A method contributes an ``nn.Module`` and a loss; :func:`fit` does the rest. Reproducibility: the
shuffling order and augmentation of epoch ``e`` come from a generator seeded with ``(seed, e)`` and the
global torch RNG is re-seeded at the start of every epoch, so an interrupted run resumed from its last
checkpoint ends with the same weights as an uninterrupted one. Model selection uses ``val_data`` only —
never the test set.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from cbir.cache import CorruptArtifact, load_torch, save_torch_atomic

Data = tuple[Any, Any]


@dataclass
class FitResult:
    """What :func:`fit` returns: per-epoch history, the selected epoch and the model (best weights loaded)."""

    model: nn.Module
    history: pd.DataFrame
    best_epoch: int
    best_score: float | None
    resumed_from: int = 0
    extra: dict = field(default_factory=dict)


def images_to_tensor(images: np.ndarray, mean: float | tuple = 0.5, std: float | tuple = 0.5) -> torch.Tensor:
    """uint8 NHWC images -> float32 NCHW tensor, ``(x / 255 - mean) / std`` per channel."""
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise TypeError(f"images must be uint8 (N, H, W, C), got {images.dtype} {images.shape}")
    t = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    m = torch.as_tensor(mean, dtype=torch.float32).reshape(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32).reshape(1, -1, 1, 1)
    return (t - m) / s


def _tensor(x: Any) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))


def default_logits(output: Any) -> torch.Tensor:
    """Model outputs may be logits or a tuple whose last item is the logits (e.g. ``(h, logits)``)."""
    return output[-1] if isinstance(output, (tuple, list)) else output


@torch.no_grad()
def predict(model: nn.Module, x: Any, batch_size: int = 256, fn: Callable[[Any], torch.Tensor] | None = None,
            device: torch.device | str | None = None) -> np.ndarray | tuple[np.ndarray, ...]:
    """Batched inference in eval mode; returns NumPy (a tuple when the model returns a tuple)."""
    first = next(model.parameters(), None)
    device = torch.device(device or (first.device if first is not None else "cpu"))
    model.eval()
    x = _tensor(x)
    outs: list = []
    for s in range(0, len(x), batch_size):
        o = model(x[s:s + batch_size].to(device))
        o = fn(o) if fn is not None else o
        outs.append(tuple(t.cpu() for t in o) if isinstance(o, (tuple, list)) else o.cpu())
    if outs and isinstance(outs[0], tuple):
        return tuple(torch.cat([o[i] for o in outs]).numpy() for i in range(len(outs[0])))
    return torch.cat(outs).numpy() if outs else np.zeros((0,))


def accuracy(model: nn.Module, data: Data, batch_size: int = 512, logits_fn=default_logits) -> float:
    """Classification accuracy of ``argmax(logits)`` on ``(x, y)``."""
    x, y = data
    logits = predict(model, x, batch_size, fn=logits_fn)
    return float((np.asarray(logits).argmax(1) == np.asarray(y)).mean())


def fit(model: nn.Module, train_data: Data, *, epochs: int, batch_size: int, seed: int,
        optimizer: torch.optim.Optimizer | Callable[[nn.Module], torch.optim.Optimizer],
        loss_fn: Callable[[Any, torch.Tensor], torch.Tensor] | None = None,
        scheduler: Callable[[torch.optim.Optimizer], Any] | None = None,
        val_data: Data | None = None, val_metric: Callable[[nn.Module, Data], float] | None = None,
        augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
        ckpt_dir: str | Path | None = None, desc: str = "train", device: torch.device | str | None = None,
        progress: bool = True, logits_fn: Callable[[Any], torch.Tensor] = default_logits,
        stop_after: int | None = None, restore_best: bool = True, patience: int | None = None,
        epoch_metrics: Callable[[nn.Module], dict[str, float]] | None = None) -> FitResult:
    """Train ``model`` for ``epochs`` epochs of mini-batch gradient descent.

    Parameters
    ----------
    model : nn.Module
        Returns logits, or a tuple whose last item is logits (``logits_fn`` picks them).
    train_data, val_data : (x, y)
        Tensors or arrays; x already float NCHW (see :func:`images_to_tensor`) or features; y int64 labels
        (classification) or float targets (regression; accuracy is then not reported).
    optimizer : Optimizer or callable(model) -> Optimizer
    loss_fn : callable(output, y) -> scalar; default cross-entropy on ``logits_fn(output)``.
    scheduler : callable(optimizer) -> LR scheduler stepped once per epoch, optional.
    val_metric : callable(model, val_data) -> float (higher is better); default accuracy.
    augment : callable(x_batch, generator) -> x_batch, optional (e.g. mirror augmentation).
    ckpt_dir : path, optional
        ``last.pt`` is written atomically after every epoch and resumed from when present; a finished
        run is returned from it without training.
    stop_after : int, optional
        Stop after this many epochs in *this call* (to test/demonstrate resuming).
    restore_best : bool, default True
        With ``val_data``: load the weights of the best validation epoch at the end. ``False`` keeps the
        last epoch's weights and records ``val_score`` per epoch as a monitor only (e.g. a learning curve on
        the test split, which must not select the model).
    patience : int, optional
        Early stopping (needs ``val_data``): stop once the validation score has not improved for
        ``patience`` consecutive epochs; ``epochs`` stays the cap. ``None`` (default) trains all epochs.
        ``result.extra["stopped_by"]`` says which came first: ``"patience"`` or ``"epochs"``.
    epoch_metrics : callable(model) -> dict of floats, optional
        Called after every epoch (after the validation score); its items become extra history columns
        (e.g. validation and test loss for a Fig.-5.3-style plot). They never select the model.

    Returns
    -------
    FitResult
        ``history`` columns: epoch, train_loss, train_acc, val_score, seconds. With ``val_data`` (and
        ``restore_best``) the model holds the weights of the best validation epoch (also when stopped by
        ``patience``).
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs={epochs} and batch_size={batch_size} must be >= 1")
    if patience is not None and (patience < 1 or val_data is None):
        raise ValueError(f"patience={patience} needs val_data and must be >= 1 (or None for no early stopping)")
    device = torch.device(device or "cpu")
    model.to(device)
    x_tr, y_tr = _tensor(train_data[0]), _tensor(train_data[1])
    if len(x_tr) != len(y_tr) or len(x_tr) == 0:
        raise ValueError(f"train_data has {len(x_tr)} inputs and {len(y_tr)} targets; need equal, non-zero")
    classify = not torch.is_floating_point(y_tr)
    loss_fn = loss_fn or (lambda out, y: nn.functional.cross_entropy(logits_fn(out), y))
    opt = optimizer(model) if callable(optimizer) and not isinstance(optimizer, torch.optim.Optimizer) else optimizer
    sched = scheduler(opt) if scheduler is not None else None
    if val_data is not None and val_metric is None:
        val_metric = lambda m, d: accuracy(m, d, logits_fn=logits_fn)  # noqa: E731

    rows: list[dict] = []
    start, best_score, best_epoch, best_state = 0, None, 0, None
    ckpt = Path(ckpt_dir) / "last.pt" if ckpt_dir is not None else None
    state = None
    if ckpt is not None and ckpt.exists():
        try:
            state = load_torch(ckpt)
        except CorruptArtifact:
            state = None  # reported and removed: train from the start
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        if sched is not None and state.get("scheduler") is not None:
            sched.load_state_dict(state["scheduler"])
        rows, start = state["history"], int(state["epoch"])
        best_score, best_epoch, best_state = state["best_score"], state["best_epoch"], state["best_state"]
    resumed_from = start

    from tqdm.auto import tqdm

    def _patience_hit(rows_: list[dict], best: int) -> bool:
        return patience is not None and bool(rows_) and rows_[-1]["epoch"] - best >= patience

    done_here = 0
    bar = tqdm(range(start, epochs), desc=desc, disable=not progress, initial=start, total=epochs)
    for epoch in bar:
        if stop_after is not None and done_here >= stop_after:
            break
        if _patience_hit(rows, best_epoch):
            break
        t0 = time.perf_counter()
        torch.manual_seed(seed * 100003 + epoch)
        gen = torch.Generator().manual_seed(seed * 1000003 + epoch)
        perm = torch.randperm(len(x_tr), generator=gen)
        model.train()
        tot_loss, tot_correct, seen = 0.0, 0, 0
        for s in range(0, len(perm), batch_size):
            idx = perm[s:s + batch_size]
            xb, yb = x_tr[idx], y_tr[idx]
            if augment is not None:
                xb = augment(xb, gen)
            xb, yb = xb.to(device), yb.to(device)
            out = model(xb)
            loss = loss_fn(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot_loss += float(loss.detach()) * len(idx)
            if classify:
                tot_correct += int((logits_fn(out).detach().argmax(1) == yb).sum())
            seen += len(idx)
        if sched is not None:
            sched.step()
        row = {"epoch": epoch + 1, "train_loss": tot_loss / seen,
               "train_acc": tot_correct / seen if classify else np.nan}
        if val_data is not None:
            score = float(val_metric(model, val_data))
            row["val_score"] = score
            if best_score is None or score > best_score:
                best_score, best_epoch = score, epoch + 1
                best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        row["seconds"] = time.perf_counter() - t0
        if epoch_metrics is not None:
            row.update({k: float(v) for k, v in epoch_metrics(model).items()})
        rows.append(row)
        bar.set_postfix({k: round(v, 4) for k, v in row.items() if k in ("train_loss", "train_acc", "val_score")})
        if ckpt is not None:
            save_torch_atomic({"model": model.state_dict(), "optimizer": opt.state_dict(),
                               "scheduler": sched.state_dict() if sched is not None else None,
                               "epoch": epoch + 1, "history": rows, "best_score": best_score,
                               "best_epoch": best_epoch, "best_state": best_state}, ckpt)
        done_here += 1
    bar.close()
    stopped_early = _patience_hit(rows, best_epoch)
    finished = bool(rows) and (rows[-1]["epoch"] == epochs or stopped_early)
    if val_data is not None and best_state is not None and finished and restore_best:
        model.load_state_dict(best_state)
    if val_data is None:
        best_epoch = rows[-1]["epoch"] if rows else 0
    cols = ["epoch", "train_loss", "train_acc", "val_score", "seconds"]
    cols += [k for k in (rows[0] if rows else {}) if k not in cols]
    hist = pd.DataFrame(rows, columns=cols)
    extra = {"stopped_by": ("patience" if stopped_early else "epochs") if finished else "interrupted"}
    return FitResult(model, hist, best_epoch, best_score, resumed_from, extra)
