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


# ---------------------------------------------------------------------------------------------- course site
SITE_PAGE = "notebooks/00_quickstart.html"  # equations (P@k, AP@k) and stored figures


@pytest.fixture
def site_server(browser):
    """The course site (``make book``, built here into outputs/site/) served on 127.0.0.1:<free port>."""
    import functools
    import http.server
    import threading

    from cbir import book

    site = book.build()
    missing: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):  # quiet
            pass

        def log_request(self, code="-", size="-"):  # remember what the site lacks (the browser asks for a
            if str(code).startswith(("4", "5")) and not self.path.startswith("/favicon.ico"):  # favicon)
                missing.append(f"{code} {self.path}")

    handler = functools.partial(Handler, directory=str(site.out))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", _free_port()), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield {"base": f"http://127.0.0.1:{httpd.server_address[1]}", "site": site, "missing": missing}
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_site_renders_equations_and_figures(site_server, tmp_path):
    """The site's index and one notebook page in headless Chromium: MathJax (served by the site) typeset the
    equations, the figures' images loaded and have captions, nothing came from another host; screenshots in
    ``outputs/lab_check/``."""
    from selenium.webdriver.common.by import By

    OUT.mkdir(parents=True, exist_ok=True)
    base = site_server["base"]
    driver = _driver(tmp_path)
    summary: dict = {"site": str(site_server["site"].out), "pages": site_server["site"].pages,
                     "build_s": round(site_server["site"].seconds, 1)}
    try:
        driver.get(f"{base}/index.html")
        links = driver.execute_script(
            "return Array.from(document.querySelectorAll('a.reference.internal'), a => a.getAttribute('href'))")
        assert any(h.startswith("notebooks/00_quickstart.html") for h in links), links[:20]
        assert any(h.startswith("report.html") for h in links), links[:20]
        driver.save_screenshot(str(OUT / "site_index.png"))

        t0 = time.monotonic()
        driver.get(f"{base}/{SITE_PAGE}")

        def typeset():  # MathJax 2 (the site's copy): each Sphinx math element typeset, none in error
            return driver.execute_script(
                "const hub = window.MathJax && MathJax.Hub;"
                "if (!hub || hub.queue.pending || hub.queue.running) return null;"
                "const els = Array.from(document.querySelectorAll('.math.notranslate'));"
                "return [els.length,"
                " els.filter(e => e.querySelector('script[type^=\\'math/tex\\']')"
                "   && e.querySelector('.MathJax, .MathJax_Display, .MathJax_CHTML, .MathJax_SVG')).length,"
                " document.querySelectorAll('.MathJax_Error, merror').length]")

        n_math, n_rendered, n_err = _wait(lambda: (lambda v: v if v and v[1] == v[0] else None)(typeset()),
                                          60, "MathJax to typeset every equation of the page")
        summary.update(math_spans=n_math, math_rendered=n_rendered, math_errors=n_err,
                       typeset_s=round(time.monotonic() - t0, 1))
        assert n_math > 0 and n_err == 0, summary
        for k, fig in enumerate(driver.find_elements(By.CSS_SELECTOR, "figure")):  # images may load lazily:
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", fig)  # bring each in view
            _wait(lambda: driver.execute_script(
                "const i = arguments[0].querySelector('img'); return !i || (i.complete && i.naturalWidth > 0);",
                fig), 20, f"figure {k + 1}'s image to load")
        figs = driver.execute_script(
            "return Array.from(document.querySelectorAll('figure'), f => {const i = f.querySelector('img');"
            " const c = f.querySelector('figcaption');"
            " return [i ? i.complete && i.naturalWidth : 0, c ? c.textContent.trim() : ''];})")
        summary["figures"] = len(figs)
        assert figs and all(w > 0 for w, _ in figs), f"figures not loaded: {figs}"
        assert all(cap for _, cap in figs), f"figure without caption: {figs}"
        hosts = driver.execute_script(
            "return performance.getEntriesByType('resource').map(e => new URL(e.name).host)")
        outside = sorted({h for h in hosts if h != base.split("//")[1]})
        assert not outside, f"resources loaded from other hosts: {outside}"
        assert not site_server["missing"], f"the site lacks files the pages load: {site_server['missing']}"
        eq = driver.find_elements(By.CSS_SELECTOR, ".MathJax_Display")
        target = eq[0] if eq else driver.find_element(By.CSS_SELECTOR, "figure")
        driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", target)
        time.sleep(0.3)
        driver.save_screenshot(str(OUT / "site_notebook_00.png"))
    except Exception:
        driver.save_screenshot(str(OUT / "site_check_failure.png"))
        raise
    finally:
        driver.quit()
        (OUT / "site_check.json").write_text(json.dumps(summary, indent=1))
    print("site check:", summary)
