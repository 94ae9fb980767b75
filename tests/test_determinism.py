"""Two identical smoke runs of a notebook write byte-identical result tables (timings live in *_timing.csv)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "05_retargeting_retraining_qe.ipynb"  # trains heads every run (only backbone features are cached)


def _run(root: Path) -> dict[str, bytes]:
    env = {**os.environ, "CBIR_ROOT": str(root)}
    proc = subprocess.run([sys.executable, "-m", "cbir.run", "--profile", "smoke", "--nb", NOTEBOOK[:2]], cwd=root,
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    tables = root / "outputs" / "smoke" / "tables"
    out = {p.name: p.read_bytes() for p in sorted(tables.glob("*.csv")) if "timing" not in p.name}
    shutil.rmtree(root / "outputs" / "smoke")
    return out


def test_two_smoke_runs_give_byte_identical_result_tables(tmp_path):
    for sub in ("params", "notebooks"):
        (tmp_path / sub).mkdir()
    for f in (ROOT / "params").glob("*.yaml"):
        shutil.copy(f, tmp_path / "params" / f.name)
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, tmp_path / "notebooks" / NOTEBOOK)
    (tmp_path / "pyproject.toml").write_text("")
    cache = ROOT / "outputs" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "cache").symlink_to(cache)  # shared artifacts: the second run is not the only warm one
    first, second = _run(tmp_path), _run(tmp_path)
    assert first, "the notebook wrote no result tables"
    assert first.keys() == second.keys()
    differ = [name for name in first if first[name] != second[name]]
    assert not differ, f"result tables differ between two identical runs: {differ}"
