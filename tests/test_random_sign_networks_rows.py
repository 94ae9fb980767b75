"""Paper-vs-ours rows of notebook 01 (cbir.experiments.random_sign_networks) from a small synthetic fixture:
no data loading, no training. Checks which setting axes each profile matches (DESIGN.md "Paper-vs-ours rows")."""
import numpy as np
import pandas as pd
import pytest

from cbir import params, report, reported
from cbir.experiments import random_sign_networks as xp
from cbir.metrics import topk_accuracy

CIFAR = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
FULL = {"cifar10": (50000, 10000), "mnist": (60000, 10000)}


def _n(P, dataset, per_train, per_test):
    full = FULL.get(dataset, (2000, 1000))
    return (full[0] if per_train is None else 10 * per_train), (full[1] if per_test is None else 10 * per_test)


def _correct(rng, n, p):
    return rng.random(n) < p


def build_rows(P):
    """Every section's rows, from synthetic results shaped like the notebook's under params ``P``."""
    rng = np.random.default_rng(0)
    rows = []
    # Table 1 / 2 grid
    n_tr, n_te = _n(P, P.dataset, P.grid_n_train_per_class, P.grid_n_test_per_class)
    base = _correct(rng, n_te, 0.70)
    grid, gc = [], {}
    for k in P.grid_k:
        for b in P.grid_b:
            c = base.copy()
            if (k, b) == (5, 1):  # the best: right on 5 % more images
                c |= _correct(rng, n_te, 0.05)
            gc[(k, b)] = c
            grid.append({"k": k, "b": b, "m": P.grid_m, "test_acc_pct": 100 * c.mean()})
    rows += xp.grid_rows(pd.DataFrame(grid), gc, P=P, dataset=P.dataset, n_train=n_tr)
    # MNIST
    n2_tr, n2_te = _n(P, P.dataset2, P.dataset2_n_train_per_class, P.dataset2_n_test_per_class)
    c2 = _correct(rng, n2_te, 0.99)
    rows += xp.mnist_rows({"test_acc_pct": 100 * c2.mean(), "correct": {1: c2}}, P=P, dataset=P.dataset2,
                          n_train=n2_tr)
    # Fig. 3 sweep: nested correctness, train 100 % from the second m on
    n_tr, n_te = _n(P, P.dataset, P.n_train_per_class, P.n_test_per_class)
    ms = sorted(P.m_sweep)
    u = rng.random(n_te)
    sc = {m: u < 0.3 + 0.4 * i / (len(ms) - 1) for i, m in enumerate(ms)}
    sweep = pd.DataFrame({"m": ms, "train_acc_pct": [90.0] + [100.0] * (len(ms) - 1),
                          "test_acc_pct": [100 * sc[m].mean() for m in ms]})
    rows += xp.sweep_rows(sweep, sc, P=P, dataset=P.dataset, n_train=n_tr)
    # Sec. 3.3 JS ratio
    classes = CIFAR if P.dataset.startswith("cifar10") else [str(i) for i in range(10)]
    pairs = xp.js_class_pairs(classes, P.js_pairs)
    js = pd.DataFrame([{"space": s, "c0": p["c0"], "c1": p["c1"], "n0": P.js_n_per_class[0],
                        "n1": P.js_n_per_class[1], "ratio": r + 0.01 * rng.standard_normal(), "draw": d}
                       for p in pairs for d in range(P.js_draws)
                       for s, r in (("input pixels", 0.52), ("RDCNN features", 0.6))])
    rows += xp.js_rows(js, pairs, P=P, dataset=P.dataset)
    # Fig. 5, Fig. 6 on the m-sweep's test images
    rd = {1: sc[ms[-1]], 2: sc[ms[-1]] | _correct(rng, n_te, 0.5), 3: np.ones(n_te, bool)}
    rn = {name: _correct(rng, n_te, 0.35) for name in P.random_nets}
    rows += xp.random_net_rows(rd[1], rn, P=P, dataset=P.dataset, n_train=n_tr)
    cnn = {1: _correct(rng, n_te, 0.8)}
    cnn[2] = cnn[1] | _correct(rng, n_te, 0.2)
    trained = {name: {1: _correct(rng, n_te, 0.9)} for name in P.trained_nets}  # paper: the Fig. 6 networks
    for c in trained.values():
        c[2] = c[1] | _correct(rng, n_te, 0.3)
    rows += xp.topk_rows(rd, cnn, P=P, dataset=P.dataset, n_train=n_tr, trained=trained)
    # Fig. 8 retrieval, Fig. 7 augmentations
    q = min(P.n_queries, n_te)
    pq = {"rdcnn": rng.random(q) * 0.5, "rdcnn_mlp": rng.random(q) * 0.5 + 0.2, "small_cnn": rng.random(q) * 0.6}
    rows += xp.retrieval_rows(pq, P=P, dataset=P.dataset, n_database=n_tr,
                              k_values=[k for k in P.retrieval_ks if k > 10])
    n_aug = P.aug_n_images
    cos = pd.concat([pd.DataFrame({"augmentation": a, "cosine": rng.uniform(lo, lo + 0.05, n_aug)})
                     for a, lo in (("horizontal flip", 0.95), ("rotate 90", 0.9), ("cutout", 0.7))])
    rows += xp.augmentation_rows(cos, P=P, dataset=P.dataset)
    return {r.claim: r for r in rows}


