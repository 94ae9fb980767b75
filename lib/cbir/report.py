"""Paper-vs-ours rows and their verdicts: the one place that decides whether a paper's claim held.

A row is one claim of a paper, built by a notebook's experiment module with :func:`value_row` or
:func:`direction_row`; a notebook passes its rows to :func:`paper_vs_ours` and prints the table. Nothing
else in the suite decides comparability.

**Kind of claim.**

* *value* — a number the paper reports (an accuracy, an mAP, a spread). Its tolerance follows a rule per
  metric (:data:`TOLERANCES`): ``max(abs, rel * |reported|)``, relative where the quantity is small
  (a test error of 0.485 %, a standard deviation of 0.005, a gain: a gain must lie within half its reported
  size, so a wrong-sign gain is never reproduced).
* *direction* — an effect's sign, a ranking or a monotone trend ("RRI beats the baseline", "k=5, b=1 is the
  best", "F falls with rotation"). ``ours`` is the effect, signed so that **positive means the claim
  holds** (a gain, the margin of the claimed best over the runner-up, ...).

**Setting.** Every row carries ours and the paper's :class:`Setting` on five named axes — dataset, data
scale, model/backbone, training budget and protocol — computed from the run (ours) and recorded beside the
reported numbers in ``lib/cbir/reported/settings/<paper>.csv`` (the paper's). :func:`compare` marks each
axis *match* or *mismatch*: scale and budget match within +-10 % (:data:`SCALE_TOLERANCE`) on the same
named counts; dataset, model and protocol match only when identical (a model is an architecture plus its
weights; the CIFAR-10 JPEG subset ``cifar10_subset`` is a stand-in for ``cifar10``, a mismatch).

**Interval.** Every row carries a 95 % interval for ours (:mod:`cbir.intervals`: paired bootstrap over
queries for retrieval metrics and their differences, Wilson / McNemar for accuracies, the spread over
seeds).

**Verdict** (:func:`verdict`), in this order:

1. a direction whose interval contains 0 (or has none), or whose run cannot test the claim (``undecided``:
   e.g. a cell stopped by its epoch cap while still improving), is ``inconclusive``;
2. a direction on a fully matching setting is ``reproduced`` (positive) or ``differs`` (negative); on a
   mismatched setting it is ``holds here`` / ``fails here`` — a finding at our scale, never counted as a
   reproduction;
3. a value on a fully matching setting is ``reproduced`` when ``|ours - reported| <= tolerance``, else
   ``differs``; on a mismatched setting it is ``not comparable``.

The suite report (:func:`build`) is assembled from each notebook's *latest run record*
(:mod:`cbir.records`): a notebook whose latest run failed is shown as failed with none of its old rows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Mapping

import numpy as np
import pandas as pd

from cbir.params import repo_root
from cbir.records import git

AXES: tuple[str, ...] = ("dataset", "scale", "model", "budget", "protocol")
SCALE_TOLERANCE = 0.10
"""Scale and budget counts match when within +-10 % of the paper's."""

VERDICTS: tuple[str, ...] = ("reproduced", "differs", "holds here", "fails here", "inconclusive", "not comparable")

