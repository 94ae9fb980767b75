"""Top floor of the library (DESIGN.md "three floors"): one module per notebook, named like it.

``notebooks/NN_foo.ipynb`` calls ``cbir.experiments.foo``: the data preparation for its paper, the runs,
tables, figures and its paper-vs-ours rows. Modules here use the methods (``cbir.models``,
``cbir.hashing``, ``cbir.search``, ``cbir.retarget``, ``cbir.expansion``, ...) and the core
(``cbir.params``, ``cbir.data``, ``cbir.cache``, ``cbir.index``, ``cbir.metrics``, ``cbir.report``, ...);
nothing below imports from here.

===================================  =======================================================
notebook                             module
===================================  =======================================================
``01_random_sign_networks``          :mod:`cbir.experiments.random_sign_networks`
``02_latent_layer_hashing``          :mod:`cbir.experiments.latent_layer_hashing`
``03_residual_hashing_depth_sweep``  :mod:`cbir.experiments.residual_hashing_depth_sweep`
``04_perceptual_hash_vs_cnn``        :mod:`cbir.experiments.perceptual_hash_vs_cnn`
``05_retargeting_retraining_qe``     :mod:`cbir.experiments.retargeting_retraining_qe`
===================================  =======================================================
"""
