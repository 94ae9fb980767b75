"""Tests of cbir.retarget: FU / RRI / RF targets (Tzelepi & Tefas 2018, Eq. 1-14), the head, retraining."""
import numpy as np
import pandas as pd
import pytest
import torch

from cbir import metrics, retarget
from cbir.experiments import retargeting_retraining_qe as xp

# 2-D fixture: five points on a line, hand-checked neighbourhoods
X = np.array([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [6.0, 0.0], [10.0, 0.0]], np.float32)


def test_nearest_neighbours_excludes_self():
    D, I = retarget.nearest_neighbours(X, 2)
    assert I.tolist() == [[1, 2], [0, 2], [1, 0], [2, 4], [3, 2]]
    np.testing.assert_allclose(D[0], [1.0, 3.0])


def test_fu_targets_closed_form():
    # Eq. 3 with n = 2, eta = 0.25: t = x - 0.5 (x - mu), mu = mean of the 2 nearest
    mu = np.array([[2.0, 0], [1.5, 0], [0.5, 0], [6.5, 0], [4.5, 0]], np.float32)
    expected = X - 0.5 * (X - mu)
    np.testing.assert_allclose(retarget.fu_targets(X, n_neighbors=2, eta=0.25), expected, rtol=1e-6)


def test_fu_eta_zero_is_identity_and_half_is_mean():
    np.testing.assert_array_equal(retarget.fu_targets(X, n_neighbors=2, eta=0.0), X)
    np.testing.assert_allclose(retarget.fu_targets(X, n_neighbors=1, eta=0.5)[:, 0], [1, 0, 1, 3, 6])


def test_fu_rejects_bad_eta():
    with pytest.raises(ValueError, match=r"eta=0.7 outside \[0, 0.5\].*retarget.eta"):
        retarget.fu_targets(X, eta=0.7)


# labelled fixture: class 0 = points 0, 1, 2; class 1 = points 3, 4
Y = np.array([0, 0, 0, 1, 1])


def test_rri_beta_zero_is_mean_of_relevant():
    t = retarget.rri_targets(X, Y, m=None, n=1, beta=0.0)
    expected = np.array([2.0, 1.5, 0.5, 10.0, 6.0])  # mean of the other members of the class
    np.testing.assert_allclose(t[:, 0], expected, rtol=1e-6)


def test_rri_closed_form_with_nearest_irrelevant():
    # Eq. 8, beta = 0.2, m = 1 nearest relevant, n = 1 nearest irrelevant
    mu_pos = np.array([1.0, 0.0, 1.0, 10.0, 6.0])
    mu_neg = np.array([6.0, 6.0, 6.0, 3.0, 3.0])
    x = X[:, 0]
    expected = x - 0.8 * (x - mu_pos) + 0.2 * (x - mu_neg)
    np.testing.assert_allclose(retarget.rri_targets(X, Y, m=1, n=1, beta=0.2)[:, 0], expected, rtol=1e-6)


def test_rri_n_irrelevant_mean():
    _, mu_neg = retarget.relevant_irrelevant_means(X, Y, n=2)
    np.testing.assert_allclose(mu_neg[:, 0], [8.0, 8.0, 8.0, 2.0, 2.0])


def test_distractor_targets_eq10():
    d = np.array([[2.0, 0.0], [50.0, 0.0]], np.float32)  # the far one is gathered by nobody with n = 1
    gathered, t = retarget.distractor_targets(X, Y, d, n=1, theta=0.5)
    assert gathered.tolist() == [0]
    # d=2 is the nearest irrelevant of class-0 points x=0 (dist 2), x=1 (dist 1) and x=3 (dist 1); class-1
    # points prefer x=3. Nearest gatherer: tie at distance 1 broken by index -> x=1.
    # Eq. 10: t = d + 2 theta (d - x) = 2 + (2 - 1) = 3
    np.testing.assert_allclose(t, [[3.0, 0.0]])