#: metric -> (absolute tolerance, relative tolerance, why). The tolerance of a value row is
#: ``max(abs, rel * |reported|)``; see the module docstring.
TOLERANCES: dict[str, tuple[float, float, str]] = {
    "accuracy_pct": (2.0, 0.0, "2 percentage points"),
    "train_accuracy_pct": (2.0, 0.0, "2 percentage points"),
    "top2_accuracy_pct": (2.0, 0.0, "2 percentage points"),
    "adversarial_accuracy_pct": (2.0, 0.0, "2 percentage points"),
    "precision_pct": (2.0, 0.0, "2 percentage points"),
    "precision_at_1000_pct": (2.0, 0.0, "2 percentage points"),
    "map_at_1000_pct": (2.0, 0.0, "2 percentage points"),
    "test_error_pct": (0.0, 0.25, "25 % of the reported error (small quantity: relative)"),
    "map": (0.02, 0.0, "0.02 mAP"),
    "map_at_50": (0.02, 0.0, "0.02 mAP"),
    "map_mean": (0.02, 0.0, "0.02 mAP"),
    "map_std": (0.0, 0.5, "half the reported spread (small quantity: relative)"),
    "map_gain": (0.0, 0.5, "half the reported gain (a wrong-sign gain never passes)"),
    "map_at_50_gain": (0.0, 0.5, "half the reported gain (a wrong-sign gain never passes)"),
    "f_gain": (0.0, 0.5, "half the reported gain (a wrong-sign gain never passes)"),
    "max_f_fraction": (0.05, 0.0, "0.05 F (the paper's values are read off figures or given as 'about')"),
    "precision_fraction": (0.05, 0.0, "0.05"),
    "recall_fraction": (0.05, 0.0, "0.05"),
    "radius": (0.0, 0.2, "20 % of the reported radius"),
    "radius_one_minus_cos": (0.0, 0.2, "20 % of the reported radius (cosine distance 1 - cos)"),
    "js_ratio": (0.05, 0.1, "0.05 or 10 %, whichever is larger"),
    "n_params_millions": (0.0, 0.1, "10 %"),
    "sec_per_epoch": (0.0, 0.25, "25 % (different hardware: indicative only)"),
    "ms_per_code": (0.0, 0.25, "25 % (different hardware: indicative only)"),
    "ms_per_image": (0.0, 0.25, "25 % (different hardware: indicative only)"),
    "speedup_x": (0.0, 0.25, "25 %"),
    "break_rotation_deg": (1.0, 0.0, "1 degree"),
    "break_crop_pct": (2.5, 0.0, "2.5 % crop"),
    "top3_score": (0.2, 0.0, "0.2 of 3"),
    "queries_classified_correctly_of_8": (0.0, 0.0, "exact count"),
}


def tolerance(metric: str, reported: float) -> float:
    """Tolerance of a value row, ``max(abs, rel * |reported|)`` from :data:`TOLERANCES`."""
    if metric not in TOLERANCES:
        raise KeyError(f"no tolerance rule for metric {metric!r}; add one to cbir.report.TOLERANCES "
                       f"(known: {sorted(TOLERANCES)})")
    a, r, _ = TOLERANCES[metric]
    return float(max(a, r * abs(reported)))


# ============================================================================================ settings
def _counts(value: Mapping[str, float] | str | None) -> dict[str, float]:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return {}
    if isinstance(value, str):
        out = {}
        for part in filter(None, (p.strip() for p in value.split(";"))):
            name, sep, num = part.partition("=")
            if not sep:
                raise ValueError(f"count {part!r} in {value!r} is not name=number (e.g. 'train=50000;test=10000')")
            out[name.strip()] = float(num)
        return out
    return {str(k): float(v) for k, v in value.items()}


def _fmt_counts(c: Mapping[str, float]) -> str:
    return ";".join(f"{k}={v:g}" for k, v in c.items()) if c else "-"


@dataclass(frozen=True)
class Setting:
    """Where a number was measured, on the five axes of :data:`AXES`.

    Parameters
    ----------
    dataset : str
        The dataset's identifier (``cifar10``, ``cifar10_subset``, ``mnist``, ``caltech101_subset``, ...).
    scale : mapping or ``"name=count;..."``
        Named data counts (``train``, ``test``, ``database``, ``queries``, ``base``, ...).
    model : str
        Architecture and weights (``"ResNet50 ImageNet (Keras)"``, ``"RDCNN k=5 b=1 m=1000"``).
    budget : mapping or str
        Named training-budget counts (``epochs``, ``iterations``, ``users``); empty for training-free runs.
    protocol : str
        Queries vs database, relevance rule, metric variant and k, in a fixed wording.
    """

    dataset: str
    scale: Any = field(default_factory=dict)
    model: str = ""
    budget: Any = field(default_factory=dict)
    protocol: str = ""

    def __post_init__(self):
        object.__setattr__(self, "scale", _counts(self.scale))
        object.__setattr__(self, "budget", _counts(self.budget))

    def text(self, axis: str) -> str:
        v = getattr(self, axis)
        return _fmt_counts(v) if axis in ("scale", "budget") else (str(v) or "-")

    def describe(self) -> str:
        return " | ".join(f"{a}: {self.text(a)}" for a in AXES)


def _counts_match(ours: Mapping[str, float], paper: Mapping[str, float]) -> bool:
    if set(ours) != set(paper):
        return False
    return all(abs(ours[k] - paper[k]) <= SCALE_TOLERANCE * abs(paper[k]) for k in paper)


