"""Tests of cbir.experiments.perceptual_hash_vs_cnn: the RIS benchmark of Gaillard et al. 2018 (Secs. 5.1-5.3, 6.1, 6.4)."""
import numpy as np
import pandas as pd
import pytest

from cbir.experiments import perceptual_hash_vs_cnn as ris
from cbir.metrics import radius_prf


def _bits(rows):
    return np.packbits(np.array(rows, np.uint8), axis=1)


@pytest.fixture()
def toy():
    """N=2 base, K=1 modification, M=1 non-indexed, 8-bit codes with hand-known Hamming distances."""
    base = _bits([[0] * 8, [1] * 8])
    mod = _bits([[0] * 7 + [1], [1, 1, 1, 1, 0, 0, 0, 0]])  # d(base0, mod0) = 1, d(base1, mod1) = 4
    non = _bits([[0] * 6 + [1, 1]])  # d to base0 = 2, to mod0 = 1
    return ris.Encoded(base, {"blur": mod}, non, "hamming", n_bits=8)


def test_all_modifications_hand_computed_prf(toy):
    df = ris.ris_all_modifications(toy, [0.0, 1 / 8])
    # radius 0: each indexed query retrieves itself (P=1, R=1/2, F=2/3); non-indexed retrieves nothing
    # (P=1 by the authors' convention, R=1) -> means P=1, R=0.6, F=(4*2/3+1)/5
    r0 = df.iloc[0]
    assert r0.precision == pytest.approx(1.0) and r0.recall == pytest.approx(0.6)
    assert r0.f == pytest.approx((4 * 2 / 3 + 1) / 5)
    # radius 1/8: base0 {base0, mod0} F=1; base1 {base1} F=2/3; mod0 F=1; mod1 F=2/3; non-indexed
    # retrieves mod0 (P=0, R=1, F=0)
    r1 = df.iloc[1]
    assert r1.precision == pytest.approx(0.8) and r1.recall == pytest.approx(0.8)
    assert r1.f == pytest.approx((1 + 2 / 3 + 1 + 2 / 3 + 0) / 5)
    assert ris.max_f(df).radius == 0.0  # 11/15 > 2/3; ties would keep the smaller radius
    assert list(df.n_queries) == [5, 5]


def test_empty_precision_option(toy):
    df = ris.ris_all_modifications(toy, [0.0], include_nonindexed=True, empty_precision=0.0)
    assert df.precision[0] == pytest.approx(0.8)  # the empty non-indexed result now scores 0


def test_single_modification_hand_computed(toy):
    df = ris.ris_single_modification(toy, "blur", [0.0, 1 / 8, 4 / 8])
    # queries mod0, mod1 against {base0, base1}: mod0 finds base0 at 1 bit; mod1 finds base1 and base0 at 4
    np.testing.assert_allclose(df.recall, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(df.precision, [1.0, 1.0, 0.75])
    np.testing.assert_allclose(df.f, [0.0, 0.5, (1 + 2 * 0.5 / 1.5) / 2])
    per = ris.ris_per_modification(toy, [0.0, 1 / 8, 4 / 8])
    assert per.set_index("modification").loc["base", "max_f"] == 1.0


def test_sweep_agrees_with_metrics_radius_prf_on_indexed_queries():
    rng = np.random.default_rng(1)
    codes = np.packbits(rng.integers(0, 2, (60, 16), dtype=np.uint8), axis=1)
    groups = np.repeat(np.arange(20), 3)
    radii = np.arange(0, 9) / 16
    ret, tp = ris.sweep_counts(codes, groups, codes, groups, "hamming", radii, n_bits=16, chunk=7)
    df = ris.prf_from_counts(ret, tp, np.full(60, 3), radii)
    from cbir.index import BinaryIndex

    idx = BinaryIndex(16).add(codes)
    for r, row in zip(radii, df.itertuples()):
        lims, _, I = idx.range_search(codes, int(round(r * 16)))
        ref = radius_prf(lims, I, groups, groups)
        assert row.precision == pytest.approx(ref["precision"])
        assert row.recall == pytest.approx(ref["recall"])
        assert row.f == pytest.approx(ref["f"])


def test_sweep_counts_independent_of_chunk_and_metric_paths():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(30, 5)).astype(np.float32)
    g = np.repeat(np.arange(10), 3)
    radii = np.linspace(0, 0.5, 11)
    a = ris.sweep_counts(x, g, x, g, "cosine", radii, chunk=4)
    b = ris.sweep_counts(x, g, x, g, "cosine", radii, chunk=1000)
    np.testing.assert_array_equal(a[0], b[0])
    # reference: 1 - cos by hand
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    ang = 1.0 - np.clip(xn.astype(np.float64) @ xn.T, -1, 1)
    np.fill_diagonal(ang, 0.0)  # an item is at distance 0 from itself
    ref = (ang[:, :, None] <= radii[None, None, :] + 1e-6).sum(1)
    np.testing.assert_array_equal(a[0], ref)


