"""Drive each explorer programmatically: widget values -> displayed state equals the library's result."""
import matplotlib

matplotlib.use("Agg")
import numpy as np
import pytest

from cbir import index as ix
from cbir.explore import HashRobustnessExplorer, RandomFilterExplorer, RetrievalExplorer, SearchMethod, show
from cbir.hashing import pack_bits


@pytest.fixture(scope="module")
def retrieval():
    rng = np.random.default_rng(0)
    db_y, q_y = np.repeat(np.arange(4), 10), np.repeat(np.arange(4), 2)
    centers = rng.normal(size=(4, 16))
    db = (centers[db_y] + 0.3 * rng.normal(size=(40, 16))).astype("f4")
    q = (centers[q_y] + 0.3 * rng.normal(size=(8, 16))).astype("f4")
    db_codes, q_codes = pack_bits((db > 0).astype(np.uint8)), pack_bits((q > 0).astype(np.uint8))
    imgs = rng.integers(0, 255, (40, 8, 8, 3), dtype=np.uint8)
    methods = [SearchMethod.float_features("cosine", db, q), SearchMethod.binary_codes("sign 16", db_codes, q_codes, 16)]
    return RetrievalExplorer(imgs, db_y, imgs[:8], q_y, methods), db, q, db_codes, q_codes, db_y, q_y


def test_retrieval_widget_state_matches_library(retrieval):
    ex, db, q, db_codes, q_codes, db_y, q_y = retrieval
    box = ex.widget()
    c = box.controls
    c["query"].value, c["method"].value, c["k"].value = 5, "cosine", 6
    D, I = ix.knn(db, q[5:6], 6)
    np.testing.assert_array_equal(ex.last_state["ids"], I[0])
    c["method"].value = "sign 16"
    D, I = ix.hamming_knn(db_codes, q_codes[5:6], 6)
    np.testing.assert_array_equal(ex.last_state["ids"], I[0])
    np.testing.assert_array_equal(ex.last_state["distances"], D[0])
    assert ex.last_state["precision"] == pytest.approx((db_y[I[0]] == q_y[5]).mean())
    c["query"].value = 2  # response time: benchmarks/bench_explore.py and make lab-check, not a timed test
    assert ex.last_state["query"] == 2 and len(ex.last_state["ids"]) == 6


def test_retrieval_static_twin_and_errors(retrieval):
    ex = retrieval[0]
    fig = show(ex, interactive=False, query=1, method="cosine", k=4)
    assert len(fig.axes) == 5 and ex.last_state["k"] == 4
    with pytest.raises(ValueError, match="method='nope'"):
        ex.view(0, "nope", 3)


def test_hash_robustness_distance_equals_hash_distance():
    from cbir import transforms
    from cbir.hashing.perceptual import make_hash
    from cbir.data import load_dataset

    photos = [im[:128, :128] for im in load_dataset("sample_photos", "all", verbose=False).images[:3]]
    hashes = {"dct": make_hash("dct"), "mh": make_hash("mh")}
    ex = HashRobustnessExplorer(photos, hashes, transforms.apply, {"rotate": (0.0, 10.0, 5.0), "compr": (5, 95, 10)},
                                best_radius={"dct": 0.2})
    box = ex.widget()
    box.controls["image"].value = 1
    box.controls["modification"].value = "rotate"
    box.controls["strength"].value = 8.0
    s = ex.last_state
    mod = transforms.apply(photos[1], "rotate", 8.0)
    for row in s["rows"]:
        h = hashes[row["method"]]
        expected = h.normalized_distance(h.hash_batch([photos[1]])[0], h.hash_batch([mod])[0])
        assert row["distance"] == pytest.approx(expected)
    assert s["bits"].shape == (64,) and s["rows"][0]["match"] == (s["rows"][0]["distance"] <= 0.2)
    assert len(ex.render(0, "compr", 10).axes) == 4


def test_random_filter_explorer_shows_sign_maps_and_feature():
    from cbir.models.rdcnn import RandomDepthwiseSignNet

    imgs = np.random.default_rng(0).integers(0, 255, (2, 16, 16, 3), dtype=np.uint8)
    ex = RandomFilterExplorer(imgs, RandomDepthwiseSignNet, m=6)
    box = ex.widget()
    box.controls["k"].value, box.controls["b"].value, box.controls["kernel"].value = 3, 2, 4
    s = ex.last_state
    assert len(s["sign_maps"]) == 2 and set(np.unique(s["sign_maps"][0])) <= {-1.0, 1.0}
    net = ex._net(3, 2)  # the explorer's nested kernels (see the next test), not RandomDepthwiseSignNet(seed=0)'s
    assert s["feature"] == pytest.approx(float(net.transform(imgs[:1])[0, 4]))


