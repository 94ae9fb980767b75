"""Notebook 02's paper-vs-ours rows (cbir.experiments.latent_layer_hashing.paper_rows) on a synthetic fixture.

No data loading, no training: an Arm is filled with the sizes each profile's data would have, random test
logits and per-query precisions, so the rows' settings can be checked against the paper's under the
smoke, medium and paper params.
"""
import numpy as np
import pytest
import pandas as pd

from cbir import reported
from cbir.experiments import latent_layer_hashing as xp
from cbir.params import load
from cbir.report import Setting, compare

#: (train, test) sizes of each dataset as cbir.data loads it (per-class subsets applied in _arm)
SIZES = {"digits": (1257, 540), "mnist": (60000, 10000), "synthetic": (600, 200),
         "cifar10_subset": (20000, 5000), "cifar10": (50000, 10000)}
OURS = "latent hash (ours, Hamming)"


def _arm(P, arm, per_query, margin=10.0, rng=None):
    rng = rng or np.random.default_rng(0)
    ds = P.cnn_dataset if arm == "cnn" else P.feat_dataset
    per_class = P.cnn_train_per_class if arm == "cnn" else P.feat_train_per_class
    test_per_class = P.cnn_test_per_class if arm == "cnn" else P.feat_test_per_class
    n_db = 10 * per_class if per_class else SIZES[ds][0]
    n_test = 10 * test_per_class if test_per_class else SIZES[ds][1]
    fit_per_class = P.cnn_fit_per_class if arm == "cnn" else P.feat_fit_per_class
    n_fit = 10 * fit_per_class if fit_per_class else n_db
    n_q = min(P.n_queries, n_test)
    epochs = P.cnn_epochs if arm == "cnn" else P.head_epochs
    test_labels = rng.integers(0, 10, n_test)
    logits = rng.standard_normal((n_test, 10)).astype(np.float32)
    logits[np.arange(n_test), test_labels] += 3.0  # mostly correct
    nets = {h: {"test_logits": logits, "train_loss": np.linspace(2, 0.1, epochs)} for h in [P.n_bits, None]}
    model = xp.arm_model_text(P, arm, 10, backbone=None if arm == "cnn" else "efficientnet_lite0")
    a = xp.Arm(arm, ds, "", None, None, np.zeros(n_db, np.int64), test_labels, None, None,
               np.arange(n_q, dtype=np.int64), nets, list(range(10)), "", n_fit, P.batch_size, model)
    base = rng.uniform(0.4, 0.9, n_q)
    for m, v in ((OURS, np.clip(base + margin / 100 + rng.normal(0, 0.05, n_q), 0, 1)),
                 ("LSH (Hamming)", np.clip(base - 0.1, 0, 1)), ("PCA-ITQ (Hamming)", base)):
        per_query[(arm, m, P.n_bits, "precision", P.headline_k)] = v
    return a


def _speed(P, arms):
    """A search_task_timing table for the arms (fixed times: two-step 20x faster than linear search)."""
    rows = []
    for a in arms:
        for step, sec, ratio in (("feature extraction (queries)", 0.05, (np.nan,) * 3),
                                 ("two-step search (Hamming top-p, cosine on F)", 0.01, (20.0, 18.0, 22.0)),
                                 ("one-step search (Hamming ranking)", 0.005, (40.0, 36.0, 44.0)),
                                 ("linear search (cosine on F, all database)", 0.2, (1.0, 0.9, 1.1))):
            rows.append({"dataset": a.dataset, "arm": a.arm, "step": step, "n_bits": P.n_bits,
                         "feat_dim": P.feature_dim, "db_size": len(a.db_labels), "n_queries": len(a.query_idx),
                         "k": P.headline_k, "pool": 1000 if step.startswith("two") else np.nan,
                         "threads": P.speed_threads, "repeats": P.speed_repeats, "seconds": sec,
                         "speedup": ratio[0], "speedup_lo": ratio[1], "speedup_hi": ratio[2],
                         "device": "CPU x86_64 x2 threads"})
    return pd.DataFrame(rows)


def _rows(profile, margin=10.0):
    P = load(profile, "latent_hash")
    pq = {}
    arms = [_arm(P, "cnn", pq, margin), _arm(P, "feat", pq, margin)]
    return {r.claim.split(" (")[0] + f" [{r.source}]": r for r in xp.paper_rows(arms, pq, _speed(P, arms), P)}