def test_simulate_feedback_first_relevant_and_irrelevant():
    xb = np.array([[0.0], [1.0], [2.0], [3.0], [4.0]], np.float32)
    yb = np.array([0, 1, 0, 0, 1])
    xq = np.array([[0.1]], np.float32)
    fb = retarget.simulate_feedback(xq, np.array([0]), xb, yb, n_relevant=2, n_irrelevant=1, depth=5)
    assert fb.item.tolist() == [0, 1, 2]
    assert fb.relevant.tolist() == [True, False, True]
    fb2 = retarget.simulate_feedback(xb[:1], yb[:1], xb, yb, n_relevant=1, n_irrelevant=0, depth=5,
                                     exclude=np.array([0]))
    assert fb2.item.tolist() == [2]


def test_rf_targets_eq13_eq14():
    xb = np.array([[2.0, 0.0], [0.0, 4.0]], np.float32)
    xq = np.array([[0.0, 0.0]], np.float32)
    fb = retarget.Feedback(np.array([0, 0]), np.array([0, 1]), np.array([True, False]))
    t = retarget.rf_targets(xq, xb, fb, alpha=0.25)
    np.testing.assert_allclose(t, [[1.0, 0.0], [0.0, 6.0]])  # x -/+ 0.5 (x - q)
    np.testing.assert_allclose(retarget.rf_targets(xq, xb, fb, alpha=0.5)[0], [0.0, 0.0])


@pytest.mark.parametrize("layer", ["fc6", "fc7"])
def test_head_starts_as_identity(layer):
    x = np.random.default_rng(0).normal(size=(7, 5)).astype(np.float32)  # signed, like centred PCA features
    head = retarget.RetargetHead(5, layer)
    np.testing.assert_allclose(retarget.transform(head, x), x, atol=1e-6)
    assert isinstance(head.act7 if layer == "fc7" else head.act6, torch.nn.PReLU)
    assert (head.fc7 is None) == (layer == "fc6")


def test_layerwise_learning_rates():
    head = retarget.RetargetHead(4, "fc7")
    groups = head.param_groups(1e-5, 1e-3)
    assert [g["lr"] for g in groups] == [1e-5, 1e-3]
    assert sum(p.numel() for g in groups for p in g["params"]) == sum(p.numel() for p in head.parameters())


def test_retraining_reduces_loss_toward_targets():
    rng = np.random.default_rng(0)
    x = np.abs(rng.normal(size=(64, 8))).astype(np.float32)
    y = np.repeat(np.arange(4), 16)
    t = retarget.rri_targets(x, y, beta=0.2)
    head = retarget.RetargetHead(8, "fc7")
    before = float(((retarget.transform(head, x) - t) ** 2).mean())
    hist = retarget.fit_targets(head, x, t, retarget.TrainConfig(epochs=30, batch_size=16, lr_fc6=1e-3,
                                                                 lr_fc7=1e-2, seed=0))
    after = float(((retarget.transform(head, x) - t) ** 2).mean())
    assert after < 0.5 * before
    assert hist["loss"].iloc[-1] < hist["loss"].iloc[0]


def test_run_pipeline_and_bad_step():
    rng = np.random.default_rng(1)
    x = np.abs(rng.normal(size=(40, 6))).astype(np.float32)
    y = np.repeat(np.arange(4), 10)
    data = retarget.RetrainData(x, y, x, y, x[:8], y[:8], np.arange(8))
    head, hist = retarget.run_pipeline(["fu", "rri", "rf"], data, layer="fc7",
                                       mcfg=retarget.MethodConfig(rf_relevant=2, rf_irrelevant=1, rf_depth=20),
                                       cfg=retarget.TrainConfig(epochs=2, batch_size=16, lr_fc7=1e-3))
    assert hist["method"].unique().tolist() == ["fu", "rri", "rf"]
    assert (hist.loc[hist.method == "rf", "n_samples"] == 24).all()
    with pytest.raises(ValueError, match="unknown steps"):
        retarget.check_pipeline(["fu", "svm"])
    assert retarget.pipeline_name(["fu", "rri"], "fc7") == "FU(FC6,FC7; FC7) -> RRI(FC6,FC7; FC7)"


