"""The verdict model of cbir.report (DESIGN.md "Paper-vs-ours rows"), the intervals and the run records."""
import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from cbir import intervals, records, report, reported
from cbir.report import Setting

PAPER = Setting("cifar10", {"train": 50000, "test": 10000}, "RDCNN k=5 b=1 m=100000", {}, "liblinear top-1")
SAME = Setting("cifar10", "train=50000;test=10000", "RDCNN k=5 b=1 m=100000", "", "liblinear top-1")


class Ref:  # a stand-in for cbir.reported.Reported
    def __init__(self, value, metric="accuracy_pct", setting=PAPER):
        self.value, self.metric, self.setting, self.source = value, metric, setting, "Table 1"


def _value(ours, ref, setting=SAME, interval=(0.0, 1.0)):
    return report.value_row("c", ref, ours, interval=interval, interval_kind="test", setting=setting)


def _direction(effect, lo, hi, setting=SAME):
    return report.direction_row("d", "Table 2", effect, interval=(lo, hi), interval_kind="test", setting=setting,
                                paper=PAPER, metric="gain")


def test_axes_match_rules():
    assert all(report.compare(SAME, PAPER).values())
    near = Setting("cifar10", {"train": 46000, "test": 10500}, PAPER.model, {}, PAPER.protocol)
    assert all(report.compare(near, PAPER).values())  # within +-10 %
    far = Setting("cifar10", {"train": 44000, "test": 10000}, PAPER.model, {}, PAPER.protocol)
    assert report.compare(far, PAPER) == {**report.compare(SAME, PAPER), "scale": False}
    standin = Setting("cifar10_subset", PAPER.scale, PAPER.model, {}, PAPER.protocol)
    assert report.mismatches(standin, PAPER) == ["dataset (ours cifar10_subset; paper cifar10)"]
    assert not report.compare(Setting("cifar10", PAPER.scale, PAPER.model, {"epochs": 5}, PAPER.protocol),
                              PAPER)["budget"]
    with pytest.raises(ValueError, match="name=number"):
        Setting("x", "train50000")


@pytest.mark.parametrize("axis,value", [("dataset", "cifar10_subset"), ("scale", {"train": 4000, "test": 1500}),
                                        ("model", "RDCNN k=5 b=1 m=1000"), ("budget", {"epochs": 5}),
                                        ("protocol", "other")])
def test_a_value_row_with_one_mismatched_axis_is_never_reproduced(axis, value):
    kw = dict(dataset=SAME.dataset, scale=SAME.scale, model=SAME.model, budget=SAME.budget, protocol=SAME.protocol)
    kw[axis] = value
    row = _value(76.4, Ref(76.4), setting=Setting(**kw))  # the very number the paper reports
    assert row.verdict == "not comparable"
    assert row.mismatched and row.mismatched[0].startswith(axis)


def test_value_rows_on_a_matching_setting():
    assert _value(75.0, Ref(76.4)).verdict == "reproduced"  # 2 points for accuracies
    assert _value(70.0, Ref(76.4)).verdict == "differs"
    assert _value(None, Ref(76.4)).verdict == "differs"


def test_a_wrong_sign_gain_is_never_reproduced():
    gain = Ref(0.033, metric="map_gain")
    assert report.tolerance("map_gain", 0.033) == pytest.approx(0.0165)
    assert _value(-0.006, gain).verdict == "differs"
    assert _value(0.030, gain).verdict == "reproduced"


def test_a_zero_spread_does_not_reproduce_a_reported_spread():
    assert _value(0.0, Ref(0.0051, metric="map_std")).verdict == "differs"
    assert _value(0.004, Ref(0.0051, metric="map_std")).verdict == "reproduced"


def test_direction_verdicts():
    assert _direction(0.026, -0.001, 0.05).verdict == "inconclusive"  # interval contains 0: decided first
    assert report.direction_row("d", "s", 0.2, interval=None, interval_kind="", setting=SAME, paper=PAPER,
                                metric="gain").verdict == "inconclusive"
    assert _direction(0.02, 0.01, 0.03).verdict == "reproduced"
    assert _direction(-0.02, -0.03, -0.01).verdict == "differs"
    small = Setting("cifar10_subset", PAPER.scale, PAPER.model, {}, PAPER.protocol)
    assert _direction(0.02, 0.01, 0.03, small).verdict == "holds here"
    assert _direction(-0.02, -0.03, -0.01, small).verdict == "fails here"
    assert _direction(0.02, -0.01, 0.03, small).verdict == "inconclusive"


def test_unknown_metric_has_no_tolerance():
    with pytest.raises(KeyError, match="TOLERANCES"):
        report.tolerance("furlongs", 1.0)


