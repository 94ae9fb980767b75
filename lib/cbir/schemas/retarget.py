"""Schema of the ``retarget`` section (notebook 05, Tzelepi & Tefas 2018 retargeting retraining + QE).

Defaults per profile live in ``params/{smoke,medium,paper}.yaml``; the paper's own settings (Sec. 5.3) are in
``paper.yaml``: FU n=2, eta=0.5; RRI every relevant + 5 nearest irrelevant, beta=0.2; RF alpha=0.5 with
12 relevant + 1 irrelevant per user on CIFAR-10; Adam lr 1e-5, batch 64, 50 epochs.
"""
from cbir.params import Bool, Choice, Dict, Float, Int, ListOf, Optional, Str, fits_dataset, member_of

SCHEMA = {
    # data and frozen backbone features (computed once per dataset, cached)
    "datasets": ListOf(Str(), min_len=1),  # cbir.data names: digits, cifar10_subset, caltech101_subset, ...
    "backbone": Str(),  # cbir.models.backbones.pretrained_backbone name ("auto" = EfficientNet-Lite0 offline)
    "backbone_fallback": Bool(),  # without the network's weights: EfficientNet-Lite0 (true) or WeightsNotFoundError (false)
    "image_size": Int(min=16, max=512),  # backbone input side (CIFAR 32 px is upsampled)
    "image_sizes": Dict(),  # per-dataset override of image_size, e.g. {caltech101_subset: 96}
    "n_queries": Int(min=1),  # evaluation queries drawn from the test split (paper: 1,000 on CIFAR-10)
    "queries_per_class": Int(min=1),  # image folders without a test split: held-out queries per class
    "pca_dim": Optional(Int(min=1)),  # PCA of the pooled features before the head (null = none; CPU budget)
    "db_per_class": Optional(Int(min=2)),  # cap the database per class (null = whole split)
    "db_per_class_of": Dict(),  # per-dataset override of db_per_class, e.g. {cifar10_subset: 1000}
    "n_train": Int(min=10),  # database images FU/RRI retrain on (paper: 13,000 of NUS-WIDE's 40,000)
    "n_users": Int(min=1),  # database-drawn RF users of the held-out variant (the paper's users are its queries)
    "size_select": Dict(),  # {dataset: [sizes]}: input size chosen on a validation split of the train set
    "size_val_db": Int(min=10),  # validation database (train images) of the size choice
    "size_val_queries": Int(min=1),  # validation queries (other train images; never test queries)
    # target construction (Sec. 3.1, 5.3.1-5.3.3)
    "fu_neighbors": Int(min=1),  # n of Eq. 1 (paper: 2)
    "eta": Float(min=0.0, max=0.5),  # Eq. 3 (paper: 0.5)
    "rri_m": Optional(Int(min=1)),  # m nearest relevant of Eq. 4 (null = every relevant, the paper's choice)
    "rri_n": Int(min=1),  # n nearest irrelevant of Eq. 5 (paper: 5)
    "beta": Float(min=0.0, max=1.0),  # Eq. 8 (paper: 0.2)
    "rf_relevant": Int(min=0),  # relevant images marked per user (paper CIFAR-10: 12)
    "rf_irrelevant": Int(min=0),  # irrelevant images marked per user (paper CIFAR-10: 1)
    "rf_depth": Int(min=1),  # how far down its list a database-drawn user scans (held-out variant)
    "rf_users": Choice("queries", "database"),  # main RF protocol: the paper's (evaluation queries as users)
    "rf_query_depth": Int(min=1),  # top results an evaluation-query user judges (paper CIFAR-10: 13 = 12 + 1)
    "rf_heldout_check": Bool(),  # also run RF (FC7) with database-drawn users, evaluated on the queries
    "alpha": Float(min=0.0, max=0.5),  # Eq. 13-14 (paper: 0.5)
    # retraining of the FC6/FC7 head (Sec. 3.2, 5.3)
    "pipelines": ListOf(ListOf(Choice("fu", "rri", "rf"), min_len=1), min_len=1),  # e.g. [[fu], [fu, rri]]
    "single_step_layers": ListOf(Choice("fc6", "fc7"), min_len=1),  # layers of single-step schemes
    "epochs": Int(min=1),  # paper: 50
    "batch_size": Int(min=1),  # paper: 64
    "lr_fc6": Float(min=0.0),  # small rate for FC6 (paper: Adam lr 1e-5)
    "lr_fc7": Float(min=0.0),  # larger rate for FC7 (the layer of interest)
    # Fig. 12 (training-set size), distractors (Eq. 9-10), Table 9 (pass times)
    "train_sizes": ListOf(Int(min=3)),  # FU (FC7) training images swept on the first dataset ([] skips; paper 2k..40k)
    "distractor_classes": Int(min=0),  # last classes of the first dataset turned into distractors (0 skips)
    "theta": Float(min=0.0, max=0.5),  # Eq. 10 (paper: 0.5)
    "pass_timing_images": Int(min=1),  # batch of database images timed for the Table 9 analogue (1 thread)
    # evaluation and query expansion (Sec. 4, 5.1)
    "map_k": Int(min=1),  # mAP@k (paper: 50)
    "qe_scheme": Str(),  # "<pipeline>@<layer>" QE/SVQE runs on, fixed a priori (paper's best on CIFAR-10: fu+rri@fc7)
    "qe_k": Int(min=1),  # average QE over the top k (Eq. 15: 10)
    "alpha_qe": Float(min=0.0),  # alpha of alpha-QE (Radenovic et al.: 3)
    "dba_k": Int(min=1),  # neighbours of database-side augmentation
    "sv_shortlist": Int(min=1),  # N top results cropped into 9 regions (not in the paper; ours: 20 > qe_k)
    "sv_queries": Int(min=1),  # queries scored in the QE / SVQE table
    "sv_min_side": Int(min=2),  # SVQE only on datasets whose images have at least this side (photos)
    # Table 12 analogue: cropped-region queries on photographs, full query images added to the search set
    "crop_dataset": Optional(Str()),  # photo set (caltech101_subset, sample_photos); null skips the section
    "crop_scheme": Str(),  # "<pipeline>@<layer>" of crop_dataset's trained heads, or "none" (backbone features)
    "crop_image_size": Int(min=16, max=512),  # input size when crop_dataset is not among datasets
    "crop_n_images": Int(min=1),  # query images cut into region queries (first of the query pool)
    "crop_queries_per_image": Int(min=1),
    "crop_frac": ListOf(Float(min=0.05, max=1.0), min_len=2),  # region side as a fraction of the image's
    # relevance-feedback rounds (Sec. 5.5, Fig. 20)
    "rounds": Int(min=0),  # paper: 3
    "rounds_queries": Int(min=1),  # paper: 100
    "rounds_db_per_class": Optional(Int(min=2)),  # database subset browsed in the rounds (null = all)
    "rounds_relevant": Int(min=0),  # paper: 3
    "rounds_irrelevant": Int(min=0),  # paper: 3
    "rounds_epochs": Int(min=1),  # paper: 2
    "rounds_lr_fc6": Float(min=0.0),
    "rounds_lr_fc7": Float(min=0.0),
    # stability over seeds / query sets (Table 10)
    "stability_dataset": Str(),  # one of datasets (needs a test split to draw new query sets)
    "stability_repeats": Int(min=0),  # paper: 5 (0 skips the section)
}


