"""Notebook 02 (Li & Li, latent-layer hashing): cached training and embedding of one network per code
length, the two experiment arms, their accuracy / retrieval / two-step tables and the paper-vs-ours rows
(:func:`paper_rows`). The network itself is :class:`cbir.models.latent_hash.LatentHashNet`; search in
:mod:`cbir.search`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from cbir.models.latent_hash import small_cnn, train_latent_hash

__all__ = ["train_and_embed", "Arm", "run_arm", "accuracy_table", "learning_curves", "retrieval_sweep",
           "two_step_table", "search_task_timing",
           "model_text", "arm_model_text", "protocol_text", "paper_rows", "PAPER", "NOTEBOOK", "plot_codes",
           "plot_learning_curves", "plot_precision_vs_k", "bits_tables", "plot_precision_vs_bits", "plot_two_step",
           "plot_speed", "one_step_quality", "hardest_queries", "retrieved_grid", "explorer_methods",
           "EXERCISES", "SOLUTIONS"]

PAPER = "02_latent_hash"
"""Stem of the reported CSV (``lib/cbir/reported/02_latent_hash.csv``) and of its settings CSV."""


def train_and_embed(
    x_train: np.ndarray | torch.Tensor,
    y_train: np.ndarray,
    x_test: np.ndarray | torch.Tensor,
    *,
    fit_idx: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    cache_dir,
    cache_params: dict,
    n_bits: int | None,
    **train_kw,
) -> dict[str, np.ndarray]:
    """Train one network (see :func:`train_latent_hash`) and return its embeddings, cached on disk.

    The network is trained on ``x_train[fit_idx]`` (all of ``x_train`` when ``fit_idx`` is None) and
    embeds every row of ``x_train`` (the database) and ``x_test``. With ``y_test`` the test accuracy is
    recorded after every epoch (learning curve only; the last epoch's weights are kept, nothing is selected
    on the test split).

    The result is stored with :func:`cbir.cache.cached_npz` under a key made of ``cache_params`` (dataset,
    split sizes, input size, seed), the inputs themselves (by content), ``n_bits``, every training setting
    and the code version of the training and trunk code, so a rerun with the same data, settings and code
    reuses it and any change retrains.

    Returns
    -------
    dict of ndarray
        ``db_features`` (N, feature_dim) and ``test_features`` (M, feature_dim): feature layer F;
        ``db_latent`` / ``test_latent`` (N|M, h): sigmoid activations of H (absent without H);
        ``test_logits`` (M, n_classes); ``train_loss``, ``train_acc``, ``epoch_seconds`` per epoch and, with
        ``y_test``, ``test_acc`` per epoch.
    """
    fit_key = None if fit_idx is None else np.asarray(fit_idx)
    key = {**cache_params, "n_bits": n_bits, "fit_idx": fit_key, "x_train": x_train, "y_train": y_train,
           "x_test": x_test, "y_test": y_test,
           **{k: v for k, v in train_kw.items() if k not in ("trunk_fn", "progress", "device", "desc")}}

    def compute() -> dict[str, np.ndarray]:
        xf, yf = (x_train, y_train) if fit_idx is None else (x_train[fit_idx], y_train[fit_idx])
        monitor = None if y_test is None else (x_test, y_test)
        res = train_latent_hash(xf, yf, n_bits=n_bits, monitor=monitor, **train_kw)
        m = res.model
        e_db, e_te = m.embed(x_train), m.embed(x_test)
        out = {"db_features": e_db.features, "test_features": e_te.features, "test_logits": e_te.logits,
               "train_loss": res.history["train_loss"].to_numpy(float),
               "train_acc": res.history["train_acc"].to_numpy(float),
               "epoch_seconds": res.history["seconds"].to_numpy(float)}
        if y_test is not None:
            out["test_acc"] = res.history["val_score"].to_numpy(float)
        if n_bits is not None:
            out["db_latent"], out["test_latent"] = e_db.latent, e_te.latent
        return out

    from cbir.cache import cached_npz

    code = [compute, train_latent_hash] + ([train_kw["trunk_fn"]] if train_kw.get("trunk_fn") else [])
    return cached_npz(f"latent_hash_h{n_bits or 0}", key, compute, cache_dir, code=code)


@dataclass
class Arm:
    """One experiment arm of notebook 02: data, inputs and the trained networks' embeddings.

    Attributes
    ----------
    arm : {"cnn", "feat"}
        ``cnn``: small CNN trained from scratch on the images; ``feat``: F -> H -> classifier trained on
        frozen pretrained-backbone features.
    dataset : str
    protocol : str
        Database / query / training protocol line printed beside every number.
    db_images, test_images : uint8 (N, H, W, 3) / (M, H, W, 3) images (for grids)
    db_labels, test_labels : int64 (N,) / (M,)
    db_input, test_input : float32 (N, D0) / (M, D0)
        The features the unsupervised baselines hash and the float linear scan ranks: raw pixels in
        [0, 1] (``cnn``) or the frozen backbone's pooled features (``feat``).
    query_idx : int64 (Q,)
        Indices into the test split of the random queries.
    nets : dict
        ``h -> arrays`` of :func:`train_and_embed` for every code length ``h`` and ``None`` (no H).
    classes : list of str
    input_name : str
        What ``db_input`` is, for tables.
    n_fit : int
        Training images the networks were fitted on (``cnn_fit_per_class`` / ``feat_fit_per_class`` may take
        a subset of the train split).
    batch_size : int
        Mini-batch size of the training (iterations per epoch = ceil(n_fit / batch_size)).
    model : str
        The network, in the wording of :func:`model_text`.
    net_kw : dict
        Architecture of the trained networks (``n_classes, in_dim, trunk_fn, feature_dim, dropout, seed``
        of :func:`cbir.models.latent_hash.build_latent_hash_net`), to time feature extraction.
    """

    arm: str
    dataset: str
    protocol: str
    db_images: np.ndarray
    test_images: np.ndarray
    db_labels: np.ndarray
    test_labels: np.ndarray
    db_input: np.ndarray
    test_input: np.ndarray
    query_idx: np.ndarray
    nets: dict
    classes: list
    input_name: str
    n_fit: int
    batch_size: int
    model: str
    net_kw: dict | None = None

    @property
    def q_labels(self) -> np.ndarray:
        return self.test_labels[self.query_idx]


def run_arm(P, arm: str, device: str | torch.device | None = None) -> Arm:
    """Load an arm's data, build its inputs and train one network per code length (cached).

    Parameters
    ----------
    P : cbir.params.Params
        Section ``latent_hash``: ``cnn_*`` keys for ``arm="cnn"`` (``cnn_fit_per_class``: training images per
        class, null = the whole train split), ``feat_*`` and ``head_*`` for ``arm="feat"``; ``bits_sweep``,
        ``n_bits``, ``feature_dim``, ``dropout``, ``batch_size``, ``n_queries``, ``seed``. Every network's
        test accuracy is recorded per epoch (the learning curve, :func:`learning_curves`).
    arm : {"cnn", "feat"}
    device : torch device, optional

    Returns
    -------
    Arm
        Database = the training split (as in the paper), queries = ``n_queries`` random test images.
    """
    from cbir.data import load_dataset
    from cbir.train import images_to_tensor

    if arm not in ("cnn", "feat"):
        raise ValueError(f"arm={arm!r}; use 'cnn' (small CNN from scratch) or 'feat' (frozen backbone features)")
    if arm == "cnn":
        kw = dict(seed=P.seed, image_size=P.cnn_image_size, data_dir=P.data_dir)
        tr = load_dataset(P.cnn_dataset, "train", n_per_class=P.cnn_train_per_class, **kw)
        te = load_dataset(P.cnn_dataset, "test", n_per_class=P.cnn_test_per_class, **kw)
        x_tr, x_te = images_to_tensor(tr.images[..., :1]), images_to_tensor(te.images[..., :1])
        db_input = tr.images[..., 0].reshape(len(tr), -1).astype(np.float32) / 255.0
        test_input = te.images[..., 0].reshape(len(te), -1).astype(np.float32) / 255.0
        widths = tuple(P.cnn_widths)
        trunk_fn, in_dim = (lambda: small_cnn(1, widths)[0]), small_cnn(1, widths)[1]
        epochs, lr, lr_decay, input_name = P.cnn_epochs, P.cnn_lr, P.cnn_lr_decay, f"raw pixels ({db_input.shape[1]}-d)"
        fit_per_class = P.cnn_fit_per_class
        model_desc = f"small CNN {list(widths)} from scratch, {epochs} epochs"
        model = arm_model_text(P, "cnn", len(tr.classes))
        extra = {"widths": list(widths), "trunk": "3x(conv3-bn-relu-maxpool2)+avgpool3"}
    else:
        from cbir.models.backbones import pretrained_backbone

        kw = dict(seed=P.seed, data_dir=P.data_dir)
        tr = load_dataset(P.feat_dataset, "train", n_per_class=P.feat_train_per_class, **kw)
        te = load_dataset(P.feat_dataset, "test", n_per_class=P.feat_test_per_class, **kw)
        bb = pretrained_backbone("auto")
        size = P.feat_image_size
        x_tr = bb.cached_features(tr.images, size, P.cache_dir, {"protocol": tr.protocol}, progress=P.progress)
        x_te = bb.cached_features(te.images, size, P.cache_dir, {"protocol": te.protocol}, progress=P.progress)
        db_input, test_input = x_tr, x_te
        trunk_fn, in_dim = None, bb.feature_dim
        epochs, lr, lr_decay, fit_per_class = P.head_epochs, P.head_lr, 1.0, P.feat_fit_per_class
        input_name = f"{bb.name} pooled features @{size}px ({bb.feature_dim}-d, frozen)"
        model_desc = f"frozen {bb.name} @{size}px + trained F->H->classifier, {epochs} epochs"
        model = arm_model_text(P, "feat", len(tr.classes), backbone=bb.name)
        extra = {"backbone": bb.name, "source": bb.source, "size": size}
    from cbir.data import stratified_subset

    fit_idx = None if fit_per_class is None else stratified_subset(tr.labels, fit_per_class, P.seed)
    n_fit = len(tr) if fit_idx is None else len(fit_idx)
    rng = np.random.default_rng(P.seed)
    n_q = min(P.n_queries, len(te))
    query_idx = np.sort(rng.choice(len(te), size=n_q, replace=False)).astype(np.int64)
    cache_params = {"arm": arm, "train": tr.protocol, "test": te.protocol, "seed": P.seed, **extra}
    nets = {}
    net_kw = dict(n_classes=len(tr.classes), in_dim=in_dim, trunk_fn=trunk_fn, feature_dim=P.feature_dim,
                  dropout=P.dropout, seed=P.seed)
    for h in [*sorted(set(P.bits_sweep) | {P.n_bits}), None]:
        nets[h] = train_and_embed(
            x_tr, tr.labels, x_te, fit_idx=fit_idx, y_test=te.labels, cache_dir=P.cache_dir,
            cache_params=cache_params, n_bits=h, **net_kw, epochs=epochs, lr=lr, lr_decay=lr_decay,
            batch_size=P.batch_size, progress=P.progress, device=device, desc=f"{arm} h={h if h else 'none'}")
    protocol = (f"{tr.name}: database = train split ({len(tr)} images), queries = {n_q} random test images "
                f"(of {len(te)}, seed {P.seed}); relevance = same class label; model: {model_desc} on "
                f"{n_fit} training images; "
                f"profile {P.profile}")
    return Arm(arm, tr.name, protocol, tr.images, te.images, tr.labels, te.labels, db_input, test_input,
               query_idx, nets, list(tr.classes), input_name, n_fit, P.batch_size, model, net_kw)


def accuracy_table(arms: list[Arm], n_bits: int) -> pd.DataFrame:
    """Test accuracy of the network with an h-unit latent layer vs the same network without it (Table 1/2).

    Returns
    -------
    DataFrame
        Columns ``dataset, network, n_bits, test_accuracy, test_error_pct, n_test, final_train_loss``.
    """
    rows = []
    for a in arms:
        for h, label in ((n_bits, f"with latent layer H (h={n_bits})"), (None, "without H")):
            e = a.nets[h]
            acc = float((e["test_logits"].argmax(1) == a.test_labels).mean())
            rows.append({"dataset": a.dataset, "network": label, "n_bits": h or 0, "test_accuracy": acc,
                         "test_error_pct": 100 * (1 - acc), "n_test": len(a.test_labels),
                         "final_train_loss": float(e["train_loss"][-1])})
    return pd.DataFrame(rows)


def learning_curves(arms: list[Arm]) -> pd.DataFrame:
    """Train loss, train accuracy and test error after every epoch of every network (Sec. 2.2 budget).

    The test error is a monitor recorded during training (:func:`train_and_embed` with ``y_test``); the
    networks keep their last epoch's weights, so nothing is selected on the test split. The last row of a
    network equals its :func:`accuracy_table` row.

    Returns
    -------
    DataFrame
        Long table: ``dataset, arm, n_bits (0 = without H), epoch, iterations, train_loss, train_acc,
        test_error_pct``.
    """
    frames = []
    for a in arms:
        per_epoch = -(-a.n_fit // a.batch_size)
        for h, e in a.nets.items():
            loss = np.asarray(e["train_loss"], float)
            ep = np.arange(1, len(loss) + 1)
            test_acc = np.asarray(e["test_acc"], float) if "test_acc" in e else np.full(len(loss), np.nan)
            frames.append(pd.DataFrame({"dataset": a.dataset, "arm": a.arm, "n_bits": h or 0, "epoch": ep,
                                        "iterations": ep * per_epoch, "train_loss": loss,
                                        "train_acc": np.asarray(e["train_acc"], float),
                                        "test_error_pct": 100.0 * (1.0 - test_acc)}))
    return pd.concat(frames, ignore_index=True)


def retrieval_sweep(a: Arm, P, per_query: dict | None = None) -> pd.DataFrame:
    """Precision@k and mAP of every method and code length on one arm (Figs. 3-4, 7-8 analogue).

    Methods: latent-layer hashing (one-step Hamming ranking of the trained codes), the unsupervised
    baselines ``P.baselines`` (LSH / PCA-ITQ / spectral hashing fitted on the database's input features
    ``a.db_input``) and two float linear scans (cosine) without hashing: on the input features, and on
    the feature layer F of the h = ``P.n_bits`` network.

    Parameters
    ----------
    a : Arm
    P : cbir.params.Params (section ``latent_hash``)
    per_query : dict, optional
        When given, filled with ``(a.arm, method, n_bits, metric, k) -> float64 (Q,)``: each query's
        precision@k (``metric="precision"``) and AP@``map_k`` (``"mAP"``), whose means are the table's values
        (for paired bootstrap intervals, :func:`paper_rows`).

    Returns
    -------
    DataFrame
        Long table: ``dataset, method, n_bits, metric, k, value`` (value = fraction).
    """
    from cbir.hashing import binarize, pack_bits
    from cbir.hashing.baselines import make_hasher
    from cbir.metrics import average_precision, relevance
    from cbir.search import build_binary_index, cosine_linear_scan, one_step_search, score_rankings

    k = max(max(P.precision_ks), P.map_k, P.headline_k)
    qi = a.query_idx
    frames = []

    def add(method: str, h: int, rankings: np.ndarray) -> None:
        ks = sorted({*P.precision_ks, P.headline_k})
        df = score_rankings(rankings, a.q_labels, a.db_labels, ks, P.map_k)
        df.insert(0, "n_bits", h)
        df.insert(0, "method", method)
        frames.append(df)
        if per_query is not None:
            rel = relevance(rankings, a.q_labels, a.db_labels)
            for kk in ks:
                per_query[(a.arm, method, h, "precision", int(kk))] = rel[:, :kk].sum(1) / kk
            per_query[(a.arm, method, h, "mAP", int(P.map_k))] = average_precision(rel[:, :P.map_k])

    bits = sorted(set(P.bits_sweep) | {P.n_bits})
    for h in bits:
        e = a.nets[h]
        db_codes = pack_bits(binarize(e["db_latent"], 0.5))
        q_codes = pack_bits(binarize(e["test_latent"][qi], 0.5))
        add("latent hash (ours, Hamming)", h, one_step_search(build_binary_index(db_codes, h), q_codes, k).rankings)
        for name in P.baselines:
            if name == "itq" and h > min(a.db_input.shape):
                continue  # PCA-ITQ needs h <= feature dimension
            hasher = make_hasher(name, h, seed=P.seed).fit(a.db_input)
            label = {"lsh": "LSH", "itq": "PCA-ITQ", "sh": "spectral hashing"}[name]
            add(f"{label} (Hamming)", h, one_step_search(build_binary_index(hasher.encode(a.db_input), h),
                                                         hasher.encode(a.test_input[qi]), k).rankings)
    add(f"linear scan, {a.input_name.split(' (')[0]} (cosine)", 0,
        cosine_linear_scan(a.db_input, a.test_input[qi], k).rankings)
    e = a.nets[P.n_bits]
    add(f"linear scan, F layer of h={P.n_bits} net (cosine)", 0,
        cosine_linear_scan(e["db_features"], e["test_features"][qi], k).rankings)
    out = pd.concat(frames, ignore_index=True)
    out.insert(0, "dataset", a.dataset)
    return out


def two_step_table(a: Arm, P) -> pd.DataFrame:
    """One-step vs two-step search on the h = ``P.n_bits`` network: precision, mAP, pool size and time.

    Returns
    -------
    DataFrame
        Columns ``dataset, search, pool, mean_pool_size, precision@<headline_k>, mAP@<map_k>, coarse_s,
        fine_s, total_s`` (times for all queries together).
    """
    from cbir.hashing import binarize, pack_bits
    from cbir.search import build_binary_index, cosine_linear_scan, one_step_search, score_rankings, two_step_search

    h, qi = P.n_bits, a.query_idx
    k = max(P.headline_k, P.map_k)
    e = a.nets[h]
    index = build_binary_index(pack_bits(binarize(e["db_latent"], 0.5)), h)
    q_codes = pack_bits(binarize(e["test_latent"][qi], 0.5))
    dbf, qf = e["db_features"], e["test_features"][qi]
    runs = [("one-step (Hamming)", "-", one_step_search(index, q_codes, k))]
    for r in P.two_step_radii:
        runs.append(("two-step", f"radius <= {r}", two_step_search(index, q_codes, dbf, qf, k, radius=r)))
    for p in P.two_step_pools:
        if p >= k:
            runs.append(("two-step", f"top-{p}", two_step_search(index, q_codes, dbf, qf, k, pool_size=p)))
    runs.append(("linear scan F (cosine)", "all", cosine_linear_scan(dbf, qf, k)))
    rows = []
    for search, pool, res in runs:
        sc = score_rankings(res.rankings, a.q_labels, a.db_labels, [P.headline_k], P.map_k)
        rows.append({"dataset": a.dataset, "search": search, "pool": pool,
                     "mean_pool_size": float(res.pool_sizes.mean()) if res.pool_sizes is not None
                     else (float(len(a.db_labels)) if pool == "all" else np.nan),
                     f"precision@{P.headline_k}": float(sc.value.iloc[0]), f"mAP@{P.map_k}": float(sc.value.iloc[1]),
                     **{key: res.timings[key] for key in ("coarse_s", "fine_s", "total_s")}})
    return pd.DataFrame(rows)


def _net_input(a: Arm, idx: np.ndarray):
    """What the arm's network reads for test images ``idx``: normalised grey tensors (cnn) or backbone features."""
    if a.arm == "cnn":
        from cbir.train import images_to_tensor

        return images_to_tensor(a.test_images[idx][..., :1])
    return a.test_input[idx]


