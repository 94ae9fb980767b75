"""The course site: the notebooks, their published real-data results, the report, a glossary and the API.

``make book`` (``python -m cbir.book``) does two things:

1. :func:`assemble` writes a Sphinx source tree under ``outputs/site-src/``: ``index.md`` (the course path of
   ``notebooks/README.md`` as the table of contents), one page per notebook (a copy of the committed
   ``notebooks/NN_*.ipynb`` with a "run it" banner, figure captions and API links added; its stored outputs
   are shown, nothing is executed), one *results on real data* page per notebook (the published
   ``outputs/medium/`` tables and figures, :mod:`cbir.published`), the suite report
   (``outputs/medium/report.md``), the glossary of ``notebooks/README.md`` and one API page per module of
   ``lib/cbir`` (autodoc, napoleon for the NumPy docstrings, viewcode for the source).
2. :func:`build` runs ``sphinx-build -W --keep-going -n`` on it into ``outputs/site/`` (warnings and broken
   cross-references fail the build; docstring formatting warnings are listed in
   ``outputs/site/docstring_warnings.txt``) and :func:`broken_links` checks that every relative ``href`` /
   ``src`` of every page resolves to a file of the site and that no page loads a script, style sheet or
   image from the network.

Nothing here computes a result: the pages show what the notebooks and the ``medium`` run stored.
"""
from __future__ import annotations

import functools
import html
import importlib
import inspect
import json
import os
import pkgutil
import re
import shutil
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pandas as pd

from cbir.params import repo_root

HERE = Path(__file__).resolve().parent
#: Rows of a published table shown on a results page (the full CSV is linked below it).
MAX_TABLE_ROWS = 25
#: Modules left out of the API reference (the Sphinx configuration itself).
API_SKIP = ("cbir.book.sphinx_conf",)
NOTEBOOK_RE = re.compile(r"^\d\d_\w+$")


# ===================================================================================== notebooks/README.md
def md_section(text: str, title: str) -> str:
    """Body of the level-2 section ``## <title>...`` of a markdown text, up to the next level-2 heading.

    Raises
    ------
    KeyError
        When no level-2 heading starts with ``title``.
    """
    m = re.search(rf"^## {re.escape(title)}.*?$\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if not m:
        heads = re.findall(r"^## (.*)$", text, re.M)
        raise KeyError(f"no section '## {title}' in the markdown (has: {heads}); notebooks/README.md must keep it")
    return m.group(1).strip("\n")


def course_path(readme: str) -> list[str]:
    """Notebook names (``NN_name``) in the order of the course-path table of ``notebooks/README.md``."""
    names = re.findall(r"^\|\s*\d+\s*\|\s*`(\d\d_\w+)`", md_section(readme, "Course path"), re.M)
    if not names:
        raise ValueError("the '## Course path' table of notebooks/README.md lists no notebook "
                         "(rows like '| 0 | `00_quickstart` | ...')")
    return names


# ======================================================================================== links to the API
@functools.lru_cache(maxsize=1)
def api_modules() -> tuple[str, ...]:
    """Every public module of the ``cbir`` package, sorted (the pages of the API reference)."""
    import cbir

    names = ["cbir"] + [m.name for m in pkgutil.walk_packages(cbir.__path__, "cbir.")
                        if not any(part.startswith("_") for part in m.name.split("."))]
    return tuple(sorted(n for n in names if n not in API_SKIP))


def api_target(name: str) -> tuple[str, str] | None:
    """``(role, target)`` documenting the dotted ``cbir.…`` name on the API pages, or None.

    The target is where autodoc documents the object (its defining module: ``cbir.index.knn`` imported into
    another module links to ``cbir.index.knn``). Modules, functions, classes and methods have a target;
    data and private names have none.
    """
    parts = name.split(".")
    if parts[0] != "cbir" or any(p.startswith("_") for p in parts):
        return None
    obj, i = None, len(parts)
    while i > 0:  # longest importable module prefix
        try:
            obj = importlib.import_module(".".join(parts[:i]))
            break
        except ImportError:
            i -= 1
    if obj is None:
        return None
    if i == len(parts):
        return ("py:mod", name) if name in api_modules() else None
    owner = obj
    for p in parts[i:]:
        owner, obj = obj, getattr(obj, p, None)
        if obj is None:
            return None
    if inspect.ismodule(obj):
        return ("py:mod", obj.__name__) if obj.__name__ in api_modules() else None
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    if not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.ismethod(obj)):
        return None
    mod, qual = getattr(obj, "__module__", ""), getattr(obj, "__qualname__", "")
    if not mod or mod not in api_modules() or "<" in qual:
        return None
    if inspect.ismodule(owner) and owner.__name__ != mod and qual.split(".")[0] not in vars(sys.modules[mod]):
        return None
    return ("py:class" if inspect.isclass(obj) else "py:func" if "." not in qual else "py:meth",
            f"{mod}.{qual}")


