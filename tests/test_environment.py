"""pyproject.toml is the source of truth; environment.yml must describe the same packages."""
import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# pip name -> conda name where they differ; faiss-cpu (pip default) is faiss-gpu in the conda file
CONDA_NAME = {"torch": "pytorch", "faiss-cpu": "faiss-gpu"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[;]", req.strip(), maxsplit=1)[0].lower()


def _pyproject():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = {_name(r): r for r in data["dependencies"]}
    deps.update({_name(r): r for r in data["optional-dependencies"]["dev"]})
    return deps


def _environment():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda, pip = {}, {}
    for d in env["dependencies"]:
        if isinstance(d, dict):
            pip.update({_name(r): r for r in d["pip"] if not r.startswith("-e")})
        else:
            conda[_name(d)] = d
    conda.pop("python"), conda.pop("pip")
    return conda, pip


def test_every_pyproject_package_is_in_environment_yml_and_back():
    py = _pyproject()
    conda, pip = _environment()
    described = set(pip) | {k for k in conda}
    expected = {CONDA_NAME.get(n, n) if CONDA_NAME.get(n, n) in conda else n for n in py}
    assert expected == described, (sorted(expected - described), sorted(described - expected))


def test_versions_agree():
    py = _pyproject()
    conda, pip = _environment()
    for name, req in py.items():
        other = pip.get(name) or conda.get(CONDA_NAME.get(name, name))
        spec_py = re.sub(r"^[A-Za-z0-9_.\-\[\]]+", "", req).replace("==", "=")
        spec_env = re.sub(r"^[A-Za-z0-9_.\-]+", "", other).replace("==", "=")
        assert spec_py == spec_env, (name, req, other)


def test_gpu_extra_and_cpu_default_never_both():
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(_name(r) == "faiss-cpu" for r in data["dependencies"])
    assert all(_name(r).startswith("faiss-gpu") for r in data["optional-dependencies"]["gpu"])
