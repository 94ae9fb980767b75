"""Schema of the ``retarget`` section (notebook 05, Tzelepi & Tefas 2018 retargeting retraining + QE).

Defaults per profile live in ``params/{smoke,medium,paper}.yaml``; the paper's own settings (Sec. 5.3) are in
``paper.yaml``: FU n=2, eta=0.5; RRI every relevant + 5 nearest irrelevant, beta=0.2; RF alpha=0.5 with
12 relevant + 1 irrelevant per user on CIFAR-10; Adam lr 1e-5, batch 64, 50 epochs.
"""
from cbir.params import Choice, Dict, Float, Int, ListOf, Optional, Str, fits_dataset, member_of

SCHEMA = {
    # data and frozen backbone features (computed once per dataset, cached)
    "datasets": ListOf(Str(), min_len=1),  # cbir.data names: digits, cifar10_subset, caltech101_subset, ...
    "backbone": Str(),  # cbir.models.backbones.pretrained_backbone name ("auto" = EfficientNet-Lite0 offline)
    "image_size": Int(min=16, max=512),  # backbone input side (CIFAR 32 px is upsampled)
    "image_sizes": Dict(),  # per-dataset override of image_size, e.g. {caltech101_subset: 96}
    "n_queries": Int(min=1),  # evaluation queries drawn from the test split (paper: 1,000 on CIFAR-10)
    "queries_per_class": Int(min=1),  # image folders without a test split: held-out queries per class
    "pca_dim": Optional(Int(min=1)),  # PCA of the pooled features before the head (null = none; CPU budget)
    "db_per_class": Optional(Int(min=2)),  # cap the database per class (null = whole split)
    "n_train": Int(min=10),  # database images FU/RRI retrain on (paper: 13,000 of NUS-WIDE's 40,000)
    "n_users": Int(min=1),  # simulated RF users = database images used as queries (paper: 1,000 on CIFAR-10)
    # target construction (Sec. 3.1, 5.3.1-5.3.3)
    "fu_neighbors": Int(min=1),  # n of Eq. 1 (paper: 2)
    "eta": Float(min=0.0, max=0.5),  # Eq. 3 (paper: 0.5)
    "rri_m": Optional(Int(min=1)),  # m nearest relevant of Eq. 4 (null = every relevant, the paper's choice)
    "rri_n": Int(min=1),  # n nearest irrelevant of Eq. 5 (paper: 5)
    "beta": Float(min=0.0, max=1.0),  # Eq. 8 (paper: 0.2)
    "rf_relevant": Int(min=0),  # relevant images marked per user (paper CIFAR-10: 12)
    "rf_irrelevant": Int(min=0),  # irrelevant images marked per user (paper CIFAR-10: 1)
    "rf_depth": Int(min=1),  # how far down the list a simulated user scans
    "alpha": Float(min=0.0, max=0.5),  # Eq. 13-14 (paper: 0.5)
    # retraining of the FC6/FC7 head (Sec. 3.2, 5.3)
    "pipelines": ListOf(ListOf(Choice("fu", "rri", "rf"), min_len=1), min_len=1),  # e.g. [[fu], [fu, rri]]
    "single_step_layers": ListOf(Choice("fc6", "fc7"), min_len=1),  # layers of single-step schemes
    "epochs": Int(min=1),  # paper: 50
    "batch_size": Int(min=1),  # paper: 64
    "lr_fc6": Float(min=0.0),  # small rate for FC6 (paper: Adam lr 1e-5)
    "lr_fc7": Float(min=0.0),  # larger rate for FC7 (the layer of interest)
    # evaluation and query expansion (Sec. 4, 5.1)
    "map_k": Int(min=1),  # mAP@k (paper: 50)
    "qe_scheme": Str(),  # "<pipeline>@<layer>" QE/SVQE runs on, fixed a priori (paper's best on CIFAR-10: fu+rri@fc7)
    "qe_k": Int(min=1),  # average QE over the top k (Eq. 15: 10)
    "alpha_qe": Float(min=0.0),  # alpha of alpha-QE (Radenovic et al.: 3)
    "dba_k": Int(min=1),  # neighbours of database-side augmentation
    "sv_shortlist": Int(min=1),  # N top results cropped into 9 regions for spatial verification
    "sv_queries": Int(min=1),  # queries scored in the QE / SVQE table
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
        folder = name == "caltech101_subset" or name.startswith("folder:")
        checks = ([fits_dataset("_name", "all", per_class=["queries_per_class", "db_per_class"])] if folder else
                  [fits_dataset("_name", "test", total=["n_queries"]),
                   fits_dataset("_name", "train", per_class=["db_per_class"])])
        for check in checks:
            problem = check({**v, "_name": name})
            if problem:
                return problem
    return None


CHECKS = [member_of("stability_dataset", "datasets"), _sizes_fit_each_dataset]
