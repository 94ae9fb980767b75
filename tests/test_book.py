"""The course site (``make book``, :mod:`cbir.book`): every notebook, its real-data results and the report have a
page, no internal link is broken, MathJax is served by the site; plus the helpers that assemble the pages.

The build test builds the site exactly as ``make book`` does (``outputs/site-src`` -> ``outputs/site``,
incremental: a second run only rebuilds changed pages).
"""
from __future__ import annotations

import re

import nbformat
import pandas as pd
import pytest

from cbir import book
from cbir.params import repo_root

ROOT = repo_root()
# Sphinx 9 napoleon reads autodoc options through a deprecated mapping (RemovedInSphinx11Warning), once per object
pytestmark = pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")


@pytest.fixture(scope="module")
def site():
    return book.build()


def _text(html: str) -> str:
    """The visible text of a page (tags dropped, whitespace collapsed)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html)).strip()


def _names():
    return book.course_path((ROOT / "notebooks" / "README.md").read_text())


# ------------------------------------------------------------------------------------------------ the build
def test_every_notebook_and_the_report_have_a_page(site):
    out = site.out
    names = _names()
    assert sorted(names) == sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))
    index = (out / "index.html").read_text()
    for name in names:
        page = out / "notebooks" / f"{name}.html"
        assert page.is_file(), name
        assert f'href="notebooks/{name}.html"' in index, f"index does not link {name}"
        text = page.read_text()
        assert f"make reproduce NB={name[:2]}" in _text(text) and "make lab" in _text(text), name
        assert re.search(rf'href="../_downloads/\w+/{name}\.ipynb"', text), f"{name}: no link to the notebook file"
        assert f'href="{name}_results.html"' in text, f"{name}: no link to its real-data results"
        results = _text((out / "notebooks" / f"{name}_results.html").read_text())
        assert "results on real data" in results and "outputs/medium" in results
    for page in ("report.html", "glossary.html", "api/index.html", "genindex.html", "search.html"):
        assert (out / page).is_file(), page
    assert "cbir-repro report" in _text((out / "report.html").read_text())
    assert site.pages >= 2 * len(names) + 4


def test_no_broken_internal_link(site):
    assert site.broken == []
    assert book.broken_links(site.out) == []


def test_figures_have_captions_and_math_is_local(site):
    out = site.out
    quick = (out / "notebooks" / "00_quickstart.html").read_text()
    assert re.search(r'<script [^>]*src="\.\./_static/mathjax/MathJax\.js\?config=', quick)
    assert (out / "_static" / "mathjax" / "MathJax.js").is_file()
    assert quick.count('class="math notranslate nohighlight"') > 5
    figures = re.findall(r"<figure.*?</figure>", quick, re.S)
    assert figures and all("<img" in f and "<figcaption>" in f for f in figures)
    # every published figure of a notebook is on its results page, with a caption
    for name in _names():
        pub = (ROOT / "outputs" / "medium" / "figures").glob(f"{name[:2]}_*.png")
        page = (out / "notebooks" / f"{name}_results.html").read_text()
        caps = [_text(c) for c in re.findall(r"<figcaption>(.*?)</figcaption>", page, re.S)]
        for p in pub:
            assert any(c.startswith(f"Figure {name[:2]}.R") and p.stem in c for c in caps), p


def test_glossary_and_notebooks_link_the_api(site):
    gloss = (site.out / "glossary.html").read_text()
    for target in ("cbir.metrics.precision_at_k", "cbir.metrics.map_all", "cbir.index.BinaryIndex"):
        assert f"api/cbir.{target.split('.')[1]}.html#{target}" in gloss, target
    api = (site.out / "api" / "cbir.metrics.html").read_text()
    assert 'id="cbir.metrics.precision_at_k"' in api and "_modules/cbir/metrics.html" in api  # viewcode


# ----------------------------------------------------------------------------------------------- helpers
def test_course_path_and_sections():
    readme = (ROOT / "notebooks" / "README.md").read_text()
    assert _names()[0] == "00_quickstart"
    assert "| P@k |" in book.md_section(readme, "Glossary")
    with pytest.raises(KeyError, match="no section '## Nope'"):
        book.md_section(readme, "Nope")
    with pytest.raises(ValueError, match="lists no notebook"):
        book.course_path("## Course path\n\nnothing here\n")


def test_link_api_links_documented_names_only():
    md = ("See `cbir.metrics.map_all` and `cbir.index.knn()`, not `cbir.nope.x` or `np.mean`; "
          "$`cbir.metrics.map_all`$ stays math.\n```\n`cbir.metrics.map_all`\n```")
    out = book.link_api(md)
    assert "{py:func}`cbir.metrics.map_all <cbir.metrics.map_all>`" in out
    assert "{py:func}`cbir.index.knn() <cbir.index.knn>`" in out
    assert "`cbir.nope.x`" in out and "`np.mean`" in out
    assert "$`cbir.metrics.map_all`$" in out and "```\n`cbir.metrics.map_all`\n```" in out
    rel = book.link_api("`cbir.metrics.map_at_k`, `map_all`", relative=True)
    assert "<cbir.metrics.map_all>" in rel
    assert book.api_target("cbir.metrics") == ("py:mod", "cbir.metrics")
    assert book.api_target("cbir.metrics._private") is None


def test_markdown_table_escapes_and_rounds():
    df = pd.DataFrame({"a|b": ["x*y", None], "v": [1 / 3, float("nan")]})
    text = book.markdown_table(df)
    assert text.splitlines()[0] == r"| a\|b | v |"
    assert r"| x\*y | 0.3333 |" in text and "|  |  |" in text


def test_split_outputs_keeps_order_and_isolates_images():
    stream = nbformat.v4.new_output("stream", text="x")
    html = nbformat.v4.new_output("display_data", data={"text/html": "<b>t</b>"})
    img = nbformat.v4.new_output("display_data", data={"image/png": "AAAA"})
    runs = book._split_outputs([stream, html, img, img, stream, html])
    assert [(len(p), k) for p, k in runs] == [(2, False), (3, True), (1, False)]
    assert book._split_outputs([]) == [([], False)]


def test_prepare_notebook_adds_banner_captions_and_results_link():
    nb = nbformat.read(ROOT / "notebooks" / "00_quickstart.ipynb", as_version=4)
    page = book.prepare_notebook(nb, "00_quickstart")
    assert "Run this notebook" in page.cells[1].source and "make reproduce NB=00" in page.cells[1].source
    assert "00_quickstart_results" in page.cells[-1].source
    caps = [c.metadata["mystnb"]["figure"]["caption"] for c in page.cells if "mystnb" in c.metadata]
    n_images = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert len(caps) >= 1 and n_images >= len(caps)
    assert not any(book._is_widget(o) for c in page.cells for o in c.get("outputs", []))
    assert nb.cells[1].source != page.cells[1].source  # the committed notebook is untouched


def test_broken_links_finds_each_kind(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.html").write_text('<p id="here">b</p>')
    (tmp_path / "a.html").write_text(
        '<a href="sub/b.html#here">ok</a><a href="sub/b.html#gone">x</a><a href="missing.html">x</a>'
        '<a href="../outside.html">x</a><a href="#top">x</a><a href="https://doi.org/1">ext ok</a>'
        '<script src="https://cdn.example/x.js"></script><img src="sub/none.png">')
    problems = book.broken_links(tmp_path)
    why = sorted(p.split("(")[-1] for p in problems)
    assert len(problems) == 6, problems
    assert any("no id 'gone'" in p for p in problems) and any("no id 'top'" in p for p in problems)
    assert sum("no such file" in p for p in problems) == 2 and any("outside the site" in p for p in why)
    assert any("network" in p for p in problems)


def test_assemble_rejects_a_notebook_off_the_course_path(tmp_path):
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "README.md").write_text("## Course path\n\n| 0 | `00_a` | x |\n")
    for n in ("00_a", "01_b"):
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# t")]),
                       tmp_path / "notebooks" / f"{n}.ipynb")
    with pytest.raises(ValueError, match=r"present but not listed \['01_b'\]"):
        book.assemble(tmp_path, tmp_path / "src")
