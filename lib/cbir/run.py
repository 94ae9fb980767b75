"""Execute the suite's notebooks headlessly with papermill and write the report.

Usage::

    python -m cbir.run --profile smoke            # every notebooks/NN_*.ipynb -> outputs/smoke/
    python -m cbir.run --profile medium --nb 02   # one notebook (prefix match; comma-separated list allowed)
    python -m cbir.run --profile smoke --store    # execute IN PLACE: refresh the committed smoke outputs
    python -m cbir.run --profile medium --jobs 2  # two notebooks at a time (make reproduce JOBS=2)

With ``--jobs N`` the notebooks (independent of one another) run ``N`` at a time, each in its own runner
process; each gets ``shared.threads = max(1, cores // N)`` unless ``--threads`` says otherwise, and every
line it prints is prefixed with its number (``[03] ...``). The summary and report are the same as in a
sequential run.

A failing notebook is reported with its cell and error; the others still run; the exit code is 1 when
any notebook failed. A summary (notebook, status, seconds) is printed and saved as
``outputs/<profile>/run_summary.csv``; ``outputs/<profile>/report.md`` collects the paper-vs-ours rows.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import pandas as pd

from cbir.params import PROFILES, ParamsError, repo_root, validate_profile


def notebooks(selection: str | None = None) -> list[Path]:
    """``notebooks/NN_*.ipynb`` sorted; ``selection`` = comma-separated prefixes such as ``"00,02"``."""
    nbs = sorted((repo_root() / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if selection is not None and not selection.strip(" ,"):
        raise SystemExit(f"NB={selection!r} selects no notebook; omit NB to run all, or give prefixes such as "
                         f"NB=02 or NB=01,03 (available: {[nb.name for nb in nbs]})")
    if selection:
        wanted = [s.strip() for s in selection.split(",") if s.strip()]
        chosen = [nb for nb in nbs if any(nb.name.startswith(w) for w in wanted)]
        if not chosen:
            raise SystemExit(f"no notebook matches NB={selection!r}; available: {[nb.name for nb in nbs]}")
        return chosen
    return nbs


def _strip_volatile(path: Path) -> None:
    """Remove papermill's per-cell timing metadata from a stored notebook (keeps diffs reviewable)."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nb.metadata.pop("papermill", None)
    nbformat.write(nb, path)


class Progress:
    """Streams a running notebook to the terminal: ``cell i/n`` with the elapsed time as each code cell
    starts (from papermill's cell log) and the notebook's own printed lines, indented (``| ...``), so a
    20-minute notebook is never silent. Rich outputs (tables, figures) and stderr (progress widgets,
    warnings) stay in the notebook."""

    def __init__(self, nb: Path, injected: bool, out=None):
        import logging

        import nbformat

        cells = nbformat.read(str(nb), as_version=4).cells
        kinds = (["code"] if injected else []) + [c.cell_type for c in cells]
        self.code_index = {i: n for n, i in enumerate([i for i, k in enumerate(kinds) if k == "code"], 1)}
        self.n_code, self.name, self.out = len(self.code_index), nb.stem, out or sys.stdout
        self.t0, self._line = time.perf_counter(), ""
        outer = self

        class _CellStarts(logging.Handler):
            def emit(self, record):
                msg = record.getMessage()
                if msg.startswith("Executing Cell "):
                    outer.cell_started(int(msg.split()[2].rstrip("-") or 0) - 1)

        self.handler = _CellStarts(logging.INFO)

    def cell_started(self, index: int) -> None:
        n = self.code_index.get(index)
        if n is not None:
            print(f"      {self.name}: cell {n}/{self.n_code}, {time.perf_counter() - self.t0:.0f} s", file=self.out,
                  flush=True)

    def write(self, text: str) -> int:  # papermill's stdout_file: the kernel's printed lines
        self._line += text
        *lines, self._line = self._line.split("\n")
        for line in lines:
            print(f"      | {line}", file=self.out, flush=True)
        return len(text)

    def flush(self) -> None:
        pass

    def __enter__(self):
        import logging

        log = logging.getLogger("papermill")
        self._saved = log.level, log.propagate
        log.setLevel(logging.INFO)
        log.propagate = False  # papermill's own log lines (and the kernel's stderr) are not printed
        log.addHandler(self.handler)
        return self

    def __exit__(self, *exc):
        import logging

        log = logging.getLogger("papermill")
        log.removeHandler(self.handler)
        log.setLevel(self._saved[0])
        log.propagate = self._saved[1]
        return False


