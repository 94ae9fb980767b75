"""The papers' REPORTED numbers — the one place they live, used only for side-by-side comparison.

One CSV per paper in ``lib/cbir/reported/`` with columns
``paper, source, dataset, setting, metric, value, note``: ``source`` cites the table/figure, ``metric``
names the unit (``accuracy_pct``, ``map``, ``f_measure``, ...). Nothing here is ever shown as our result.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

COLUMNS = ["paper", "source", "dataset", "setting", "metric", "value", "note"]
FOLDER = Path(__file__).with_name("reported")


def load(paper: str | None = None) -> pd.DataFrame:
    """All reported rows (or one paper's: the CSV stem, e.g. ``"01_rdcnn"``, or the ``paper`` column)."""
    frames = []
    for f in sorted(FOLDER.glob("*.csv")):
        df = pd.read_csv(f, dtype={"value": float}, keep_default_na=False, na_values=[""])
        missing = set(COLUMNS) - set(df.columns)
        if missing:
            raise ValueError(f"{f} lacks columns {sorted(missing)}; required: {COLUMNS}")
        df["file"] = f.stem
        frames.append(df[COLUMNS + ["file"]])
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS + ["file"])
    if paper is not None:
        out = out[(out["file"] == paper) | (out["paper"] == paper)].reset_index(drop=True)
    return out


def value(paper: str, source: str, dataset: str, setting: str, metric: str) -> float:
    """The single reported value matching all keys; raises KeyError listing candidates otherwise."""
    df = load(paper)
    sel = df[(df.source == source) & (df.dataset == dataset) & (df.setting == setting) & (df.metric == metric)]
    if len(sel) != 1:
        raise KeyError(f"{len(sel)} reported rows match {(paper, source, dataset, setting, metric)}; "
                       f"rows of {paper}: {df[['source', 'dataset', 'setting', 'metric']].values.tolist()[:20]}")
    return float(sel["value"].iloc[0])