def _bad(row):
    return {a for a, ok in compare(row.ours_setting, row.paper_setting).items() if not ok}


def test_rows_and_kinds():
    rows = _rows("smoke")
    kinds = sorted((k, r.kind) for k, r in rows.items())
    assert kinds == sorted([
        ("test error, h=48 [Table 1]", "value"), ("precision@50, 48 bits [Sec. 2.2 text (Fig. 3)]", "value"),
        ("latent hash beats the unsupervised hashing baselines, precision@50, 48 bits [Sec. 2.2 (Figs. 3-4)]",
         "direction"),
        ("test accuracy, h=48 [Table 2]", "value"), ("precision@50, 48 bits [Sec. 2.3 text (Fig. 7)]", "value"),
        ("latent hash beats the unsupervised hashing baselines, precision@50, 48 bits [Sec. 2.3 (Fig. 7)]",
         "direction"),
        ("search task speed-up, two-step vs linear search, 48 bits [Sec. 2.2 text (Fig. 6)]", "value"),
        ("search task speed-up, two-step vs linear search, 48 bits [Sec. 2.3 text (Fig. 10)]", "value")])
    for r in rows.values():
        assert r.lo is not None and r.hi is not None and r.lo <= r.hi, r.claim  # every row has an interval
    err = rows["test error, h=48 [Table 1]"]
    assert err.lo <= err.ours <= err.hi and err.interval.startswith("Wilson, 540 test images")


def test_smoke_stand_ins_never_match_the_dataset():
    for r in _rows("smoke").values():
        assert "dataset" in _bad(r), r.claim
        assert r.verdict in ("not comparable", "holds here"), (r.claim, r.verdict)


def test_medium_mismatches():
    rows = _rows("medium")
    P = load("medium", "latent_hash")
    # MNIST on all 60,000 training images (cnn_fit_per_class: null): the dataset and the scale match; the
    # network and the budget (cnn_epochs x 469 iterations, paper 10,000) do not
    for key in ("test error, h=48 [Table 1]", "precision@500, 48 bits [Sec. 2.2 text (Fig. 3)]"):
        r = rows[key]
        assert r.ours_setting.dataset == "mnist" and {"dataset", "scale"}.isdisjoint(_bad(r)), key
        assert {"budget", "model"} <= _bad(r), key
        assert r.ours_setting.scale["train"] == 60000
        assert r.ours_setting.budget == {"iterations": P.cnn_epochs * 469}
        assert r.verdict == "not comparable"
    assert rows["precision@500, 48 bits [Sec. 2.2 text (Fig. 3)]"].ours_setting.scale == {
        "train": 60000, "database": 60000, "queries": 1000}
    # the CIFAR-10 JPEG subset is a stand-in: dataset (and scale, model) mismatch
    acc = rows["test accuracy, h=48 [Table 2]"]
    assert {"dataset", "scale", "model", "budget"} <= _bad(acc) and acc.verdict == "not comparable"
    speed = rows["search task speed-up, two-step vs linear search, 48 bits [Sec. 2.2 text (Fig. 6)]"]
    # the real MNIST database (60,000, the paper's), but another network, code length and machine
    assert _bad(speed) == {"model", "protocol"} and speed.verdict == "not comparable"
    assert speed.ours_setting.scale == {"database": 60000} and "queries 1000" in speed.ours_setting.protocol
    assert (speed.ours, speed.lo, speed.hi) == (20.0, 18.0, 22.0)
    assert "machine CPU x86_64 x2 threads; timed on 1 thread(s)" in speed.ours_setting.protocol
    assert "median of 5 repeats after warm-up" in speed.ours_setting.protocol
    cifar = rows["search task speed-up, two-step vs linear search, 48 bits [Sec. 2.3 text (Fig. 10)]"]
    assert cifar.ours_setting.dataset == "cifar10_subset" and {"dataset", "scale"} <= _bad(cifar)


