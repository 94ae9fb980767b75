"""The papers' REPORTED numbers and settings — the one place they live, used only for side-by-side comparison.

One CSV per paper in ``lib/cbir/reported/`` with columns
``paper, source, dataset, setting, metric, value, paper_setting, note``: ``source`` cites the table/figure,
``metric`` names the unit (``accuracy_pct``, ``map``, ``max_f_fraction``, ...), ``paper_setting`` names
the setting the paper measured it in. The settings are in ``lib/cbir/reported/settings/<paper>.csv``
(columns ``name, dataset, scale, model, budget, protocol, note``; ``scale`` and ``budget`` as
``name=count;...``): the paper's side of the five axes of :class:`cbir.report.Setting`. Nothing here is
ever shown as our result.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import pandas as pd

COLUMNS = ["paper", "source", "dataset", "setting", "metric", "value", "note"]
SETTING_COLUMNS = ["name", "dataset", "scale", "model", "budget", "protocol", "note"]
FOLDER = Path(__file__).with_name("reported")


def load(paper: str | None = None) -> pd.DataFrame:
    """All reported rows (or one paper's: the CSV stem, e.g. ``"01_rdcnn"``, or the ``paper`` column)."""
    frames = []
    for f in sorted(FOLDER.glob("*.csv")):
        df = pd.read_csv(f, dtype={"value": float}, keep_default_na=False, na_values=[""])
        missing = set(COLUMNS) - set(df.columns)
        if missing:
            raise ValueError(f"{f} lacks columns {sorted(missing)}; required: {COLUMNS}")
        if "paper_setting" not in df.columns:
            df["paper_setting"] = ""
        df["paper_setting"] = df["paper_setting"].fillna("")
        df["file"] = f.stem
        frames.append(df[COLUMNS + ["paper_setting", "file"]])
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS + ["paper_setting", "file"])
    if paper is not None:
        out = out[(out["file"] == paper) | (out["paper"] == paper)].reset_index(drop=True)
    return out


def _select(paper: str, source: str, dataset: str, setting: str, metric: str) -> pd.Series:
    df = load(paper)
    sel = df[(df.source == source) & (df.dataset == dataset) & (df.setting == setting) & (df.metric == metric)]
    if len(sel) != 1:
        raise KeyError(f"{len(sel)} reported rows match {(paper, source, dataset, setting, metric)}; "
                       f"rows of {paper}: {df[['source', 'dataset', 'setting', 'metric']].values.tolist()[:20]}")
    return sel.iloc[0]


def value(paper: str, source: str, dataset: str, setting: str, metric: str) -> float:
    """The single reported value matching all keys; raises KeyError listing candidates otherwise."""
    return float(_select(paper, source, dataset, setting, metric)["value"])


@lru_cache(maxsize=None)
def _settings(paper: str) -> pd.DataFrame:
    f = FOLDER / "settings" / f"{paper}.csv"
    if not f.exists():
        raise FileNotFoundError(f"no paper settings for {paper!r}: create {f} with columns {SETTING_COLUMNS}")
    df = pd.read_csv(f, keep_default_na=False, na_values=[])
    missing = set(SETTING_COLUMNS) - set(df.columns)
    if missing:
        raise ValueError(f"{f} lacks columns {sorted(missing)}; required: {SETTING_COLUMNS}")
    return df


def setting(paper: str, name: str):
    """The paper's :class:`cbir.report.Setting` called ``name`` in ``reported/settings/<paper>.csv``."""
    from cbir.report import Setting

    df = _settings(paper)
    sel = df[df["name"] == name]
    if len(sel) != 1:
        raise KeyError(f"{len(sel)} settings named {name!r} in lib/cbir/reported/settings/{paper}.csv; "
                       f"names: {df['name'].tolist()}")
    r = sel.iloc[0]
    return Setting(dataset=r["dataset"], scale=r["scale"], model=r["model"], budget=r["budget"],
                   protocol=r["protocol"])


@dataclass(frozen=True)
class Reported:
    """One reported number with the setting the paper measured it in."""

    paper: str
    source: str
    dataset: str
    setting_label: str
    metric: str
    value: float
    setting: object  # cbir.report.Setting
    note: str = ""


def get(paper: str, source: str, dataset: str, setting_label: str, metric: str) -> Reported:
    """The reported row matching all keys, with its paper setting resolved (see the module docstring)."""
    r = _select(paper, source, dataset, setting_label, metric)
    if not r["paper_setting"]:
        raise ValueError(f"reported row {(paper, source, dataset, setting_label, metric)} names no paper_setting; "
                         f"add one (a name from lib/cbir/reported/settings/{paper}.csv)")
    return Reported(paper, source, dataset, setting_label, metric, float(r["value"]),
                    setting(paper, r["paper_setting"]), str(r["note"] or ""))
