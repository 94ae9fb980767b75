"""The suite report: every notebook's "paper vs ours" rows in one page, ``outputs/<profile>/report.md``.

A notebook calls :func:`paper_vs_ours` once with its rows; the runner calls :func:`build` after all
notebooks ran. Verdicts: ``reproduced`` (comparable and |ours - reported| <= tolerance), ``differs``
(comparable, outside the tolerance), ``not comparable`` (different data/scale/protocol, said in ``note``).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

from cbir.params import repo_root

ROW_KEYS = ["claim", "source", "metric", "reported", "ours", "tolerance", "comparable", "scale", "protocol", "note"]
COLUMNS = ["notebook", "claim", "source", "metric", "reported", "ours", "delta", "tolerance", "verdict",
           "scale", "protocol", "note"]


def verdict(reported: float | None, ours: float | None, tolerance: float, comparable: bool) -> str:
    """``reproduced`` / ``differs`` / ``not comparable`` (see module docstring)."""
    if not comparable or reported is None or ours is None or not np.isfinite([reported, ours]).all():
        return "not comparable"
    return "reproduced" if abs(ours - reported) <= tolerance else "differs"


def paper_vs_ours(rows: Iterable[Mapping[str, Any]], *, notebook: str, P: Any) -> pd.DataFrame:
    """Build, save and return a notebook's paper-vs-ours table.

    Parameters
    ----------
    rows : iterable of dict
        Keys: ``claim, source, metric, reported, ours, tolerance, comparable, scale, protocol, note``
        (``note`` optional). ``reported`` comes from :mod:`cbir.reported`, ``ours`` is computed in the run.
    notebook : str
        e.g. ``"01_random_sign_networks"``.
    P : Params
        Decides the output folder ``outputs/<profile>/report_rows/``.
    """
    recs = []
    for r in rows:
        missing = set(ROW_KEYS) - {"note"} - set(r)
        if missing:
            raise ValueError(f"paper_vs_ours row {r.get('claim', r)!r} lacks {sorted(missing)}")
        rep = None if r["reported"] is None else float(r["reported"])
        ours = None if r["ours"] is None else float(r["ours"])
        recs.append({
            "notebook": notebook, "claim": r["claim"], "source": r["source"], "metric": r["metric"],
            "reported": rep, "ours": ours,
            "delta": (ours - rep) if (ours is not None and rep is not None) else np.nan,
            "tolerance": float(r["tolerance"]),
            "verdict": verdict(rep, ours, float(r["tolerance"]), bool(r["comparable"])),
            "scale": r["scale"], "protocol": r["protocol"], "note": r.get("note", ""),
        })
    df = pd.DataFrame(recs, columns=COLUMNS)
    out = Path(P.out_dir) / "report_rows"
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / f"{notebook}.csv", index=False, float_format="%.6g")
    return df


def build(profile: str, root: Path | None = None) -> Path | None:
    """Merge ``outputs/<profile>/report_rows/*.csv`` into ``report.csv`` and ``report.md``; return the md path."""
    base = (root or repo_root()) / "outputs" / profile
    files = sorted((base / "report_rows").glob("*.csv"))
    if not files:
        return None
    df = pd.concat([pd.read_csv(f, keep_default_na=False, na_values=[""]) for f in files], ignore_index=True)
    df.to_csv(base / "report.csv", index=False, float_format="%.6g")
    counts = df["verdict"].value_counts().to_dict()
    lines = [f"# cbir-repro report — profile `{profile}`", "",
             "Every number in column *ours* was computed by the notebook run named in *notebook*; *reported* is the "
             "paper's own figure (lib/cbir/reported/). *scale* and *protocol* say what we ran — a `smoke` run uses "
             "offline stand-in data, so its rows are `not comparable` by design; `medium` runs on real data.", "",
             "Verdicts: " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())), ""]
    for nb, g in df.groupby("notebook", sort=True):
        lines += [f"## {nb}", "", "| claim | source | metric | reported | ours | delta | verdict | scale | protocol | note |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for _, r in g.iterrows():
            def fmt(v):
                return "" if pd.isna(v) else f"{v:.4g}"
            lines.append("| " + " | ".join(str(x).replace("|", "/") for x in (
                r["claim"], r["source"], r["metric"], fmt(r["reported"]), fmt(r["ours"]), fmt(r["delta"]),
                r["verdict"], r["scale"], r["protocol"], r["note"] if not pd.isna(r["note"]) else "")) + " |")
        lines.append("")
    md = base / "report.md"
    md.write_text("\n".join(lines))
    return md