def test_paper_profile_matches_what_it_is_meant_to():
    rows = _rows("paper")
    err = rows["test error, h=48 [Table 1]"]
    # full MNIST, 20 epochs x ceil(60000 / 128) = 9,380 iterations (paper: 10,000): only the network differs
    assert _bad(err) == {"model"}, err.mismatched
    prec = rows["precision@500, 48 bits [Sec. 2.2 text (Fig. 3)]"]
    assert _bad(prec) == {"model", "protocol"}  # the paper does not state k
    acc = rows["test accuracy, h=48 [Table 2]"]
    assert {"dataset", "scale"}.isdisjoint(_bad(acc)) and "protocol" not in _bad(acc)
    assert {"model", "budget"} <= _bad(acc)  # frozen features, 40 epochs of the head (paper: 50,000 iterations)


def test_the_papers_network_would_match():
    paper = reported.setting(xp.PAPER, "mnist_classification")
    ours = Setting("mnist", {"train": 60000, "test": 10000},
                   xp.model_text("GoogLeNet", "ImageNet-pretrained, fine-tuned end to end", 48, 10),
                   {"iterations": 10000}, xp.protocol_text("classification"))
    assert all(compare(ours, paper).values())
    assert reported.setting(xp.PAPER, "mnist_retrieval").protocol == xp.protocol_text("retrieval", n_bits=48)
    for name in ("mnist_speed", "cifar10_speed"):
        assert reported.setting(xp.PAPER, name).protocol == xp.protocol_text("speed", n_bits=32)


def test_a_direction_whose_interval_contains_zero_is_inconclusive():
    rows = _rows("medium", margin=0.0)  # ours = the best baseline + zero-mean noise
    d = rows["latent hash beats the unsupervised hashing baselines, precision@500, 48 bits [Sec. 2.2 (Figs. 3-4)]"]
    assert d.kind == "direction" and d.lo <= 0 <= d.hi and d.verdict == "inconclusive"
    clear = _rows("medium", margin=10.0)[
        "latent hash beats the unsupervised hashing baselines, precision@500, 48 bits [Sec. 2.2 (Figs. 3-4)]"]
    assert clear.lo > 0 and clear.verdict == "holds here"
    assert "PCA-ITQ" in clear.note  # the baseline with the highest mean


def _toy_arm(rng):
    """A retrieval-only Arm: 3 classes, 12-bit latent activations that mostly encode the class."""
    db_y, te_y = np.repeat(np.arange(3), 20), np.repeat(np.arange(3), 4)
    proto = rng.random((3, 12))
    lat = lambda y: np.clip(proto[y] + rng.normal(0, 0.35, (len(y), 12)), 0, 1).astype(np.float32)
    nets = {12: {"db_latent": lat(db_y), "test_latent": lat(te_y)}}
    imgs = np.zeros((60, 4, 4, 3), np.uint8)
    return xp.Arm("cnn", "toy", "", imgs, imgs[:12], db_y, te_y, None, None, np.arange(12, dtype=np.int64), nets,
                  ["a", "b", "c"], "", 60, 8, "")


def test_one_step_quality_and_hardest_queries_match_a_brute_force_ranking():
    from cbir.index import hamming_linear_scan
    from cbir.metrics import average_precision, relevance

    a = _toy_arm(np.random.default_rng(5))
    e = a.nets[12]
    D, I = hamming_linear_scan(xp._codes(e, part="db"), xp._codes(e, a.query_idx), 60)
    rel = relevance(I[:, :5], a.q_labels, a.db_labels)
    q = xp.one_step_quality(a, [12], k=5).iloc[0]
    assert q.precision_at_k == pytest.approx(rel.mean())
    assert q.wrong_in_top_k == pytest.approx((~rel).sum(1).mean())
    assert q.tied_at_kth == pytest.approx((D == D[:, 4:5]).sum(1).mean())
    hard = xp.hardest_queries(a, 12, 5, n=4)
    ap = average_precision(rel, denominator="retrieved")
    assert ap[hard[0]] == ap.min() and list(ap[hard]) == sorted(ap[hard])
    fig = xp.retrieved_grid(a, [12], hard[:1], 5)
    assert sum(t.get_title()[:1] in "✓✗" for t in fig.axes) == 5


def test_real_data_rows_reads_the_published_table():
    from cbir import published

    pub = published.load(xp.NOTEBOOK)
    t = pub.verdict_rows(directions_first=False)
    if not pub.available:
        assert t.empty
        return
    assert list(t.columns) == ["claim", "kind", "reported", "ours", "interval", "verdict"] and len(t) == len(pub.rows)
