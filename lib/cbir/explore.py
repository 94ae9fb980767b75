"""Interactive explorers for JupyterLab (ipywidgets) with static twins for papermill/nbval.

Each explorer precomputes what it needs once (indexes, codes, features) so a widget update only
searches/renders; ``view(...)`` computes the state shown for given values (used by the widget, the static
twin and the tests), ``render(...)`` draws it as a matplotlib figure (the static twin) and ``widget()``
returns the interactive version. Notebooks call :func:`show`, which picks the widget when
``P.interactive`` is true and the static twin otherwise, so headless runs stay deterministic.

* :class:`RetrievalExplorer` — a query, a method (float cosine, hash codes, two-step, ...) and k, optionally a
  second method beside it: the top-k grid marked ✓ / green (relevant) and ✗ / red, P@k and AP of that query,
  Hamming distances for hash methods; the queries can be walked hardest first (lowest AP, first hit far down).
* :class:`HashRobustnessExplorer` — an image, a modification and its strength: the modified image, the hash
  bits, normalised distances to the original for each hash and the CNN cosine distance, beside the radius
  that maximised F in the benchmark.
* :class:`RandomFilterExplorer` — k, b and a kernel index of a random depthwise sign network: the kernel,
  the sign map after each block and the pooled feature (notebook 01's idea); kernel j is the same random
  draw at every k (centre crops of one k_max draw) and b, so changing k compares like with like.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from cbir import index as ix
from cbir import metrics


# --------------------------------------------------------------------------------------------- methods
@dataclass
class SearchMethod:
    """A retrieval method over precomputed database/query representations.

    ``search(q, k)`` returns ``(distances (k,), ids (k,))`` for query row ``q``. Build with
    :meth:`float_features`, :meth:`binary_codes` or :meth:`from_callable`.
    """

    name: str
    search: Callable[[int, int], tuple[np.ndarray, np.ndarray]]
    distance_name: str = "distance"
    is_hash: bool = False

    @classmethod
    def float_features(cls, name: str, db: np.ndarray, queries: np.ndarray, metric: str = "cosine") -> "SearchMethod":
        index = ix.FloatIndex(db.shape[1], metric).add(db)
        q = ix.as_float32(queries, "queries")

        def search(i: int, k: int):
            D, I = index.search(q[i:i + 1], k)
            return D[0], I[0]

        return cls(name, search, f"{metric} distance")

    @classmethod
    def binary_codes(cls, name: str, db_codes: np.ndarray, q_codes: np.ndarray, n_bits: int) -> "SearchMethod":
        index = ix.BinaryIndex(n_bits).add(db_codes)
        q = ix.as_codes(q_codes, "q_codes")

        def search(i: int, k: int):
            D, I = index.search(q[i:i + 1], k)
            return D[0], I[0]

        return cls(name, search, "Hamming distance", is_hash=True)

    @classmethod
    def from_callable(cls, name: str, fn: Callable[[int, int], tuple[np.ndarray, np.ndarray]],
                      distance_name: str = "distance", is_hash: bool = False) -> "SearchMethod":
        return cls(name, fn, distance_name, is_hash)


def _widgets():
    try:
        import ipywidgets as w
    except ImportError as err:  # pragma: no cover - ipywidgets is a dependency
        raise ImportError("the interactive explorers need ipywidgets (pip install ipywidgets)") from err
    return w


def _display(obj: Any) -> None:
    from IPython.display import display

    display(obj)


def _redraw(out: Any, render: Callable[[], plt.Figure]) -> None:
    """Replace the contents of an ipywidgets ``Output`` with a freshly rendered figure."""
    with out:
        out.clear_output(wait=True)
        fig = render()
        _display(fig)
        plt.close(fig)


# --------------------------------------------------------------------------------------------- retrieval
class RetrievalExplorer:
    """Pick a query, a method (and optionally a second one beside it) and k; see the ranked results, P@k, AP.

    Relevance is shown twice, so it does not rest on colour alone: a green / red frame and a ``✓`` / ``✗`` in
    each result's title. :meth:`hard_queries` orders the queries hardest first (lowest AP@k, then the first
    relevant item farthest down), and the widget can walk the queries in that order.

    Parameters
    ----------
    db_images, db_labels : database images (uint8 NHWC or list) and labels
    q_images, q_labels : query images and labels
    methods : sequence of :class:`SearchMethod` (or a mapping name -> method)
    """

    NONE = "(none)"

    def __init__(self, db_images: Any, db_labels: np.ndarray, q_images: Any, q_labels: np.ndarray,
                 methods: Sequence[SearchMethod] | Mapping[str, SearchMethod]):
        self.db_images, self.db_labels = db_images, np.asarray(db_labels)
        self.q_images, self.q_labels = q_images, np.asarray(q_labels)
        ms = list(methods.values()) if isinstance(methods, Mapping) else list(methods)
        if not ms:
            raise ValueError("RetrievalExplorer needs at least one SearchMethod")
        self.methods = {m.name: m for m in ms}
        self.last_state: dict | None = None
        self._hard: dict[tuple[str, int], np.ndarray] = {}

    def _check_method(self, method: str) -> SearchMethod:
        if method not in self.methods:
            raise ValueError(f"method={method!r}; choose one of {list(self.methods)}")
        return self.methods[method]

    def view(self, query: int, method: str, k: int) -> dict:
        """State shown for (query, method, k): ids, distances, relevance, P@k, AP@k (retrieved), the rank of
        the first relevant result (``k + 1`` when none is in the top k), time."""
        if not 0 <= query < len(self.q_labels):
            raise ValueError(f"query={query} outside [0, {len(self.q_labels) - 1}]")
        m = self._check_method(method)
        t0 = time.perf_counter()
        D, I = m.search(query, k)
        ms = (time.perf_counter() - t0) * 1e3
        rel = metrics.relevance(I[None], self.q_labels[query:query + 1], self.db_labels)
        hits = np.flatnonzero(rel[0])
        state = {"query": query, "method": method, "k": len(I), "ids": I, "distances": D, "relevant": rel[0],
                 "precision": metrics.precision_at_k(rel, len(I)),
                 "ap": float(metrics.average_precision(rel, denominator="retrieved")[0]),
                 "first_relevant": int(hits[0]) + 1 if len(hits) else len(I) + 1,
                 "is_hash": m.is_hash, "distance_name": m.distance_name, "search_ms": ms}
        self.last_state = state
        return state

    def hard_queries(self, method: str, k: int = 8) -> np.ndarray:
        """All query indices, hardest first for ``method`` at ``k``: ascending AP@k (retrieved denominator), then
        descending rank of the first relevant result, then query index (stable). Cached per (method, k)."""
        self._check_method(method)
        key = (method, int(k))
        if key not in self._hard:
            last = self.last_state
            s = [self.view(q, method, k) for q in range(len(self.q_labels))]
            self.last_state = last
            ap = np.array([x["ap"] for x in s])
            first = np.array([x["first_relevant"] for x in s])
            self._hard[key] = np.lexsort((np.arange(len(s)), -first, ap))
        return self._hard[key]

    def _row(self, s: dict) -> tuple[list, list, list]:
        fmt = "{:.0f}" if s["is_hash"] else "{:.3f}"
        images = [self.q_images[s["query"]]] + [self.db_images[j] for j in s["ids"]]
        titles = [f"query {s['query']}"] + [("✓ " if r else "✗ ") + ("H=" if s["is_hash"] else "d=") + fmt.format(d)
                                             for d, r in zip(s["distances"], s["relevant"])]
        colors = [None] + ["green" if r else "red" for r in s["relevant"]]
        return images, titles, colors

    def render(self, query: int = 0, method: str | None = None, k: int = 8, ncols: int = 9,
               compare: str | None = None) -> plt.Figure:
        """Static twin: the query and its top-k (✓ / green = same label, ✗ / red = other), one row per method;
        ``compare`` adds a second method's row below the first, for the same query."""
        method = method or next(iter(self.methods))
        names = [method] + ([compare] if compare not in (None, self.NONE, method) else [])
        states = [self.view(query, name, k) for name in names]
        from cbir.plots import image_grid

        images, titles, colors = [], [], []
        for s in states:
            i, t, c = self._row(s)
            images += i; titles += t; colors += c
        head = "; ".join(f"{s['method']}: P@{s['k']} = {s['precision']:.2f}, AP@{s['k']} = {s['ap']:.2f}"
                         for s in states)
        self.last_state = states[0] if len(states) == 1 else {**states[0], "compare": states[1]}
        return image_grid(images, titles, ncols=len(states[0]["ids"]) + 1 if len(states) > 1 else
                          min(ncols, len(images)), frame_colors=colors,
                          suptitle=f"query {query} — {head}  (✓ green = same label, ✗ red = other)")

    def widget(self, k_max: int = 32):
        """ipywidgets UI: query slider + random button, order (all / hardest first), method and a second
        method to compare (or none), k slider. In "hardest first" order the slider walks
        :meth:`hard_queries` of the first method."""
        w = _widgets()
        q = w.IntSlider(0, 0, len(self.q_labels) - 1, description="query")
        order = w.ToggleButtons(options=["all", "hardest first"], value="all", description="order")
        meth = w.Dropdown(options=list(self.methods), description="method")
        vs = w.Dropdown(options=[self.NONE] + list(self.methods), value=self.NONE, description="beside")
        k = w.IntSlider(8, 1, min(k_max, len(self.db_labels)), description="k")
        rnd = w.Button(description="random query")
        out = w.Output()
        rng = np.random.default_rng(0)

        def query_id() -> int:
            if order.value == "hardest first":
                return int(self.hard_queries(meth.value, k.value)[q.value])
            return int(q.value)

        def update(*_):
            _redraw(out, lambda: self.render(query_id(), meth.value, k.value, compare=vs.value))

        rnd.on_click(lambda _: setattr(q, "value", int(rng.integers(len(self.q_labels)))))
        for c in (q, order, meth, vs, k):
            c.observe(update, names="value")
        update()
        box = w.VBox([w.HBox([q, rnd, order]), w.HBox([meth, vs, k]), out])
        box.controls = {"query": q, "order": order, "method": meth, "compare": vs, "k": k, "random": rnd}
        box.query_id = query_id
        return box


