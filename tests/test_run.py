"""The papermill runner: selection errors, run records, and SIGTERM (kernel stopped, bookkeeping written)."""
import json
import os
import signal
import subprocess
import sys
import time

import nbformat
import pytest

from cbir import run


def _notebook(path, code):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('profile = "smoke"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(code)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_empty_selection_is_an_error(tmp_root):
    (tmp_root / "notebooks").mkdir()
    with pytest.raises(SystemExit, match="selects no notebook"):
        run.notebooks("")
    with pytest.raises(SystemExit, match="no notebook matches"):
        run.notebooks("42")


def test_sigterm_stops_the_kernel_and_writes_summary_and_record(tmp_root):
    nbdir = tmp_root / "notebooks"
    nbdir.mkdir()
    mark = tmp_root / "kernel.pid"
    _notebook(nbdir / "98_sleeps.ipynb", f"import os, time\nopen({str(mark)!r}, 'w').write(str(os.getpid()))\n"
                                         "time.sleep(120)")
    _notebook(nbdir / "99_after.ipynb", "print('never')")
    env = {**os.environ, "CBIR_ROOT": str(tmp_root)}
    proc = subprocess.Popen([sys.executable, "-m", "cbir.run", "--profile", "smoke"], cwd=tmp_root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while not (mark.exists() and mark.read_text()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert mark.exists(), "the kernel never started"
    kernel_pid = int(mark.read_text())
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            os.kill(kernel_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.2)
    else:
        os.kill(kernel_pid, signal.SIGKILL)
        pytest.fail(f"kernel {kernel_pid} outlived the runner (orphan)")
    base = tmp_root / "outputs" / "smoke"
    rec = json.loads((base / "records" / "98_sleeps.json").read_text())
    assert rec["status"] == "INTERRUPTED" and "SIGTERM" in rec["error"]
    summary = (base / "run_summary.csv").read_text()
    assert "98_sleeps,INTERRUPTED" in summary and "99_after,not run" in summary
    assert "| 98_sleeps | INTERRUPTED" in (base / "report.md").read_text()


def test_progress_streams_cells_and_printed_lines(tmp_root):
    nbdir = tmp_root / "notebooks"
    nbdir.mkdir()
    _notebook(nbdir / "97_prints.ipynb", "import sys\nprint('step one')\nprint('step two', flush=True)\n"
                                         "sys.stderr.write('a widget line\\n')\n42")
    env = {**os.environ, "CBIR_ROOT": str(tmp_root)}
    out = subprocess.run([sys.executable, "-m", "cbir.run", "--profile", "smoke"], cwd=tmp_root, env=env,
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr
    lines = out.stdout.splitlines()
    assert lines[2].startswith("      97_prints: cell 1/3, ")  # the injected parameters cell, then the notebook's two
    assert any(ln.startswith("      97_prints: cell 3/3") for ln in lines)
    assert "      | step one" in lines and "      | step two" in lines
    assert "a widget line" not in out.stdout + out.stderr and "42" not in out.stdout.replace("97_", "")
    assert any(ln.startswith("[1/1] 97_prints ok (") for ln in lines)
    quiet = subprocess.run([sys.executable, "-m", "cbir.run", "--profile", "smoke", "--quiet"], cwd=tmp_root,
                           env=env, capture_output=True, text=True, timeout=180)
    assert "step one" not in quiet.stdout and "[1/1] 97_prints ... ok (" in quiet.stdout


def test_jobs_runs_notebooks_concurrently_with_prefixed_lines_and_split_threads(tmp_root):
    nbdir = tmp_root / "notebooks"
    nbdir.mkdir()
    _notebook(nbdir / "96_two.ipynb", "print('hello from 96_two', overrides)")
    _notebook(nbdir / "94_fails.ipynb", "raise ValueError('on purpose')")
    env = {**os.environ, "CBIR_ROOT": str(tmp_root)}
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "cbir.run", "--profile", "smoke", "--jobs", "2", "--threads", "1"],
                         cwd=tmp_root, env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 1, out.stdout + out.stderr  # one notebook failed, the others ran
    lines = out.stdout.splitlines()
    assert "2 at a time, 1 thread(s) each" in lines[0]
    assert "[96]       | hello from 96_two {'shared.threads': 1}" in lines
    assert any(ln.startswith("[94] ") and "ValueError: on purpose" in ln for ln in lines)
    summary = (tmp_root / "outputs" / "smoke" / "run_summary.csv").read_text().splitlines()
    assert [r.split(",")[:2] for r in summary[1:]] == [["94_fails", "FAILED"], ["96_two", "ok"]]
    assert "summary:" in out.stdout and time.monotonic() - t0 < 240