def test_evaluate_matches_hand_ap_and_shared_metric():
    xb = np.array([[0.0], [1.0], [2.0], [3.0]], np.float32)
    yb = np.array([1, 0, 1, 0])
    xq = np.array([[0.0]], np.float32)
    r = retarget.evaluate(xq, np.array([1]), xb, yb, k=2)
    # ranking 0,1,2,3 -> relevant at ranks 1 and 3: AP (Eq. 18) = (1/1 + 2/3) / 2
    assert r["map_all"] == pytest.approx((1 + 2 / 3) / 2)
    assert r["map_at_2"] == pytest.approx(1.0)  # denominator: relevant within the top 2
    rank = retarget.full_ranking(xb, xq)
    assert r["map_all"] == pytest.approx(metrics.map_all(metrics.relevance(rank, np.array([1]), yb)))


def test_feedback_rounds_shape_and_round_zero():
    rng = np.random.default_rng(2)
    x = np.abs(rng.normal(size=(30, 4))).astype(np.float32)
    y = np.repeat(np.arange(3), 10)
    head = retarget.RetargetHead(4, "fc7")
    df = retarget.feedback_rounds(head, x, y, x[:2] + 0.01, y[:2], rounds=2, n_relevant=2, n_irrelevant=2,
                                  depth=10, cfg=retarget.TrainConfig(epochs=1, batch_size=8, lr_fc7=1e-3))
    assert df.shape == (6, 4) and df["round"].tolist() == [0, 1, 2, 0, 1, 2]
    base = retarget.evaluate(x[:2] + 0.01, y[:2], x, y)  # round 0 = untouched head
    rank = retarget.full_ranking(x, x[:2] + 0.01)
    p3 = (y[rank[:, :3]] == y[:2, None]).mean(1)
    np.testing.assert_allclose(df.loc[df["round"] == 0, "precision_at_k"], p3)
    assert base["p_at_10"] >= 0


def test_projection_is_centred_pca_keeping_distances_at_full_rank():
    rng = np.random.default_rng(3)
    x = (rng.normal(size=(50, 6)) * [5, 4, 3, 2, 1, 0.5]).astype(np.float32)
    q = rng.normal(size=(5, 6)).astype(np.float32)
    proj = xp.fit_projection(x, 6)
    zx, zq = xp.apply_projection(x, proj), xp.apply_projection(q, proj)
    np.testing.assert_allclose(zx.mean(0), 0, atol=1e-5)
    d = lambda a, b: np.linalg.norm(a[:, None] - b[None], axis=-1)  # noqa: E731
    np.testing.assert_allclose(d(zq, zx), d(q, x), rtol=1e-4, atol=1e-4)  # full-rank PCA = rotation
    z2 = xp.apply_projection(x, xp.fit_projection(x, 2))
    assert z2.shape == (50, 2) and z2[:, 0].var() >= z2[:, 1].var()  # ordered by explained variance
    assert xp.fit_projection(x, None) is None
    with pytest.raises(ValueError, match="pca_dim=9"):
        xp.fit_projection(x, 9)


def test_rri_singleton_class_is_only_pushed_away():
    x = np.array([[0.0], [1.0], [5.0]], np.float32)
    y = np.array([0, 0, 1])
    t = retarget.rri_targets(x, y, n=1, beta=0.2)
    # x=5 has no relevant neighbour: mu+ = x, so t = x + 0.2 (x - mu-) with mu- = 1
    assert t[2, 0] == pytest.approx(5 + 0.2 * 4)