def test_cosine_radius_is_one_minus_cos():
    """The authors' unit (CnnFeatures.cpp): 60 degrees -> 1 - cos = 0.5, not arccos / pi = 1/3."""
    xb = np.array([[1.0, 0.0]], np.float32)
    xq = np.array([[np.cos(np.pi / 3), np.sin(np.pi / 3)]], np.float32)
    lims, D, _ = ris.range_search(xb, xq, "cosine", 0.51)
    assert lims[-1] == 1 and D[0] == pytest.approx(0.5, abs=1e-5)
    lims, _, _ = ris.range_search(xb, xq, "cosine", 0.49)
    assert lims[-1] == 0
    xq2 = np.array([[-1.0, 0.0]], np.float32)  # opposite direction: 2
    lims, D, _ = ris.range_search(xb, xq2, "cosine", 2.0)
    assert lims[-1] == 1 and D[0] == pytest.approx(2.0, abs=1e-6)
    assert ris.cosine_distance(np.array([-1e-7, 5e-7, 0.25, 2.5])).tolist() == [0.0, 0.0, 0.25, 2.0]


def test_rv_range_search_uses_one_minus_peak_correlation():
    from cbir.hashing.perceptual import peak_crosscorr_matrix

    rng = np.random.default_rng(3)
    d = rng.integers(0, 256, (6, 40), dtype=np.uint8)
    lims, D, I = ris.range_search(d, d, "rv", 1.0)
    full = np.clip(1 - peak_crosscorr_matrix(d, d), 0, 1)
    assert lims[-1] == 36
    np.testing.assert_allclose(D, full.reshape(-1), atol=1e-6)


def test_build_image_sets_order_and_sizes():
    imgs = [np.full((16, 20, 3), i, np.uint8) for i in range(6)]
    sets = ris.build_image_sets(imgs, n_nonindexed=2, modifications=("crop", "gray"))
    assert [im[0, 0, 0] for im in sets.nonindexed] == [0, 1]
    assert [im[0, 0, 0] for im in sets.base] == [2, 3, 4, 5]
    assert sets.modified["crop"][0].shape == (16, 18, 3)
    assert "N=4 base, K=2" in sets.protocol()
    with pytest.raises(ValueError, match="n_nonindexed=6"):
        ris.build_image_sets(imgs, n_nonindexed=6)


def test_tile_images_non_overlapping_and_small_kept_whole():
    img = np.arange(128 * 128 * 3, dtype=np.uint32).reshape(128, 128, 3).astype(np.uint8)
    small = np.zeros((40, 40, 3), np.uint8)
    tiles, parent = ris.tile_images([img, small], (2, 2), min_side=32)
    assert len(tiles) == 5 and parent.tolist() == [0, 0, 0, 0, 1]
    np.testing.assert_array_equal(tiles[3], img[64:, 64:])


