"""One figure style, figure/table saving into the run's output folders, image grids."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def setup_style() -> None:
    """Seaborn 'whitegrid' with a colour-blind palette and a fixed figure DPI (stable PNG sizes).

    Figures show at 100 dpi in the notebook (saved at 110); axes titles are ``medium`` (12 pt in seaborn's
    notebook context), and the suite's explicit title sizes are at least 9 pt.
    """
    import seaborn as sns

    sns.set_theme(style="whitegrid", palette="colorblind", context="notebook")
    plt.rcParams.update({"figure.dpi": 100, "savefig.dpi": 110, "figure.figsize": (6.4, 4.0),
                         "svg.hashsalt": "cbir", "axes.titlesize": "medium"})


def _dir(P: Mapping[str, Any] | Any, attr: str) -> Path:
    return Path(getattr(P, attr))


def savefig(fig: plt.Figure, name: str, P: Any, svg: bool = False) -> Path:
    """Save ``fig`` as ``<out_dir>/figures/<name>.png`` (and .svg) and return the PNG path."""
    path = _dir(P, "figures_dir") / f"{name}.png"
    fig.savefig(path, bbox_inches="tight", metadata={"Software": None})
    if svg:
        fig.savefig(path.with_suffix(".svg"), bbox_inches="tight", metadata={"Date": None})
    return path


#: Columns that change from run to run (wall-clock times, speeds, where it ran, cache hits).
TIMING_COLUMNS = frozenset({
    "seconds", "seconds_max", "train_seconds", "epoch_seconds", "coarse_s", "fine_s", "total_s", "sec_per_epoch",
    "ms_per_code", "queries_per_s", "images_per_s", "speedup", "speedup_lo", "speedup_hi", "timing_device",
    "code_device", "from_cache", "device"})
#: Paper-vs-ours metrics that are timings (their rows go with the timings).
TIMING_METRICS = frozenset({"ms_per_code", "sec_per_epoch", "speedup_x", "hashing_search_s", "linear_search_s"})


def is_timing_table(name: str) -> bool:
    """Tables named ``*timing*`` or ``*speed*`` hold timings by design and are written whole."""
    return "timing" in name or "speed" in name


def save_table(df: pd.DataFrame, name: str, P: Any, float_format: str = "%.6g") -> Path:
    """Write ``df`` to ``<out_dir>/tables/<name>.csv`` (deterministic float format) and return the path.

    Result tables hold results only, so two identical runs write byte-identical result CSVs: the columns of
    :data:`TIMING_COLUMNS` (and paper-vs-ours rows whose metric is in :data:`TIMING_METRICS`) are left out of
    ``<name>.csv`` and the whole table is also written as ``<name>_timing.csv``. Tables named like
    :func:`is_timing_table` are written whole.
    """
    folder = _dir(P, "tables_dir")
    path = folder / f"{name}.csv"
    timing_cols = [c for c in df.columns if c in TIMING_COLUMNS]
    timing_rows = df["metric"].isin(TIMING_METRICS) if "metric" in df.columns else pd.Series(False, index=df.index)
    if is_timing_table(name) or not (timing_cols or timing_rows.any()):
        df.to_csv(path, index=False, float_format=float_format)
        return path
    df.to_csv(folder / f"{name}_timing.csv", index=False, float_format=float_format)
    df[~timing_rows].drop(columns=timing_cols).to_csv(path, index=False, float_format=float_format)
    return path


def image_grid(images: Sequence[np.ndarray] | np.ndarray, titles: Sequence[str] | None = None, ncols: int = 8,
               frame_colors: Sequence[str | None] | None = None, size: float = 1.3,
               suptitle: str | None = None, title_size: float = 9) -> plt.Figure:
    """A grid of uint8 images with optional titles (``title_size`` pt) and coloured frames (e.g. green relevant /
    red not; add a text mark such as ✓ / ✗ to the titles so the grid does not rest on colour alone)."""
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.3 if suptitle else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.set_xticks([])
        ax.set_yticks([])
        ax.grid(False)
        if i >= n:
            ax.axis("off")
            continue
        im = np.asarray(images[i])
        ax.imshow(im if im.ndim == 3 and im.shape[-1] == 3 else im.squeeze(), cmap=None if im.ndim == 3 else "gray",
                  interpolation="nearest")
        if titles is not None:
            ax.set_title(str(titles[i]), fontsize=title_size)
        color = frame_colors[i] if frame_colors is not None else None
        for spine in ax.spines.values():
            spine.set_visible(color is not None)
            if color is not None:
                spine.set_edgecolor(color)
                spine.set_linewidth(3)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    return fig