_SKIP_SPANS = re.compile(r"(```.*?```|\$\$.*?\$\$|\$[^$\n]+\$|\{[\w:-]+\}`[^`]*`)", re.S)
_CODE_NAME = re.compile(r"`((?:cbir(?:\.\w+)+)|\w+)(\(\))?`")


def link_api(md: str, relative: bool = False) -> str:
    """Turn inline code naming a documented ``cbir`` object (the markdown ```cbir.retarget.fu_targets```)
    into a MyST cross-reference to its API entry; math, code fences and existing roles are left alone. With
    ``relative``, a bare name (```map_all```) after a linked name on the same line resolves against that
    name's module."""
    def sub_line(line: str) -> str:
        ctx: list[str] = []

        def repl(m: re.Match) -> str:
            name, call = m.group(1), m.group(2) or ""
            if not name.startswith("cbir."):
                if not (relative and ctx):
                    return m.group(0)
                name = f"{ctx[-1]}.{name}"
            hit = api_target(name)
            if not hit:
                return m.group(0)
            role, target = hit
            ctx.append(target if role == "py:mod" else target.rsplit(".", 1)[0])
            shown = m.group(1) + call
            return f"{{{role}}}`{shown} <{target}>`"
        return _CODE_NAME.sub(repl, line)

    out = []
    for i, part in enumerate(_SKIP_SPANS.split(md)):
        out.append(part if i % 2 else "\n".join(sub_line(line) for line in part.split("\n")))
    return "".join(out)


# ============================================================================================== notebooks
def _savefig_names(source: str) -> list[str]:
    return re.findall(r"savefig\(\s*\w+\s*,\s*f?[\"'](\d\d_\w+)[\"']", source)


def figure_captions(nb: nbformat.NotebookNode) -> dict[str, str]:
    """Caption of each figure a notebook saves (``plots.savefig(fig, "NN_name", P)``): the heading of the
    section that draws it, e.g. ``{"01_fig3_m_sweep": "3. Fig. 3 — accuracy vs number of kernels m"}``."""
    caps, heading = {}, nb.cells[0].source.splitlines()[0].lstrip("# ") if nb.cells else ""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            heads = re.findall(r"^#{2,4} (.+)$", cell.source, re.M)
            heading = heads[-1].strip() if heads else heading
        elif cell.cell_type == "code":
            for name in _savefig_names(cell.source):
                caps.setdefault(name, heading)
    return caps


def _headings(nb: nbformat.NotebookNode) -> list[str | None]:
    """The section heading above each cell (None before the first ``##``)."""
    out, heading = [], None
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            heads = re.findall(r"^#{2,4} (.+)$", cell.source, re.M)
            heading = heads[-1].strip() if heads else heading
        out.append(heading)
    return out


def _is_widget(output) -> bool:
    return "application/vnd.jupyter.widget-view+json" in output.get("data", {})


def _split_outputs(outputs: list) -> list[tuple[list, bool]]:
    """A code cell's outputs cut into runs of image and of other displays (streams join the current run),
    so that a caption (which myst-nb puts on every display of a cell) only goes to images."""
    runs: list[tuple[list, bool]] = []
    for o in outputs:
        kind = None if o.get("output_type") == "stream" else "image/png" in o.get("data", {})
        if runs and (kind is None or kind == runs[-1][1]):
            runs[-1][0].append(o)
        elif runs and runs[-1][1] is None:
            runs[-1] = (runs[-1][0] + [o], kind)
        else:
            runs.append(([o], kind))
    return [(part, bool(kind)) for part, kind in runs] or [([], False)]