def test_bootstrap_interval_matches_a_reference():
    rng = np.random.default_rng(3)
    x = rng.exponential(0.3, size=400)
    lo, hi = intervals.bootstrap_mean(x, seed=0, n_resamples=4000)
    ref = stats.bootstrap((x,), np.mean, n_resamples=4000, method="percentile", confidence_level=0.95,
                          random_state=1).confidence_interval
    assert lo == pytest.approx(ref.low, abs=0.004) and hi == pytest.approx(ref.high, abs=0.004)
    assert (lo, hi) == intervals.bootstrap_mean(x, seed=0, n_resamples=4000)  # seeded
    assert lo < x.mean() < hi
    with pytest.raises(ValueError, match="1000"):
        intervals.bootstrap_mean(x, n_resamples=100)
    # a known fixture: a constant has a zero-width interval
    assert intervals.bootstrap_mean(np.full(50, 0.25)) == (0.25, 0.25)


def test_binomial_and_mcnemar_intervals():
    lo, hi = intervals.wilson(50, 100)
    ref = stats.binomtest(50, 100).proportion_ci(method="wilson")
    assert lo == pytest.approx(100 * ref.low) and hi == pytest.approx(100 * ref.high)
    a = np.r_[np.ones(60, bool), np.zeros(40, bool)]
    assert intervals.mcnemar_difference(a, a) == (0.0, 0.0)
    b = np.r_[np.ones(50, bool), np.zeros(50, bool)]  # 10 discordant, all in a's favour
    lo, hi = intervals.mcnemar_difference(a, b)
    assert lo > 0 and (lo + hi) / 2 == pytest.approx(10.0)


def test_paper_vs_ours_rejects_untyped_rows(tmp_root):
    from cbir.params import load

    P = load("smoke", "quickstart")
    df = report.paper_vs_ours([_value(75.0, Ref(76.4)), _direction(0.1, 0.05, 0.2)], notebook="99_test", P=P)
    assert list(df.verdict) == ["reproduced", "reproduced"]
    assert df.loc[0, "delta"] == pytest.approx(-1.4)
    with pytest.raises(TypeError, match="value_row"):
        report.paper_vs_ours([("claim", 1.0)], notebook="99_test", P=P)


def _fake_repo(tmp_path, notebooks):
    (tmp_path / "notebooks").mkdir()
    for nb in notebooks:
        (tmp_path / "notebooks" / f"{nb}.ipynb").write_text("{}")
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "smoke.yaml").write_text("shared: {seed: 0}\nrdcnn: {k: 5}\nlatent_hash: {n_bits: 48}\n"
                                                     "drhn: {epochs: 1}\n")
    return tmp_path


def test_report_is_built_from_latest_records(tmp_path):
    nbs = ["01_random_sign_networks", "02_latent_layer_hashing", "03_residual_hashing_depth_sweep"]
    root = _fake_repo(tmp_path, nbs)
    rows = root / "outputs" / "smoke" / "report_rows"
    rows.mkdir(parents=True)
    for nb in nbs[:2]:
        report.table([_value(75.0, Ref(76.4))], nb).to_csv(rows / f"{nb}.csv", index=False)
    records.write("smoke", nbs[0], status="ok", wall_s=1.0, root=root)
    records.write("smoke", nbs[1], status="FAILED", wall_s=2.0, error="cell 3: boom", root=root)
    md = report.build("smoke", root=root)
    text = md.read_text()
    df = pd.read_csv(md.with_suffix(".csv"))
    assert list(df.notebook) == [nbs[0]]  # the failed notebook's old rows are not shown
    assert f"| {nbs[1]} | FAILED" in text and f"| {nbs[2]} | not run" in text
    assert "## Verdicts" in text and "| **all** | **1**" in text
    rec = json.loads((root / "outputs" / "smoke" / "records" / f"{nbs[0]}.json").read_text())
    assert rec["params_digest"] == records.params_digest("smoke", nbs[0], root=root)


def test_params_digest_ignores_speed_keys(tmp_path):
    root = _fake_repo(tmp_path, [])
    d0 = records.params_digest("smoke", "01_random_sign_networks", root=root)
    (root / "params" / "smoke.yaml").write_text("shared: {seed: 0, threads: 8}\nrdcnn: {k: 5, progress: false}\n")
    assert records.params_digest("smoke", "01_random_sign_networks", root=root) == d0
    (root / "params" / "smoke.yaml").write_text("shared: {seed: 0}\nrdcnn: {k: 7}\n")
    assert records.params_digest("smoke", "01_random_sign_networks", root=root) != d0


def test_reported_tables_are_well_formed():
    df = reported.load()
    assert list(df.columns[:7]) == reported.COLUMNS
    assert df["value"].notna().all()
    for paper, name in df.loc[df.paper_setting != "", ["file", "paper_setting"]].drop_duplicates().values:
        assert isinstance(reported.setting(paper, name), Setting)
    for metric in df.loc[df.paper_setting != "", "metric"].unique():
        report.tolerance(metric, 1.0)  # every metric a value row can use has a documented rule


def test_show_lists_mismatched_axis_names():
    small = Setting("cifar10_subset", {"train": 4000, "test": 10000}, PAPER.model, {}, PAPER.protocol)
    df = report.table([_value(75.0, Ref(76.4), setting=small), _value(75.0, Ref(76.4))], "99_test")
    assert list(report.show(df)["mismatched axes"]) == ["dataset, scale", ""]
