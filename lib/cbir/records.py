"""Run records: one JSON file per notebook run, ``outputs/<profile>/records/<notebook>.json``.

The runner (:mod:`cbir.run`) writes a record after every notebook, whether it finished, failed or was
interrupted: git commit (and whether the tree was dirty), profile, :func:`params_digest`, the digests of
the datasets the notebook loaded (:func:`note_dataset`, called by :func:`cbir.data.load_dataset` inside the
kernel), wall time, machine and status. :func:`cbir.report.build` assembles the suite report from each
notebook's latest record, and a test fails when a published record's params digest no longer matches
``params/<profile>.yaml``.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

from cbir.params import read_profile, repo_root

ENV = "CBIR_RUN_DATA_LOG"
"""Set by the runner to a JSON-lines file; every dataset the kernel loads is appended to it."""

#: Notebook -> its params section.
SECTIONS: dict[str, str] = {
    "00_quickstart": "quickstart",
    "01_random_sign_networks": "rdcnn",
    "02_latent_layer_hashing": "latent_hash",
    "03_residual_hashing_depth_sweep": "drhn",
    "04_perceptual_hash_vs_cnn": "phash",
    "05_retargeting_retraining_qe": "retarget",
}

#: Keys that never change a result (how fast, where, how verbose); left out of the params digest.
NON_RESULT_KEYS = frozenset({"threads", "workers", "device", "progress", "interactive", "allow_download",
                             "data_dir", "kernel_chunk", "scheduler"})


def params_digest(profile: str, notebook: str, root: Path | None = None) -> str:
    """sha256 (16 hex) of the notebook's params section plus ``shared.seed``, minus :data:`NON_RESULT_KEYS`.

    Read from ``params/<profile>.yaml`` as written (no overrides), so it changes exactly when a
    result-changing parameter of that notebook changes.
    """
    root = root or repo_root()
    section = SECTIONS.get(notebook)
    if section is None:
        raise KeyError(f"notebook {notebook!r} has no params section; known: {sorted(SECTIONS)}")
    raw = read_profile(profile, root)  # as written; a profile that extends another gets its merged sections
    keep = {k: v for k, v in (raw.get(section) or {}).items() if k not in NON_RESULT_KEYS}
    keep["shared.seed"] = (raw.get("shared") or {}).get("seed", 0)
    text = json.dumps(keep, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def note_dataset(name: str, split: str, n: int, digest: str) -> None:
    """Append one loaded dataset to the runner's data log (no-op outside a runner)."""
    path = os.environ.get(ENV)
    if not path:
        return
    with open(path, "a") as fh:
        fh.write(json.dumps({"name": name, "split": split, "n": int(n), "digest": digest}) + "\n")


def git(*args: str, root: Path) -> str | None:
    """``git <args>`` in ``root``; its stdout, or None without git or outside a checkout."""
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True,
                              timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``; "" if unknown).

    Recorded because seed-fixed training and sign thresholds give other last digits on another CPU model
    even with the AVX2 cap of ``cbir/__init__.py`` (e.g. AMD EPYC against Intel Xeon)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor()


def machine() -> str:
    """One line: host, OS, CPU model and count, Python, torch."""
    try:
        import torch
        tv = torch.__version__
    except ImportError:  # pragma: no cover
        tv = "absent"
    cpu = cpu_model()
    return (f"{platform.node()} {platform.system()} {platform.machine()}, {cpu + ', ' if cpu else ''}"
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}, torch {tv}")


def path(profile: str, notebook: str, root: Path | None = None) -> Path:
    return (root or repo_root()) / "outputs" / profile / "records" / f"{notebook}.json"


def data_log(profile: str, notebook: str, root: Path | None = None) -> Path:
    return path(profile, notebook, root).with_suffix(".data.jsonl")


def _read_data_log(p: Path) -> list[dict]:
    if not p.exists():
        return []
    seen, out = set(), []
    for line in p.read_text().splitlines():
        d = json.loads(line)
        k = (d["name"], d["split"], d["digest"])
        if k not in seen:
            seen.add(k)
            out.append(d)
    return out


def head(root: Path | None = None) -> tuple[str | None, bool]:
    """The checkout's commit and whether ``lib``, ``params`` or ``notebooks`` differ from it (taken when a
    run starts: the code a notebook runs is the code of that moment)."""
    root = root or repo_root()
    return git("rev-parse", "HEAD", root=root), bool(git("status", "--porcelain", "--", "lib", "params",
                                                         "notebooks", root=root))


def write(profile: str, notebook: str, *, status: str, wall_s: float, error: str = "",
          started: float | None = None, commit: tuple[str | None, bool] | None = None,
          root: Path | None = None) -> Path:
    """Write the record of one notebook run (reads and removes its data log).

    ``commit`` : ``(sha, dirty)`` from :func:`head` when the run started (default: now).
    """
    root = root or repo_root()
    p = path(profile, notebook, root)
    p.parent.mkdir(parents=True, exist_ok=True)
    log = data_log(profile, notebook, root)
    sha, dirty = commit if commit is not None else head(root)
    rec: dict[str, Any] = {
        "notebook": notebook, "profile": profile, "status": status, "error": error,
        "commit": sha, "dirty": dirty,
        "params_digest": params_digest(profile, notebook, root) if notebook in SECTIONS else None,
        "data": _read_data_log(log), "wall_s": round(float(wall_s), 1),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)) if started else None,
        "machine": machine(),
    }
    p.write_text(json.dumps(rec, indent=1) + "\n")
    log.unlink(missing_ok=True)
    return p


def read(profile: str, notebook: str, root: Path | None = None) -> dict | None:
    """The latest record of a notebook, or None when it was never run under the runner."""
    p = path(profile, notebook, root)
    return json.loads(p.read_text()) if p.exists() else None
