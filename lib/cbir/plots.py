"""One figure style, figure/table saving into the run's output folders, image grids."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def setup_style() -> None:
    """Seaborn 'whitegrid' with a colour-blind palette and a fixed figure DPI (stable PNG sizes)."""
    import seaborn as sns

    sns.set_theme(style="whitegrid", palette="colorblind", context="notebook")
    plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 110, "figure.figsize": (6.4, 4.0),
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


def save_table(df: pd.DataFrame, name: str, P: Any, float_format: str = "%.6g") -> Path:
    """Write ``df`` to ``<out_dir>/tables/<name>.csv`` (deterministic float format) and return the path."""
    path = _dir(P, "tables_dir") / f"{name}.csv"
    df.to_csv(path, index=False, float_format=float_format)
    return path


def image_grid(images: Sequence[np.ndarray] | np.ndarray, titles: Sequence[str] | None = None, ncols: int = 8,
               frame_colors: Sequence[str | None] | None = None, size: float = 1.3,
               suptitle: str | None = None) -> plt.Figure:
    """A grid of uint8 images with optional titles and coloured frames (e.g. green relevant / red not)."""
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
            ax.set_title(str(titles[i]), fontsize=7)
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