def axes(row):
    return {m.split(" (")[0] for m in row.mismatched}


@pytest.fixture(scope="module")
def rows():
    return {p: build_rows(params.load(p, "rdcnn")) for p in ("smoke", "medium", "paper")}


def test_every_row_is_a_row_with_an_interval(rows):
    for prof, rs in rows.items():
        P = params.load(prof, "rdcnn")
        assert len(rs) == 19 + len(P.random_nets) + len(P.trained_nets), (prof, sorted(rs))
        for r in rs.values():
            assert isinstance(r, report.Row) and r.kind in ("value", "direction")
            assert r.lo is not None and r.hi is not None and r.lo <= r.hi, (prof, r.claim)
            assert r.verdict in report.VERDICTS


def test_medium_mismatches(rows):
    m = rows["medium"]
    for k, b in [(3, 1), (3, 2), (5, 1), (5, 2)]:  # cifar10_subset 1500/800 at m=1000
        assert axes(m[f"Table 1 CIFAR-10 accuracy k={k}, b={b} (grid)"]) == {"dataset", "scale", "model"}
    assert axes(m["k=5, b=1 is the best (k, b) on CIFAR-10"]) == {"dataset", "scale", "model"}
    mn = m["MNIST accuracy with random weights (k=7, b=1)"]
    assert axes(mn) == {"model"}  # full MNIST 60k/10k but m=1000 of the paper's 100,000
    assert "m=1000" in mn.ours_setting.model and "m=100000" in mn.paper_setting.model
    assert mn.verdict == "not comparable"
    rn = m["RDCNN beats random-weight ResNet18 + trained final layer"]
    assert "3x3 stride-1" in rn.ours_setting.model and "3x3 stride-1" in rn.paper_setting.model
    js = m["JS ratio higher after the network, airplane/bird"]  # picked by name on CIFAR-10
    assert {"dataset", "protocol"} <= axes(js)
    assert "airplane vs bird" in js.ours_setting.protocol and "20 draws" in js.ours_setting.protocol
    assert "horse" in " ".join(m)  # airplane/horse, CIFAR-10 index 7, not the STL-10 index 6
    assert axes(m["test accuracy rises with m"]) == {"dataset", "scale", "model"}
    assert all(r.verdict in ("not comparable", "holds here", "fails here", "inconclusive") for r in m.values())


def test_smoke_falls_back_to_configured_class_indices(rows):
    s = rows["smoke"]
    js = [r for c, r in s.items() if c.startswith("JS ratio higher")]
    assert len(js) == 2 and all("configured indices" in r.note for r in js)
    assert all("class indices 0 vs" in r.ours_setting.protocol for r in js)


def test_paper_profile_matches_the_paper_where_it_is_meant_to(rows):
    p = rows["paper"]
    for claim in ["Table 1 CIFAR-10 accuracy k=5, b=1 (grid)", "Table 1 CIFAR-10 accuracy k=3, b=2 (grid)",
                  "k=5, b=1 is the best (k, b) on CIFAR-10", "MNIST accuracy with random weights (k=7, b=1)",
                  "CIFAR-10 accuracy k=5, b=1 (full training set, m=100000)", "test accuracy rises with m",
                  "train accuracy reaches 100 % while test accuracy still rises", "CIFAR-10 top-2 accuracy of RDCNN"]:
        assert p[claim].mismatched == [], (claim, p[claim].mismatched)
    assert p["k=5, b=1 is the best (k, b) on CIFAR-10"].verdict == "reproduced"
    assert p["test accuracy rises with m"].verdict == "reproduced"
    for net in ("ResNet18", "VGG16", "DenseNet40"):  # CIFAR forms: the model axis matches, the SVM head does not
        assert axes(p[f"RDCNN beats random-weight {net} + trained final layer"]) == {"protocol"}, net
    assert axes(p["top-1 -> top-2 gain larger for RDCNN than for the trained CNN"]) == {"model", "budget"}


