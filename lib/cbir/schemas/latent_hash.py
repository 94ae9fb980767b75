"""Schema of the ``latent_hash`` section (notebook 02, latent-layer hashing with two-step search).

Defaults per profile live in ``params/{smoke,medium,paper}.yaml``; the paper's own settings (Li & Li,
Sec. 2: MNIST and CIFAR-10 at full size, h = 48, 1,000 test queries against the training set) are in
``paper.yaml``.

Two experiment arms:

* ``cnn_*``: a small CNN trained from scratch (the paper's MNIST setting);
* ``feat_*``: frozen pretrained-backbone features (``cbir.models.backbones.pretrained_backbone``),
  computed once and cached, with only F -> H -> classifier trained (the paper's CIFAR-10 setting,
  which fine-tunes the whole network).
"""
from cbir.params import Choice, Float, Int, ListOf, Optional, Str, fits_dataset, subset_of

SCHEMA = {
    # arm 1: small CNN from scratch; database = train split, queries drawn from the test split
    "cnn_dataset": Str(),  # digits (offline) | mnist | fashion_mnist
    "cnn_image_size": Int(min=8, max=64),  # input side (MNIST: 28)
    "cnn_train_per_class": Optional(Int(min=1)),  # training/database images per class (null = all)
    "cnn_test_per_class": Optional(Int(min=1)),  # test images per class (null = all)
    "cnn_widths": ListOf(Int(min=1), min_len=3),  # channels of the 3 conv-pool blocks
    "cnn_epochs": Int(min=1),
    "cnn_lr": Float(min=0.0, max=1.0),  # Adam learning rate
    "cnn_lr_decay": Float(min=0.01, max=1.0),  # per-epoch factor of the learning rate (1.0 = constant)
    "cnn_fit_per_class": Optional(Int(min=1)),  # CNN training images per class (stratified; null = whole train split)
    # arm 2: frozen backbone features (null dataset skips the arm)
    "feat_dataset": Optional(Str()),  # synthetic (offline) | cifar10_subset | cifar10
    "feat_image_size": Int(min=32, max=512),  # backbone input side (features computed once, cached)
    "feat_train_per_class": Optional(Int(min=1)),
    "feat_test_per_class": Optional(Int(min=1)),
    "head_epochs": Int(min=1),
    "head_lr": Float(min=0.0, max=1.0),  # Adam learning rate of F -> H -> classifier
    "feat_fit_per_class": Optional(Int(min=1)),  # head training images per class (null = whole train split)
    # shared network / training settings
    "batch_size": Int(min=2),
    "feature_dim": Int(min=8),  # width of the feature layer F ("F4"), used by the fine step
    "dropout": Float(min=0.0, max=0.95),
    "n_bits": Int(min=1, max=1024),  # h of the headline model (paper: 48)
    "bits_sweep": ListOf(Int(min=1, max=1024), min_len=1),  # Fig. 4/7/12/13 analogue
    "baselines": ListOf(Choice("lsh", "itq", "sh")),  # unsupervised hashing on the input features
    # retrieval protocol
    "n_queries": Int(min=1),  # random test queries (paper: 1,000)
    "precision_ks": ListOf(Int(min=1), min_len=1),  # precision vs number retrieved (Fig. 3/8)
    "headline_k": Int(min=1),  # k of the precision compared with the paper's number
    "map_k": Int(min=1),  # mAP@k, denominator = relevant items retrieved
    # two-step search (Sec. 1.2)
    "two_step_radii": ListOf(Int(min=0)),  # coarse pool = codes within Hamming radius r
    "two_step_pools": ListOf(Int(min=1)),  # coarse pool = top-p by Hamming
    # speed (Figs. 6/10/14): the whole search task on the real database (two-step vs linear search, feature
    # extraction apart) and a scaling curve on synthetic codes and features
    "speed_db_sizes": ListOf(Int(min=1), min_len=1),  # synthetic database sizes
    "speed_bits": Int(min=1, max=1024),  # code length of the synthetic curve (paper: 32)
    "speed_queries": Int(min=1),  # queries of the synthetic curve
    "speed_threads": Int(min=1),  # threads while timing (1 = no OpenMP/BLAS scheduling noise)
    "speed_repeats": Int(min=5),  # timed calls per measurement (median and spread reported)
    "speed_warmup": Int(min=0),  # untimed calls before them
    # retrieved-image grids
    "grid_bits": ListOf(Int(min=1, max=1024), min_len=1),  # must be in bits_sweep
    "grid_queries": Int(min=1),
    "grid_k": Int(min=1),
}


CHECKS = [subset_of("grid_bits", "bits_sweep"),
          fits_dataset("cnn_dataset", "train", per_class=["cnn_train_per_class", "cnn_fit_per_class"]),
          fits_dataset("cnn_dataset", "test", per_class=["cnn_test_per_class"], total=["n_queries"],
                       capped_by="cnn_test_per_class"),
          fits_dataset("feat_dataset", "train", per_class=["feat_train_per_class", "feat_fit_per_class"]),
          fits_dataset("feat_dataset", "test", per_class=["feat_test_per_class"], total=["n_queries"],
                       capped_by="feat_test_per_class")]