def prepare_notebook(nb: nbformat.NotebookNode, name: str) -> nbformat.NotebookNode:
    """The page version of a committed notebook (a copy; the original is untouched).

    Adds a banner after the title (download link, how to run it, link to its real-data results page), a
    caption under each image output (the section it belongs to and the saved figure's name; a cell whose
    images follow other displays is cut in two, the second without its input), API links in
    the markdown (:func:`link_api`) and a closing hidden toctree entry for the results page; drops widget
    views (progress bars, whose live state is not stored) and the widget state.
    """
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    nb.metadata.pop("widgets", None)
    num = name[:2]
    heads = _headings(nb)
    figure_no, cells = 0, []
    for cell, head in zip(nb.cells, heads):
        if cell.cell_type == "markdown":
            cell.source = link_api(cell.source)
        if cell.cell_type != "code":
            cells.append(cell)
            continue
        cell.outputs = [o for o in cell.get("outputs", []) if not _is_widget(o)]
        saved = _savefig_names(cell.source)
        for k, (part, is_image) in enumerate(_split_outputs(cell.outputs)):
            piece = cell if k == 0 else nbformat.v4.new_code_cell(
                "# (outputs of the cell above)", metadata={"tags": ["remove-input"]},  # myst-nb skips empty cells
                execution_count=cell.get("execution_count"))
            piece.outputs = part
            if is_image:
                figure_no += 1
                file = f" Saved as `{saved[0]}.png`." if saved else ""
                cap = (f"Figure {num}.{figure_no} ({head or 'the notebook'}), smoke-profile output stored in "
                       f"the notebook.{file}")
                # myst-nb renders the cell's display outputs inside a figure with this caption
                piece.metadata.setdefault("mystnb", {})["figure"] = {"caption": cap}
            cells.append(piece)
    nb.cells = cells
    title = nb.cells[0].source if nb.cells and nb.cells[0].cell_type == "markdown" else ""
    if not title.lstrip().startswith("# "):
        raise ValueError(f"notebook {name}: the first cell must be a markdown cell opening with '# <title>' "
                         "(it becomes the page title)")
    banner = (
        ":::{admonition} Run this notebook\n:class: tip\n\n"
        f"This page shows `notebooks/{name}.ipynb` as committed, with the stored outputs of the fast `smoke` "
        f"profile (nothing was re-run to build the site): {{download}}`download {name}.ipynb "
        f"<../_raw/{name}.ipynb>`.\n\n"
        f"* Interactively: `make lab` (JupyterLab with the project's kernel), then open `{name}.ipynb`.\n"
        f"* Headless: `make reproduce NB={num}` (smoke profile, offline data) or "
        f"`make reproduce PROFILE=medium NB={num}` (real data from `../shared/data`).\n\n"
        f"Real-data results of this notebook (the committed `medium` run): {{doc}}`{name}_results`.\n:::")
    nb.cells.insert(1, nbformat.v4.new_markdown_cell(banner))
    nb.cells.append(nbformat.v4.new_markdown_cell(
        f"---\n\nNext: {{doc}}`{num} results on real data <{name}_results>`.\n\n"
        f"```{{toctree}}\n:hidden:\n\n{name}_results\n```"))
    for i, cell in enumerate(nb.cells):  # stable ids (nbformat 4.5) so a rebuild writes the same file
        cell["id"] = f"cell-{i}"
    return nb


# ========================================================================================= results pages
_MD_ESCAPE = re.compile(r"([\\`*_\[\]<>$|{}#~])")


def _cell(v) -> str:
    if isinstance(v, float):
        return "" if pd.isna(v) else f"{v:.4g}"
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return ""
    return _MD_ESCAPE.sub(r"\\\1", str(v)).replace("\n", " ")


