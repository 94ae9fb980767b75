"""Notebook 02 (Li & Li, latent-layer hashing): cached training and embedding of one network per code
length, the two experiment arms, and their accuracy / retrieval / two-step tables. The network itself is
:class:`cbir.models.latent_hash.LatentHashNet`; search in :mod:`cbir.search`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from cbir.models.latent_hash import small_cnn, train_latent_hash

__all__ = ["train_and_embed", "Arm", "run_arm", "accuracy_table", "retrieval_sweep", "two_step_table"]


def train_and_embed(
    x_train: np.ndarray | torch.Tensor,
    y_train: np.ndarray,
    x_test: np.ndarray | torch.Tensor,
    *,
    fit_idx: np.ndarray | None = None,
    cache_dir,
    cache_params: dict,
    n_bits: int | None,
    **train_kw,
) -> dict[str, np.ndarray]:
    """Train one network (see :func:`train_latent_hash`) and return its embeddings, cached on disk.

    The network is trained on ``x_train[fit_idx]`` (all of ``x_train`` when ``fit_idx`` is None) and
    embeds every row of ``x_train`` (the database) and ``x_test``.

    The result is stored with :func:`cbir.cache.cached_npz` under a key made of ``cache_params`` (the
    data identity: dataset, split sizes, input size, seed) plus ``n_bits`` and every training setting, so
    a rerun with the same parameters reuses it.

    Returns
    -------
    dict of ndarray
        ``db_features`` (N, feature_dim) and ``test_features`` (M, feature_dim): feature layer F;
        ``db_latent`` / ``test_latent`` (N|M, h): sigmoid activations of H (absent without H);
        ``test_logits`` (M, n_classes); ``train_loss``, ``train_acc``, ``epoch_seconds`` per epoch.
    """
    fit_key = None if fit_idx is None else np.asarray(fit_idx)
    key = {**cache_params, "n_bits": n_bits, "fit_idx": fit_key,
           **{k: v for k, v in train_kw.items() if k not in ("trunk_fn", "progress", "device", "desc")}}

    def compute() -> dict[str, np.ndarray]:
        xf, yf = (x_train, y_train) if fit_idx is None else (x_train[fit_idx], y_train[fit_idx])
        res = train_latent_hash(xf, yf, n_bits=n_bits, **train_kw)
        m = res.model
        e_db, e_te = m.embed(x_train), m.embed(x_test)
        out = {"db_features": e_db.features, "test_features": e_te.features, "test_logits": e_te.logits,
               "train_loss": res.history["train_loss"].to_numpy(float),
               "train_acc": res.history["train_acc"].to_numpy(float),
               "epoch_seconds": res.history["seconds"].to_numpy(float)}
        if n_bits is not None:
            out["db_latent"], out["test_latent"] = e_db.latent, e_te.latent
        return out

    from cbir.cache import cached_npz

    return cached_npz(f"latent_hash_h{n_bits or 0}", key, compute, cache_dir)


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

    @property
    def q_labels(self) -> np.ndarray:
        return self.test_labels[self.query_idx]


def run_arm(P, arm: str, device: str | torch.device | None = None) -> Arm:
    """Load an arm's data, build its inputs and train one network per code length (cached).

    Parameters
    ----------
    P : cbir.params.Params
        Section ``latent_hash``: ``cnn_*`` keys for ``arm="cnn"``, ``feat_*`` and ``head_*`` for
        ``arm="feat"``; ``bits_sweep``, ``n_bits``, ``feature_dim``, ``dropout``, ``batch_size``,
        ``n_queries``, ``seed``.
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
        epochs, lr, input_name = P.cnn_epochs, P.cnn_lr, f"raw pixels ({db_input.shape[1]}-d)"
        model_desc = f"small CNN {list(widths)} from scratch, {epochs} epochs"
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
        epochs, lr = P.head_epochs, P.head_lr
        input_name = f"{bb.name} pooled features @{size}px ({bb.feature_dim}-d, frozen)"
        model_desc = f"frozen {bb.name} @{size}px + trained F->H->classifier, {epochs} epochs"
        extra = {"backbone": bb.name, "source": bb.source, "size": size}
    from cbir.data import stratified_subset

    fit_idx = None if P.fit_per_class is None else stratified_subset(tr.labels, P.fit_per_class, P.seed)
    n_fit = len(tr) if fit_idx is None else len(fit_idx)
    rng = np.random.default_rng(P.seed)
    n_q = min(P.n_queries, len(te))
    query_idx = np.sort(rng.choice(len(te), size=n_q, replace=False)).astype(np.int64)
    cache_params = {"arm": arm, "train": tr.protocol, "test": te.protocol, "seed": P.seed, **extra}
    nets = {}
    for h in [*sorted(set(P.bits_sweep) | {P.n_bits}), None]:
        nets[h] = train_and_embed(
            x_tr, tr.labels, x_te, fit_idx=fit_idx, cache_dir=P.cache_dir, cache_params=cache_params, n_bits=h,
            n_classes=len(tr.classes), in_dim=in_dim, trunk_fn=trunk_fn, feature_dim=P.feature_dim,
            dropout=P.dropout, epochs=epochs, lr=lr, batch_size=P.batch_size, seed=P.seed,
            progress=P.progress, device=device, desc=f"{arm} h={h if h else 'none'}")
    protocol = (f"{tr.name}: database = train split ({len(tr)} images), queries = {n_q} random test images "
                f"(of {len(te)}, seed {P.seed}); relevance = same class label; model: {model_desc} on "
                f"{n_fit} training images; "
                f"profile {P.profile}")
    return Arm(arm, tr.name, protocol, tr.images, te.images, tr.labels, te.labels, db_input, test_input,
               query_idx, nets, list(tr.classes), input_name)


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


def retrieval_sweep(a: Arm, P) -> pd.DataFrame:
    """Precision@k and mAP of every method and code length on one arm (Figs. 3-4, 7-8 analogue).

    Methods: latent-layer hashing (one-step Hamming ranking of the trained codes), the unsupervised
    baselines ``P.baselines`` (LSH / PCA-ITQ / spectral hashing fitted on the database's input features
    ``a.db_input``) and two float linear scans (cosine) without hashing: on the input features, and on
    the feature layer F of the h = ``P.n_bits`` network.

    Returns
    -------
    DataFrame
        Long table: ``dataset, method, n_bits, metric, k, value`` (value = fraction).
    """
    from cbir.hashing import binarize, pack_bits
    from cbir.hashing.baselines import make_hasher
    from cbir.search import build_binary_index, cosine_linear_scan, one_step_search, score_rankings

    k = max(max(P.precision_ks), P.map_k, P.headline_k)
    qi = a.query_idx
    frames = []

    def add(method: str, h: int, rankings: np.ndarray) -> None:
        df = score_rankings(rankings, a.q_labels, a.db_labels, sorted({*P.precision_ks, P.headline_k}), P.map_k)
        df.insert(0, "n_bits", h)
        df.insert(0, "method", method)
        frames.append(df)

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
