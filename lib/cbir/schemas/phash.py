"""Schema of the ``phash`` section (notebook 04: perceptual hashes vs CNN features for reverse image search).

Gaillard, Egyed-Zsigmond & Granitzer (2018). The paper's own settings (MIR-Flickr 25k, N = 24,000 base +
M = 1,000 non-indexed, 224/299-px Keras networks, screening 200 -> 2,500 -> 25,000) are in ``paper.yaml``.
"""
from cbir.params import Bool, Choice, Float, Int, ListOf, Optional, Str, fits_dataset, subset_of

SCHEMA = {
    # ---- data (Sec. 5.2 protocol)
    "dataset": Str(),  # cbir.data name: sample_photos (smoke), caltech101_subset, folder:<path> (MIR-Flickr)
    "tile_grid": ListOf(Int(min=1, max=8), min_len=2),  # [rows, cols] non-overlapping tiles per photo; [1, 1] = none
    "n_nonindexed": Int(min=0),  # M: the FIRST M images (loader order) are non-indexed queries (paper: 1,000)
    "n_base": Optional(Int(min=2)),  # N: the next N images are the base set (null = all the rest; paper 24,000)
    "modifications": ListOf(Choice("blur", "gray", "resize", "compr", "rotate", "crop"), min_len=1),
    "include_nonindexed": Bool(),  # query with the M non-indexed images too (Sec. 5.2; Sec. 6.1 does not)
    "empty_precision": Float(min=0.0, max=1.0),  # precision of an empty result (authors: 1.0)
    # ---- perceptual hashes (Secs. 3.3, 5.3)
    "hashes": ListOf(Choice("dct", "dct_opencv", "mh", "rv", "dct_fast", "imagehash_ahash", "imagehash_dhash",
                            "imagehash_phash", "imagehash_whash"), min_len=1),
    # ---- degree sweeps (Sec. 5.3.1 text)
    "sweep_n_base": Int(min=2),  # base images used by the sweeps (first ones of the base set)
    "rotate_degrees": ListOf(Float(min=0.0, max=45.0), min_len=1),  # authors: 1-5 degrees
    "crop_fractions": ListOf(Float(min=0.0, max=0.9), min_len=1),  # authors: 4/8/10/12/16/20 %
    "compr_qualities": ListOf(Float(min=1.0, max=100.0)),  # JPEG quality sweep (ours; [] = skip)
    "blur_sigmas": ListOf(Float(min=0.0, max=20.0)),  # Gaussian blur sigma sweep (ours; [] = skip)
    "resize_factors": ListOf(Float(min=0.05, max=4.0)),  # resize factor sweep (ours; [] = skip)
    "jpeg_resave": Bool(),  # re-save modified images as JPEG like mogrify (on by default)
    "jpeg_resave_quality": Optional(Int(min=1, max=100)),  # null = the inputs' estimated quality, else 92
    "sweep_hashes": ListOf(Choice("dct", "dct_opencv", "mh", "rv", "dct_fast", "imagehash_phash"), min_len=1),
    "break_f": Float(min=0.0, max=1.0),  # a hash "breaks" at the first strength whose max F < break_f
    # ---- CNN features (Sec. 6.2)
    "backbone": Str(),  # cbir.models.backbones name; "auto" = EfficientNet-Lite0 offline
    "weights_path": Optional(Str()),  # local torchvision .pth for vgg16 / resnet50 / inception_v3
    "cnn_size": Int(min=32, max=512),  # input side in px (paper: 224 / 299; small on CPU)
    "cnn_batch_size": Int(min=1),
    "cnn_layers": ListOf(Str(), min_len=1),  # backbone.layer_names (EfficientNet: block00..block15, head)
    "cnn_pools": ListOf(Choice("avg", "max"), min_len=1),  # global pooling of conv maps
    "cnn_flatten_layers": ListOf(Str()),  # layers also used flattened (C*H*W; keep to small maps)
    "distances": ListOf(Choice("cosine", "euclidean"), min_len=1),
    "l2_options": ListOf(Bool(), min_len=1),  # Euclidean on raw and/or L2-normalised features (_norm_l2)
    "cosine_radius_max": Float(min=0.01, max=1.0),  # cosine grid 0..max of 1 - cos (authors' unit)
    "n_radii": Int(min=3, max=1001),  # points of the CNN radius grids
    # ---- three-stage screening (Sec. 6.4): stages of N, then all; keep F >= threshold
    "screen_stages": ListOf(Int(min=2)),  # e.g. [200, 2500] (paper), then the full base set
    "screen_threshold": Float(min=0.0, max=1.0),  # paper: 0.90
    "screen_min_keep": Int(min=1),
    "screen_max_keep": Int(min=1),  # cap on configurations carried to the next stage (CPU budget)
    # ---- distance benchmark (Sec. 6.3) and figures
    "n_dissimilar_pairs": Int(min=10),
    "n_show": Int(min=1, max=8),  # base images shown with their six modifications
}


CHECKS = [subset_of("sweep_hashes", "hashes"),
          fits_dataset("dataset", "all", total=["n_base"], reserve=["n_nonindexed"], times="tile_grid"),
          fits_dataset("dataset", "all", total=["sweep_n_base"], reserve=["n_nonindexed"], times="tile_grid")]
