"""Schema of the ``rdcnn`` section (notebook 01, Xue & Roshan 2019: random depthwise sign networks)."""
from cbir.params import Choice, Float, Int, ListOf, Optional, Str, fits_dataset

SCHEMA = {
    # main (CIFAR-10-like) dataset: Table 1, Fig. 3-9
    "dataset": Str(),  # e.g. synthetic (smoke) / cifar10_subset (medium) / cifar10 (paper)
    "image_size": Optional(Int(min=8, max=512)),  # resize to s x s (null = native)
    "n_train_per_class": Optional(Int(min=2)),  # null = whole split
    "n_test_per_class": Optional(Int(min=1)),
    "svm_C": Float(min=1e-6),  # liblinear -c (paper: 0.5 CIFAR/STL, 0.01 MNIST)
    "k": Int(min=1, max=15),  # headline kernel size (paper CIFAR-10: k=5, b=1)
    "b": Int(min=1, max=6),
    "m": Int(min=1, max=200000),  # headline number of kernels (paper: 100,000)
    # Table 1/2 grid
    "grid_k": ListOf(Int(min=1, max=15), min_len=1),
    "grid_b": ListOf(Int(min=1, max=6), min_len=1),
    "grid_m": Int(min=1, max=200000),
    "grid_n_train_per_class": Optional(Int(min=2)),
    "grid_n_test_per_class": Optional(Int(min=1)),
    # Fig. 3: m sweep (prefixes of one max(m_sweep) network)
    "m_sweep": ListOf(Int(min=1, max=200000), min_len=2),
    # second (MNIST-like) dataset, paper Table 2 k=7, b=1, C=0.01
    "dataset2": Optional(Str()),  # e.g. digits (smoke) / mnist (medium); null skips it
    "dataset2_image_size": Optional(Int(min=8, max=512)),
    "dataset2_n_train_per_class": Optional(Int(min=2)),
    "dataset2_n_test_per_class": Optional(Int(min=1)),
    "dataset2_k": Int(min=1, max=15),
    "dataset2_b": Int(min=1, max=6),
    "dataset2_m": Int(min=1, max=200000),
    "dataset2_C": Float(min=1e-6),
    # Sec. 3.3 JS ratio
    "js_pairs": ListOf(ListOf(Int(min=0), min_len=2), min_len=1),
    "js_n_per_class": ListOf(Int(min=2), min_len=2),  # paper: 6 of class 0, 4 of class 1
    "js_bins": Int(min=2, max=1024),
    "js_draws": Int(min=1),  # extra seeded draws of the 6+4 images (the paper reports one draw)
    # Fig. 5: random-weight networks with a trained final layer (cbir.models.cifar_nets)
    "random_nets": ListOf(Choice("resnet18", "vgg16", "densenet40"), min_len=1),
    # Fig. 6 / Sec. 3.5: the paper's networks trained from scratch for the top-k comparison ([] = none; the
    # small CNN below runs in every profile)
    "trained_nets": ListOf(Choice("resnet18", "vgg16", "densenet40")),
    "trained_epochs": Int(min=1),  # paper: 300 (CIFAR, STL-10), lr 0.1 -> 0.01 -> 0.001, batch 256
    # Fig. 8/9: trained CNN and RDCNN + MLP
    "cnn_epochs": Int(min=1),
    "cnn_batch_size": Int(min=1),
    "cnn_lr": Float(min=1e-6, max=10.0),
    "mlp_hidden": Int(min=1),  # paper: 1000 sigmoid units (scikit-learn MLPClassifier)
    "mlp_max_iter": Int(min=1),
    "mlp_m": Int(min=1, max=200000),  # RDCNN features fed to the MLP (prefix of the headline m)
    "retrieval_ks": ListOf(Int(min=1), min_len=1),
    "n_queries": Int(min=1),
    "query_index": Int(min=0),  # Fig. 9 query (index into the test split)
    # Fig. 7: augmentation cosine
    "aug_n_images": Int(min=1),
    # CIFAR-100 (Table 1) and STL-10 (Table 2, Sec. 3.3, 3.5): run when the data is on disk (torchvision layout)
    "extra_datasets": ListOf(Choice("cifar100", "stl10")),
    "extra_m": Int(min=1, max=200000),
    "extra_n_train_per_class": Optional(Int(min=2)),  # null = whole split
    "extra_n_test_per_class": Optional(Int(min=1)),
    # compute
    "batch_size": Int(min=1),
    "kernel_chunk": Int(min=1),
}


def _m_within_sweep(v):
    if v["m"] > max(v["m_sweep"]):
        return (f"m={v['m']} exceeds max(m_sweep)={max(v['m_sweep'])}: the headline features are the first m "
                f"of the m-sweep's largest network; raise m_sweep or lower m")
    if v["mlp_m"] > v["m"]:
        return f"mlp_m={v['mlp_m']} exceeds m={v['m']} (the MLP reads a prefix of the headline features)"
    return None


DEFAULTS = {"trained_nets": [], "trained_epochs": 300}

CHECKS = [_m_within_sweep,
          fits_dataset("dataset", "train", per_class=["n_train_per_class", "grid_n_train_per_class"]),
          fits_dataset("dataset", "test", per_class=["n_test_per_class", "grid_n_test_per_class"]),
          fits_dataset("dataset", "test", total=["n_queries"], capped_by="n_test_per_class"),
          fits_dataset("dataset2", "train", per_class=["dataset2_n_train_per_class"]),
          fits_dataset("dataset2", "test", per_class=["dataset2_n_test_per_class"]),
          *(fits_dataset(f"_extra_{name}", split, per_class=[f"extra_n_{split}_per_class"])
            for name in ("cifar100", "stl10") for split in ("train", "test"))]


def _with_extra_names(check):
    """Run a ``fits_dataset`` check of an extra dataset only when it is listed in ``extra_datasets``."""
    def run(v):
        names = {f"_extra_{n}": n for n in v.get("extra_datasets") or []}
        return check({**v, **names})
    return run


CHECKS = CHECKS[:6] + [_with_extra_names(c) for c in CHECKS[6:]]
