import pandas as pd
import pytest

from cbir import report, reported


def test_verdicts():
    assert report.verdict(76.0, 75.0, 2.0, True) == "reproduced"
    assert report.verdict(76.0, 70.0, 2.0, True) == "differs"
    assert report.verdict(76.0, 76.0, 2.0, False) == "not comparable"
    assert report.verdict(None, 76.0, 2.0, True) == "not comparable"


def test_paper_vs_ours_and_build(tmp_root):
    from cbir.params import load

    P = load("smoke", "quickstart")
    row = dict(claim="c", source="Table 1", metric="accuracy_pct", reported=76.0, ours=74.5, tolerance=2.0,
               comparable=True, scale="s", protocol="p")
    df = report.paper_vs_ours([row], notebook="99_test", P=P)
    assert df.loc[0, "delta"] == pytest.approx(-1.5) and df.loc[0, "verdict"] == "reproduced"
    with pytest.raises(ValueError, match="lacks"):
        report.paper_vs_ours([{"claim": "x"}], notebook="99_test", P=P)
    md = report.build("smoke", root=tmp_root)
    text = md.read_text()
    assert "## 99_test" in text and "reproduced" in text
    assert pd.read_csv(md.with_suffix(".csv")).shape[0] == 1


def test_reported_tables_are_well_formed():
    df = reported.load()
    assert list(df.columns[:7]) == reported.COLUMNS
    assert df["value"].notna().all()