def test_a_direction_whose_interval_contains_zero_is_inconclusive():
    P = params.load("paper", "rdcnn")
    rng = np.random.default_rng(1)
    a = rng.random(10000) < 0.7
    same_rate = np.roll(a, 1)  # as many right as a, on other images: effect 0, discordant pairs
    sweep = pd.DataFrame({"m": [10, 100000], "train_acc_pct": [100.0, 100.0],
                          "test_acc_pct": [100 * same_rate.mean(), 100 * a.mean()]})
    r = {x.claim: x for x in xp.sweep_rows(sweep, {10: same_rate, 100000: a}, P=P, dataset="cifar10",
                                            n_train=50000)}["test accuracy rises with m"]
    assert r.lo < 0 < r.hi and r.mismatched == []
    assert r.verdict == "inconclusive"


def test_train_never_at_100_before_m_max_fails_here():
    P = params.load("smoke", "rdcnn")
    c = np.random.default_rng(2).random(150) < 0.5
    sweep = pd.DataFrame({"m": [8, 512, 1000], "train_acc_pct": [80.0, 95.0, 100.0],
                          "test_acc_pct": [100 * c.mean()] * 3})
    r = xp.sweep_rows(sweep, {8: c, 512: c, 1000: c}, P=P, dataset="digits", n_train=400)[1]
    assert r.ours == pytest.approx(-5.0) and r.hi < 0 and r.verdict == "fails here" and "first half fails" in r.note


def test_settings_csv_names_resolve():
    rep = reported.load("01_rdcnn")
    names = [n for n in rep.paper_setting if n]
    assert len(names) >= 10
    for n in set(names):
        reported.setting("01_rdcnn", n)


def test_topk_correct_and_svm_per_image():
    rng = np.random.default_rng(0)
    s = rng.standard_normal((50, 4))
    y = rng.integers(0, 4, 50)
    c = xp.topk_correct(s, y, ks=(1, 2))
    assert {k: v.mean() for k, v in c.items()} == pytest.approx(topk_accuracy(s, y, ks=(1, 2)))
    f = rng.standard_normal((60, 8)).astype(np.float32)
    yy = rng.integers(0, 3, 60)
    plain = xp.svm_eval(f[:40], yy[:40], f[40:], yy[40:], 0.5)
    per = xp.svm_eval(f[:40], yy[:40], f[40:], yy[40:], 0.5, per_image=True)
    assert "correct" not in plain
    assert 100 * per.pop("correct")[1].mean() == pytest.approx(plain["test_acc_pct"])
    assert per == pytest.approx(plain)


STL = ["airplane", "bird", "car", "cat", "deer", "dog", "horse", "monkey", "ship", "truck"]


def test_extra_datasets_rows_match_the_paper_at_full_scale():
    rng = np.random.default_rng(3)
    c100 = {kb: {1: rng.random(10000) < 0.5, 2: rng.random(10000) < 0.6} for kb in xp.extra_settings("cifar100")}
    tab = pd.DataFrame([{"dataset": "cifar100", "k": k, "b": b, "m": 100000, "test_acc_pct": 100 * c[1].mean(),
                         "top2_pct": 100 * c[2].mean()} for (k, b), c in c100.items()])
    rows = xp.extra_rows("cifar100", tab, c100, dataset="cifar100", n_train=50000)
    assert [r.claim for r in rows] == [f"Table 1 CIFAR-100 accuracy k={k}, b={b}" for k, b in xp.TABLE1_KB]
    assert [r.reported for r in rows] == [51.8, 51.9, 53.3, 47.5]
    assert all(r.mismatched == [] for r in rows)
    s = {(3, 3): {1: rng.random(8000) < 0.6, 2: rng.random(8000) < 0.8}}
    tab = pd.DataFrame([{"dataset": "stl10", "k": 3, "b": 3, "m": 100000, "test_acc_pct": 60.0,
                         "top2_pct": 100 * s[(3, 3)][2].mean()}])
    (r,) = xp.extra_rows("stl10", tab, s, dataset="stl10", n_train=5000)
    assert r.reported == 85 and r.mismatched == [] and r.ours == pytest.approx(100 * s[(3, 3)][2].mean())
    # a smaller subset and m: the scale and model axes say so
    (r,) = xp.extra_rows("stl10", tab.assign(m=1000), s, dataset="stl10", n_train=200)
    assert axes(r) == {"scale", "model"} and r.verdict == "not comparable"
    with pytest.raises(ValueError, match="cifar100 or stl10"):
        xp.extra_settings("svhn")