def search_task_timing(a: Arm, P) -> pd.DataFrame:
    """Time the paper's whole search task on the arm's real database (Sec. 1.2; Figs. 6, 10).

    The ``n_queries`` test queries are searched (top k = ``P.headline_k``) against the whole database with the
    h = ``P.n_bits`` network, each step timed with :func:`cbir.search.time_repeats` (``P.speed_warmup`` untimed calls, then
    ``P.speed_repeats`` timed ones, on ``P.speed_threads`` threads):

    * **feature extraction** (stated separately, as the paper does): the network's forward pass of the queries
      to F and H plus thresholding (Eq. 1) and packing. For the ``feat`` arm it starts from the cached
      backbone features, so the frozen backbone's own cost is *not* included. The pass runs a network of the
      trained architecture (forward time does not depend on the weights' values);
    * **two-step search** (the paper's search): Hamming pool of the p nearest codes (p = the smallest of
      ``P.two_step_pools`` that is >= k, else k), re-ranked by cosine on F (time of :func:`cbir.search.two_step_search` without the database
      normalisation, which a deployed index stores), split into ``coarse_s`` / ``fine_s``;
    * **one-step search**: Hamming ranking only;
    * **linear search**: exhaustive cosine scan of F (faiss flat inner product; index built untimed).

    Returns
    -------
    DataFrame
        One row per step: ``dataset, arm, step, n_bits, feat_dim, db_size, n_queries, k, pool, threads, repeats,
        seconds`` (median), ``seconds_min, seconds_max, coarse_s, fine_s`` (medians, two-step only),
        ``speedup, speedup_lo, speedup_hi`` (linear search / this step, on the search rows, with its spread
        over repeats, :func:`cbir.search.spread_ratio`).
    """
    from cbir.hashing import binarize, pack_bits
    from cbir.index import FloatIndex
    from cbir.models.latent_hash import build_latent_hash_net
    from cbir.search import build_binary_index, l2_normalize, spread_ratio, time_repeats, two_step_search

    h, qi, k = P.n_bits, a.query_idx, P.headline_k
    pool = min([p for p in P.two_step_pools if p >= k], default=k)
    e = a.nets[h]
    tkw = dict(repeats=P.speed_repeats, warmup=P.speed_warmup, threads=P.speed_threads)
    net = build_latent_hash_net(n_bits=h, **(a.net_kw or {}))
    x_q = _net_input(a, qi)

    def extract():
        emb = net.embed(x_q)
        return pack_bits(binarize(emb.latent, 0.5)), emb.features

    index = build_binary_index(pack_bits(binarize(e["db_latent"], 0.5)), h)
    q_codes = pack_bits(binarize(e["test_latent"][qi], 0.5))
    dbf, qf = l2_normalize(e["db_features"]), l2_normalize(e["test_features"][qi])
    flat = FloatIndex(dbf.shape[1], "cosine").add(dbf)
    inner: list[dict] = []

    def two_step():
        inner.append(two_step_search(index, q_codes, dbf, qf, k, pool_size=pool).timings)

    t_ext = time_repeats(extract, **tkw)
    time_repeats(two_step, **tkw)
    two = inner[P.speed_warmup:]
    t_two = np.array([t["total_s"] for t in two])
    t_one = time_repeats(lambda: index.search(q_codes, k), **tkw)
    t_lin = time_repeats(lambda: flat.search(qf, k), **tkw)
    rows = []
    for step, ts, extra in (("feature extraction (queries: network forward, Eq. 1 codes)", t_ext, {}),
                            (f"two-step search (Hamming top-{pool}, cosine on F)", t_two,
                             {"coarse_s": float(np.median([t["coarse_s"] for t in two])),
                              "fine_s": float(np.median([t["fine_s"] for t in two]))}),
                            ("one-step search (Hamming ranking)", t_one, {}),
                            ("linear search (cosine on F, all database)", t_lin, {})):
        is_search = "search" in step
        ratio = spread_ratio(t_lin, ts) if is_search else (np.nan, np.nan, np.nan)
        rows.append({"dataset": a.dataset, "arm": a.arm, "step": step, "n_bits": h, "feat_dim": int(dbf.shape[1]),
                     "db_size": len(a.db_labels),
                     "n_queries": len(qi), "k": k, "pool": pool if step.startswith("two-step") else np.nan,
                     "threads": P.speed_threads, "repeats": len(ts), "seconds": float(np.median(ts)),
                     "seconds_min": float(ts.min()), "seconds_max": float(ts.max()),
                     "coarse_s": extra.get("coarse_s", np.nan), "fine_s": extra.get("fine_s", np.nan),
                     "speedup": ratio[0], "speedup_lo": ratio[1], "speedup_hi": ratio[2]})
    return pd.DataFrame(rows)


