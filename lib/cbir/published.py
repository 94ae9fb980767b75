"""The committed real-data results of a notebook (``outputs/medium/``), for its *Results on real data* section.

A fresh clone has no real data and no hour to spend, yet ``outputs/medium/`` is committed: its run
records (:mod:`cbir.records`), paper-vs-ours rows (``report_rows/<notebook>.csv``), result tables and
figures. :func:`load` gathers what one notebook published, so its closing section shows the real-data
numbers beside the smoke ones it just computed, with the run that produced them (commit, wall time, data).
Nothing here computes: it reads files that a ``medium`` run wrote.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import pandas as pd

from cbir.params import repo_root


@dataclass
class Published:
    """What one notebook's latest run of ``profile`` published (empty when it never ran)."""

    notebook: str
    profile: str
    base: Path
    record: dict | None
    rows: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def available(self) -> bool:
        """True when the latest run finished (``ok``) and left its outputs."""
        return bool(self.record) and self.record.get("status") == "ok"

    def describe(self) -> str:
        """One paragraph: which run these are (status, commit, wall time, datasets), or how to make them."""
        if not self.record:
            return (f"{self.notebook}: no {self.profile} run is published here yet; run "
                    f"`make reproduce PROFILE={self.profile} NB={self.notebook[:2]}` (needs ../shared/data).")
        r = self.record
        data = ", ".join(f"{d['name']} [{d['split']}] {d['n']}" for d in r.get("data", [])) or "none recorded"
        when = str(r.get("finished", r.get("started", "")))[:16].replace("T", " ")
        text = (f"{self.notebook}, profile {self.profile}: run {r.get('status')} at commit "
                f"{str(r.get('commit'))[:10]}{' (dirty tree)' if r.get('dirty') else ''}, {when}, "
                f"{float(r.get('wall_s', 0)) / 60:.1f} min on {r.get('machine', '?')}; data: {data}")
        if not self.available:
            text += f". It did not finish ({r.get('error', '')[:200]}): no results are shown from it"
        return text

    def tables(self) -> list[str]:
        """Names of the result tables (``tables/<name>.csv``, timing tables excluded) of this notebook."""
        return sorted(p.stem for p in (self.base / "tables").glob(f"{self.notebook[:2]}_*.csv")
                      if not p.stem.endswith("_timing")) if self.available else []

    def table(self, name: str) -> pd.DataFrame:
        """One published result table as a DataFrame (``name`` as in :meth:`tables`)."""
        path = self.base / "tables" / f"{name}.csv"
        if not self.available or not path.is_file():
            raise FileNotFoundError(f"no published table {name!r} for {self.notebook} ({self.profile}); "
                                    f"have: {self.tables()}")
        return pd.read_csv(path)

    def figures(self) -> list[Path]:
        """Paths of the published figures of this notebook."""
        return sorted((self.base / "figures").glob(f"{self.notebook[:2]}_*.png")) if self.available else []

    def figure(self, name: str) -> Path:
        """Path of one published figure (``figures/<name>.png``)."""
        path = self.base / "figures" / f"{name}.png"
        if not self.available or not path.is_file():
            raise FileNotFoundError(f"no published figure {name!r} for {self.notebook} ({self.profile}); "
                                    f"have: {[p.stem for p in self.figures()]}")
        return path

    def verdicts(self) -> pd.DataFrame:
        """Verdict counts of this notebook's paper-vs-ours rows (:func:`cbir.report.summary`)."""
        from cbir.report import summary

        return summary(self.rows) if len(self.rows) else pd.DataFrame()

    def verdict_rows(self, digits: int = 2, metrics: Sequence[str] | None = None,
                     directions_first: bool = True) -> pd.DataFrame:
        """The rows as a *Results on real data* section shows them first: ``claim, kind, reported, ours,
        interval, verdict``, ours' 95 % interval as ``"[lo, hi]"`` (empty where there is none), numbers rounded to ``digits``.

        ``metrics``: keep the direction rows and only the value rows of these metrics (default: all rows);
        ``directions_first``: the direction rows (the paper's claims about effects) before the value rows.
        Empty when nothing is published.
        """
        if not len(self.rows):
            return pd.DataFrame()
        r = self.rows
        if metrics is not None:
            r = r[(r.kind == "direction") | r.metric.isin(list(metrics))]
        if directions_first:
            r = r.assign(first=r.kind != "direction").sort_values("first", kind="stable")
        out = r.assign(interval=[f"[{lo:.{digits}f}, {hi:.{digits}f}]" if lo == lo else ""  # NaN: no interval
                                 for lo, hi in zip(r.lo, r.hi)])
        return out[["claim", "kind", "reported", "ours", "interval", "verdict"]].round(digits).reset_index(drop=True)

    def show(self) -> pd.DataFrame:
        """The rows as a notebook prints them (:func:`cbir.report.show`)."""
        from cbir.report import show

        return show(self.rows) if len(self.rows) else pd.DataFrame()


def load(notebook: str, profile: str = "medium", root: Path | None = None) -> Published:
    """The published outputs of ``notebook`` (e.g. ``"00_quickstart"``) under ``outputs/<profile>/``."""
    from cbir import records

    root = root or repo_root()
    base = root / "outputs" / profile
    rec = records.read(profile, notebook, root=root)
    pub = Published(notebook, profile, base, rec)
    rows_csv = base / "report_rows" / f"{notebook}.csv"
    if pub.available and rows_csv.is_file():
        pub.rows = pd.read_csv(rows_csv)
    return pub


def suite_verdicts(profile: str = "medium", root: Path | None = None) -> pd.DataFrame:
    """Verdict counts per notebook of the suite's published report (``outputs/<profile>/report.csv``), with a
    total row; empty when no report is published."""
    from cbir.report import summary

    path = (root or repo_root()) / "outputs" / profile / "report.csv"
    if not path.is_file():
        return pd.DataFrame()
    counts = summary(pd.read_csv(path))
    counts.loc["all"] = counts.sum()
    return counts


README_START = "<!-- verdicts:start (written by cbir.published.readme_verdicts; tests/test_published.py checks it) -->"
README_END = "<!-- verdicts:end -->"


def readme_verdicts(profile: str = "medium", root: Path | None = None) -> str:
    """The suite's verdict counts as the markdown block the README shows (between :data:`README_START`
    and :data:`README_END`)."""
    counts = suite_verdicts(profile, root)
    if counts.empty:
        return f"{README_START}\n(no {profile} report published yet)\n{README_END}"
    cols = list(counts.columns)
    lines = ["| notebook | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for nb, row in counts.iterrows():
        name = f"**{nb}**" if nb == "all" else f"`{nb}`"
        lines.append(f"| {name} | " + " | ".join(str(int(v)) for v in row) + " |")
    return "\n".join([README_START, *lines, README_END])


def write_readme_verdicts(profile: str = "medium", root: Path | None = None) -> Path:
    """Replace the verdict block of ``README.md`` with :func:`readme_verdicts` (run after publishing)."""
    path = (root or repo_root()) / "README.md"
    text = path.read_text()
    a, b = text.index(README_START), text.index(README_END) + len(README_END)
    path.write_text(text[:a] + readme_verdicts(profile, root) + text[b:])
    return path
