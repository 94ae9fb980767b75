"""Benchmark: how fast each explorer (``cbir.explore``) answers a widget change on smoke-sized data.

Issue 9 asks the widgets to respond "in well under a second" by precomputing features/codes once. For each
explorer this times ``view`` (the state: search, distances, hashes) and ``render`` (state + the matplotlib
figure the widget shows; the browser round trip is measured by ``make lab-check``), median of ``--repeats``
changes, and prints the ratio to a baseline measured in the same run:

* RetrievalExplorer (scikit-learn digits, 1,797 images): precomputed EfficientNet-Lite0 features + faiss vs
  re-extracting the features at every change (what the precompute avoids);
* HashRobustnessExplorer (3 bundled photos, DCT/MH/RV hashes): one change vs the 1-second budget;
* RandomFilterExplorer (k, b, kernel): one change vs the 1-second budget.

    python benchmarks/bench_explore.py [--repeats 7] [--threads 2]
"""
from __future__ import annotations

import argparse
import statistics
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from cbir import data, transforms  # noqa: E402
from cbir.explore import HashRobustnessExplorer, RandomFilterExplorer, RetrievalExplorer, SearchMethod  # noqa: E402
from cbir.hashing.perceptual import make_hash  # noqa: E402
from cbir.models.backbones import pretrained_backbone  # noqa: E402
from cbir.models.rdcnn import RandomDepthwiseSignNet  # noqa: E402
from cbir.runtime import set_threads  # noqa: E402

SIZE = 64  # CNN input size of the smoke profile's features


def median_ms(fn, values) -> float:
    times = []
    for v in values:
        t0 = time.perf_counter()
        out = fn(v)
        times.append((time.perf_counter() - t0) * 1e3)
        if isinstance(out, plt.Figure):
            plt.close(out)
    return statistics.median(times)


def row(name: str, ms: float, baseline_name: str, base_ms: float) -> None:
    print(f"{name:<44s} {ms:9.1f} ms   {baseline_name:<40s} {base_ms:9.1f} ms   ratio {base_ms / ms:7.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    set_threads(a.threads)
    rng = np.random.default_rng(0)
    print(f"threads={a.threads}, median of {a.repeats} changes; render = state + the figure the widget shows")

    # RetrievalExplorer: digits, Lite0 features precomputed once
    db = data.load_dataset("digits", "train", seed=0, image_size=32, verbose=False)
    qs = data.load_dataset("digits", "test", seed=0, image_size=32, verbose=False)
    bb = pretrained_backbone("auto")
    xb, xq = bb.features(db.images, size=SIZE, progress=False), bb.features(qs.images, size=SIZE, progress=False)
    ex = RetrievalExplorer(db.images, db.labels, qs.images, qs.labels,
                           [SearchMethod.float_features("cnn cosine", xb, xq)])
    queries = rng.integers(len(qs.labels), size=a.repeats).tolist()
    view_ms = median_ms(lambda q: ex.view(q, "cnn cosine", 8), queries)
    render_ms = median_ms(lambda q: ex.render(q, "cnn cosine", 8), queries)

    def recompute(q):  # the baseline: no precompute, features of database and query at every change
        SearchMethod.float_features("cnn", bb.features(db.images, size=SIZE, progress=False),
                                    bb.features(qs.images[q:q + 1], size=SIZE, progress=False)).search(0, 8)

    base_ms = median_ms(recompute, queries[:1])  # one: ~10-40 s on 2 cores
    print(f"RetrievalExplorer: {len(db.labels)} database / {len(qs.labels)} queries, {bb.name} @ {SIZE}px")
    row("  view  (precomputed features + faiss)", view_ms, "re-extract features per change", base_ms)
    row("  render (view + top-8 figure)", render_ms, "re-extract features per change", base_ms)

    # HashRobustnessExplorer: bundled photos, three perceptual hashes
    photos = [im for im in data.load_dataset("sample_photos", "all", verbose=False).images[:3]]
    hashes = {n: make_hash(n) for n in ("dct", "mh", "rv")}
    mods = {"blur": (0.0, 5.0, 1.0), "compr": (5, 95, 50), "rotate": (0.0, 45.0, 10.0), "crop": (0.5, 1.0, 0.8)}
    hx = HashRobustnessExplorer(photos, hashes, transforms.apply, mods)
    changes = [(i % 3, m, float(s)) for i, (m, s) in
               enumerate([("blur", 2), ("compr", 30), ("rotate", 20), ("crop", 0.7)] * a.repeats)][:a.repeats]
    view_ms = median_ms(lambda c: hx.view(*c), changes)
    render_ms = median_ms(lambda c: hx.render(*c), changes)
    print(f"HashRobustnessExplorer: {len(photos)} photos, hashes {list(hashes)}")
    row("  view  (modify + 3 hashes + distances)", view_ms, "1-second budget", 1000.0)
    row("  render (view + image, bits, bars)", render_ms, "1-second budget", 1000.0)

    # RandomFilterExplorer: networks built at the first visit of each (k, b), then kept
    imgs = db.images[:4]
    rf = RandomFilterExplorer(imgs, RandomDepthwiseSignNet, m=16)
    settings = [(k, b, kern) for k, b, kern in zip([3, 5, 7] * a.repeats, [1, 2, 3] * a.repeats, range(a.repeats))]
    view_ms = median_ms(lambda s: rf.view(*s), settings)
    render_ms = median_ms(lambda s: rf.render(*s), settings)
    print("RandomFilterExplorer: 16 kernels, one 32x32 image")
    row("  view  (kernel, sign maps, pooled feature)", view_ms, "1-second budget", 1000.0)
    row("  render (view + figure)", render_ms, "1-second budget", 1000.0)

if __name__ == "__main__":
    main()
