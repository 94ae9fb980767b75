"""Schema of the ``drhn`` section (notebook 03, deep residual hashing depth x bits sweep).

Defaults per profile live in ``params/{smoke,medium,paper}.yaml``; the thesis' own settings are in
``paper.yaml`` (Jiménez Lepe, ch. 5: CIFAR-10/100, n = 1..16, bits 12..128, 43 epochs).
"""
from cbir.params import Choice, Float, Int, ListOf, Optional, Str, fits_dataset, member_of

SCHEMA = {
    # data: database = every training image (train + validation), queries = the test split
    "dataset": Str(),  # cbir.data name: synthetic, digits, cifar10_subset, cifar10, cifar100
    "image_size": Int(min=8, max=64),  # input side; Table 4.1 is for 32x32
    "n_per_class_train": Optional(Int(min=2)),  # training images per class (null = all)
    "n_per_class_test": Optional(Int(min=1)),  # test images (queries) per class (null = all)
    "val_fraction": Float(min=0.0, max=0.5),  # validation split carved from train (model selection);
    # 0 = none: all training images, every epoch run, final weights (the thesis' recipe)
    "database": Choice("train", "train_mirrored"),  # retrieval database: training images (+ mirrored copies,
    # as lepe92/DRHN coded X_train after load_data appended them: 100k codes)
    # the sweep grid (Tables 5.1/5.3): one network per (n, bits) cell, trained from scratch
    "depths": ListOf(Int(min=1, max=32), min_len=1),  # residual blocks per group, "DRHN-n"
    "bits": ListOf(Int(min=1, max=1024), min_len=1),  # hash-layer width = code length
    "plain_depths": ListOf(Int(min=1, max=32)),  # plain ResNet-n baselines (no hash layer; Sec. 5.1.2); [] = none
    # training (Lasagne ResNet recipe used by the thesis: SGD momentum 0.9, lr 0.1, L2 1e-4, batch 128)
    "epochs": Int(min=1),  # the cap (thesis: 43, fixed)
    "patience": Optional(Int(min=1)),  # early stopping: epochs without a lower validation loss (null = off)
    "batch_size": Int(min=2),
    "lr": Float(min=0.0),
    "momentum": Float(min=0.0, max=0.999),
    "weight_decay": Float(min=0.0),
    "lr_drop_epochs": ListOf(Int(min=1)),  # multiply lr by lr_drop_factor after these epochs (recipe: 41, 61)
    "lr_drop_factor": Float(min=0.0, max=1.0),
    # per-batch random flips / pad-4 random crops, or an epoch of originals + mirrored copies (lepe92/DRHN's
    # load_data; with its pad-4 crops: mirror_copies_crop); see residual_hashing_depth_sweep.AUGMENTS
    "augment": Choice("none", "mirror", "crop", "mirror_crop", "mirror_copies", "mirror_copies_crop"),
    # evaluation
    "map_k": Int(min=1),  # mAP@k of Eq. 5.3 (thesis: 1000)
    "precision_ks": ListOf(Int(min=1), min_len=1),  # P@k curve points (Fig. 5.5/5.6)
    "showcase_n": Int(min=1),  # the cell used for curves, confusion matrix, filters and grids
    "showcase_bits": Int(min=1),
    "n_grid_queries": Int(min=1, max=20),  # queries shown in the top-10 grids (Fig. 5.7)
    "timing_images": Int(min=1),  # images coded per timed pass for ms per code (Table 5.5)
    "timing_batch": Int(min=1),  # images per forward pass while timing (1 = one image per call)
    "timing_repeats": Int(min=5),  # timed passes after 3 warm-up passes; median and min-max reported
}


def _patience_needs_validation(values):
    if values.get("patience") is not None and float(values.get("val_fraction", 0)) == 0:
        return (f"drhn.patience={values['patience']} needs a validation split, but val_fraction=0; "
                "set val_fraction > 0 or patience: null")
    return None


#: keys a profile may omit: no plain ResNet baseline unless asked for
DEFAULTS = {"plain_depths": []}

CHECKS = [_patience_needs_validation, member_of("showcase_n", "depths"), member_of("showcase_bits", "bits"),
          fits_dataset("dataset", "train", per_class=["n_per_class_train"]),
          fits_dataset("dataset", "test", per_class=["n_per_class_test"], total=["n_grid_queries"],
                       capped_by="n_per_class_test")]