def compare(ours: Setting, paper: Setting) -> dict[str, bool]:
    """``axis -> match`` (see the module docstring for the rules)."""
    out = {}
    for a in AXES:
        if a in ("scale", "budget"):
            out[a] = _counts_match(getattr(ours, a), getattr(paper, a))
        else:
            out[a] = getattr(ours, a) == getattr(paper, a)
    return out


def mismatches(ours: Setting, paper: Setting) -> list[str]:
    """One ``"axis (ours X; paper Y)"`` string per mismatched axis."""
    return [f"{a} (ours {ours.text(a)}; paper {paper.text(a)})" for a, ok in compare(ours, paper).items() if not ok]


# ============================================================================================ rows
Kind = Literal["value", "direction"]


@dataclass(frozen=True)
class Row:
    """One paper-vs-ours row; build it with :func:`value_row` or :func:`direction_row`."""

    claim: str
    source: str
    kind: str
    metric: str
    reported: float | None
    ours: float | None
    lo: float | None
    hi: float | None
    tolerance: float | None
    ours_setting: Setting
    paper_setting: Setting
    interval: str = ""
    note: str = ""
    undecided: str = ""
    """Why this direction cannot be decided by the run (non-empty: the verdict is ``inconclusive``)."""

    @property
    def mismatched(self) -> list[str]:
        return mismatches(self.ours_setting, self.paper_setting)

    @property
    def verdict(self) -> str:
        return verdict(self.kind, self.ours, self.lo, self.hi, self.reported, self.tolerance,
                       not self.mismatched, undecided=bool(self.undecided))


def _num(x) -> float | None:
    if x is None:
        return None
    x = float(x)
    return None if math.isnan(x) else x


def _interval(interval) -> tuple[float | None, float | None]:
    if interval is None:
        return None, None
    lo, hi = (_num(v) for v in interval)
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"interval {interval} has lo > hi")
    return lo, hi


def value_row(claim: str, ref: Any, ours: float | None, *, interval: tuple[float, float] | None,
              interval_kind: str, setting: Setting, note: str = "") -> Row:
    """A *value* row: ours against the number ``ref`` (a :class:`cbir.reported.Reported`) reports.

    ``interval`` : 95 % interval of ours (``cbir.intervals``); ``interval_kind`` names it
    (``"bootstrap over 1000 queries"``, ``"Wilson, 10000 test images"``, ``"spread over 5 seeds"``).
    """
    return Row(claim=claim, source=ref.source, kind="value", metric=ref.metric, reported=ref.value,
               ours=_num(ours), lo=_interval(interval)[0], hi=_interval(interval)[1],
               tolerance=tolerance(ref.metric, ref.value), ours_setting=setting, paper_setting=ref.setting,
               interval=interval_kind, note=note)


def direction_row(claim: str, source: str, effect: float | None, *, interval: tuple[float, float] | None,
                  interval_kind: str, setting: Setting, paper: Setting, metric: str,
                  reported: float | None = None, note: str = "", undecided: str = "") -> Row:
    """A *direction* row: ``effect`` is signed so that positive means the claim holds.

    ``undecided``: why the run cannot test the claim even if the interval excludes 0 (e.g. ``"DRHN-3 stopped
    by the epoch cap, validation loss still falling"``); a non-empty reason makes the verdict
    ``inconclusive`` and is appended to the note.

    ``metric`` names the effect (``"mAP gain (RRI - baseline)"``, ``"accuracy margin over runner-up (pts)"``).
    ``paper`` is the setting of the paper's claim (:func:`cbir.reported.setting`); ``reported`` optionally
    the paper's own effect size, shown beside ours (it does not enter the verdict).
    """
    lo, hi = _interval(interval)
    return Row(claim=claim, source=source, kind="direction", metric=metric, reported=_num(reported),
               ours=_num(effect), lo=lo, hi=hi, tolerance=None, ours_setting=setting, paper_setting=paper,
               interval=interval_kind, note=(f"{note}; INCONCLUSIVE: {undecided}" if note else
                                             f"INCONCLUSIVE: {undecided}") if undecided else note,
               undecided=undecided)


