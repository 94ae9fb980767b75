"""Self-checking exercises of the course: ``check("00.1", answer)`` says whether an answer is right.

Each exercise has a checker computed with the library itself (so the answers can never drift from the code
the notebooks run) and a hint shown on a wrong answer. :data:`SOLUTIONS` holds the instructor's answers;
``tests/test_exercises.py`` checks that each passes and that a wrong one fails.

Notebook 00's exercises live here; those of notebooks 01-05 live beside the code they exercise, as
``EXERCISES`` / ``SOLUTIONS`` dicts of the notebook's experiment module (:data:`NOTEBOOK_MODULES`), and are
merged into the registries below by :func:`registry` (lazily, so an experiment module can import
:class:`Exercise` from here).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Exercise:
    """One exercise: the notebook it belongs to, its difficulty, a checker and a hint."""

    notebook: str
    difficulty: str  # "easy" | "medium" | "hard"
    task: str
    checker: Callable[[Any], bool]
    hint: str


def _ap_by_denominator(rel, n_relevant: int) -> dict[str, float]:
    from cbir.metrics import average_precision

    rel = np.asarray([rel], bool)
    return {d: float(average_precision(rel, np.array([n_relevant]), d)[0]) for d in ("retrieved", "min_rk", "all")}


def _close_dict(expected: dict[str, float], tol: float = 5e-3) -> Callable[[Any], bool]:
    def check(answer):
        return (isinstance(answer, dict) and set(answer) == set(expected)
                and all(abs(float(answer[k]) - v) <= tol for k, v in expected.items()))
    return check


def _recall_at_k_checker(fn) -> bool:
    """``fn(rel, n_relevant, k)`` must give mean recall@k = mean(hits in top k / R) on random cases."""
    rng = np.random.default_rng(7)
    for _ in range(20):
        q, k = int(rng.integers(1, 6)), int(rng.integers(1, 9))
        rel = rng.random((q, 10)) < 0.4
        n_rel = rel.sum(1) + rng.integers(0, 4, q)
        want = np.mean(np.divide(rel[:, :k].sum(1), n_rel, out=np.zeros(q), where=n_rel > 0))
        if not np.isclose(float(fn(rel, n_rel, k)), want):
            return False
    return True


EXERCISES: dict[str, Exercise] = {
    "00.1": Exercise(
        "00_quickstart", "easy",
        "By hand: one query, k = 3, relevance (0, 1, 1), R = 5 relevant items in the database. Give AP@3 "
        "for each denominator as {'retrieved': ..., 'min_rk': ..., 'all': ...}.",
        _close_dict(_ap_by_denominator([0, 1, 1], 5)),
        "sum P@i over the relevant ranks i = 2, 3 (P@2 = 1/2, P@3 = 2/3), then divide by Z: the relevant "
        "items retrieved (2), min(R, k) = 3, or R = 5"),
    "00.2": Exercise(
        "00_quickstart", "medium",
        "Write recall_at_k(rel, n_relevant, k): the mean over queries of (relevant items in the top k) / R, "
        "with 0 for a query whose R is 0; vectorised, no loop over queries. Pass the function itself.",
        _recall_at_k_checker,
        "rel[:, :k].sum(1) counts the hits; divide by n_relevant with np.divide(..., where=n_relevant > 0)"),
}


def _recall_solution(rel, n_relevant, k):
    rel, n = np.asarray(rel, bool), np.asarray(n_relevant, float)
    return float(np.mean(np.divide(rel[:, :k].sum(1), n, out=np.zeros(len(n)), where=n > 0)))


#: The instructor's answers (checked by the test suite).
SOLUTIONS: dict[str, Any] = {
    "00.1": _ap_by_denominator([0, 1, 1], 5),
    "00.2": _recall_solution,
}


#: experiment modules whose ``EXERCISES`` / ``SOLUTIONS`` (optional) are merged into the registries.
NOTEBOOK_MODULES: tuple[str, ...] = (
    "cbir.experiments.random_sign_networks", "cbir.experiments.latent_layer_hashing",
    "cbir.experiments.residual_hashing_depth_sweep", "cbir.experiments.perceptual_hash_vs_cnn",
    "cbir.experiments.retargeting_retraining_qe")


_MERGED: list[bool] = []


def registry() -> tuple[dict[str, Exercise], dict[str, Any]]:
    """All exercises and solutions: notebook 00's plus those of :data:`NOTEBOOK_MODULES` (merged once)."""
    import importlib

    if _MERGED:
        return EXERCISES, SOLUTIONS
    _MERGED.append(True)
    for name in NOTEBOOK_MODULES:
        mod = importlib.import_module(name)
        for key, ex in getattr(mod, "EXERCISES", {}).items():
            if key in EXERCISES:
                raise RuntimeError(f"exercise id {key!r} of {name} is already defined; pick a new id")
            EXERCISES[key] = ex
        SOLUTIONS.update(getattr(mod, "SOLUTIONS", {}))
    return EXERCISES, SOLUTIONS


def check(exercise: str, answer: Any) -> bool:
    """Print whether ``answer`` solves ``exercise`` (with a hint when not) and return it.

    Raises ``KeyError`` naming the known exercises for an unknown id.
    """
    registry()
    if exercise not in EXERCISES:
        raise KeyError(f"unknown exercise {exercise!r}; known: {sorted(EXERCISES)}")
    ex = EXERCISES[exercise]
    try:
        ok = bool(ex.checker(answer))
    except Exception as err:  # noqa: BLE001 - a student's function may raise anything: report it, don't crash
        print(f"{exercise}: your answer raised {type(err).__name__}: {err}")
        return False
    print(f"{exercise}: correct" if ok else f"{exercise}: not yet — hint: {ex.hint}")
    return ok


def listing(notebook: str | None = None):
    """The exercises (id, notebook, difficulty, task) as a DataFrame, optionally of one notebook."""
    import pandas as pd

    registry()
    rows = [{"id": k, "notebook": e.notebook, "difficulty": e.difficulty, "task": e.task}
            for k, e in EXERCISES.items() if notebook in (None, e.notebook)]
    return pd.DataFrame(rows)
