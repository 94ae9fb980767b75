"""cbir-repro: shared library of the content-based image retrieval reproduction suite.

Three floors (shared/DESIGN.md), imports pointing down only:

* ``experiments/`` — one module per notebook, named like it (``notebooks/NN_foo.ipynb`` ↔
  ``cbir.experiments.foo``);
* methods — ``models/``, ``hashing/``, ``search``, ``retarget``, ``expansion``, ``divergence``, ``svm``;
* core — ``params``, ``runtime``, ``data``, ``transforms``, ``cache``, ``index``, ``metrics``, ``train``,
  ``plots``, ``report``, ``reported``, ``explore``, ``run``.
"""
__version__ = "0.1.0"

from cbir import params, runtime  # noqa: E402,F401  (light; the entry points of every notebook)
