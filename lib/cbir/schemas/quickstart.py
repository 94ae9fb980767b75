"""Schema of the ``quickstart`` section (notebook 00)."""
from cbir.params import Int, ListOf, Str

SCHEMA = {
    "offline_datasets": ListOf(Str()),  # embedded datasets to load and show
    "real_datasets": ListOf(Str()),  # real datasets loaded when found under data_dir
    "n_per_class": Int(min=1),  # images per class kept from each dataset
    "image_size": Int(min=8, max=512),  # display/feature size
    "retrieval_dataset": Str(),  # dataset used for the one retrieval example
    "k": Int(min=1),  # top-k shown and scored
}
