"""Run every benchmark (``benchmarks/bench_*.py``) in turn; each prints its own ratios vs a baseline.

Usage: ``make bench`` or ``python benchmarks/run_all.py [name-filter]``. Benchmarks measure speed; no
unit test asserts timings (the reference machine is noisy, +-25%: compare within one run).
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

here = Path(__file__).parent
selected = [p for p in sorted(here.glob("bench_*.py")) if len(sys.argv) < 2 or sys.argv[1] in p.stem]
failed = []
for script in selected:
    print(f"=== {script.stem} ===", flush=True)
    t0 = time.perf_counter()
    rc = subprocess.call([sys.executable, str(script)])
    print(f"--- {script.stem}: exit {rc}, {time.perf_counter() - t0:.1f} s\n", flush=True)
    if rc:
        failed.append(script.stem)
sys.exit(1 if failed else 0)