def run_one(nb: Path, profile: str, store: bool, timeout: int | None, progress: bool = False,
            overrides: dict | None = None) -> dict:
    """Execute one notebook; its old report rows are removed first and a run record is written after.

    ``progress`` streams the cell being run and the notebook's printed lines (:class:`Progress`).
    ``overrides`` (e.g. ``{"shared.threads": 1}``) is passed as the notebook's ``overrides`` parameter
    (not with ``store``: the committed notebooks keep their own parameters cell)."""
    import os

    import papermill as pm

    from cbir import records

    out_dir = repo_root() / "outputs" / profile
    out_dir.mkdir(parents=True, exist_ok=True)
    target = nb if store else out_dir / nb.name
    params = {} if store else {"profile": profile, **({"overrides": dict(overrides)} if overrides else {})}
    (out_dir / "report_rows" / f"{nb.stem}.csv").unlink(missing_ok=True)  # a failed run shows no old rows
    log = records.data_log(profile, nb.stem)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.unlink(missing_ok=True)
    os.environ[records.ENV] = str(log)  # the kernel inherits it: load_dataset appends what it loads
    started, commit = time.time(), records.head()
    t0 = time.perf_counter()
    status, detail = "ok", ""
    import contextlib

    stream = Progress(nb, injected=bool(params)) if progress else None
    try:
        with stream or contextlib.nullcontext():
            pm.execute_notebook(str(nb), str(target), parameters=params, kernel_name="python3",
                                cwd=str(nb.parent), progress_bar=False, log_output=progress,
                                stdout_file=stream, execution_timeout=timeout)
    except pm.PapermillExecutionError as err:
        status = "FAILED"
        detail = f"cell {err.cell_index} (exec {err.exec_count}): {err.ename}: {str(err.evalue)[:300]}"
    except Exception as err:  # noqa: BLE001 - kernel death, bad notebook: report and go on
        status = "FAILED"
        detail = f"{type(err).__name__}: {str(err)[:300]}"
    except KeyboardInterrupt as err:  # SIGINT, or SIGTERM via _on_signal: papermill has shut the kernel down
        records.write(profile, nb.stem, status="INTERRUPTED", wall_s=time.perf_counter() - t0,
                      error=str(err) or "interrupted", started=started, commit=commit)
        raise
    finally:
        os.environ.pop(records.ENV, None)
    if store and status == "ok":
        _strip_volatile(target)
    records.write(profile, nb.stem, status=status, wall_s=time.perf_counter() - t0, error=detail, started=started,
                  commit=commit)
    return {"notebook": nb.stem, "status": status, "seconds": round(time.perf_counter() - t0, 1),
            "output": str(target.relative_to(repo_root())), "error": detail}


class Interrupted(KeyboardInterrupt):
    """Raised in the runner by SIGTERM (and SIGINT), so that papermill stops and shuts down the kernel."""


