"""Sphinx configuration of the course site; :func:`cbir.book.assemble` copies it to ``<src>/conf.py``.

Nothing is executed (``nb_execution_mode = "off"``): the pages show the notebooks' committed outputs. MathJax
is served from ``_static/mathjax`` (copied from the ``jupyter-server-mathjax`` package), the theme is
Sphinx's bundled alabaster, and widgets' CDN scripts are switched off, so the site needs no network at build
or view time.
"""
from __future__ import annotations

import json as _json
import logging as _logging
import re as _re
import os as _os
from pathlib import Path as _Path

project = "cbir-repro"
author = "cbir-repro contributors"
copyright = "cbir-repro contributors (MIT)"
html_title = "cbir-repro — a course in content-based image retrieval"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
]
root_doc = "index"
exclude_patterns = [".build", "_raw/**", "**/.ipynb_checkpoints"]
templates_path: list[str] = []

# notebooks: stored outputs only, never executed
nb_execution_mode = "off"
nb_ipywidgets_js: dict = {}          # no require.js / widget manager from a CDN
nb_output_stderr = "remove"          # progress bars and warnings written to stderr are run noise
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
myst_heading_anchors = 3
myst_update_mathjax = False          # MathJax 2 below; myst's MathJax-3 options would not apply

# MathJax 2.7 served by the site itself (_static/mathjax, see cbir.book.copy_mathjax)
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
# that copy ships the STIX-Web fonts only (as Jupyter's own MathJax configuration uses them)
mathjax2_config = {"HTML-CSS": {"availableFonts": [], "preferredFont": None, "webFont": "STIX-Web",
                                "imageFont": None},
                   "SVG": {"font": "STIX-Web"}, "showMathMenu": False}

# API reference of lib/cbir
autosummary_generate = False         # module pages are written by cbir.book (one page per module)
# every public member, also the ones left out of a module's __all__ or without a docstring, so that
# docstrings can cite any of them (:func:`cbir.data.class_counts`)
autodoc_default_options = {"members": True, "undoc-members": True, "ignore-module-all": True,
                           "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_mock_imports: list[str] = []
napoleon_numpy_docstring = True
napoleon_google_docstring = False
napoleon_use_rtype = False
napoleon_use_ivar = True             # dataclass fields are documented once, by autodoc

# -n checks every cross-reference; only references into this project (cbir.*) and pages must resolve,
# types of other libraries (numpy, pandas, torch, pathlib, ...) have no inventory offline
nitpicky = True
# (private helpers cbir.x._y in signatures are not documented either)
nitpick_ignore_regex = [(r"py:.*", r"(?!cbir\.).*"), (r"py:.*", r".*\._\w+.*")]
suppress_warnings = [
    "ref.python",   # "more than one target found" for a word of a NumPy type ("callable(model)")
    "myst.header",  # a notebook's heading levels that skip one (H1 to H3) render fine
]

html_theme = "alabaster"
html_static_path = ["_static"]
html_theme_options = {"fixed_sidebar": True, "show_relbars": True, "page_width": "1180px",
                      "sidebar_width": "250px"}
html_sidebars = {"**": ["about.html", "navigation.html", "relations.html", "searchbox.html"]}
html_show_sourcelink = False
html_copy_source = False
html_last_updated_fmt = None


class _DocstringWarnings(_logging.Filter):
    """Docstring formatting warnings (docutils on a ``docstring of cbir.x``) do not fail the build: they are
    listed in ``<outdir>/docstring_warnings.txt`` instead of counted; every other warning (a notebook page, a
    generated page, a broken reference, an autodoc import error) stays a warning and fails the build under
    ``-W``. ``CBIR_BOOK_STRICT_DOCSTRINGS=1`` keeps docstring warnings fatal too."""

    def __init__(self, app):
        super().__init__()
        self.app = app
        self.found: dict[str, list[str]] = {}  # API page -> warnings, of the pages read in this build

    def filter(self, record: _logging.LogRecord) -> bool:
        location = getattr(record, "location", None)
        if location is not None and not isinstance(location, str):
            from sphinx.util.logging import get_node_location

            try:
                location = get_node_location(location)
            except Exception:  # a (docname, line) pair
                location = str(location)
        m = _re.search(r":docstring of (cbir[\w.]*)", str(location or ""))
        if record.levelno >= _logging.WARNING and getattr(record, "type", None) == "docutils" and m:
            parts = m.group(1).split(".")  # the API page: the longest module prefix that has one
            page = next((f"api/{'.'.join(parts[:i])}" for i in range(len(parts), 0, -1)
                         if (_Path(self.app.srcdir) / "api" / f"{'.'.join(parts[:i])}.rst").is_file()), "api/index")
            self.found.setdefault(page, []).append(f"{location}: {record.getMessage()}")
            return False
        return True


def _install_filter(app) -> None:
    from sphinx.util.logging import WarningStreamHandler

    app._cbir_docstrings = _DocstringWarnings(app)
    app._cbir_reread = set()
    for h in _logging.getLogger("sphinx").handlers:
        if isinstance(h, WarningStreamHandler):
            h.filters.insert(0, app._cbir_docstrings)


def _reread(app, env, docnames) -> None:
    app._cbir_reread = set(docnames)


def _write_docstring_warnings(app, exception) -> None:
    """Merge this build's docstring warnings with those of pages an incremental build did not re-read."""
    if exception is not None or not hasattr(app, "_cbir_docstrings"):
        return
    store = _Path(app.doctreedir) / "docstring_warnings.json"
    known = _json.loads(store.read_text()) if store.is_file() else {}
    known = {k: v for k, v in known.items() if k not in app._cbir_reread}
    known.update(app._cbir_docstrings.found)
    store.write_text(_json.dumps(known, indent=0, sort_keys=True))
    lines = [w for k in sorted(known) for w in known[k]]
    (_Path(app.outdir) / "docstring_warnings.txt").write_text("".join(f"{w}\n" for w in lines))


def _output_folder(app) -> None:
    """myst-nb writes the notebooks' images to ``<outdir>/../jupyter_execute``; keep them in the source
    tree's ``.build/`` (beside the doctrees) instead of beside the site."""
    folder = _Path(app.srcdir) / ".build" / "jupyter_execute"
    app.env.mystnb_config = app.env.mystnb_config.copy(output_folder=str(folder))


def _plain_problematic(app, doctree, docname) -> None:
    """Markup that docutils could not parse (a docstring's stray ``*`` or backquote, whose warning went to
    docstring_warnings.txt) is shown as the text it is, not as a link to a system message that the HTML
    leaves out (a broken ``#id1`` link otherwise)."""
    from docutils import nodes

    for node in list(doctree.findall(nodes.problematic)):
        node.replace_self(nodes.inline(node.rawsource, node.astext()))  # keeps the ids, drops the refid


def setup(app):
    app.connect("builder-inited", _output_folder, priority=900)  # after myst-nb's own (500)
    app.connect("doctree-resolved", _plain_problematic)
    if not _os.environ.get("CBIR_BOOK_STRICT_DOCSTRINGS"):
        app.connect("builder-inited", _install_filter)
        app.connect("env-before-read-docs", _reread)
        app.connect("build-finished", _write_docstring_warnings)
    return {"parallel_read_safe": True}