def test_paper_rows_wrong_sign_gain_and_directions():
    import pandas as pd

    import cbir
    from cbir import report

    P = cbir.params.load("medium", "retarget")
    base = np.linspace(0.1, 0.3, 50)
    shift = {"none": 0.0, "fu": -0.006, "rri": 0.18, "rf": 0.006, "fu+rri": 0.183}
    common = dict(dataset="cifar10_subset", n_db=20000, n_queries=50, n_train=3000, n_users=300,
                  model=xp.run_model("efficientnet_lite0", "ImageNet weights", 1280, 512),
                  queries_from="drawn at random from the test split; database = the train split",
                  relevance="same class label")
    schemes = pd.DataFrame([{"pipeline": p, "layer": "pooled" if p == "none" else "fc7",
                             "map_all": (base + d).mean(), "map_at_50": (base + d).mean(),
                             "epochs": 0 if p == "none" else 4, **common} for p, d in shift.items()])
    pq = pd.concat([pd.DataFrame({"dataset": "cifar10_subset", "pipeline": p,
                                  "layer": "pooled" if p == "none" else "fc7", "query": np.arange(50),
                                  "ap_all": base + d, "ap_at_50": base + d})
                    for p, d in shift.items()], ignore_index=True)
    out = {r.claim: r for r in xp.paper_rows(schemes, pq, None, None, None, None, P)}
    fu = out["FU (FC7) gain over baseline, map (cifar10_subset)"]  # paper +0.033, ours -0.006
    assert fu.kind == "value" and fu.metric == "map_gain" and fu.verdict == "not comparable"
    assert abs(fu.ours - fu.reported) > fu.tolerance  # on a matching setting it would differ: wrong sign
    rri = out["RRI (FC7) gain over baseline, map (cifar10_subset)"]  # paper +0.176, ours +0.18
    assert abs(rri.ours - rri.reported) <= rri.tolerance and rri.verdict == "not comparable"
    assert out["FU (FC7) improves the baseline mAP (cifar10_subset)"].verdict == "fails here"
    assert out["RRI (FC7) improves the baseline mAP (cifar10_subset)"].verdict == "holds here"
    assert out["RF (FC7) improves the baseline mAP (cifar10_subset)"].verdict == "holds here"
    assert out["FU -> RRI (FC7) beats RRI alone, mAP (cifar10_subset)"].verdict == "holds here"  # +0.003 every query
    assert all(isinstance(r, report.Row) for r in out.values())


# ------------------------------------------------------------------ the real FC6/FC7 path (random weights, marked)
@pytest.fixture(scope="module")
def alexnet_random():
    from cbir.models.backbones import pretrained_backbone

    return pretrained_backbone("alexnet", weights="random", seed=0, verbose=False)


def test_random_alexnet_is_marked(alexnet_random):
    assert alexnet_random.source.startswith("RANDOM weights")
    assert retarget.has_fc_layers(alexnet_random)


def test_fc_head_copies_pretrained_fc6_fc7_with_per_channel_prelu(alexnet_random):
    cls = alexnet_random.module.classifier
    head = retarget.FCRetargetHead.from_classifier(cls, "fc7")
    assert (head.in_dim, head.dim) == (9216, 4096)
    assert torch.equal(head.fc6.weight, cls[1].weight) and torch.equal(head.fc7.weight, cls[4].weight)
    assert head.fc6.weight.data_ptr() != cls[1].weight.data_ptr()  # a copy: retraining leaves the network alone
    assert head.act.weight.shape == (4096,) and torch.all(head.act.weight == 0.25)  # Caffe: per channel, 0.25
    x = torch.rand(3, 9216)
    with torch.no_grad():
        torch.testing.assert_close(head.reference(x), cls[:6].eval()(x))  # FC6 ReLU FC7 ReLU of the network
        head.act.weight.zero_()  # a PReLU with slope 0 is the ReLU it replaces
        torch.testing.assert_close(head(x), head.reference(x))
    fc6 = retarget.FCRetargetHead.from_classifier(cls, "fc6")
    assert fc6.fc7 is None and fc6.dim == 4096
    assert len(fc6.param_groups(1e-5, 1e-3)) == 1 and len(head.param_groups(1e-5, 1e-3)) == 2


def test_pool5_trunk_then_fc_head_reference_is_the_networks_fc7(alexnet_random):
    p5 = retarget.pool5_backbone(alexnet_random)
    assert (p5.name, p5.feature_dim) == ("alexnet-pool5", 9216) and p5.source == alexnet_random.source
    imgs = np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    x5 = p5.features(imgs, size=64, progress=False)
    fc7 = alexnet_random.features(imgs, size=64, progress=False)  # the registry's FC7 + ReLU trunk
    head = retarget.FCRetargetHead.from_classifier(alexnet_random.module.classifier, "fc7")
    np.testing.assert_allclose(retarget.reference_transform(head, x5), fc7, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="no FC6/FC7"):
        retarget.pool5_backbone(type(p5)(**{**p5.__dict__, "name": "efficientnet_lite0"}))


