"""The capped ``paper`` run of notebooks 03-05 (test_paper_profile.py holds the fixture and the checks; two
files so that pytest-xdist's ``--dist loadfile`` spreads the capped runs over both workers)."""
import pytest

from test_paper_profile import NOTEBOOKS, capped_root, run_capped  # noqa: F401 - capped_root is a fixture


@pytest.mark.parametrize("stem", [s for s in NOTEBOOKS if s[:2] in ("03", "04", "05")])
def test_every_notebook_runs_under_the_capped_paper_profile(capped_root, stem):  # noqa: F811
    run_capped(capped_root, stem)