def _sizes_fit_each_dataset(v):
    """n_queries / db_per_class against each dataset's test / train split; queries_per_class for folders."""
    for name in v["datasets"]:
        vd = {**v, "db_per_class": dict(v.get("db_per_class_of") or {}).get(name, v["db_per_class"])}
        folder = name == "caltech101_subset" or name.startswith("folder:")
        checks = ([fits_dataset("_name", "all", per_class=["queries_per_class", "db_per_class"])] if folder else
                  [fits_dataset("_name", "test", total=["n_queries"]),
                   fits_dataset("_name", "train", per_class=["db_per_class"])])
        for check in checks:
            problem = check({**vd, "_name": name})
            if problem:
                return problem
    return None


def _shortlist_longer_than_expansion(v):
    """SVQE can only differ from average QE when verification chooses the expanded set (N > qe_k)."""
    if v["sv_shortlist"] <= v["qe_k"]:
        return (f"sv_shortlist={v['sv_shortlist']} must exceed qe_k={v['qe_k']}: reranking the same {v['qe_k']} "
                "images and averaging them gives average QE again (Eq. 15 is a sum); set e.g. sv_shortlist: 20")
    return None


def _crop_setup(v):
    """crop_scheme needs crop_dataset among datasets (its heads are trained there); crop_frac = [lo, hi]."""
    if v.get("crop_dataset") is None:
        return None
    if v["crop_scheme"] != "none" and v["crop_dataset"] not in v["datasets"]:
        return (f"crop_scheme={v['crop_scheme']!r} needs crop_dataset={v['crop_dataset']!r} in datasets="
                f"{v['datasets']} (its heads are trained there); add it or set crop_scheme: none")
    lo, hi = v["crop_frac"][:2]
    if len(v["crop_frac"]) != 2 or lo > hi:
        return f"crop_frac={v['crop_frac']} must be [lo, hi] with lo <= hi, e.g. [0.4, 0.6]"
    return None


def _size_select(v):
    """size_select: {dataset in datasets: non-empty list of sizes in [16, 512]}."""
    for name, sizes in dict(v["size_select"]).items():
        if name not in v["datasets"]:
            return f"size_select names {name!r}, not in datasets={v['datasets']}; remove it or add the dataset"
        if not isinstance(sizes, list) or not sizes or not all(isinstance(s, int) and 16 <= s <= 512 for s in sizes):
            return f"size_select[{name!r}]={sizes!r} must be a non-empty list of sizes in [16, 512], e.g. [64, 96, 128]"
    return None


CHECKS = [member_of("stability_dataset", "datasets"), _sizes_fit_each_dataset, _shortlist_longer_than_expansion,
          _crop_setup, _size_select]
