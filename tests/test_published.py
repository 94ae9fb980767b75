"""The published real-data results (outputs/medium/) must match the parameters they claim to come from."""
import json
from pathlib import Path

import pytest

from cbir import records

ROOT = Path(__file__).resolve().parents[1]
PUBLISHED = sorted((ROOT / "outputs" / "medium" / "records").glob("*.json"))


@pytest.mark.parametrize("rec_path", PUBLISHED, ids=lambda p: p.stem)
def test_published_record_matches_params(rec_path):
    rec = json.loads(rec_path.read_text())
    nb = rec["notebook"]
    now = records.params_digest("medium", nb, root=ROOT)
    assert rec["params_digest"] == now, (
        f"outputs/medium/records/{nb}.json was made with params digest {rec['params_digest']}, but "
        f"params/medium.yaml now gives {now}: re-run it with `make reproduce PROFILE=medium NB={nb[:2]}` and "
        f"commit outputs/medium/")


def test_published_report_lists_every_record():
    if not PUBLISHED:
        pytest.skip("nothing published in outputs/medium/ yet")
    text = (ROOT / "outputs" / "medium" / "report.md").read_text()
    for p in PUBLISHED:
        assert f"| {p.stem} |" in text, f"outputs/medium/report.md does not list {p.stem}; rebuild it"