def test_stl10_js_rows_use_the_stl10_setting_and_names():
    P = params.load("paper", "rdcnn")
    pairs = xp.js_class_pairs(STL, P.js_pairs)
    assert [(p["c0"], p["c1"]) for p in pairs] == [(0, 1), (0, 6)]  # the paper's STL-10 indices
    rng = np.random.default_rng(4)
    js = pd.DataFrame([{"space": sp, "c0": p["c0"], "c1": p["c1"], "n0": 6, "n1": 4, "ratio": r + 0.01 * rng.standard_normal(),
                        "draw": d} for p in pairs for d in range(1) for sp, r in (("input pixels", 0.5), ("RDCNN features", 0.6))])
    P1 = params.load("paper", "rdcnn", {"js_draws": 1})
    rows = {r.claim: r for r in xp.js_rows(js, pairs, P=P1, dataset="stl10", net=(3, 3, 100000))}
    assert rows["JS ratio airplane/bird, RDCNN features"].mismatched == []
    assert rows["JS ratio airplane/horse, input pixels"].mismatched == []


def test_n_queries_must_fit_the_capped_test_split():
    from cbir.params import ParamsError

    with pytest.raises(ParamsError, match=r"n_queries=151 but digits \[test\] with n_test_per_class=15 holds 150"):
        params.load("smoke", "rdcnn", {"n_queries": 151})
    assert params.load("smoke", "rdcnn", {"n_queries": 150}).n_queries == 150


def test_sweep_summary_says_when_train_accuracy_never_reaches_100():
    never = pd.DataFrame({"m": [8, 32, 128], "train_acc_pct": [40.0, 80.0, 95.8], "test_acc_pct": [30.0, 50.0, 60.0]})
    assert xp.sweep_summary(never).endswith("never reaches 100 % (highest 95.8 % at m = 128)")
    reach = never.assign(train_acc_pct=[40.0, 100.0, 100.0])
    assert "first reaches 100 % at m = 32" in xp.sweep_summary(reach)
    assert xp.sweep_summary(reach).startswith("Spearman(m, test accuracy) = 1.00")


def test_top16_grid_marks_relevance_with_text_and_real_data_rows():
    import matplotlib

    matplotlib.use("Agg")
    from cbir import published

    y_db = np.array([0, 1, 0, 1, 0])
    imgs = np.zeros((5, 4, 4, 3), np.uint8)
    fig = xp.top16_grid(imgs[0], 0, imgs, y_db, {"space a": [0, 1, 2], "space b": [3, 4, 1]}, top=3)
    titles = [a.get_title() for a in fig.axes]
    assert titles[1:4] == ["✓", "✗", "✓"] and titles[5:8] == ["✗", "✓", "✗"] and "2/3" in titles[0]
    pub = published.load(xp.NOTEBOOK)
    t = pub.verdict_rows()
    if pub.available:
        assert len(t) == len(pub.rows) and (t.kind.iloc[:(pub.rows.kind == "direction").sum()] == "direction").all()


def test_wrong_answers_of_01_fail(capsys):
    from cbir import exercises

    assert not exercises.check("01.1", {"features": 1000, "random_numbers": 76000})  # block 2 forgotten
    sol = exercises.registry()[1]["01.2"]
    assert not exercises.check("01.2", lambda img, w, b: sol(img, w[::-1, ::-1], b))  # a flipped kernel (convolution)
    assert not exercises.check("01.2", lambda img, w, b: sol(img, w, 0.0))  # bias forgotten
    assert not exercises.check("01.3", lambda s, y, k: float((np.argmax(s, 1) == y).mean()))  # always top-1
    assert "hint" in capsys.readouterr().out


def test_paper_compares_the_top2_gain_with_each_trained_paper_network(rows):
    assert not params.load("medium", "rdcnn").trained_nets  # medium: the small CNN only
    for label in ("VGG16", "ResNet18", "DenseNet40"):
        r = rows["paper"][f"top-1 -> top-2 gain larger for RDCNN than for trained {label}"]
        assert r.kind == "direction" and f"{label} trained from scratch" in r.ours_setting.model
        assert r.ours_setting.budget == {"epochs": 300}
    assert "top-1 -> top-2 gain larger for RDCNN than for trained VGG16" not in rows["medium"]