def verdict(kind: str, ours: float | None, lo: float | None, hi: float | None, reported: float | None,
            tolerance: float | None, matched: bool, undecided: bool = False) -> str:
    """The verdict of one row (module docstring, rules 1-3); ``undecided``: the run cannot test a direction."""
    if kind == "direction":
        if undecided or ours is None or lo is None or hi is None or lo <= 0 <= hi:
            return "inconclusive"
        holds = lo > 0
        if matched:
            return "reproduced" if holds else "differs"
        return "holds here" if holds else "fails here"
    if kind != "value":
        raise ValueError(f"kind={kind!r}; use 'value' or 'direction'")
    if not matched:
        return "not comparable"
    if ours is None or reported is None:
        return "differs"  # the setting matches but the run produced no number
    return "reproduced" if abs(ours - reported) <= tolerance else "differs"


COLUMNS = ["notebook", "claim", "source", "kind", "metric", "reported", "ours", "lo", "hi", "delta", "tolerance",
           "verdict", "mismatched_axes", "mismatched", "interval", "ours_setting", "paper_setting", "note"]


def table(rows: Iterable[Row], notebook: str) -> pd.DataFrame:
    """The rows as a DataFrame with :data:`COLUMNS`."""
    recs = []
    for r in rows:
        if not isinstance(r, Row):
            raise TypeError(f"paper-vs-ours rows must be cbir.report.Row (from value_row / direction_row), "
                            f"got {type(r).__name__}: {r!r:.120}")
        recs.append({
            "notebook": notebook, "claim": r.claim, "source": r.source, "kind": r.kind, "metric": r.metric,
            "reported": r.reported, "ours": r.ours, "lo": r.lo, "hi": r.hi,
            "delta": (r.ours - r.reported) if (r.kind == "value" and r.ours is not None and r.reported is not None)
            else np.nan,
            "tolerance": r.tolerance, "verdict": r.verdict,
            "mismatched_axes": ", ".join(a for a, ok in compare(r.ours_setting, r.paper_setting).items() if not ok),
            "mismatched": "; ".join(r.mismatched),
            "interval": r.interval, "ours_setting": r.ours_setting.describe(),
            "paper_setting": r.paper_setting.describe(), "note": r.note})
    return pd.DataFrame(recs, columns=COLUMNS)


def paper_vs_ours(rows: Iterable[Row], *, notebook: str, P: Any) -> pd.DataFrame:
    """Build, save (``outputs/<profile>/report_rows/<notebook>.csv``) and return a notebook's rows.

    Under a capped test run (``shared.limit`` set, ``params/paper_limit.yaml``) every row is *not comparable*
    and its note starts with ``CAPPED TEST RUN (<why>)``.
    """
    df = table(rows, notebook)
    limit = P.get("limit") if hasattr(P, "get") else None
    if limit:  # a capped test run (shared.limit): fixture data / random weights, never a result
        df["verdict"] = "not comparable"
        df["note"] = [f"CAPPED TEST RUN ({limit})" + (f"; {n}" if n else "") for n in df.note.fillna("")]
    out = Path(P.out_dir) / "report_rows"
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / f"{notebook}.csv", index=False, float_format="%.6g")
    return df


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """Verdict counts per notebook (one column per verdict of :data:`VERDICTS`)."""
    counts = df.groupby(["notebook", "verdict"]).size().unstack(fill_value=0)
    return counts.reindex(columns=list(VERDICTS), fill_value=0)


def show(df: pd.DataFrame) -> pd.DataFrame:
    """The columns a notebook prints: claim, kind, reported, ours with its interval, verdict, mismatched axes."""
    def iv(r):
        if pd.isna(r.lo) or pd.isna(r.hi):
            return ""
        return f"[{r.lo:.4g}, {r.hi:.4g}]"
    out = df[["claim", "kind", "reported", "ours"]].copy()
    out["interval"] = [iv(r) for r in df.itertuples()]
    out["verdict"] = df["verdict"]
    out["mismatched axes"] = df["mismatched_axes"].fillna("")
    return out


# ============================================================================================ suite report
def changed_since(commit: str | None, root: Path) -> list[str]:
    """Library files (``lib/cbir``) changed between ``commit`` and the working tree (None without git)."""
    if not commit:
        return []
    out = git("diff", "--name-only", commit, "--", "lib/cbir", root=root)
    return [] if out is None else [line for line in out.splitlines() if line]