def test_fc_path_retrains_fc6_fc7_only_and_names_the_baselines(alexnet_random):
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], 6)
    x5 = rng.random((18, 9216), dtype=np.float32)
    sf = xp.SplitFeatures("tiny", x5[:12], y[:12], x5[12:], y[12:], np.arange(6), None, None, 64, "tiny",
                          fc_classifier=alexnet_random.module.classifier)
    head = sf.new_head("fc7")
    assert isinstance(head, retarget.FCRetargetHead)
    w6, w7 = head.fc6.weight.clone(), head.fc7.weight.clone()
    trunk_before = alexnet_random.module.classifier[4].weight.clone()
    data = retarget.RetrainData(sf.x_db, sf.y_db, sf.x_db, sf.y_db)
    head, hist = retarget.run_pipeline(["rri"], data, layer="fc7", mcfg=retarget.MethodConfig(rri_n=2),
                                       cfg=retarget.TrainConfig(epochs=2, batch_size=6, lr_fc6=1e-5, lr_fc7=1e-3),
                                       head=head)
    assert hist["epoch"].tolist() == [1, 2] and (hist["n_samples"] == 12).all()
    assert not torch.equal(head.fc7.weight, w7) and not torch.equal(head.fc6.weight, w6)
    assert not torch.all(head.act.weight == 0.25)  # the PReLU slopes are retrained too
    assert torch.equal(alexnet_random.module.classifier[4].weight, trunk_before)  # the network is untouched
    assert retarget.transform(head, sf.x_pool).shape == (6, 4096)


def test_fc_path_baseline_rows_are_the_pretrained_fc6_and_fc7(alexnet_random):
    import cbir

    rng = np.random.default_rng(1)
    y = np.repeat([0, 1, 2], 8)
    x5 = rng.random((24, 9216), dtype=np.float32)
    sf = xp.SplitFeatures("tiny", x5[:18], y[:18], x5[18:], y[18:], np.arange(6), None, None, 64, "tiny",
                          fc_classifier=alexnet_random.module.classifier)
    P = cbir.params.load("smoke", "retarget", {"n_train": 18, "n_users": 3, "epochs": 1, "map_k": 5, "rri_n": 2,
                                               "rf_heldout_check": False})
    table, heads, _ = xp.compare_schemes(sf, P, schemes=[(["fu"], "fc6", "")])
    assert table["scheme"].tolist()[:2] == ["Pretrained => FC7", "Pretrained => FC6"]
    assert table["layer"].tolist() == ["pooled", "fc6", "fc6"]
    ref = retarget.FCRetargetHead.from_classifier(alexnet_random.module.classifier, "fc7")
    want = retarget.evaluate(retarget.reference_transform(ref, sf.x_q), sf.y_q,
                             retarget.reference_transform(ref, sf.x_db), sf.y_db, k=5)["map_all"]
    assert table["map_all"].iloc[0] == pytest.approx(want)
    assert isinstance(heads["fu@fc6"], retarget.FCRetargetHead)


def test_paper_profile_without_alexnet_weights_raises_one_clear_error(monkeypatch, tmp_path):
    import cbir
    from cbir.models import backbones

    P = cbir.params.load("paper", "retarget")
    assert (P.backbone, P.backbone_fallback, P.pca_dim) == ("alexnet", False, None)
    monkeypatch.setattr(backbones, "weights_file", lambda name, weights_path=None: None)
    with pytest.raises(backbones.WeightsNotFoundError, match="alexnet ImageNet weights"):
        backbones.pretrained_backbone(P.backbone, fallback=P.backbone_fallback, verbose=False)