# --------------------------------------------------------------------------------------------- hashes
def _bit_grid(ax: Any, bits: np.ndarray, flipped: np.ndarray) -> None:
    """Draw the original ``bits`` (0/1) as a square grid, row-major, and mark the ``flipped`` indices with ✕."""
    side = int(np.ceil(np.sqrt(len(bits))))
    grid = np.full(side * side, np.nan)
    grid[:len(bits)] = bits
    ax.imshow(grid.reshape(side, side), cmap="gray_r", vmin=-0.3, vmax=1.3, interpolation="nearest")
    r, c = np.divmod(np.asarray(flipped, np.int64), side)
    ax.scatter(c, r, marker="x", s=max(6.0, 2400.0 / side ** 2), c="tab:red", linewidths=1.5)


class HashRobustnessExplorer:
    """Pick an image, a modification and its strength; see how far each hash (and a CNN) moves.

    Parameters
    ----------
    images : list of uint8 RGB images
    hashes : mapping name -> object with ``hash_batch(images)``, ``normalized_distance(a, b)``, ``n_bits``
        and ``kind`` (``cbir.hashing.perceptual`` hashes)
    apply : callable(image, modification, strength) -> image (``cbir.transforms.apply``)
    modifications : mapping modification -> (min, max, default) strength
    best_radius : mapping hash name -> radius that maximised F in the benchmark (optional)
    cnn_features : callable(list of images) -> (n, d) features, optional. The CNN distance shown is always
        the cosine distance ``1 - cos``, so ``best_radius["cnn"]`` must be a cosine configuration's radius in
        that unit (``cbir.experiments.perceptual_hash_vs_cnn.explorer_cnn``), not a Euclidean one.

    The state of :meth:`view` has, for the first binary hash, the original and modified bits and the indices
    of the bits that flipped (``flipped``; their count is the Hamming distance); :meth:`render` draws the
    original bits as a grid with the flipped ones marked ✕ and the Hamming distance as text, and writes each
    distance with ✓ found / ✗ missed beside its bar.
    """

    def __init__(self, images: Sequence[np.ndarray], hashes: Mapping[str, Any],
                 apply: Callable[[np.ndarray, str, float], np.ndarray],
                 modifications: Mapping[str, tuple[float, float, float]],
                 best_radius: Mapping[str, float] | None = None,
                 cnn_features: Callable[[list[np.ndarray]], np.ndarray] | None = None):
        self.images, self.hashes, self.apply = list(images), dict(hashes), apply
        self.modifications = dict(modifications)
        self.best_radius = dict(best_radius or {})
        self.cnn_features = cnn_features
        self._orig_codes = {n: h.hash_batch(self.images) for n, h in self.hashes.items()}
        self._orig_cnn = cnn_features(self.images) if cnn_features is not None else None
        self.last_state: dict | None = None

    def view(self, image: int, modification: str, strength: float) -> dict:
        if modification not in self.modifications:
            raise ValueError(f"modification={modification!r}; choose one of {list(self.modifications)}")
        mod = self.apply(self.images[image], modification, strength)
        rows = []
        for name, h in self.hashes.items():
            code = h.hash_batch([mod])
            d = h.normalized_distance(self._orig_codes[name][image], code[0])
            r = self.best_radius.get(name)
            rows.append({"method": name, "distance": d, "best_radius": r,
                         "match": None if r is None else bool(d <= r)})
        if self.cnn_features is not None:
            f = self.cnn_features([mod])[0]
            o = self._orig_cnn[image]
            # 1 - cos, the unit of notebook 04's CNN radii (the authors' CnnFeaturesCosineDistance)
            d = float(np.clip(1 - np.dot(f, o) / max(np.linalg.norm(f) * np.linalg.norm(o), 1e-12), 0.0, 2.0))
            r = self.best_radius.get("cnn")
            rows.append({"method": "cnn", "distance": d, "best_radius": r,
                         "match": None if r is None else bool(d <= r)})
        first = next((n for n, h in self.hashes.items() if getattr(h, "kind", "binary") == "binary"), None)
        bits = orig_bits = flipped = None
        if first is not None:
            n = self.hashes[first].n_bits
            bits = np.unpackbits(self.hashes[first].hash_batch([mod])[0])[:n]
            orig_bits = np.unpackbits(self._orig_codes[first][image])[:n]
            flipped = np.flatnonzero(bits != orig_bits)
        state = {"image": image, "modification": modification, "strength": strength, "modified": mod,
                 "rows": rows, "bits": bits, "orig_bits": orig_bits, "flipped": flipped, "bits_hash": first}
        self.last_state = state
        return state

    def render(self, image: int = 0, modification: str | None = None, strength: float | None = None) -> plt.Figure:
        modification = modification or next(iter(self.modifications))
        strength = self.modifications[modification][2] if strength is None else strength
        s = self.view(image, modification, strength)
        fig, axes = plt.subplots(1, 4, figsize=(12, 3), gridspec_kw={"width_ratios": [1, 1, 0.8, 1.6]})
        axes[0].imshow(self.images[image]); axes[0].set_title("original", fontsize=9)
        axes[1].imshow(s["modified"]); axes[1].set_title(f"{modification} ({strength:g})", fontsize=9)
        if s["bits"] is not None:
            _bit_grid(axes[2], s["orig_bits"], s["flipped"])
            n, f = len(s["bits"]), len(s["flipped"])
            axes[2].set_title(f"{s['bits_hash']}: {f} of {n} bits flipped (✕)\nHamming {f}, d = {f / n:.3f}",
                              fontsize=9)
        for ax in axes[:3]:
            ax.set_xticks([]); ax.set_yticks([]); ax.grid(False)
        names = [r["method"] + (" (1 - cos)" if r["method"] == "cnn" else "") for r in s["rows"]]
        vals = [r["distance"] for r in s["rows"]]
        axes[3].barh(names, vals, color=["tab:green" if r["match"] else "tab:red" if r["match"] is False
                                         else "tab:gray" for r in s["rows"]])
        for i, r in enumerate(s["rows"]):
            if r["best_radius"] is not None:
                axes[3].plot([r["best_radius"]] * 2, [i - 0.4, i + 0.4], "k--", lw=1)
            mark = {True: "✓ found", False: "✗ missed", None: ""}[r["match"]]
            axes[3].text(r["distance"], i, f" {r['distance']:.3f} {mark}", va="center", fontsize=9)
        axes[3].set_xlim(0, max(0.6, max(vals) * 1.45))
        axes[3].set_xlabel("normalised distance to the original (dashed: best-F radius)")
        axes[3].set_title("found within the best-F radius?", fontsize=9)
        fig.tight_layout()
        return fig

    def widget(self):
        w = _widgets()
        img = w.IntSlider(0, 0, len(self.images) - 1, description="image")
        mod = w.Dropdown(options=list(self.modifications), description="modification")
        lo, hi, default = self.modifications[mod.value]
        st = w.FloatSlider(default, min=lo, max=hi, step=(hi - lo) / 50 or 1, description="strength")
        out = w.Output()

        def on_mod(change):
            lo, hi, default = self.modifications[change["new"]]
            st.unobserve(update, names="value")
            st.min, st.max = min(lo, st.min), max(hi, st.max)  # widen first: min <= max always holds
            st.min, st.max, st.step, st.value = lo, hi, (hi - lo) / 50 or 1, default
            st.observe(update, names="value")
            update()

        def update(*_):
            _redraw(out, lambda: self.render(img.value, mod.value, st.value))

        img.observe(update, names="value")
        st.observe(update, names="value")
        mod.observe(on_mod, names="value")
        update()
        box = w.VBox([w.HBox([img, mod, st]), out])
        box.controls = {"image": img, "modification": mod, "strength": st}
        return box


