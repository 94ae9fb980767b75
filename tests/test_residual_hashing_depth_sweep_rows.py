"""Paper-vs-ours rows of notebook 03 (cbir.experiments.residual_hashing_depth_sweep.paper_rows).

Built from a synthetic SweepResult (no data loading, no training) under the smoke, medium and paper params.
"""
import numpy as np
import pandas as pd
import pytest

import cbir
from cbir import report, reported
from cbir.experiments import residual_hashing_depth_sweep as xp


def _data(dataset, n_train, n_val, n_query, classes=10, n_db=None):
    e = np.empty((0, 32, 32, 3), np.uint8)
    z = lambda n: np.arange(n, dtype=np.int64) % classes  # noqa: E731
    return xp.SweepData(e, z(n_train), e, z(n_val), e, z(n_db or n_train + n_val), e, z(n_query),
                        [f"c{i}" for i in range(classes)], dataset, "fixture")


def _sweep(P, n_query, gains=None, seed=0, stopped=None):
    """Cells of P's grid with per-query AP, correctness and timings; ``gains[(n, bits)]`` shifts the AP."""
    rng = np.random.default_rng(seed)
    rows, hists, ap, correct, code_ms = [], [], {}, {}, {}
    epochs = int(P["epochs"])
    for n in P["depths"]:
        for b in P["bits"]:
            key = (int(n), int(b))
            ap[key] = np.clip(0.5 + (gains or {}).get(key, 0.0) + 0.05 * rng.standard_normal(n_query), 0, 1)
            correct[key] = rng.random(n_query) < 0.6
            code_ms[key] = 2.0 + rng.random(20)
            rows.append({"n": key[0], "bits": key[1], "test_acc_pct": 100 * correct[key].mean(),
                         "map_at_k_pct": 100 * ap[key].mean(), "sec_per_epoch": 3.0, "ms_per_code": 2.5,
                         "timing_device": "CPU x86_64 x2 threads", "code_device": "CPU x86_64 x2 threads",
                         "stopped_by": (stopped or {}).get(key, "patience"), "timing_batch": 1})
            hists.append(pd.DataFrame({"epoch": np.arange(1, epochs + 1), "seconds": 3.0 + rng.random(epochs),
                                       "n": key[0], "bits": key[1]}))
    return xp.SweepResult(pd.DataFrame(rows), pd.DataFrame(), pd.concat(hists, ignore_index=True), {}, {},
                          ap, correct, code_ms)


def _mismatched(row):
    return [m.split(" (")[0] for m in row.mismatched]


def _by_claim(rows):
    return {r.claim: r for r in rows}


def test_smoke_rows_mismatch_dataset_scale_budget_and_k():
    P = cbir.params.load("smoke", "drhn")
    rows = _by_claim(xp.paper_rows(_sweep(P, 200), P, _data("synthetic", 480, 120, 200)))
    acc = rows["DRHN-1 12 bits classification accuracy"]
    assert acc.kind == "value" and acc.verdict == "not comparable"
    assert _mismatched(acc) == ["dataset", "scale", "budget"]  # same architecture and protocol
    assert acc.interval.startswith("Wilson") and acc.lo < acc.ours < acc.hi
    m = rows["DRHN-1 12 bits retrieval mAP@100 (thesis: mAP@1000)"]
    assert _mismatched(m) == ["dataset", "scale", "budget", "protocol"]  # mAP@100, not @1000
    assert m.interval == "bootstrap over 200 queries" and m.lo < m.ours < m.hi
    assert rows["DRHN-15 has about 8 million parameters"].verdict == "reproduced"
    assert not rows["DRHN-15 has about 8 million parameters"].mismatched
    kinds = {c: r.kind for c, r in rows.items()}
    assert kinds["longer codes are better: 48 beat 12 bits at DRHN-1 (mAP gain)"] == "direction"
    assert not any(c.startswith("deeper") for c in rows)  # smoke grid has no DRHN-3
    assert all(r.lo is not None and r.hi is not None for r in rows.values())


def test_medium_rows_mismatch_dataset_scale_budget_only():
    P = cbir.params.load("medium", "drhn")  # cifar10_subset, at most 12 epochs, depths [1, 3], bits [12, 48]
    gains = {(3, 12): 0.1, (3, 48): 0.1}
    rows = _by_claim(xp.paper_rows(_sweep(P, 5000, gains), P, _data("cifar10_subset", 18000, 2000, 5000)))
    for claim in ("DRHN-3 48 bits classification accuracy", "DRHN-3 48 bits retrieval mAP@1000 (thesis: mAP@1000)"):
        assert _mismatched(rows[claim]) == ["dataset", "scale", "budget"], claim
        assert rows[claim].verdict == "not comparable"
    deeper = rows["deeper is better: DRHN-3 beats DRHN-1 at 12 bits (mAP gain)"]
    assert deeper.kind == "direction" and deeper.lo > 0 and deeper.verdict == "holds here"
    assert deeper.reported == pytest.approx(reported.value("03_drhn", "Table 5.3", "cifar10", "n=3,bits=12",
                                                           "map_at_1000_pct")
                                            - reported.value("03_drhn", "Table 5.3", "cifar10", "n=1,bits=12",
                                                             "map_at_1000_pct"))
    for claim, r in rows.items():
        if r.metric in xp.TIMING_METRICS:
            assert "protocol" in _mismatched(r) and r.verdict == "not comparable", claim


