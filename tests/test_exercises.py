"""The course's self-checking exercises: every stored solution passes, a wrong answer fails with a hint."""
import numpy as np
import pytest

from cbir import exercises


@pytest.mark.parametrize("ex", sorted(exercises.registry()[0]))
def test_solution_passes(ex, capsys):
    assert exercises.check(ex, exercises.SOLUTIONS[ex])
    assert "correct" in capsys.readouterr().out


def test_worked_values_of_00_1():
    # by hand: (1/2 + 2/3) / Z with Z = 2 (retrieved), 3 (min(R, k)), 5 (R)
    s = exercises.SOLUTIONS["00.1"]
    assert s == pytest.approx({"retrieved": 7 / 12, "min_rk": 7 / 18, "all": 7 / 30})


def test_wrong_answers_fail_with_hint(capsys):
    assert not exercises.check("00.1", {"retrieved": 0.5, "min_rk": 0.3, "all": 0.2})
    assert "hint" in capsys.readouterr().out
    assert not exercises.check("00.2", lambda rel, n, k: float(np.mean(rel[:, :k])))  # precision, not recall
    assert not exercises.check("00.2", lambda rel, n, k: 1 / 0)
    assert "ZeroDivisionError" in capsys.readouterr().out
    with pytest.raises(KeyError, match="known"):
        exercises.check("99.9", 1)
    assert set(exercises.listing("00_quickstart").id) == {"00.1", "00.2"}


def test_wrong_answers_of_03_fail(capsys):
    import numpy as np

    assert not exercises.check("03.1", lambda db, q: np.argsort((db != q).sum(1)))  # unstable ties (quicksort)
    or_not = exercises.check("03.1", lambda db, q: np.argsort(-(db != q).sum(1), kind="stable"))
    assert not or_not  # farthest first
    assert not exercises.check("03.2", lambda n, b, c: 8_000_000)
    assert "hint" in capsys.readouterr().out


def test_wrong_answers_of_02_fail(capsys):
    assert not exercises.check("02.1", 1257 // 13)  # floor, not ceiling
    assert not exercises.check("02.1", True)
    assert not exercises.check("02.2", 32)  # bits, not bytes
    sol = exercises.SOLUTIONS["02.3"]
    # re-ranking by Hamming again (no cosine) or skipping the pool (plain cosine scan) are both wrong
    assert not exercises.check("02.3", lambda db, q, fdb, fq, pool, k: np.lexsort((np.arange(len(db)), (db != q).sum(1)))[:k])
    assert not exercises.check("02.3", lambda db, q, fdb, fq, pool, k: sol(db, q, fdb, fq, len(db), k))
    assert "hint" in capsys.readouterr().out
    assert set(exercises.listing("02_latent_layer_hashing").difficulty) <= {"easy", "medium", "hard"}


def test_wrong_answers_of_04_fail(capsys):
    assert not exercises.check("04.1", 0.28125)  # the radius, not the bit count
    assert not exercises.check("04.1", 19)
    assert not exercises.check("04.2", 0.4)  # the Euclidean radius itself
    sol = exercises.SOLUTIONS["04.3"]

    def f_of_means(retrieved, tp, n_rel):  # F1 of the mean P and R, not the mean of per-query F1
        p = np.divide(tp, retrieved, out=np.ones(len(tp)), where=np.asarray(retrieved) > 0).mean()
        r = np.divide(tp, n_rel, out=np.ones(len(tp)), where=np.asarray(n_rel) > 0).mean()
        return 2 * p * r / (p + r)

    assert not exercises.check("04.3", f_of_means)
    assert not exercises.check("04.3", lambda ret, tp, n: sol(ret, tp, np.maximum(n, 1)))  # R = 0 for non-indexed
    assert not exercises.check("04.4", lambda a, b, n: (np.count_nonzero(a != b) / n, np.flatnonzero(a != b)))  # bytes
    assert "hint" in capsys.readouterr().out
    assert set(exercises.listing("04_perceptual_hash_vs_cnn").id) == {"04.1", "04.2", "04.3", "04.4"}


def test_wrong_answers_of_05_fail(capsys):
    assert exercises.SOLUTIONS["05.1"] == pytest.approx([1.0, 0.5])  # x - 0.5 (x - mu), mu = (0, 1)
    assert not exercises.check("05.1", [0.0, 1.0])  # mu itself (eta = 0.5, not 0.25)
    assert not exercises.check("05.1", "1, 0.5")
    assert not exercises.check("05.2", 10)
    sol = exercises.SOLUTIONS["05.3"]
    assert not exercises.check("05.3", lambda x, q, rel, a: sol(x, q, ~np.asarray(rel), a))  # signs swapped
    assert not exercises.check("05.3", lambda x, q, rel, a: sol(x, q, rel, a / 2))  # alpha, not 2 alpha
    assert not exercises.check("05.4", lambda xq, xb, I, k: xb[I[:, :k]].mean(1))  # the query left out
    assert "hint" in capsys.readouterr().out
    assert set(exercises.listing("05_retargeting_retraining_qe").id) == {"05.1", "05.2", "05.3", "05.4"}