def build(profile: str, root: Path | None = None) -> Path | None:
    """Assemble ``outputs/<profile>/report.{md,csv}`` from each notebook's latest run record.

    A notebook whose latest record is ``ok`` contributes its ``report_rows/<notebook>.csv``; one whose
    latest run failed or was interrupted is listed with its status and no rows; one never run is listed
    as not run. Returns the markdown path (None when no notebook has a record).
    """
    from cbir import records

    root = root or repo_root()
    base = root / "outputs" / profile
    nbs = sorted(p.stem for p in (root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    recs = {nb: records.read(profile, nb, root=root) for nb in nbs}
    if not any(recs.values()):
        return None
    frames, status_lines = [], []
    head = git("rev-parse", "--short", "HEAD", root=root) or "unknown"
    for nb in nbs:
        rec = recs[nb]
        if rec is None:
            status_lines.append(f"| {nb} | not run | | | | | |")
            continue
        rows_file = base / "report_rows" / f"{nb}.csv"
        n_rows = ""
        if rec["status"] == "ok" and rows_file.exists():
            df = pd.read_csv(rows_file, keep_default_na=False, na_values=[""])
            frames.append(df)
            n_rows = str(len(df))
        changed = changed_since(rec.get("commit"), root)
        stale = nb in records.SECTIONS and records.params_digest(profile, nb, root=root) != rec.get("params_digest")
        data = ", ".join(f"{d['name']}/{d['split']} {d['digest'][:12]}" for d in rec.get("data", [])) or "-"
        status = rec["status"] + (" (params changed since: re-run)" if stale else "")
        status_lines.append(
            f"| {nb} | {status} | {str(rec.get('commit', ''))[:10]}{' +dirty' if rec.get('dirty') else ''} | "
            f"{rec.get('params_digest', '')} | {data} | {rec.get('wall_s', '')} | "
            f"{', '.join(c.replace('lib/cbir/', '') for c in changed) or '-'} |" + (f" {n_rows} rows" if n_rows else ""))
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)
    df.to_csv(base / "report.csv", index=False, float_format="%.6g")
    lines = [f"# cbir-repro report — profile `{profile}`", "",
             f"Assembled at commit `{head}` from each notebook's latest run record (`records/`). Every number in "
             "*ours* was computed by that run; *reported* is the paper's own figure (`lib/cbir/reported/`). "
             "Verdicts follow `cbir.report`: a *value* row is `reproduced` / `differs` only when all five axes "
             "(dataset, scale, model, budget, protocol) match the paper's, else `not comparable`; a *direction* "
             "row is `inconclusive` when its 95 % interval contains 0, else `reproduced` / `differs` on a "
             "matching setting and `holds here` / `fails here` on a mismatched one.", "",
             "| notebook | latest run | commit | params digest | data digests | wall s | lib files changed since |",
             "|---|---|---|---|---|---|---|", *status_lines, ""]
    if len(df):
        counts = summary(df)
        lines += ["## Verdicts", "", "| notebook | " + " | ".join(VERDICTS) + " |",
                  "|---|" + "---|" * len(VERDICTS)]
        for nb, r in counts.iterrows():
            lines.append(f"| {nb} | " + " | ".join(str(int(r[v])) for v in VERDICTS) + " |")
        tot = counts.sum()
        lines += ["| **all** | " + " | ".join(f"**{int(tot[v])}**" for v in VERDICTS) + " |", ""]

    def fmt(v):
        return "" if pd.isna(v) else f"{v:.4g}"

    for nb, g in df.groupby("notebook", sort=True):
        lines += [f"## {nb}", "",
                  "| claim | source | kind | reported | ours [95 % interval] | verdict | mismatched axes | note |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in g.itertuples():
            iv = f" [{fmt(r.lo)}, {fmt(r.hi)}]" if not (pd.isna(r.lo) or pd.isna(r.hi)) else ""
            cells = (r.claim, r.source, r.kind, fmt(r.reported), fmt(r.ours) + iv, r.verdict,
                     "" if pd.isna(r.mismatched) else r.mismatched, "" if pd.isna(r.note) else r.note)
            lines.append("| " + " | ".join(str(x).replace("|", "/") for x in cells) + " |")
        lines.append("")
    md = base / "report.md"
    md.write_text("\n".join(lines))
    return md