def _on_signal(signum, frame):  # noqa: ARG001
    import signal

    raise Interrupted(f"stopped by {signal.Signals(signum).name}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--profile", default="smoke", help=f"params profile ({', '.join(PROFILES)})")
    ap.add_argument("--nb", default=None, help="run only notebooks whose name starts with these (e.g. 02 or 00,03)")
    ap.add_argument("--store", action="store_true", help="execute in place (refresh committed smoke outputs)")
    ap.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds")
    ap.add_argument("--quiet", action="store_true", help="no per-cell progress or streamed notebook output")
    ap.add_argument("--jobs", type=int, default=1, help="notebooks run at once (make reproduce JOBS=N); each gets "
                    "max(1, cores // jobs) threads unless --threads")
    ap.add_argument("--threads", type=int, default=None, help="shared.threads of every notebook (an override)")
    ap.add_argument("--row-json", default=None, help=argparse.SUPPRESS)  # internal: a --jobs child's result file
    args = ap.parse_args(argv)
    if args.jobs < 1 or (args.threads is not None and args.threads < 1):
        print(f"error: --jobs={args.jobs} and --threads={args.threads} must be positive integers "
              "(JOBS=1 runs the notebooks one after another)", file=sys.stderr)
        return 2
    try:
        validate_profile(args.profile)
    except ParamsError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.store and args.profile != "smoke":
        print("error: --store refreshes the committed notebooks, which hold smoke outputs; use --profile smoke",
              file=sys.stderr)
        return 2
    nbs = notebooks(args.nb)
    threads = args.threads if args.threads is not None else (
        max(1, _cores() // args.jobs) if args.jobs > 1 and len(nbs) > 1 else None)
    overrides = {"shared.threads": threads} if threads is not None else None
    if args.row_json is None:
        print(f"cbir-repro: {len(nbs)} notebook(s), profile {args.profile!r}"
              + (" (in place)" if args.store else f" -> outputs/{args.profile}/")
              + (f", {min(args.jobs, len(nbs))} at a time" if args.jobs > 1 and len(nbs) > 1 else "")
              + (f", {threads} thread(s) each" if threads is not None and not args.store else ""), flush=True)
    import signal

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _on_signal)
    if args.jobs > 1 and len(nbs) > 1:
        rows, interrupted = _run_concurrently(nbs, args, threads)
        return _finish(args, rows, interrupted)
    rows, interrupted = [], None
    for i, nb in enumerate(nbs, 1):
        print(f"[{i}/{len(nbs)}] {nb.stem} ...", end=" " if args.quiet else "\n", flush=True)
        t0 = time.perf_counter()
        try:
            row = run_one(nb, args.profile, args.store, args.timeout, progress=not args.quiet, overrides=overrides)
        except KeyboardInterrupt as err:
            interrupted = str(err) or "interrupted"
            row = {"notebook": nb.stem, "status": "INTERRUPTED", "seconds": round(time.perf_counter() - t0, 1),
                   "output": "", "error": interrupted}
        rows.append(row)
        print(("" if args.quiet else f"[{i}/{len(nbs)}] {nb.stem} ") + f"{row['status']} ({row['seconds']:.1f} s)"
              + (f"\n      {row['error']}" if row["error"] else ""), flush=True)
        if interrupted:
            for sig in (signal.SIGTERM, signal.SIGINT):  # finish the bookkeeping below undisturbed
                signal.signal(sig, signal.SIG_IGN)
            rows += [{"notebook": rest.stem, "status": "not run", "seconds": 0.0, "output": "", "error": ""}
                     for rest in nbs[i:]]
            break
    return _finish(args, rows, interrupted)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _run_concurrently(nbs: list[Path], args, threads: int | None) -> tuple[list[dict], str | None]:
    """Run ``nbs`` ``args.jobs`` at a time, each in a child runner (``--row-json``); their lines are
    printed prefixed ``[NN]``. Returns the rows in notebook order and the interruption (or None)."""
    import json
    import signal
    import subprocess
    import tempfile
    import threading
    from concurrent.futures import ThreadPoolExecutor

    lock, procs, stopping = threading.Lock(), {}, threading.Event()
    tmp = Path(tempfile.mkdtemp(prefix="cbir-run-"))

    def one(nb: Path) -> dict:
        if stopping.is_set():
            return {"notebook": nb.stem, "status": "not run", "seconds": 0.0, "output": "", "error": ""}
        out = tmp / f"{nb.stem}.json"
        cmd = [sys.executable, "-m", "cbir.run", "--profile", args.profile, "--nb", nb.stem, "--row-json", str(out)]
        cmd += (["--store"] if args.store else []) + (["--quiet"] if args.quiet else [])
        cmd += (["--timeout", str(args.timeout)] if args.timeout else [])
        cmd += (["--threads", str(threads)] if threads is not None else [])
        tag = f"[{nb.stem.split('_')[0]}] "
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
        procs[nb.stem] = proc
        for line in proc.stdout:
            with lock:
                print(tag + line, end="", flush=True)
        rc = proc.wait()
        if out.exists():
            return json.loads(out.read_text())[0]
        return {"notebook": nb.stem, "status": "FAILED", "seconds": round(time.perf_counter() - t0, 1),
                "output": "", "error": f"its runner exited with {rc} before writing a result"}

    interrupted = None
    with ThreadPoolExecutor(max_workers=args.jobs) as ex:
        futures = [ex.submit(one, nb) for nb in nbs]
        try:
            rows = [f.result() for f in futures]
        except KeyboardInterrupt as err:
            interrupted = str(err) or "interrupted"
            stopping.set()
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_IGN)
            for proc in list(procs.values()):
                if proc.poll() is None:
                    proc.terminate()  # the child records INTERRUPTED and writes its row
            rows = [f.result() for f in futures]
    return rows, interrupted


def _finish(args, rows: list[dict], interrupted: str | None) -> int:
    """Summary, run_summary.csv and report (a ``--jobs`` child writes its rows for its parent instead)."""
    if args.row_json is not None:
        import json

        Path(args.row_json).write_text(json.dumps(rows))
        return 130 if interrupted else int(any(r["status"] != "ok" for r in rows))
    summary = pd.DataFrame(rows)
    out_dir = repo_root() / "outputs" / args.profile
    out_dir.mkdir(parents=True, exist_ok=True)
    summary.to_csv(out_dir / "run_summary.csv", index=False)
    from cbir.report import build

    md = build(args.profile)
    print("\nsummary:")
    print(summary[["notebook", "status", "seconds"]].to_string(index=False))
    print(f"total {summary['seconds'].sum():.1f} s")
    if md is not None:
        print(f"report: {md.relative_to(repo_root())}")
    if interrupted:
        print(f"interrupted ({interrupted}); the summary, run records and report above are written", file=sys.stderr)
        return 130
    failed = summary[summary.status != "ok"]
    if len(failed):
        print(f"{len(failed)} notebook(s) failed: {', '.join(failed.notebook)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
