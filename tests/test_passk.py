"""pass@k against the exact formula with integer binomials, and the averaging rule."""

from __future__ import annotations

import random
from fractions import Fraction
from math import comb

import pytest

from textbooks.evaluate.passk import mean_pass_at_k, pass_at_k


def exact_pass_at_k(n: int, c: int, k: int) -> Fraction:
    return 1 - Fraction(comb(n - c, k), comb(n, k))


def random_cases(count: int, max_n: int, max_k: int, seed: int) -> list[tuple[int, int, int]]:
    rng = random.Random(seed)
    cases = []
    for _ in range(count):
        n = rng.randint(1, max_n)
        cases.append((n, rng.randint(0, n), rng.randint(1, min(n, max_k))))
    return cases


@pytest.mark.parametrize("max_n, max_k, seed", [(20, 20, 0), (300, 300, 1), (100_000, 100, 2), (3_000, 3_000, 3)])
def test_matches_exact_formula(max_n: int, max_k: int, seed: int) -> None:
    for n, c, k in random_cases(100, max_n, max_k, seed):
        assert pass_at_k(n, c, k) == pytest.approx(float(exact_pass_at_k(n, c, k)), abs=1e-12, rel=0), (n, c, k)


def test_near_one_and_near_zero_values_keep_their_precision() -> None:
    # 1 - 1e-6-ish and 1e-6-ish values, where a naive 1 - product loses digits
    for n, c, k in [(1_000_000, 1, 1), (1_000_000, 999_990, 1), (500_000, 3, 2), (10_000, 9_900, 50)]:
        assert pass_at_k(n, c, k) == pytest.approx(float(exact_pass_at_k(n, c, k)), abs=1e-15, rel=1e-12)


def test_edge_cases_are_exact() -> None:
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 0, 10) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 5, 6) == 1.0  # n - c < k: every draw of 6 includes a pass
    assert pass_at_k(1, 1, 1) == 1.0
    assert pass_at_k(200, 37, 1) == pytest.approx(37 / 200, abs=1e-15)


@pytest.mark.parametrize("n, c, k", [(5, 6, 1), (5, -1, 1), (5, 2, 0), (5, 2, 6)])
def test_invalid_arguments_are_refused(n: int, c: int, k: int) -> None:
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)


def test_mean_averages_over_problems() -> None:
    counts = [(10, 0), (10, 5), (10, 10)]
    result = mean_pass_at_k(counts, ks=(1, 5))
    assert result[1] == pytest.approx((0 + 0.5 + 1) / 3)
    assert result[5] == pytest.approx((0 + float(exact_pass_at_k(10, 5, 5)) + 1) / 3)


def test_mean_reports_k_only_when_every_problem_has_k_samples() -> None:
    result = mean_pass_at_k([(10, 3), (100, 30), (9, 1)], ks=(1, 9, 10, 100))
    assert sorted(result) == [1, 9]
    assert mean_pass_at_k([(1, 1)], ks=(1, 10, 100)) == {1: 1.0}


def test_mean_needs_problems() -> None:
    with pytest.raises(ValueError):
        mean_pass_at_k([], ks=(1,))