def markdown_table(df: pd.DataFrame, max_rows: int | None = None, index: bool = False) -> str:
    """A DataFrame as a markdown table (floats to 4 significant digits, markdown characters escaped)."""
    if index:
        df = df.reset_index()
    shown = df if max_rows is None else df.head(max_rows)
    cols = [str(c) for c in shown.columns]
    lines = ["| " + " | ".join(_cell(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for row in shown.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines)


def results_page(name: str, root: Path, src_dir: Path, captions: dict[str, str],
                 written: set[Path] | None = None) -> str:
    """Markdown of the page *NN results on real data*: the published ``medium`` run of notebook ``name``
    (:func:`cbir.published.load`), its verdicts, paper-vs-ours rows, result tables and figures; copies the
    tables and figures it shows into ``src_dir/_medium/``."""
    from cbir import published

    pub = published.load(name, "medium", root=root)
    num = name[:2]
    out = [f"# {num} results on real data", "",
           f"The committed run of the `medium` profile (real datasets) of {{doc}}`{name}`, read from "
           f"`outputs/medium/` by `cbir.published` — nothing on this page was recomputed to build the site. "
           f"Re-run it with `make reproduce PROFILE=medium NB={num}` (needs `../shared/data`).", "",
           f"**Run.** {_cell(pub.describe())}.", ""]
    if not pub.available:
        return "\n".join(out + ["No finished `medium` run of this notebook is published, so no results are "
                                "shown.", ""])
    if len(pub.rows):
        out += ["## Paper vs ours", "", "Verdict counts (`cbir.report.summary`):", "",
                markdown_table(pub.verdicts(), index=True), "", "Every row (`cbir.report.show`):", "",
                markdown_table(pub.show()), ""]
    tables = pub.tables()
    if tables:
        out += ["## Result tables", ""]
    for t in tables:
        df = pub.table(t)
        dst = src_dir / "_medium" / "tables" / f"{t}.csv"
        _copy(pub.base / "tables" / f"{t}.csv", dst, written)
        more = (f"the first {MAX_TABLE_ROWS} of {len(df)} rows" if len(df) > MAX_TABLE_ROWS
                else f"{len(df)} rows")
        out += [f"### `{t}`", "", markdown_table(df, MAX_TABLE_ROWS), "",
                f"{more.capitalize()}; full table: {{download}}`{t}.csv <_medium/tables/{t}.csv>` "
                f"(`outputs/medium/tables/{t}.csv`).", ""]
    order = {n: i for i, n in enumerate(captions)}  # the notebook's order, then the others by name
    figs = sorted(pub.figures(), key=lambda p: (order.get(p.stem, len(order)), p.stem))
    if figs:
        out += ["## Figures", ""]
    for k, p in enumerate(figs, 1):
        _copy(p, src_dir / "_medium" / "figures" / p.name, written)
        where = captions.get(p.stem)
        where = f"from the section *{_cell(where)}* of the notebook" if where else "drawn by the notebook"
        out += [f"```{{figure}} _medium/figures/{p.name}", f":name: fig-medium-{num}-{k}",
                f":alt: {p.stem}", ":width: 100%", "",
                f"Figure {num}.R{k}: `{p.stem}`, {where}, `medium` run (`outputs/medium/figures/{p.name}`).",
                "```", ""]
    return "\n".join(out)


# =========================================================================================== other pages
def index_page(readme: str, names: list[str]) -> str:
    """Markdown of the home page: what the course is, how to run it, the course path, the tables of contents."""
    table = md_section(readme, "Course path").split("\n")
    rows = []
    for line in table:
        m = re.match(r"^(\|\s*\d+\s*\|\s*)`(\d\d_\w+)`(.*)$", line)
        if m:
            line = f"{m.group(1)}{{doc}}`{m.group(2)} <notebooks/{m.group(2)}>`{link_explorers(m.group(3))}"
        rows.append(line)
    intro = readme.split("\n## ", 1)[0].split("\n", 1)[1].strip()
    toc = "\n".join(f"notebooks/{n}" for n in names)
    return f"""# cbir-repro: a course in content-based image retrieval

Five papers on content-based image retrieval (CBIR), reproduced in one notebook each on a shared library
(`lib/cbir`), plus a quickstart. This site shows the committed notebooks with their stored (fast `smoke`
profile) outputs, each notebook's published results on real data (the `medium` run), the suite's
paper-vs-ours report, a glossary and the API reference of the library — read it before installing anything.

## Running it yourself

* `make lab` — JupyterLab with the project's kernel (first use sets up `.venv` and warms the smoke cache);
  every cell runs in seconds.
* `make reproduce NB=02` — one notebook headless with papermill (smoke profile, offline data);
  `make reproduce PROFILE=medium NB=02` runs it on the real datasets.
* `make book` — rebuilds this site into `outputs/site/` (no notebook is executed).

{intro}

## Course path

{chr(10).join(rows)}

```{{toctree}}
:caption: Course
:maxdepth: 1

{toc}
```

```{{toctree}}
:caption: Reference
:maxdepth: 1

report
glossary
api/index
```
"""


def link_explorers(text: str) -> str:
    """Link explorer class names (```RetrievalExplorer```) to :mod:`cbir.explore` where documented."""
    def repl(m: re.Match) -> str:
        hit = api_target(f"cbir.explore.{m.group(1)}")
        return f"{{{hit[0]}}}`{m.group(1)} <{hit[1]}>`" if hit else m.group(0)
    return re.sub(r"`(\w+Explorer)`", repl, link_api(text))


def glossary_page(readme: str) -> str:
    """Markdown of the glossary page (``notebooks/README.md``'s glossary, names linked to the API)."""
    return ("# Glossary\n\nThe terms the notebooks use, what they mean here, and the function that implements "
            "each (linked to the API reference).\n\n" + link_api(md_section(readme, "Glossary"), relative=True)
            + "\n")


def report_page(root: Path) -> str:
    """Markdown of the report page (``outputs/medium/report.md`` as committed, with a note on its origin)."""
    path = root / "outputs" / "medium" / "report.md"
    if not path.is_file():
        return ("# Report\n\nNo `medium` report is published (`outputs/medium/report.md` is missing); "
                "`make reproduce PROFILE=medium` writes it.\n")
    title, _, body = path.read_text().partition("\n")
    note = ("*The suite's published report, `outputs/medium/report.md`, as committed. Each notebook's results "
            "page has its rows with the tables and figures of the same run.*")
    return f"{title}\n\n{note}\n{body}"


def api_index(modules: list[str]) -> str:
    """reST of the API reference's index: an autosummary table of the modules and their (hidden) pages."""
    lines = ["API reference (``lib/cbir``)", "=" * 30, "",
             "Generated from the docstrings of the library (NumPy style; each cites the paper and equation it "
             "implements). Every function links to its source (*[source]*).", "",
             ".. autosummary::", ""] + [f"   {m}" for m in modules] + [
             "", ".. toctree::", "   :hidden:", ""] + [f"   {m}" for m in modules] + [""]
    return "\n".join(lines)


def api_page(module: str) -> str:
    """reST of one module's API page (``automodule`` with its members)."""
    return f"{module}\n{'=' * len(module)}\n\n.. automodule:: {module}\n"


# ============================================================================================= assembling
def _write(path: Path, text: str, written: set[Path]) -> None:
    """Write ``text`` unless the file already holds it (so Sphinx rebuilds only changed pages)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    written.add(path.resolve())


def _copy(src: Path, dst: Path, written: set[Path] | None = None) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.is_file() or dst.stat().st_size != src.stat().st_size or dst.read_bytes() != src.read_bytes():
        shutil.copyfile(src, dst)
    if written is not None:
        written.add(dst.resolve())


def mathjax_dir() -> Path:
    """The MathJax 2.7 copy shipped by the ``jupyter-server-mathjax`` package."""
    try:
        import jupyter_server_mathjax
    except ImportError as e:
        raise ImportError("the course site serves MathJax from the jupyter-server-mathjax package, which is not "
                          "installed: pip install -e '.[dev]' (or make book, which does it)") from e
    return Path(jupyter_server_mathjax.__file__).parent / "static"


def copy_mathjax(dst: Path, written: set[Path]) -> None:
    """Copy what MathJax needs offline (``MathJax.js``, config, extensions, fonts, jax, English) to ``dst``."""
    base = mathjax_dir()
    keep = ("MathJax.js", "LICENSE", "config", "extensions", "fonts", "jax", "localization/en")
    for p in sorted(base.rglob("*")):
        rel = p.relative_to(base).as_posix()
        if p.is_file() and any(rel == k or rel.startswith(k + "/") for k in keep):
            _copy(p, dst / rel, written)


def assemble(root: Path | None = None, src: Path | None = None) -> Path:
    """Write the Sphinx source tree of the site (default ``outputs/site-src/``) and return its folder.

    Files whose content did not change are left as they are and files of an earlier assembly that are no
    longer produced are removed, so a second ``make book`` rebuilds only what changed.
    """
    root = Path(root or repo_root())
    src = Path(src or root / "outputs" / "site-src")
    readme = (root / "notebooks" / "README.md").read_text()
    names = course_path(readme)
    missing = [n for n in names if not (root / "notebooks" / f"{n}.ipynb").is_file()]
    extra = sorted(p.stem for p in (root / "notebooks").glob("*.ipynb") if p.stem not in names)
    if missing or extra:
        raise ValueError(f"notebooks/README.md's course path and notebooks/*.ipynb disagree: listed but absent "
                         f"{missing}, present but not listed {extra}; add the notebook to the course-path table")
    written: set[Path] = set()
    _copy(HERE / "sphinx_conf.py", src / "conf.py", written)
    _write(src / "_static" / ".keep", "", written)
    copy_mathjax(src / "_static" / "mathjax", written)
    _write(src / "index.md", index_page(readme, names), written)
    _write(src / "glossary.md", glossary_page(readme), written)
    _write(src / "report.md", report_page(root), written)
    for name in names:
        raw = root / "notebooks" / f"{name}.ipynb"
        _copy(raw, src / "_raw" / raw.name, written)
        nb = nbformat.read(raw, as_version=4)
        _write(src / "notebooks" / raw.name, nbformat.writes(prepare_notebook(nb, name)) + "\n", written)
        text = results_page(name, root, src / "notebooks", figure_captions(nb), written)
        _write(src / "notebooks" / f"{name}_results.md", text, written)
    modules = api_modules()
    _write(src / "api" / "index.rst", api_index(modules), written)
    for m in modules:
        _write(src / "api" / f"{m}.rst", api_page(m), written)
    for p in sorted(src.rglob("*"), reverse=True):  # leftovers of an earlier assembly
        if ".build" in p.parts:  # doctrees and myst-nb's image files, kept for incremental builds
            continue
        if p.is_file() and p.resolve() not in written:
            p.unlink()
        elif p.is_dir() and not any(p.iterdir()):
            p.rmdir()
    return src


# =============================================================================================== building
@dataclass
class Site:
    """A built site: where it is and what it holds."""

    out: Path
    seconds: float
    pages: int
    size_bytes: int
    docstring_warnings: int
    broken: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line: path, pages, size, build time, link check, docstring warnings."""
        return (f"site: {self.out / 'index.html'} — {self.pages} pages, {self.size_bytes / 2**20:.1f} MiB, "
                f"built in {self.seconds:.1f} s; {len(self.broken)} broken internal links; "
                f"{self.docstring_warnings} docstring warnings ({self.out / 'docstring_warnings.txt'})")


class BookBuildError(RuntimeError):
    """sphinx-build failed (a warning under -W, a broken reference, an error) or a link is broken."""


def build(root: Path | None = None, src: Path | None = None, out: Path | None = None,
          check_links: bool = True, jobs: int | str = 1) -> Site:
    """Assemble the sources and build the HTML site (default ``outputs/site/``) with
    ``sphinx-build -b html -W --keep-going -n`` (in this process, so the library is imported once).

    Parameters
    ----------
    jobs : int or "auto", default 1
        Sphinx's ``-j``: parallel reading and writing (``"auto"``: one per CPU).

    Raises
    ------
    BookBuildError
        With sphinx-build's warnings when it fails, or the list of broken links.
    """
    from sphinx.cmd.build import build_main

    t0 = time.perf_counter()
    root = Path(root or repo_root())
    src = assemble(root, src)
    out = Path(out or root / "outputs" / "site")
    out.mkdir(parents=True, exist_ok=True)
    warn_log = src / ".build" / "sphinx-warnings.txt"
    warn_log.parent.mkdir(parents=True, exist_ok=True)
    warn_log.unlink(missing_ok=True)
    old_root = os.environ.get("CBIR_ROOT")
    os.environ["CBIR_ROOT"] = str(root)  # the notebooks' links and cbir.published read the same tree
    try:
        rc = build_main(["-b", "html", "-W", "--keep-going", "-n", "-q", "-j", str(jobs), "-w", str(warn_log),
                         "-d", str(src / ".build" / "doctrees"), str(src), str(out)])
    finally:
        if old_root is None:
            os.environ.pop("CBIR_ROOT", None)
        else:
            os.environ["CBIR_ROOT"] = old_root
    if rc != 0:
        text = warn_log.read_text() if warn_log.is_file() else "(no warnings file)"
        raise BookBuildError(f"sphinx-build failed (exit {rc}); fix these and run make book again:\n{text[-8000:]}")
    warn_file = out / "docstring_warnings.txt"
    n_warn = len(re.findall(r":docstring of cbir\.", warn_file.read_text())) if warn_file.is_file() else 0
    pages = [p for p in out.rglob("*.html") if not p.relative_to(out).parts[0].startswith("_")]
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    site = Site(out, 0.0, len(pages), size, n_warn)
    if check_links:
        site.broken = broken_links(out)
        if site.broken:
            raise BookBuildError(f"{len(site.broken)} broken links in {out}:\n" + "\n".join(site.broken[:50]))
    site.seconds = time.perf_counter() - t0
    return site


# ============================================================================================ link check
_TAG = re.compile(r"<([a-zA-Z][\w-]*)(\s[^>]*)?>", re.S)
_ATTR = re.compile(r"""([\w:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')""")


class _Links:
    """Ids and links (``href`` / ``src``) of one HTML page (regular expressions: Sphinx writes regular HTML,
    and html.parser is ten times slower on the site's 10 MB of pages)."""

    def __init__(self, text: str):
        self.refs: list[tuple[str, str, str]] = []  # (tag, attribute, value)
        self.ids: set[str] = set()
        text = re.sub(r"<!--.*?-->|(<script\b[^>]*>).*?</script>", lambda m: m.group(1) or "", text,
                      flags=re.S | re.I)  # comments and inline scripts hold no links of the page
        for m in _TAG.finditer(text):
            tag = m.group(1).lower()
            attrs = {k.lower(): html.unescape(v1 if v1 or not v2 else v2) for k, v1, v2 in _ATTR.findall(m.group(2) or "")}
            for key in ("id", "name") if tag != "meta" else ():
                if attrs.get(key):
                    self.ids.add(attrs[key])
            for key in ("href", "src"):
                if key in attrs:
                    kind = tag + (f"[rel={attrs.get('rel')}]" if tag == "link" else "")
                    self.refs.append((kind, key, attrs[key]))


def broken_links(out: Path) -> list[str]:
    """Every relative ``href`` / ``src`` of the site's HTML pages that does not resolve to a file of the site
    (or to an ``id`` of the page it names), and every script, style sheet or image loaded from the network.

    Returns a list of ``"<page>: <tag> <attr>=<value> (<why>)"``; empty when the site is sound.
    """
    out = Path(out).resolve()
    parsed: dict[Path, _Links] = {}

    def parse(p: Path) -> _Links:
        if p not in parsed:
            parsed[p] = _Links(p.read_text(errors="replace"))
        return parsed[p]

    problems = []
    for page in sorted(out.rglob("*.html")):
        for tag, attr, value in parse(page).refs:
            url = urllib.parse.urlsplit(value)
            where = f"{page.relative_to(out)}: {tag} {attr}={value!r}"
            if url.scheme in ("mailto", "data", "javascript") or value.startswith("about:"):
                continue
            if url.scheme or value.startswith("//"):
                if attr == "src" or "stylesheet" in tag or "preload" in tag:
                    problems.append(f"{where} (loaded from the network; the site must work offline)")
                continue
            if not url.path:
                if url.fragment and url.fragment not in parse(page).ids:
                    problems.append(f"{where} (no id {url.fragment!r} on this page)")
                continue
            target = (page.parent / urllib.parse.unquote(url.path)).resolve()
            if out not in target.parents and target != out:
                problems.append(f"{where} (points outside the site)")
                continue
            if target.is_dir():
                target = target / "index.html"
            if not target.is_file():
                problems.append(f"{where} (no such file)")
            elif url.fragment and target.suffix == ".html" and url.fragment not in parse(target).ids:
                problems.append(f"{where} (no id {url.fragment!r} in {target.relative_to(out)})")
    return problems