# ------------------------------------------------------------------ Fig. 12 sweep, distractors (Eq. 9-10), Table 9
def _tiny_split(seed=0, n_per_class=8, n_classes=4, dim=8):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(n_classes), n_per_class)
    x = (rng.normal(size=(n_classes, dim))[y] * 2 + rng.normal(size=(len(y), dim))).astype(np.float32)
    db = np.arange(len(y)) % 4 != 0  # 3/4 database, 1/4 queries
    return xp.SplitFeatures("tiny", x[db], y[db], x[~db], y[~db], np.arange(int((~db).sum())), None, None, 8, "tiny")


def _tiny_params(**kw):
    import cbir

    return cbir.params.load("smoke", "retarget", {"n_train": 24, "n_users": 3, "epochs": 1, "map_k": 5, "rri_n": 2,
                                                  "rf_heldout_check": False, **kw})


def test_rri_with_distractors_trains_on_labelled_plus_gathered():
    y = np.array([0, 0, 1, 1])
    x = np.array([[0, 0], [1, 0], [10, 0], [11, 0]], np.float32)
    d = np.array([[0.5, 1.0], [100, 100]], np.float32)  # the first is near class 0, the second far from all
    data = retarget.RetrainData(x, y, x, y)
    gathered, _ = retarget.distractor_targets(x, y, d, n=2, theta=0.5)
    assert gathered.tolist() == [0]  # the far distractor is among no 2 nearest irrelevant: never gathered
    head, hist, n_g = retarget.run_rri_with_distractors(
        data, d, layer="fc7", mcfg=retarget.MethodConfig(rri_n=1), cfg=retarget.TrainConfig(epochs=1, batch_size=2))
    g1, _ = retarget.distractor_targets(x, y, d, n=1, theta=0.5)
    assert n_g == len(g1) == 1 and (hist["n_samples"] == 4 + n_g).all()
    assert hist["method"].unique().tolist() == ["rri+distractors"]


def test_train_size_table_caps_sizes_at_the_database_and_shares_queries():
    sf = _tiny_split()
    sizes, sizes_q = xp.train_size_table(sf, _tiny_params(train_sizes=[8, 4, 100]))
    assert sizes["n_train"].tolist() == [4, 8, 24]
    assert sizes_q.groupby("n_train")["query"].apply(list).map(len).tolist() == [8, 8, 8]
    assert (sizes["epochs"] == 1).all() and (sizes["n_db"] == 24).all()


def test_distractor_table_drops_distractor_queries_and_unlabels_their_images():
    sf = _tiny_split()
    t, tq = xp.distractor_table(sf, _tiny_params(distractor_classes=1))
    assert t["variant"].tolist() == ["baseline", "RRI (FC7)", "RRI + distractors (FC7, Eq. 9-10)"]
    assert (t["n_distractors"] == 6).all() and (t["n_queries"] == 6).all()  # class 3: 6 db images, 2 queries
    assert (t["n_train"] == 18).all() and t["n_gathered"].iloc[:2].tolist() == [0, 0]
    assert set(tq["query"]) == set(np.flatnonzero(sf.y_pool != 3))
    base = retarget.evaluate(sf.x_pool[sf.y_pool != 3], sf.y_pool[sf.y_pool != 3], sf.x_db,
                             np.where(sf.y_db == 3, -1, sf.y_db), k=5)["map_all"]
    assert t["map_all"].iloc[0] == pytest.approx(base)
    with pytest.raises(ValueError, match="distractor_classes=3"):
        xp.distractor_table(sf, _tiny_params(distractor_classes=3))


def test_pass_timing_rows_are_not_comparable():
    passes = pd.DataFrame([{"dataset": "digits", "step": s, "ms_per_image": v, "ms_min": v * 0.9, "ms_max": v * 1.1,
                            "batch": 32, "image_size": 32, "repeats": 5, "threads": 1, "device": "cpu",
                            "model": "efficientnet_lite0"} for s, v in (("forward pass (trunk + FC7 head)", 2.0),
                                                                       ("backward pass (FC6/FC7 head)", 0.01))])
    from cbir import report

    t = report.table(xp.timing_rows(passes), "05")
    assert t["reported"].tolist() == [2.73, 3.32]
    assert t["verdict"].tolist() == ["not comparable", "not comparable"]
