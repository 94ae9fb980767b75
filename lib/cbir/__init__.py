"""cbir-repro: shared library of the content-based image retrieval reproduction suite.

Three floors (shared/DESIGN.md), imports pointing down only:

* ``experiments/`` — one module per notebook, named like it (``notebooks/NN_foo.ipynb`` ↔
  ``cbir.experiments.foo``);
* methods — ``models/``, ``hashing/``, ``search``, ``retarget``, ``expansion``, ``divergence``, ``svm``;
* core — ``params``, ``runtime``, ``data``, ``transforms``, ``cache``, ``index``, ``metrics``, ``train``,
  ``plots``, ``report``, ``reported``, ``explore``, ``run``.
"""
__version__ = "0.1.0"

import os as _os

# One set of CPU kernels on every x86 machine. PyTorch (ATen), oneDNN and MKL choose AVX-512 code paths where
# the CPU has them; their float rounding differs from the AVX2 paths, so a seed-fixed training run can give
# other numbers (and other nbval-checked outputs) on another machine. Capped at AVX2 here, before any kernel
# runs, and inherited by the notebook kernels that papermill / nbval start from this process. A variable the
# user set is kept; CBIR_NATIVE_ISA=1 keeps the fastest path (numbers then may differ from the stored ones).
if _os.environ.get("CBIR_NATIVE_ISA") != "1":
    for _k, _v in (("ATEN_CPU_CAPABILITY", "avx2"), ("ONEDNN_MAX_CPU_ISA", "AVX2"), ("MKL_ENABLE_INSTRUCTIONS", "AVX2")):
        _os.environ.setdefault(_k, _v)

from cbir import params, runtime  # noqa: E402,F401  (light; the entry points of every notebook)