def test_paper_profile_matches_every_axis_of_accuracy_and_map_rows():
    P = cbir.params.load("paper", "drhn", {"depths": [1, 3], "bits": [12, 48], "showcase_n": 1, "showcase_bits": 12})
    gains = {(1, 48): 0.0, (3, 48): 0.0}
    # the authors' recipe: all 50k training images, no validation split, 100k database codes (with mirrors)
    rows = _by_claim(xp.paper_rows(_sweep(P, 10000, gains, stopped={k: "fixed" for k in [(1, 12), (1, 48), (3, 12), (3, 48)]}),
                                   P, _data("cifar10", 50000, 0, 10000, n_db=100000)))
    for claim in ("DRHN-1 12 bits classification accuracy", "DRHN-3 48 bits retrieval mAP@1000 (thesis: mAP@1000)",
                  "deeper is better: DRHN-3 beats DRHN-1 at 12 bits (mAP gain)",
                  "longer codes are better: 48 beat 12 bits at DRHN-3 (mAP gain)",
                  "deeper is better: DRHN-3 beats DRHN-1 at 48 bits (accuracy gain)",
                  "longer codes are better: 48 beat 12 bits at DRHN-1 (accuracy gain)"):
        assert rows[claim].mismatched == [], (claim, rows[claim].mismatched)
    assert rows["DRHN-1 12 bits classification accuracy"].verdict == "differs"  # ~60 % vs 90.41 %
    # timings name the hardware: ours this CPU, the thesis its GPU
    t = rows["DRHN-1 training time per epoch"]
    assert "protocol" in _mismatched(t) and "CPU" in t.ours_setting.protocol and "GPU" in t.paper_setting.protocol
    assert _mismatched(rows["DRHN-3 48 bits time to generate one code"]) == ["protocol"]


def test_a_direction_whose_interval_contains_zero_is_inconclusive():
    P = cbir.params.load("smoke", "drhn")
    rows = _by_claim(xp.paper_rows(_sweep(P, 200, {(1, 48): 0.0}), P, _data("synthetic", 480, 120, 200)))
    r = rows["longer codes are better: 48 beat 12 bits at DRHN-1 (mAP gain)"]
    assert r.lo <= 0 <= r.hi and r.verdict == "inconclusive"


def test_cifar100_rows_use_the_cifar100_tables():
    P = cbir.params.load("smoke", "drhn")
    rows = xp.paper_rows(_sweep(P, 300), P, _data("cifar100", 400, 100, 300, classes=100))
    assert {r.source for r in rows if "accuracy" in r.claim} == {"Table 5.6"}
    assert all(r.paper_setting.dataset == "cifar100" for r in rows if r.source in ("Table 5.6", "Table 5.7"))


def test_settings_csv_is_the_wording_of_the_module():
    csv = pd.read_csv(reported.FOLDER / "settings" / "03_drhn.csv", keep_default_na=False, na_values=[])
    pd.testing.assert_frame_equal(csv, xp.thesis_settings().astype(csv.dtypes.to_dict()), check_dtype=False)
    rep = reported.load("03_drhn")
    assert (rep.paper_setting == [xp.paper_setting_name(*a) for a in
                                  rep[["source", "setting", "metric", "dataset"]].itertuples(index=False)]).all()


def test_checked_table_blanks_timings_and_rounds():
    P = cbir.params.load("smoke", "drhn")
    pvo = report.table(xp.paper_rows(_sweep(P, 200), P, _data("synthetic", 480, 120, 200)), xp.NOTEBOOK)
    t = xp.checked_table(pvo)
    assert list(t.columns) == ["claim", "kind", "verdict", "ours"]
    timing = pvo.metric.isin(xp.TIMING_METRICS)
    assert (t.ours[timing] == "").all() and (t.ours[~timing] != "").all()


def test_show_names_the_mismatched_axes():
    P = cbir.params.load("medium", "drhn")
    rows = xp.paper_rows(_sweep(P, 500), P, _data("cifar10_subset", 18000, 2000, 500))
    pvo = report.table(rows, xp.NOTEBOOK)
    shown = report.show(pvo).set_index("claim")["mismatched axes"]
    assert shown["DRHN-1 12 bits retrieval mAP@1000 (thesis: mAP@1000)"] == "dataset, scale, budget"
    assert shown["DRHN-1 training time per epoch"] == "dataset, scale, protocol"
    assert shown["DRHN-15 has about 8 million parameters"] == ""