def test_screening_keeps_configs_above_threshold():
    rng = np.random.default_rng(4)
    n = 40
    good = rng.normal(size=(n, 8)).astype(np.float32)
    enc_good = ris.Encoded(good, {"m": good + 0.01}, np.zeros((0, 8), np.float32), "cosine")
    noise = rng.normal(size=(n, 8)).astype(np.float32)
    enc_bad = ris.Encoded(good, {"m": noise}, np.zeros((0, 8), np.float32), "cosine")
    df = ris.screening({"good": enc_good, "bad": enc_bad}, lambda e: np.linspace(0, 0.5, 26),
                       stages=(10, None), threshold=0.9)
    s1 = df[df.stage == 1].set_index("config")
    assert s1.loc["good", "kept"] and not s1.loc["bad", "kept"]
    assert df[df.stage == 2].config.tolist() == ["good"]
    assert s1.loc["good", "n_base"] == 10


def test_distance_pairs_similar_closer():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(50, 16)).astype(np.float32)
    enc = ris.Encoded(x, {"blur": x + 0.05 * rng.normal(size=x.shape).astype(np.float32)},
                      np.zeros((0, 16), np.float32), "l2")
    df = ris.distance_pairs(enc, n_dissimilar=200, seed=0)
    m = df.groupby("pair").distance.mean()
    assert m["similar"] < m["dissimilar"] and (df.pair == "similar").sum() == 50
    assert isinstance(df, pd.DataFrame)


def test_encoded_validation_messages():
    with pytest.raises(ValueError, match="n_bits"):
        ris.Encoded(np.zeros((2, 1), np.uint8), {}, np.zeros((0, 1), np.uint8), "hamming")
    with pytest.raises(ValueError, match="unknown"):
        ris.Encoded(np.zeros((2, 1)), {}, np.zeros((0, 1)), "manhattan")
    with pytest.raises(ValueError, match="increasing"):
        ris.sweep_counts(np.zeros((2, 2), np.float32), [0, 1], np.zeros((2, 2), np.float32), [0, 1],
                         "l2", [0.5, 0.1])


class _TinyBackbone:
    """Stand-in for cbir.models.backbones.Backbone: one fixed 1x1 conv (identity on channels)."""

    def __init__(self):
        import torch

        self.name, self.source = "tiny", "test"
        conv = torch.nn.Conv2d(3, 3, 1, bias=False)
        with torch.no_grad():
            conv.weight.copy_(torch.eye(3).reshape(3, 3, 1, 1))
        self.module = torch.nn.Module()
        self.module.conv = conv
        self.module.fc = torch.nn.Linear(3, 2)
        self.trunk = torch.nn.Sequential(conv, torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
        self.mean, self.std = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)

    def named_layers(self):
        return {"conv": self.module.conv}


def test_layer_features_pooling_by_hand_and_names():
    from cbir.models.layer_features import feature_name, l2_normalize, layer_features

    img = np.zeros((32, 32, 3), np.uint8)
    img[:16, :, 0] = 255  # red on the top half only
    f = layer_features(_TinyBackbone(), [img], ["conv", "predictions"], ("avg", "max"), size=32,
                       flatten_layers=["conv"])
    np.testing.assert_allclose(f["conv_avg"][0], [0.5, 0, 0], atol=1e-6)
    np.testing.assert_allclose(f["conv_max"][0], [1.0, 0, 0], atol=1e-6)
    assert f["conv_flatten"].shape == (1, 3 * 32 * 32)
    assert f["predictions"].sum() == pytest.approx(1.0, abs=1e-6)
    assert feature_name("resnet50", "activation_46", "max") == "ResNet50_activation_46_max"
    assert feature_name("efficientnet_lite0", "block15", "avg", True) == "EfficientNetLite0_block15_avg_norm_l2"
    np.testing.assert_allclose(np.linalg.norm(l2_normalize(np.array([[3.0, 4.0]])), axis=1), 1.0)
    with pytest.raises(ValueError, match="unknown"):
        layer_features(_TinyBackbone(), [img], ["nope"], ("avg",), size=32)


