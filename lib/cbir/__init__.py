"""cbir-repro: shared library of the content-based image retrieval reproduction suite.

Modules (one job each; see shared/DESIGN.md): params, runtime, data, transforms, models/, hashing,
retarget, index, expansion, metrics, train, cache, plots, report, reported.
"""
__version__ = "0.1.0"

from cbir import params, runtime  # noqa: E402,F401  (light; the entry points of every notebook)
