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


# ---- cbir.published: what a notebook's "Results on real data" section reads
def test_published_section_reads_the_committed_outputs():
    from cbir import published

    for rec_path in PUBLISHED:
        pub = published.load(rec_path.stem, root=ROOT)
        assert pub.available and rec_path.stem in pub.describe()
        for name in pub.tables():
            assert len(pub.table(name)), f"published table {name} is empty"
        assert all(p.is_file() for p in pub.figures())
        if rec_path.stem != "00_quickstart":
            assert len(pub.rows) and pub.verdicts().to_numpy().sum() == len(pub.rows)
    if PUBLISHED:
        counts = published.suite_verdicts(root=ROOT)
        assert counts.loc["all"].sum() == len(__import__("pandas").read_csv(ROOT / "outputs/medium/report.csv"))


def test_published_section_without_a_run_says_how_to_make_it(tmp_root):
    from cbir import published

    pub = published.load("03_residual_hashing_depth_sweep")
    assert not pub.available and pub.tables() == [] and pub.figures() == []
    assert "make reproduce PROFILE=medium NB=03" in pub.describe()
    with pytest.raises(FileNotFoundError, match="no published table 'x'"):
        pub.table("x")
    assert published.suite_verdicts().empty


def test_published_section_hides_a_failed_run(tmp_root):
    from cbir import published

    base = tmp_root / "outputs" / "medium"
    (base / "tables").mkdir(parents=True)
    (base / "tables" / "02_old.csv").write_text("a\n1\n")
    records.write("medium", "02_latent_layer_hashing", status="FAILED", wall_s=3.0, error="cell 4: boom",
                  started=0.0, commit=(None, False))
    pub = published.load("02_latent_layer_hashing")
    assert not pub.available and pub.tables() == [] and "did not finish (cell 4: boom)" in pub.describe()


def test_readme_shows_the_published_verdict_counts():
    from cbir import published

    text = (ROOT / "README.md").read_text()
    assert published.readme_verdicts(root=ROOT) in text, (
        "README.md's verdict table is not the published report's: run "
        "`python -c 'from cbir import published; published.write_readme_verdicts()'` and commit")


def test_verdict_rows_put_directions_first_and_filter_value_metrics():
    from cbir import published

    pub = published.load("03_residual_hashing_depth_sweep")
    if not pub.available:
        pytest.skip("notebook 03 has no published medium run here")
    t = pub.verdict_rows(1, metrics=["accuracy_pct", "map_at_1000_pct"])
    n_dir = int((pub.rows.kind == "direction").sum())
    assert list(t.columns) == ["claim", "kind", "reported", "ours", "interval", "verdict"]
    assert (t.kind.iloc[:n_dir] == "direction").all() and (t.kind.iloc[n_dir:] == "value").all()
    assert len(t) == n_dir + int(pub.rows.metric.isin(["accuracy_pct", "map_at_1000_pct"]).sum())
    assert t.interval.iloc[0].startswith("[") and pub.verdict_rows(directions_first=False).claim.tolist() == \
        pub.rows.claim.tolist()


def test_verdict_rows_put_directions_first_with_their_intervals():
    from cbir import published

    for rec_path in PUBLISHED:
        pub = published.load(rec_path.stem, root=ROOT)
        v = pub.verdict_rows()
        if not len(pub.rows):
            assert v.empty
            continue
        assert len(v) == len(pub.rows) and list(v.columns) == ["claim", "kind", "reported", "ours", "interval", "verdict"]
        kinds = v.kind.tolist()
        assert kinds == sorted(kinds)  # "direction" < "value"
        assert v.verdict.value_counts().to_dict() == pub.rows.verdict.value_counts().to_dict()