# --------------------------------------------------------------------------------------------- RDCNN
class RandomFilterExplorer:
    """Pick k, b and a kernel of a random depthwise sign network; see its kernel, sign maps and feature.

    *The same kernel across k and b.* A network drawn per ``(k, b)`` (``RandomDepthwiseSignNet(k, b, m, seed)``)
    has unrelated kernels at k = 3 and k = 7, so "kernel 0" would compare unrelated hyperplanes. The explorer
    therefore draws every kernel once, at the largest k and b: kernel ``j`` gets its own generator
    (``SeedSequence([seed, j])``), N(0, 1) weights of shape (C, k_max, k_max), an N(0, 1) bias and depthwise
    kernels for each block 2..b_max; a smaller k is the centre k x k crop of the same weights (the bias is
    shared), a smaller b uses the first b - 1 depthwise kernels. Every crop is again N(0, 1), as the paper draws
    them (Sec. 2.1), but these nested networks are not the ones the notebook's features use.

    Parameters
    ----------
    images : uint8 (N, H, W, 3) images to show (a few)
    make_net : callable(k, b, m, seed) -> network with buffers ``w1`` (m, C*k*k), ``b1`` (m,), ``wd``
        (b-1, m, 1, k, k), ``bd`` (b-1, m), ``sign_maps(images, block)`` and ``transform(images)``
        (``cbir.models.rdcnn.RandomDepthwiseSignNet``); its kernels are replaced by the shared draw
    m : number of kernels in the small teaching network
    ks, bs : the kernel sizes and block counts offered (odd k; the draw is at ``max(ks)`` and ``max(bs)``)
    """

    def __init__(self, images: np.ndarray, make_net: Callable[..., Any], m: int = 16, seed: int = 0,
                 ks: Sequence[int] = (3, 5, 7), bs: Sequence[int] = (1, 2, 3)):
        self.images, self.make_net, self.m, self.seed = np.asarray(images), make_net, m, seed
        self.ks, self.bs = tuple(int(k) for k in ks), tuple(int(b) for b in bs)
        if any(k % 2 == 0 or k < 1 for k in self.ks):
            raise ValueError(f"ks={ks}: kernel sizes must be odd and >= 1 so that a centre crop exists")
        self.k_max, self.b_max = max(self.ks), max(self.bs)
        c = self.images.shape[-1] if self.images.ndim == 4 else 1
        self.w_full = np.empty((m, c, self.k_max, self.k_max), np.float32)
        self.bias = np.empty(m, np.float32)
        self.wd_full = np.empty((self.b_max - 1, m, self.k_max, self.k_max), np.float32)
        self.bd = np.empty((self.b_max - 1, m), np.float32)
        for j in range(m):  # one generator per kernel index: kernel j is the same whatever m, k or b
            rng = np.random.default_rng(np.random.SeedSequence([seed, j]))
            self.w_full[j] = rng.standard_normal((c, self.k_max, self.k_max), dtype=np.float32)
            self.bias[j] = rng.standard_normal(dtype=np.float32)
            self.wd_full[:, j] = rng.standard_normal((self.b_max - 1, self.k_max, self.k_max), dtype=np.float32)
            self.bd[:, j] = rng.standard_normal(self.b_max - 1, dtype=np.float32)
        self._nets: dict[tuple[int, int], Any] = {}
        self.last_state: dict | None = None

    def crop(self, w: np.ndarray, k: int) -> np.ndarray:
        """The centre ``k x k`` of kernels ``w`` (..., k_max, k_max)."""
        o = (self.k_max - k) // 2
        return w[..., o:o + k, o:o + k]

    def _net(self, k: int, b: int):
        if k not in self.ks or b not in self.bs:
            raise ValueError(f"(k, b) = ({k}, {b}) not offered; choose k in {self.ks} and b in {self.bs}")
        if (k, b) not in self._nets:
            import torch

            net = self.make_net(k=k, b=b, m=self.m, seed=self.seed)
            with torch.no_grad():
                net.w1.copy_(torch.from_numpy(np.ascontiguousarray(self.crop(self.w_full, k)).reshape(self.m, -1)))
                net.b1.copy_(torch.from_numpy(self.bias))
                if b > 1:
                    wd = np.ascontiguousarray(self.crop(self.wd_full[:b - 1], k))[:, :, None]
                    net.wd.copy_(torch.from_numpy(wd))
                    net.bd.copy_(torch.from_numpy(np.ascontiguousarray(self.bd[:b - 1])))
            self._nets[(k, b)] = net
        return self._nets[(k, b)]

    def view(self, k: int, b: int, kernel: int, image: int = 0) -> dict:
        if not 0 <= kernel < self.m:
            raise ValueError(f"kernel={kernel} outside [0, {self.m - 1}]")
        net = self._net(k, b)
        x = self.images[image:image + 1]
        w = net.w1[kernel].detach().cpu().numpy().reshape(-1, k, k)
        maps = [net.sign_maps(x, block=j)[0, kernel] for j in range(1, b + 1)]
        feats = np.asarray(net.transform(x))[0]
        state = {"k": k, "b": b, "kernel": kernel, "image": image, "weights": w, "sign_maps": maps,
                 "feature": float(feats[kernel]), "features": feats}
        self.last_state = state
        return state

    def render(self, k: int = 5, b: int = 2, kernel: int = 0, image: int = 0) -> plt.Figure:
        s = self.view(k, b, kernel, image)
        n = 2 + b
        fig, axes = plt.subplots(1, n + 1, figsize=(2.2 * (n + 1), 2.4))
        axes[0].imshow(self.images[image]); axes[0].set_title("image", fontsize=9)
        wv = s["weights"].mean(0)
        axes[1].imshow(wv, cmap="coolwarm"); axes[1].set_title(f"kernel {kernel} ({k}x{k}, mean over C)", fontsize=9)
        for j, mp in enumerate(s["sign_maps"]):
            axes[2 + j].imshow(mp, cmap="gray", vmin=-1, vmax=1)
            axes[2 + j].set_title(f"sign map, block {j + 1}", fontsize=9)
        axes[n].bar(np.arange(len(s["features"])), s["features"],
                    color=["tab:orange" if i == kernel else "tab:blue" for i in range(len(s["features"]))])
        axes[n].set_title(f"pooled features (kernel {kernel} = {s['feature']:.2f})", fontsize=9)
        for ax in axes[:n]:
            ax.set_xticks([]); ax.set_yticks([]); ax.grid(False)
        fig.tight_layout()
        return fig

    def widget(self):
        w = _widgets()
        ks, bs = self.ks, self.bs
        k = w.Dropdown(options=list(ks), value=ks[min(1, len(ks) - 1)], description="k")
        b = w.Dropdown(options=list(bs), value=bs[0], description="b")
        kern = w.IntSlider(0, 0, self.m - 1, description="kernel")
        img = w.IntSlider(0, 0, len(self.images) - 1, description="image")
        out = w.Output()

        def update(*_):
            _redraw(out, lambda: self.render(k.value, b.value, kern.value, img.value))

        for c in (k, b, kern, img):
            c.observe(update, names="value")
        update()
        box = w.VBox([w.HBox([k, b]), w.HBox([kern, img]), out])
        box.controls = {"k": k, "b": b, "kernel": kern, "image": img}
        return box


def is_interactive(setting: bool | None = None) -> bool:
    """Resolve the ``interactive`` parameter: ``None`` (auto) is true only in a kernel started by a Jupyter
    server (JupyterLab sets ``JPY_SESSION_NAME``); papermill and nbval start kernels directly, so their
    runs get the deterministic static twins."""
    import os

    if setting is not None:
        return bool(setting)
    return "JPY_SESSION_NAME" in os.environ


def show(explorer: Any, interactive: bool | None, save_as: str | None = None, P: Any = None,
         **static_values: Any) -> Any:
    """The widget when interactive (JupyterLab), else the static twin for ``static_values``.

    ``interactive`` is the profile's setting (``None`` = auto, see :func:`is_interactive`). The static
    figure is saved as ``<figures>/<save_as>.png`` when ``save_as`` and ``P`` are given. Returns the
    widget or the figure.
    """
    if is_interactive(interactive):
        box = explorer.widget()
        _display(box)
        return box
    fig = explorer.render(**static_values)
    if save_as is not None and P is not None:
        from cbir.plots import savefig

        savefig(fig, save_as, P)
    return fig
