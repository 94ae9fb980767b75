"""Real-browser check of the JupyterLab experience (``make lab-check``; optional, not part of ``make test``).

Starts JupyterLab on 127.0.0.1 with a random token over a temporary copy of one notebook, opens it in headless
Chromium (Debian's ``chromium`` + ``chromium-driver``) through selenium, runs all its cells, checks that the
explorer rendered as a live widget (not the static twin) with no error output, moves the explorer's query
slider once and times the redraw, saves a screenshot and a JSON summary into ``outputs/lab_check/``, and stops
the server. Skipped, with the reason, when Chromium, ChromeDriver or selenium are absent.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "05_retargeting_retraining_qe.ipynb"  # RetrievalExplorer (QE on/off); ~20 s of smoke cells
CHROMIUM = os.environ.get("CBIR_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CBIR_CHROMEDRIVER", "/usr/bin/chromedriver")
OUT = ROOT / "outputs" / "lab_check"
RUN_TIMEOUT_S = 300

pytestmark = pytest.mark.browser


def _require_browser():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (Path(p).exists() or shutil.which(p))]
    if missing:
        pytest.skip(f"no browser: {', '.join(missing)} absent (Debian: apt-get install chromium chromium-driver; "
                    "or set CBIR_CHROMIUM / CBIR_CHROMEDRIVER)")
    return pytest.importorskip("selenium", reason="selenium absent: pip install -e '.[browser]'")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(cond, timeout: float, what: str, poll: float = 0.25):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        v = cond()
        if v:
            return v
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture
def browser():
    return _require_browser()


@pytest.fixture
def lab_server(browser, tmp_path):
    """JupyterLab on 127.0.0.1:<free port> with a token, serving a copy of the notebook (the repo's copy is
    never autosaved over); user settings and workspaces in tmp so no stale layout opens other tabs."""
    root = tmp_path / "notebooks"
    root.mkdir()
    shutil.copy(ROOT / "notebooks" / NOTEBOOK, root / NOTEBOOK)
    port, token = _free_port(), secrets.token_hex(16)
    settings = {  # no "get notified about Jupyter news?" toast over the page; every cell kept in the DOM
        "apputils-extension/notification": '{"fetchNews": "false"}',  # (JupyterLab 4 virtualises off-screen
        "notebook-extension/tracker": '{"windowingMode": "none"}',     # cells by default)
    }
    for name, text in settings.items():
        f = tmp_path / "settings" / "@jupyterlab" / f"{name}.jupyterlab-settings"
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    env = {**os.environ, "JUPYTERLAB_SETTINGS_DIR": str(tmp_path / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces"), "CBIR_ROOT": str(ROOT)}
    log = open(tmp_path / "lab.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
                             f"--port={port}", f"--IdentityProvider.token={token}",
                             f"--ServerApp.root_dir={root}", "--LabApp.news_url=", "--ServerApp.port_retries=0"]
                            + (["--allow-root"] if os.geteuid() == 0 else []),
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"

    def up():
        try:
            with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                return r.status == 200
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(f"jupyter lab exited: {(tmp_path / 'lab.log').read_text()[-2000:]}")
            return False

    try:
        _wait(up, 60, "the JupyterLab server to answer")
        yield {"base": base, "token": token, "root": root}
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)  # the server shuts its kernels down on SIGTERM
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        log.close()


def _driver(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--window-size=1500,1100", f"--user-data-dir={tmp_path / 'chromium'}"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)


def _menu(driver, top: str, item: str):
    from selenium.webdriver.common.by import By

    driver.find_element(By.XPATH, f"//li[contains(@class,'lm-MenuBar-item')][.//div[text()='{top}']]").click()
    entry = f"//li[contains(@class,'lm-Menu-item')][.//div[text()='{item}']]"
    _wait(lambda: driver.find_elements(By.XPATH, entry), 10, f"menu item {item!r}")[0].click()


def test_lab_runs_notebook_and_explorer_responds(lab_server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    OUT.mkdir(parents=True, exist_ok=True)
    driver = _driver(tmp_path)
    summary: dict = {"notebook": NOTEBOOK}
    try:
        t0 = time.monotonic()
        driver.get(f"{lab_server['base']}/lab/tree/{NOTEBOOK}?token={lab_server['token']}")
        _wait(lambda: driver.find_elements(By.CSS_SELECTOR, ".jp-Notebook .jp-Cell"), 90, "the notebook to open")
        # the kernel must be connected and idle before "Run All": the status bar reads "<kernel> | Idle" (the
        # toolbar's execution indicator already says idle while the kernel is still connecting, and a Run All
        # sent then runs nothing)
        _wait(lambda: "| Idle" in driver.execute_script(
            "const b = document.querySelector('#jp-main-statusbar'); return b ? b.textContent : '';"),
            90, "a connected, idle kernel")
        summary["open_s"] = round(time.monotonic() - t0, 1)
        t0 = time.monotonic()
        _menu(driver, "Run", "Run All Cells")

        def done():  # read in one script: cells re-render while running, element handles go stale
            prompts, status, sliders = driver.execute_script(
                "return [Array.from(document.querySelectorAll('.jp-CodeCell .jp-InputPrompt'), e => e.textContent),"
                " document.querySelector('.jp-Notebook-ExecutionIndicator').dataset.status,"
                " document.querySelectorAll('.widget-slider .noUi-handle').length]")
            numbered = sum(any(ch.isdigit() for ch in p) for p in prompts)
            return bool(prompts) and numbered == len(prompts) and status == "idle" and sliders > 0

        _wait(done, RUN_TIMEOUT_S, "all cells to run and the explorer's widget slider to render (none: it fell "
                                   "back to its static twin, or a cell failed)", poll=1.0)
        summary["run_all_s"] = round(time.monotonic() - t0, 1)
        handle = driver.find_elements(By.CSS_SELECTOR, ".widget-slider .noUi-handle")[0]
        box = handle.find_element(By.XPATH, "ancestor::div[contains(@class,'widget-vbox')][1]")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", box)

        def img_digest():  # in one script: the output area swaps its <img> while redrawing
            src = driver.execute_script("const i = arguments[0].querySelector('img'); return i ? i.src : null;", box)
            return hashlib.sha1(src.encode()).hexdigest() if src else None

        before = _wait(img_digest, 30, "the explorer's first figure")
        times = []
        for _ in range(3):
            prev = img_digest()
            handle.click()
            t1 = time.perf_counter()
            handle.send_keys(Keys.ARROW_RIGHT)
            _wait(lambda: img_digest() not in (None, prev), 30, "the explorer to redraw", poll=0.02)
            times.append(time.perf_counter() - t1)
        summary["slider_redraw_s"] = [round(t, 3) for t in times]
        assert img_digest() != before
        time.sleep(0.5)
        driver.save_screenshot(str(OUT / "05_explorer_in_jupyterlab.png"))
        # save the copy and check it: no error outputs, and the explorer is a widget view
        path = lab_server["root"] / NOTEBOOK
        mtime = path.stat().st_mtime_ns
        _menu(driver, "File", "Save Notebook")
        _wait(lambda: path.stat().st_mtime_ns != mtime, 30, "the notebook to be saved")
        saved = nbformat.read(path, 4)
        code = [c for c in saved.cells if c.cell_type == "code"]
        assert all(c.execution_count for c in code), "saved notebook has code cells that did not run"
        outputs = [o for c in code for o in c.get("outputs", [])]
        errors = [o for o in outputs if o.output_type == "error"]
        assert not errors, f"error output in JupyterLab: {errors[0].get('ename')}: {errors[0].get('evalue')}"
        views = [o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
        assert views, "saved notebook has no widget view output"
        summary.update(cells=len(saved.cells), widget_views=len(views), errors=0)
    except Exception:
        driver.save_screenshot(str(OUT / "lab_check_failure.png"))
        raise
    finally:
        driver.quit()
        (OUT / "lab_check.json").write_text(json.dumps(summary, indent=1))
    print("lab check:", summary)