# ============================================================================== paper-vs-ours rows
def model_text(trunk: str, weights: str, n_bits: int | None, n_classes: int) -> str:
    """The wording of the *model* axis (architecture + weights), for ours and for the paper's settings CSV.

    ``model_text("GoogLeNet", "ImageNet-pretrained, fine-tuned end to end", 48, 10)`` is the paper's
    network; :func:`run_arm` describes ours with the same function, so a run of the paper's network would
    match verbatim.
    """
    h = f"latent layer H (h={n_bits}, sigmoid)" if n_bits else "no latent layer"
    return f"{trunk} ({weights}) -> F -> {h} -> {n_classes}-way softmax"


def arm_model_text(P, arm: str, n_classes: int, backbone: str | None = None) -> str:
    """:func:`model_text` of the network an arm trains under params ``P`` (``backbone``: the feat arm's trunk)."""
    if arm == "cnn":
        return model_text(f"small CNN {list(P.cnn_widths)}", "random init, trained from scratch", P.n_bits, n_classes)
    return model_text(f"{backbone} @{P.feat_image_size}px", "ImageNet weights, frozen; F, H, classifier trained",
                      P.n_bits, n_classes)


def protocol_text(task: str, *, n_bits: int | None = None, k: int | None = None, feat_dim: int | None = None,
                  n_queries: int | None = None, repeats: int | None = None, implementation: str | None = None,
                  machine: str | None = None) -> str:
    """The wording of the *protocol* axis, for ours and (with the paper's facts) for the settings CSV.

    Parameters
    ----------
    task : {"classification", "retrieval", "speed"}
    n_bits : code length of the Hamming ranking (retrieval, speed)
    k : number retrieved; None where the paper does not state it (its precision numbers and speed task)
    feat_dim, n_queries, repeats, implementation, machine : speed only; None = not stated (the
        paper's Figs. 6/10/14 give only the CPU time of "one search task" and of linear search)
    """
    if task == "classification":
        return "classification: top-1 error / accuracy of the softmax output over the whole test split"
    if task == "retrieval":
        return (f"retrieval: queries = random test images, database = training split; relevance = same class "
                f"label; Hamming ranking of {n_bits}-bit codes (H thresholded at 0.5); "
                + (f"precision@{k}" if k else "precision@k with k not stated"))
    if task == "speed":
        def said(v, fmt="{}"):
            return fmt.format(v) if v is not None else "not stated"
        return (f"speed: one search task, {n_bits}-bit hashing (two-step) search vs linear search over float "
                f"features (dimension {said(feat_dim)}), feature extraction timed separately; queries "
                f"{said(n_queries)}, retrieved k {said(k)}; "
                f"timing {said(repeats, 'median of {} repeats after warm-up')}; implementation "
                f"{said(implementation)}; machine {said(machine)}")
    raise ValueError(f"task={task!r}; use 'classification', 'retrieval' or 'speed'")