def test_encode_cnn_builds_cosine_and_euclidean_configs():
    imgs = [np.full((40, 40, 3), 20 * i, np.uint8) for i in range(5)]
    sets = ris.build_image_sets(imgs, n_nonindexed=1, modifications=("blur", "crop"))
    cfg = ris.encode_cnn(sets, _TinyBackbone(), ["conv"], ["avg"], size=32, distances=("cosine", "euclidean"),
                         l2_options=(False, True))
    assert sorted(cfg) == ["tiny_conv_avg | cosine", "tiny_conv_avg | euclidean", "tiny_conv_avg_norm_l2 | euclidean"]
    enc = cfg["tiny_conv_avg_norm_l2 | euclidean"]
    assert enc.metric == "l2" and enc.base.shape == (4, 3) and enc.nonindexed.shape == (1, 3)
    np.testing.assert_allclose(np.linalg.norm(enc.base[1:], axis=1), 1.0, atol=1e-6)


def test_mogrify_resave_and_quality_estimate(tmp_path):
    """Modified images are written as JPEG like mogrify (compr untouched); the quality is read off the tables."""
    from PIL import Image

    rng = np.random.default_rng(0)
    im = (np.linspace(0, 255, 48 * 64).reshape(48, 64)[:, :, None] + rng.integers(0, 20, (48, 64, 3))).clip(0, 255)
    im = im.astype(np.uint8)
    assert ris.mogrify_resave([im], "rotate", None)[0] is im
    assert ris.mogrify_resave([im], "compr", 75)[0] is im
    out = ris.mogrify_resave([im], "rotate", 75)[0]
    assert out.shape == im.shape and out.dtype == np.uint8 and not np.array_equal(out, im)
    for q in (50, 75, 92):
        Image.fromarray(im).save(tmp_path / f"q{q}.jpg", quality=q)
    assert [ris.estimate_jpeg_quality([tmp_path / f"q{q}.jpg"]) for q in (50, 75, 92)] == [50, 75, 92]
    Image.fromarray(im).save(tmp_path / "x.png")
    assert ris.estimate_jpeg_quality([tmp_path / "x.png"]) == ris.IMAGEMAGICK_DEFAULT_QUALITY == 92
    with pytest.raises(ValueError, match="resave quality=0"):
        ris.mogrify_resave([im], "blur", 0)


def test_sweep_grids_are_the_authors_then_ours():
    import cbir.params

    g = ris.sweep_grids(cbir.params.load("medium", "phash"))
    assert list(g) == ["rotate", "crop", "compr", "blur", "resize"]
    assert g["rotate"] == [0, 1, 2, 3, 4, 5] and g["crop"] == [0, 0.04, 0.08, 0.10, 0.12, 0.16, 0.20]


def test_per_modification_f_is_per_query_at_the_best_radius(toy):
    # blur: mod0 finds base0 at 1 bit; mod1 is 4 bits from both bases. Mean F over radii [0, 1/8, 4/8]:
    # 0, 0.5, (1 + 2/3) / 2 -> best radius 4/8, per-query F there: 1 and 2/3 (P = 1/2, R = 1)
    fq = ris.per_modification_f(toy, [0.0, 1 / 8, 4 / 8])
    assert list(fq) == ["blur"]
    np.testing.assert_allclose(fq["blur"], [1.0, 2 / 3])


def test_break_strength_follows_the_strength_direction():
    sweep = pd.DataFrame({"strength": [90.0, 50.0, 10.0], "max_f": [0.95, 0.7, 0.5]})  # JPEG quality
    assert ris.stronger_when("compr") == "lower" and ris.stronger_when("rotate") == "higher"
    assert ris.break_strength(sweep, 0.8, ris.stronger_when("compr")) == 50.0  # from q=90 down
    assert ris.break_strength(sweep, 0.8) == 10.0  # read as if larger were stronger: the misreading
    with pytest.raises(ValueError, match="stronger='up'"):
        ris.break_strength(sweep, 0.8, "up")
    with pytest.raises(ValueError, match="modification='warp'"):
        ris.stronger_when("warp")