def test_random_filter_explorer_same_kernel_across_k_and_b():
    import torch
    from cbir.models.rdcnn import RandomDepthwiseSignNet

    imgs = np.random.default_rng(1).integers(0, 255, (2, 16, 16, 3), dtype=np.uint8)
    ex = RandomFilterExplorer(imgs, RandomDepthwiseSignNet, m=5, seed=3)
    w3, w7 = ex.view(3, 1, 2)["weights"], ex.view(7, 3, 2)["weights"]
    np.testing.assert_array_equal(w3, w7[:, 2:5, 2:5])  # k=3 is the centre of the k=7 kernel
    n3, n5 = ex._net(3, 2), ex._net(5, 3)
    assert float(n3.b1[2]) == float(n5.b1[2]) == float(ex.bias[2])  # one bias per kernel index
    np.testing.assert_array_equal(n3.wd[0, 2, 0].numpy(), n5.wd[0, 2, 0, 1:4, 1:4].numpy())
    # kernel j does not depend on m: a larger teaching network starts with the same kernels
    np.testing.assert_array_equal(RandomFilterExplorer(imgs, RandomDepthwiseSignNet, m=8, seed=3).w_full[:5], ex.w_full)
    # the feature shown is the network's own: mean of sign(w.p + bias) over positions for b = 1 ('same' padding)
    x = torch.from_numpy(imgs[:1]).permute(0, 3, 1, 2).float() / 255
    z = torch.nn.functional.conv2d(x, torch.from_numpy(ex.crop(ex.w_full, 5)[1:2].copy()),
                                   torch.from_numpy(ex.bias[1:2]), padding=2)
    assert ex.view(5, 1, 1)["feature"] == pytest.approx(float(torch.where(z >= 0, 1.0, -1.0).mean()), abs=1e-6)
    with pytest.raises(ValueError, match="not offered"):
        ex.view(9, 1, 0)


def test_retrieval_explorer_compare_and_hard_queries(retrieval):
    ex, db, q, db_codes, q_codes, db_y, q_y = retrieval
    hard = ex.hard_queries("sign 16", k=6)
    assert sorted(hard) == list(range(len(q_y)))
    aps = [ex.view(int(i), "sign 16", 6)["ap"] for i in hard]
    assert aps == sorted(aps)  # lowest AP first
    fig = ex.render(3, "cosine", 6, compare="sign 16")
    assert len(fig.axes) == 14  # two rows of query + 6
    assert ex.last_state["compare"]["method"] == "sign 16"
    assert ex.last_state["compare"]["query"] == ex.last_state["query"] == 3
    titles = [a.get_title() for a in fig.axes]
    assert all(t[0] in "✓✗" for t in titles if not t.startswith("query"))
    box = ex.widget()
    c = box.controls
    c["method"].value, c["k"].value, c["order"].value = "sign 16", 6, "hardest first"
    c["query"].value = 0
    assert ex.last_state["query"] == int(hard[0]) == box.query_id()
    c["compare"].value = "cosine"
    assert ex.last_state["compare"]["method"] == "cosine"
    with pytest.raises(ValueError, match="method='nope'"):
        ex.render(0, "cosine", 3, compare="nope")


def test_hash_robustness_marks_the_flipped_bits_and_cnn_in_one_minus_cos():
    from cbir import transforms
    from cbir.hashing.perceptual import hamming_matrix, make_hash
    from cbir.data import load_dataset

    photos = [im[:128, :128] for im in load_dataset("sample_photos", "all", verbose=False).images[:2]]
    h = make_hash("dct")
    rng = np.random.default_rng(0)
    proj = rng.normal(size=(128 * 128 * 3 // 64, 8))

    def cnn(imgs):  # a stand-in feature: any map to float vectors
        return np.stack([np.asarray(im, float)[::8, ::8].reshape(-1)[: len(proj)] @ proj for im in imgs])

    ex = HashRobustnessExplorer(photos, {"dct": h}, transforms.apply, {"rotate": (0.0, 10.0, 5.0)},
                                best_radius={"dct": 0.2, "cnn": 0.05}, cnn_features=cnn)
    s = ex.view(1, "rotate", 6.0)
    mod = transforms.apply(photos[1], "rotate", 6.0)
    a, b = h.hash_batch([photos[1]]), h.hash_batch([mod])
    np.testing.assert_array_equal(s["orig_bits"], np.unpackbits(a[0]))
    np.testing.assert_array_equal(s["flipped"], np.flatnonzero(np.unpackbits(a[0]) != np.unpackbits(b[0])))
    assert len(s["flipped"]) == hamming_matrix(a, b)[0, 0] > 0  # Hamming distance = number of flipped bits
    f, o = cnn([mod])[0], cnn([photos[1]])[0]
    cnn_row = s["rows"][-1]
    assert cnn_row["method"] == "cnn"
    assert cnn_row["distance"] == pytest.approx(1 - f @ o / np.linalg.norm(f) / np.linalg.norm(o), abs=1e-9)
    assert cnn_row["match"] == (cnn_row["distance"] <= 0.05)
    fig = ex.render(1, "rotate", 6.0)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts] + [ax.get_title() for ax in fig.axes]
    assert any(f"Hamming {len(s['flipped'])}" in t for t in texts)
    assert any("✓" in t or "✗" in t for t in texts)
    assert len(fig.axes[2].collections[0].get_offsets()) == len(s["flipped"])  # one ✕ per flipped bit