def test_accuracy_directions_use_mcnemar_and_flag_under_trained_cells():
    P = cbir.params.load("medium", "drhn")
    sw = _sweep(P, 400, stopped={(3, 12): "epochs"})
    sw.correct[(1, 12)] = np.zeros(400, bool)
    sw.correct[(3, 12)] = np.r_[np.ones(40, bool), np.zeros(360, bool)]  # 40 right only under DRHN-3
    rows = _by_claim(xp.paper_rows(sw, P, _data("cifar10_subset", 18000, 2000, 400)))
    r = rows["deeper is better: DRHN-3 beats DRHN-1 at 12 bits (accuracy gain)"]
    assert r.kind == "direction" and r.ours == pytest.approx(10.0)
    # McNemar/Wald: d = 0.1, se = sqrt(40 - 1600/400)/400 = 0.015
    assert (r.lo, r.hi) == pytest.approx((100 * (0.1 - 1.959964 * 0.015), 100 * (0.1 + 1.959964 * 0.015)), abs=1e-3)
    assert r.verdict == "inconclusive" and "McNemar" in r.interval  # lo > 0, but DRHN-3 was capped
    assert "INCONCLUSIVE: DRHN-3 12 bits stopped by the epoch cap" in r.note and "under-trained" in r.note
    assert rows["deeper is better: DRHN-3 beats DRHN-1 at 12 bits (mAP gain)"].verdict == "inconclusive"
    assert "plateaued" in rows["deeper is better: DRHN-3 beats DRHN-1 at 48 bits (mAP gain)"].note


def test_ms_per_code_row_is_the_median_with_min_max():
    P = cbir.params.load("smoke", "drhn")
    sw = _sweep(P, 200)
    sw.code_ms[(1, 12)] = np.array([1.0, 2.0, 3.0, 10.0, 4.0])
    r = _by_claim(xp.paper_rows(sw, P, _data("synthetic", 480, 120, 200)))["DRHN-1 12 bits time to generate one code"]
    assert r.ours == 3.0 and (r.lo, r.hi) == (1.0, 10.0) and "batch 1, 1 thread" in r.interval


def test_a_direction_with_a_capped_cell_is_inconclusive_whatever_its_interval():
    P = cbir.params.load("medium", "drhn")
    gains = {(3, 12): 0.2, (3, 48): 0.2}
    rows = _by_claim(xp.paper_rows(_sweep(P, 5000, gains, stopped={(3, 12): "epochs"}), P,
                                   _data("cifar10_subset", 18000, 2000, 5000)))
    capped = rows["deeper is better: DRHN-3 beats DRHN-1 at 12 bits (mAP gain)"]
    assert capped.lo > 0 and capped.verdict == "inconclusive"
    assert "DRHN-3 12 bits stopped by the epoch cap" in capped.undecided and "INCONCLUSIVE" in capped.note
    free = rows["deeper is better: DRHN-3 beats DRHN-1 at 48 bits (mAP gain)"]  # both cells stopped by patience
    assert free.verdict == "holds here" and not free.undecided and "plateaued" in free.note


def _plain(n_query, depths=(1,), acc=0.6, stopped="patience", seed=1):
    rng = np.random.default_rng(seed)
    correct = {int(n): rng.random(n_query) < acc for n in depths}
    cells = pd.DataFrame({"n": list(depths), "stopped_by": [stopped] * len(depths),
                          "test_acc_pct": [100 * correct[int(n)].mean() for n in depths]})
    return xp.PlainResult(cells, pd.DataFrame(), correct)


def test_hash_layer_rows_compare_drhn_with_the_plain_resnet_of_the_same_depth():
    P = cbir.params.load("medium", "drhn")
    sweep = _sweep(P, 5000)
    rows = _by_claim(xp.paper_rows(sweep, P, _data("cifar10_subset", 18000, 2000, 5000), _plain(5000, acc=0.3)))
    r = rows["the hash layer does not hurt accuracy: DRHN-1 12 bits vs plain ResNet-1"]
    assert r.kind == "direction" and r.source == "Section 5.1.2"
    assert r.ours == pytest.approx(100 * (sweep.correct[(1, 12)].mean() - 0.3), abs=2.0) and r.lo > 0
    assert r.verdict == "holds here" and r.reported == pytest.approx(93.70 - 93.25)
    assert "DRHN-1 48 bits vs plain ResNet-1" in " ".join(rows) and not any("plain ResNet-3" in c for c in rows)
    capped = _by_claim(xp.paper_rows(sweep, P, _data("cifar10_subset", 18000, 2000, 5000),
                                     _plain(5000, acc=0.3, stopped="epochs")))
    assert capped["the hash layer does not hurt accuracy: DRHN-1 12 bits vs plain ResNet-1"].verdict == "inconclusive"
