"""The three floors of shared/DESIGN.md: experiments -> methods -> core, imports pointing down only."""
import ast
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LIB = ROOT / "lib" / "cbir"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0[1-5]_*.ipynb"))


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{a.name}" for a in node.names}
    return names


@pytest.mark.parametrize("path", sorted(p for p in LIB.rglob("*.py") if "experiments" not in p.parts),
                         ids=lambda p: str(p.relative_to(LIB)))
def test_nothing_below_imports_experiments(path):
    up = sorted(n for n in _imports(path) if n.startswith("cbir.experiments"))
    assert not up, f"{path.relative_to(ROOT)} imports {up}: methods and core must not import the experiments floor"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_notebook_has_its_experiment_module(nb):
    module = nb.stem.split("_", 1)[1]
    assert (LIB / "experiments" / f"{module}.py").is_file(), f"{nb.name} needs lib/cbir/experiments/{module}.py"
    code = "\n".join("".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code")
    assert f"from cbir.experiments import {module}" in code, f"{nb.name} does not import cbir.experiments.{module}"