def _iterations(a: Arm, h: int | None) -> int:
    """Mini-batch iterations the h-bit network of arm ``a`` actually ran (epochs in its history)."""
    epochs_run = len(a.nets[h]["train_loss"])
    return int(epochs_run * -(-a.n_fit // a.batch_size))


def _classification_setting(a: Arm, h: int):
    from cbir.report import Setting

    return Setting(a.dataset, {"train": a.n_fit, "test": len(a.test_labels)}, a.model,
                   {"iterations": _iterations(a, h)}, protocol_text("classification"))


def _retrieval_setting(a: Arm, h: int, k: int):
    from cbir.report import Setting

    return Setting(a.dataset, {"train": a.n_fit, "database": len(a.db_labels), "queries": len(a.query_idx)},
                   a.model, {"iterations": _iterations(a, h)}, protocol_text("retrieval", n_bits=h, k=k))


def paper_rows(arms: list[Arm], per_query: dict, speed: pd.DataFrame | None, P) -> list:
    """All paper-vs-ours rows of notebook 02 (Tables 1-2, Secs. 2.2-2.3, Figs. 3-4, 6-7), as ``cbir.report.Row``.

    The ``cnn`` arm is compared with the paper's MNIST numbers, the ``feat`` arm with its CIFAR-10 numbers;
    each row's setting is computed from the run (dataset, training / database / query counts, the network,
    iterations actually run, protocol) and the verdict is left to :mod:`cbir.report`.

    Rows
    ----
    * value, test error (MNIST, Table 1) / test accuracy (CIFAR-10, Table 2) at h = ``P.n_bits``: Wilson
      interval over the test images (per-image correctness from the stored test logits);
    * value, precision@``P.headline_k`` of the Hamming ranking at h = ``P.n_bits`` (Secs. 2.2, 2.3; the paper
      does not state k): percentile bootstrap over the queries;
    * direction, the latent hash beats the best unsupervised hashing baseline (LSH / PCA-ITQ / SH) in
      precision@``P.headline_k`` (Figs. 3, 7: "other ... methods are all inferior"); effect = our margin in
      points over the baseline with the highest mean, paired bootstrap over the per-query differences;
    * value, speed-up of the whole search task (two-step search vs linear search, :func:`search_task_timing`)
      per arm (MNIST: Fig. 6, CIFAR-10: Fig. 10, both "20 times"); interval = spread of the ratio over the
      timing repeats. The setting states the code length, sizes, threads, repeats and machine.

    Parameters
    ----------
    arms : list of Arm (:func:`run_arm`)
    per_query : dict filled by :func:`retrieval_sweep` (``per_query=``) for every arm
    speed : DataFrame of :func:`search_task_timing` for the arms (concatenated), optional, with a ``device``
        column naming the machine
    P : cbir.params.Params, section ``latent_hash``

    Returns
    -------
    list of cbir.report.Row
    """
    from cbir import intervals, reported
    from cbir.report import Setting, direction_row, value_row

    h, k = P.n_bits, P.headline_k
    ours_label = "latent hash (ours, Hamming)"
    paper_ds = {"cnn": "mnist", "feat": "cifar10"}
    rows = []
    for a in arms:
        pds = paper_ds[a.arm]
        e = a.nets[h]
        correct = e["test_logits"].argmax(1) == a.test_labels
        n, n_ok = len(correct), int(correct.sum())
        cls = _classification_setting(a, h)
        if pds == "mnist":
            ref = reported.get(PAPER, "Table 1", "mnist", "h=48", "test_error_pct")
            rows.append(value_row(f"test error, h={h} (paper: MNIST; ours: {a.dataset})", ref,
                                  100.0 * (n - n_ok) / n, interval=intervals.wilson(n - n_ok, n),
                                  interval_kind=f"Wilson, {n} test images", setting=cls,
                                  note="the paper's Table 1 value is 0.485 % (its text says 0.50 %)"))
            ref_p = reported.get(PAPER, "Sec. 2.2 text (Fig. 3)", "mnist", "h=48, 1000 test queries vs 60000 train",
                                 "precision_pct")
            dir_src = "Sec. 2.2 (Figs. 3-4)"
        else:
            ref = reported.get(PAPER, "Table 2", "cifar10", "h=48", "accuracy_pct")
            rows.append(value_row(f"test accuracy, h={h} (paper: CIFAR-10; ours: {a.dataset})", ref,
                                  100.0 * n_ok / n, interval=intervals.wilson(n_ok, n),
                                  interval_kind=f"Wilson, {n} test images", setting=cls,
                                  note="the paper fine-tunes the whole pretrained network for 50,000 iterations"))
            ref_p = reported.get(PAPER, "Sec. 2.3 text (Fig. 7)", "cifar10", "h=48, Hamming ranking", "precision_pct")
            dir_src = "Sec. 2.3 (Fig. 7)"
        ret = _retrieval_setting(a, h, k)
        ours_q = 100.0 * np.asarray(per_query[(a.arm, ours_label, h, "precision", k)], np.float64)
        nq = len(ours_q)
        paper_name = {"mnist": "MNIST", "cifar10": "CIFAR-10"}[pds]
        rows.append(value_row(f"precision@{k}, {h} bits (paper: {paper_name}; ours: {a.dataset})", ref_p,
                              float(ours_q.mean()), interval=intervals.bootstrap_mean(ours_q, seed=P.seed),
                              interval_kind=f"bootstrap over {nq} queries",
                              setting=ret, note="the paper does not state k"))
        base = {m: 100.0 * np.asarray(v, np.float64) for (arm, m, hb, metric, kk), v in per_query.items()
                if arm == a.arm and hb == h and metric == "precision" and kk == k
                and m != ours_label and m.endswith("(Hamming)")}
        if base:
            best = max(base, key=lambda m: base[m].mean())
            diff = ours_q - base[best]
            rows.append(direction_row(
                f"latent hash beats the unsupervised hashing baselines, precision@{k}, {h} bits ({a.dataset})",
                dir_src, float(diff.mean()), interval=intervals.bootstrap_mean(diff, seed=P.seed),
                interval_kind=f"paired bootstrap over {nq} queries", setting=ret, paper=ref_p.setting,
                metric=f"precision@{k} margin over the best baseline (pts)",
                note=f"best baseline here: {best}; the paper's baselines also include supervised ones "
                     f"(KSH, MLH, BRE, CNNH+), not re-run"))
    if speed is not None:
        srcs = {"mnist": "Sec. 2.2 text (Fig. 6)", "cifar10": "Sec. 2.3 text (Fig. 10)"}
        for a in arms:
            two = speed[(speed["arm"] == a.arm) & speed["step"].str.startswith("two-step")]
            if two.empty:
                continue
            r = two.iloc[0]
            ref = reported.get(PAPER, srcs[paper_ds[a.arm]], paper_ds[a.arm], "32 bits", "speedup_x")
            machine = str(r["device"]) if "device" in r.index else None  # cbir.runtime.describe_device
            machine = f"{machine}; timed on {int(r['threads'])} thread(s)" if machine else None
            # scale = the database only: the paper states no query count (ours is in the protocol)
            setting = Setting(a.dataset, {"database": int(r["db_size"])}, a.model, {},
                              protocol_text("speed", n_bits=int(r["n_bits"]), k=int(r["k"]),
                                            feat_dim=int(r["feat_dim"]),
                                            n_queries=int(r["n_queries"]), repeats=int(r["repeats"]),
                                            implementation=f"faiss binary index top-{int(r['pool'])} pool + NumPy "
                                                           "cosine re-rank vs faiss flat inner product",
                                            machine=machine))
            lo, hi = r.get("speedup_lo"), r.get("speedup_hi")
            iv = None if lo is None or hi is None or pd.isna(lo) or pd.isna(hi) else (float(lo), float(hi))
            rows.append(value_row(
                f"search task speed-up, two-step vs linear search, {int(r['n_bits'])} bits ({a.dataset})", ref,
                float(r["speedup"]), interval=iv, interval_kind=f"spread over {int(r['repeats'])} timing repeats",
                setting=setting, note="hardware- and implementation-dependent; feature extraction timed separately "
                                      "(search_task_timing); the paper's times are for 32-bit codes"))
    return rows


# ------------------------------------------------------------------------------------------- figures
OURS_LABEL = "latent hash (ours, Hamming)"
"""Method name of the latent-layer hash in :func:`retrieval_sweep` (drawn thicker in the figures)."""


def _codes(e: dict, rows: np.ndarray | slice | None = None, part: str = "test") -> np.ndarray:
    """Packed Eq. 1 codes (latent layer thresholded at 0.5) of the database or of test rows ``rows``."""
    from cbir.hashing import binarize, pack_bits

    lat = e[f"{part}_latent"] if rows is None else e[f"{part}_latent"][rows]
    return pack_bits(binarize(lat, 0.5))


def plot_codes(a: Arm, n_bits: int, n: int = 6):
    """The first ``n`` query images and their ``n_bits``-bit codes (Eq. 1), one row each. Returns ``(fig, axes)``."""
    import matplotlib.pyplot as plt

    from cbir.hashing import binarize

    show = a.query_idx[:n]
    bits = binarize(a.nets[n_bits]["test_latent"][show], 0.5)
    fig, axes = plt.subplots(len(show), 2, figsize=(8, 0.75 * len(show)), gridspec_kw={"width_ratios": [1, 8]})
    for r, i in enumerate(show):
        axes[r, 0].imshow(a.test_images[i]); axes[r, 0].set_axis_off()
        axes[r, 1].imshow(bits[r:r + 1], cmap="Greys", vmin=0, vmax=1, aspect="auto")
        axes[r, 1].set_yticks([]); axes[r, 1].set_xticks([])
        axes[r, 1].set_ylabel(a.classes[a.test_labels[i]], rotation=0, ha="right", va="center", fontsize=9)
    axes[-1, 1].set_xlabel(f"{n_bits} latent units (black = 1)")
    fig.suptitle(f"{a.dataset}: {n_bits}-bit codes = latent layer H thresholded at 0.5 (Eq. 1)", fontsize=10)
    return fig, axes


def plot_learning_curves(curves: pd.DataFrame, arms: list[Arm]):
    """Train loss and test error per iteration of every network (:func:`learning_curves`), one row per arm.
    Returns ``(fig, axes)``."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(arms), 2, figsize=(11, 3.4 * len(arms)), squeeze=False)
    for row, a in zip(axes, arms):
        for ax, col in zip(row, ["train_loss", "test_error_pct"]):
            for h, g in curves[curves.arm == a.arm].groupby("n_bits"):
                ax.plot(g.iterations, g[col].clip(lower=1e-3), marker="o", label=f"h={h}" if h else "without H")
            ax.set(xlabel="training iterations", ylabel=col.replace("_", " "), title=a.dataset, yscale="log")
    axes[0, 1].legend(fontsize=8)
    fig.tight_layout()
    return fig, axes


def plot_precision_vs_k(sweep: pd.DataFrame, arms: list[Arm], n_bits: int):
    """Precision@k of every method at ``n_bits`` bits and of the float scans, one panel per arm (Figs. 3/7).
    Returns ``(fig, axes)``."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(arms), figsize=(6.2 * len(arms), 4), squeeze=False)
    for ax, a in zip(axes[0], arms):
        d = sweep[(sweep.dataset == a.dataset) & (sweep.metric == "precision") & sweep.n_bits.isin([n_bits, 0])]
        for method, g in d.groupby("method", sort=False):
            ax.plot(g.k, g.value, marker="o", lw=2.5 if method == OURS_LABEL else 1.2, label=method)
        ax.set(xscale="log", xlabel="number of retrieved images k", ylabel="precision@k",
               title=f"{a.dataset}, {n_bits} bits ({len(a.query_idx)} queries)")
    axes[0, -1].legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return fig, axes


def bits_tables(sweep: pd.DataFrame, P) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(hashing methods: precision@``headline_k`` and mAP@``map_k`` by code length; float linear scans: the
    same two numbers), as wide tables indexed by dataset and method."""
    pick = ((sweep.metric == "precision") & (sweep.k == P.headline_k)) | (sweep.metric == "mAP")
    hashing = sweep[(sweep.n_bits > 0) & pick]
    lin = sweep[(sweep.n_bits == 0) & pick]
    return (hashing.pivot_table(index=["dataset", "method"], columns=["metric", "n_bits"], values="value", sort=False),
            lin.pivot_table(index=["dataset", "method"], columns=["metric", "k"], values="value", sort=False))


def plot_precision_vs_bits(sweep: pd.DataFrame, arms: list[Arm], P):
    """Precision@``headline_k`` and mAP@``map_k`` of each hashing method against the code length (Figs. 4/8).
    Returns ``(fig, axes)``."""
    import matplotlib.pyplot as plt

    hashing = sweep[(sweep.n_bits > 0) & (((sweep.metric == "precision") & (sweep.k == P.headline_k))
                                          | (sweep.metric == "mAP"))]
    fig, axes = plt.subplots(len(arms), 2, figsize=(11, 3.6 * len(arms)), squeeze=False)
    for row, a in zip(axes, arms):
        for ax, metric in zip(row, ["precision", "mAP"]):
            d = hashing[(hashing.dataset == a.dataset) & (hashing.metric == metric)]
            for method, g in d.groupby("method", sort=False):
                ax.plot(g.n_bits, g.value, marker="o", lw=2.5 if method == OURS_LABEL else 1.2, label=method)
            ax.set_xscale("log", base=2); ax.set_xticks(sorted(set(P.bits_sweep) | {P.n_bits}))
            ax.get_xaxis().set_major_formatter(plt.ScalarFormatter())
            k = P.headline_k if metric == "precision" else P.map_k
            ax.set(xlabel="code length h (bits)", ylabel=f"{metric}@{k}", title=a.dataset)
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return fig, axes


def plot_two_step(two: pd.DataFrame, arms: list[Arm], P):
    """ms per query of the coarse (Hamming) and fine (cosine) steps, with precision@``headline_k`` on a second
    axis, for each search of :func:`two_step_table`. Returns ``(fig, axes)``."""
    import matplotlib.pyplot as plt

    pk = f"precision@{P.headline_k}"
    fig, axes = plt.subplots(1, len(arms), figsize=(6.2 * len(arms), 3.6), squeeze=False)
    for ax, a in zip(axes[0], arms):
        d = two[two.dataset == a.dataset]
        labels, per_q = [f"{s}\n{p}" for s, p in zip(d.search, d.pool)], 1e3 / len(a.query_idx)
        ax.bar(labels, per_q * d.coarse_s, label="coarse (Hamming)")
        ax.bar(labels, per_q * d.fine_s, bottom=per_q * d.coarse_s, label="fine (cosine)")
        ax2 = ax.twinx(); ax2.plot(labels, d[pk], "ko-", label=pk); ax2.set_ylabel(pk); ax2.grid(False)
        ax.set(ylabel="ms per query", title=a.dataset); ax.tick_params(axis="x", labelsize=7)
    axes[0, 0].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig, axes


def plot_speed(speed: pd.DataFrame, P):
    """ms per query (median, min-max bars) of the Hamming index and the float scan against the database size
    (:func:`cbir.search.speed_scaling`). Returns ``(fig, ax)``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method, g in speed.groupby("method", sort=False):
        ms = 1e3 / g.n_queries
        ax.errorbar(g.db_size, ms * g.seconds, yerr=[ms * (g.seconds - g.seconds_min), ms * (g.seconds_max - g.seconds)],
                    marker="o", capsize=3, label=method)
    ax.set(xscale="log", yscale="log", xlabel="database size (synthetic)", ylabel="ms per query (top-100), median",
           title=f"{P.speed_bits}-bit Hamming vs {P.feature_dim}-d float cosine scan, {P.speed_threads} thread(s)")
    ax.legend(fontsize=8)
    return fig, ax


# ------------------------------------------------------------------------------------------- grid, explorer
def one_step_quality(a: Arm, bits: list[int], k: int) -> pd.DataFrame:
    """Per code length: precision@k of one-step Hamming search over all queries of the arm, the mean number of
    wrong-class images in a query's top k, and the mean number of database codes tied at the query's k-th
    Hamming distance (ties are what short codes cannot break).

    Returns
    -------
    DataFrame with columns ``bits, precision_at_k, wrong_in_top_k, tied_at_kth``.
    """
    from cbir.index import hamming_distances
    from cbir.metrics import precision_at_k, relevance
    from cbir.search import build_binary_index, one_step_search

    rows = []
    for h in bits:
        e = a.nets[h]
        db, q = _codes(e, part="db"), _codes(e, a.query_idx)
        res = one_step_search(build_binary_index(db, h), q, k)
        rel = relevance(res.rankings, a.q_labels, a.db_labels)
        tied = (hamming_distances(db, q) == res.scores[:, k - 1:k]).sum(1)
        rows.append({"bits": h, "precision_at_k": precision_at_k(rel, k),
                     "wrong_in_top_k": float((~rel).sum(1).mean()), "tied_at_kth": float(tied.mean())})
    return pd.DataFrame(rows)


def hardest_queries(a: Arm, n_bits: int, k: int, n: int) -> np.ndarray:
    """Positions (into ``a.query_idx``) of the ``n`` queries with the lowest AP@k of one-step Hamming search at
    ``n_bits`` bits (ties: the first relevant result farthest down, then position)."""
    from cbir.metrics import average_precision, relevance
    from cbir.search import build_binary_index, one_step_search

    e = a.nets[n_bits]
    res = one_step_search(build_binary_index(_codes(e, part="db"), n_bits), _codes(e, a.query_idx), k)
    rel = relevance(res.rankings, a.q_labels, a.db_labels)
    ap = average_precision(rel, denominator="retrieved")
    first = np.where(rel.any(1), rel.argmax(1), k)
    return np.lexsort((np.arange(len(ap)), -first, ap))[:n]


def retrieved_grid(a: Arm, bits: list[int], positions: np.ndarray, k: int):
    """One row per (query, code length): the query, then its top-k by one-step Hamming search, each titled
    ``✓`` / ``✗`` (same class or not) and its distance, framed green / red. Returns the figure."""
    from cbir.plots import image_grid
    from cbir.search import build_binary_index, one_step_search

    imgs, titles, colors = [], [], []
    for pos in positions:
        qi = a.query_idx[pos]
        for h in bits:
            e = a.nets[h]
            res = one_step_search(build_binary_index(_codes(e, part="db"), h), _codes(e, [qi]), k)
            imgs.append(a.test_images[qi]); titles.append(f"query, {h} bits"); colors.append(None)
            for j, dist in zip(res.rankings[0], res.scores[0]):
                hit = a.db_labels[j] == a.test_labels[qi]
                imgs.append(a.db_images[j]); titles.append(f"{'✓' if hit else '✗'} d={dist}")
                colors.append("tab:green" if hit else "tab:red")
    return image_grid(imgs, titles, ncols=k + 1, frame_colors=colors,
                      suptitle=f"{a.dataset}: one-step Hamming search at {list(bits)} bits (✓ green = same class)")


def explorer_methods(a: Arm, bits: list[int], pool: int) -> list:
    """:class:`cbir.explore.SearchMethod` s over the arm's queries: one-step Hamming ranking and two-step search
    (top-``pool`` Hamming pool re-ranked by the cosine of F; distance shown as 1 - cosine) per code length."""
    from cbir.explore import SearchMethod
    from cbir.search import build_binary_index, two_step_search

    qi, methods = a.query_idx, []
    for h in bits:
        e = a.nets[h]
        db_codes, q_codes = _codes(e, part="db"), _codes(e, qi)
        methods.append(SearchMethod.binary_codes(f"one-step, {h} bits", db_codes, q_codes, h))

        def two_step(i, k, e=e, index=build_binary_index(db_codes, h), q_codes=q_codes):
            res = two_step_search(index, q_codes[i:i + 1], e["db_features"], e["test_features"][qi[i:i + 1]], k,
                                  pool_size=max(pool, k))
            return 1.0 - res.scores[0], res.rankings[0]
        methods.append(SearchMethod.from_callable(f"two-step, {h} bits (pool {pool})", two_step, "1 - cosine"))
    return methods


# ------------------------------------------------------------------------------------------- exercises
NOTEBOOK = "02_latent_layer_hashing"


def _two_step_solution(db_codes, q_code, db_feats, q_feat, pool: int, k: int) -> np.ndarray:
    d = (np.asarray(db_codes) != np.asarray(q_code)[None]).sum(1)
    cand = np.lexsort((np.arange(len(d)), d))[:pool]
    f = np.asarray(db_feats, np.float64)[cand]
    q = np.asarray(q_feat, np.float64)
    sims = f @ q / np.maximum(np.linalg.norm(f, axis=1) * np.linalg.norm(q), 1e-12)
    return cand[np.lexsort((cand, -sims))][:k]


def _two_step_checker(fn) -> bool:
    """``fn(db_codes, q_code, db_feats, q_feat, pool, k)`` must return the top-k of :func:`cbir.search.two_step_search`
    (Hamming top-``pool`` by (distance, index), re-ranked by cosine of F, ties by index) on random cases."""
    from cbir.hashing import pack_bits
    from cbir.search import build_binary_index, two_step_search

    rng = np.random.default_rng(11)
    for bits, n, pool, k in ((8, 40, 10, 5), (12, 80, 30, 8), (48, 60, 20, 20)):
        db = rng.integers(0, 2, (n, bits)).astype(np.uint8)
        q = rng.integers(0, 2, bits).astype(np.uint8)
        fdb, fq = rng.standard_normal((n, 16)).astype(np.float32), rng.standard_normal(16).astype(np.float32)
        want = two_step_search(build_binary_index(pack_bits(db), bits), pack_bits(q[None]), fdb, fq[None], k,
                               pool_size=pool).rankings[0]
        if not np.array_equal(np.asarray(fn(db, q, fdb, fq, pool, k)).ravel(), want):
            return False
    return True


def _exercises():
    from cbir.exercises import Exercise

    return {
        "02.1": Exercise(
            NOTEBOOK, "easy",
            "By hand: with 12-bit codes a query sees at most 13 different Hamming distances (0..12). The smoke "
            "digits database holds 1257 images: at least how many of them must share one distance to the query "
            "(pigeonhole)? Give an int.",
            lambda ans: isinstance(ans, (int, np.integer)) and not isinstance(ans, bool) and int(ans) == -(-1257 // 13),
            "1257 images into 13 distance values: the fullest value holds at least ceil(1257 / 13)"),
        "02.2": Exercise(
            NOTEBOOK, "easy",
            "By hand: a linear scan reads each database item's float32 feature (d = 128 values, 4 bytes each); a "
            "Hamming scan reads its 32-bit code. How many times more bytes does the float scan read per item? "
            "(This ratio, not a timing, is what the speed-up grows towards.) Give a number.",
            lambda ans: isinstance(ans, (int, float, np.number)) and not isinstance(ans, bool) and float(ans) == 128.0,
            "128 * 4 bytes against 32 / 8 bytes"),
        "02.3": Exercise(
            NOTEBOOK, "medium",
            "Write two_step(db_codes, q_code, db_feats, q_feat, pool, k): 0/1 codes (N, bits) and (bits,), float "
            "features (N, d) and (d,); take the `pool` Hamming-nearest items (ties by index), re-rank them by cosine "
            "similarity of the features (highest first, ties by index) and return the top-k indices (Sec. 1.2). "
            "Pass the function itself.",
            _two_step_checker,
            "d = (db_codes != q_code).sum(1); cand = np.lexsort((np.arange(len(d)), d))[:pool]; cosine of "
            "db_feats[cand] with q_feat; then np.lexsort((cand, -sims)) and keep k"),
    }


EXERCISES = _exercises()
SOLUTIONS = {"02.1": 97, "02.2": 128, "02.3": _two_step_solution}
