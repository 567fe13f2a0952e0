"""EvalPlus-style output comparison: exact equality, float tolerance, the special oracles and the type rules."""

from __future__ import annotations

import math

import pytest

from textbooks.evaluate.compare import evalplus_atols, expected_output, outputs_match
from textbooks.sandbox.values import Digest


def match(got, expected, atol: float = 0, benchmark: str = "mbpp+", entry_point: str = "f", inputs=()) -> bool:
    return outputs_match(benchmark, entry_point, list(inputs), got, expected, atol)


@pytest.mark.parametrize("got, expected", [
    (3, 3), ("abc", "abc"), ([1, [2, (3, 4)]], [1, [2, (3, 4)]]), ({"a": [1, 2]}, {"a": [1, 2]}), (None, None),
    ({1, 2}, {2, 1}), (b"x", b"x"),
])
def test_equal_values_pass(got, expected) -> None:
    assert match(got, expected)


@pytest.mark.parametrize("got, expected", [
    (3, 4), ("abc", "abd"), ([1, 2], [1, 2, 3]), ({"a": 1}, {"a": 1, "b": 2}), (None, 0), ("1", 1),
])
def test_different_values_fail(got, expected) -> None:
    assert not match(got, expected)
    assert not match(got, expected, atol=1e-4)  # the allclose path fails too (type, length, or strings)


def test_tuple_and_list_are_different_outputs() -> None:
    assert not match((1, 2), [1, 2])
    assert not match([1, 2], (1, 2))
    assert not match((1.0, 2.0), [1.0, 2.0], atol=1e-4)  # allclose needs the same type, as in evalplus
    assert not match({"a": (1,)}, {"a": [1]})  # recursively


def test_numbers_compare_across_int_bool_float_as_in_evalplus() -> None:
    assert match(1, 1.0)
    assert match(1.0, 1)
    assert match(True, 1)  # `True == 1`: evalplus passes it, so do we
    assert match([True, 0], [1, False])
    assert match(1 + 0j, 1)
    assert not match(True, 2)
    # not exactly equal: the tolerance path needs the same type, so an int never passes for a near float
    assert not match(1, 1.0000001)
    assert match(1.0, 1.0000001)


def test_set_and_frozenset_compare_equal() -> None:
    assert match(frozenset({1, 2}), {1, 2})
    assert not match([1, 2], {1, 2})


def test_float_outputs_get_a_default_tolerance() -> None:
    assert match(0.1 + 0.2, 0.3)
    assert match([0.1 + 0.2, 1.0], [0.3, 1.0])
    assert match(1.0 + 5e-7, 1.0)
    assert not match(1.0 + 5e-6, 1.0)
    assert match(1e10 + 500.0, 1e10)  # rtol 1e-7 of 1e10 is 1000
    assert not match([1.0 + 5e-7, 2], [1.0, 2])  # not all floats: no default tolerance, exact needed
    assert not match([1.0, 2.0], [1.0, 2.0, 3.0])


def test_task_atol_widens_the_tolerance_even_for_int_lists() -> None:
    assert not match(1.00005, 1.0)
    assert match(1.00005, 1.0, atol=1e-4)
    assert not match(1.0002, 1.0, atol=1e-4)
    assert match([1, 2], [1, 2], atol=1e-4)
    assert not match([1, 3], [1, 2], atol=1e-4)


def test_nan_never_matches_as_in_evalplus() -> None:
    nan = math.nan  # one object on both sides: Python's list identity shortcut must not make these pass
    assert not match(nan, nan)
    assert not match([nan], [nan])
    assert not match([1.0, nan], [1.0, nan], atol=1e-4)
    assert not match({"a": nan}, {"a": nan})
    assert not match({nan}, {nan})
    assert not match((nan, 1), (nan, 1))
    assert match(math.inf, math.inf)


def test_values_with_a_custom_eq_fail() -> None:
    class Anything:
        def __eq__(self, other: object) -> bool:
            return True

    class LooseStr(str):
        def __eq__(self, other: object) -> bool:
            return True

    assert not match(Anything(), 3)
    assert not match([Anything()], [3])
    assert not match(LooseStr("x"), "y")
    assert not match({"a": Anything()}, {"a": 1})


def test_mbpp_are_equivalent_passes_any_output() -> None:
    assert match("anything", True, entry_point="are_equivalent")


def test_mbpp_sum_div_also_accepts_zero() -> None:
    assert match(0, 7, entry_point="sum_div")
    assert match(7, 7, entry_point="sum_div")
    assert not match(5, 7, entry_point="sum_div")


def test_mbpp_surface_area_accepts_the_perpendicular_height_reading() -> None:
    # reference: 2*b*s + b*b = 33 for (3, 4); the other reading: round(9 + 6*sqrt(2.25 + 16)) = 35
    assert match(33, 33, entry_point="surface_Area", inputs=(3, 4))
    assert match(35, 33, entry_point="surface_Area", inputs=(3, 4))
    assert not match(34, 33, entry_point="surface_Area", inputs=(3, 4))
    assert not match("35", 33, entry_point="surface_Area", inputs=(3, 4))


def test_mbpp_digit_distance_accepts_zero_padding() -> None:
    # 123 vs 4 padded to 004: |1-0| + |2-0| + |3-4| = 4
    assert match(4, 11, entry_point="digit_distance_nums", inputs=(123, 4))
    assert match(11, 11, entry_point="digit_distance_nums", inputs=(123, 4))
    assert not match(5, 11, entry_point="digit_distance_nums", inputs=(123, 4))


def test_mbpp_set_equal_tasks_ignore_order_and_container() -> None:
    assert match((5, 4), (4, 5), entry_point="similar_elements")
    assert match([4, 5, 5], (4, 5), entry_point="similar_elements")
    assert not match((4,), (4, 5), entry_point="similar_elements")
    assert not match([[4]], [[4]], entry_point="similar_elements")  # unhashable items: set() raises, a failure
    assert not match((5, 4), (4, 5), entry_point="not_a_set_task")


def test_mbpp_not_none_tasks_compare_presence() -> None:
    assert expected_output("mbpp+", "text_match_three", object()) is True
    assert expected_output("mbpp+", "text_match_three", None) is False
    assert expected_output("mbpp+", "other", 5) == 5
    assert expected_output("humaneval+", "text_match_three", None) is None
    assert match("<re.Match object>", True, entry_point="text_match_three")
    assert match(None, False, entry_point="check_str")
    assert match(False, False, entry_point="text_starta_endb")
    assert not match(None, True, entry_point="text_match_three")
    assert not match(True, False, entry_point="text_match_three")


def test_humaneval_find_zero_checks_the_root_not_the_reference() -> None:
    coefficients = [1.0, 2.0]  # 1 + 2x, root -0.5
    assert match(-0.5, -0.5, atol=1e-4, benchmark="humaneval+", entry_point="find_zero", inputs=[coefficients])
    assert match(-0.50001, 3.0, atol=1e-4, benchmark="humaneval+", entry_point="find_zero", inputs=[coefficients])
    assert not match(0.0, -0.5, atol=1e-4, benchmark="humaneval+", entry_point="find_zero", inputs=[coefficients])
    assert not match("x", -0.5, atol=1e-4, benchmark="humaneval+", entry_point="find_zero", inputs=[coefficients])
    assert not match(math.nan, -0.5, atol=1e-4, benchmark="humaneval+", entry_point="find_zero",
                     inputs=[coefficients])
    # the oracle belongs to HumanEval+ only
    assert not match(-0.50001, -0.5, benchmark="mbpp+", entry_point="find_zero", inputs=[coefficients])


def test_only_evalplus_benchmarks_are_judged_here() -> None:
    with pytest.raises(ValueError, match="humaneval"):
        outputs_match("humaneval", "f", [], 1, 1, 0)


def test_evalplus_atols_keep_the_float_tolerance_for_the_rest_of_a_run() -> None:
    assert evalplus_atols(0, [1, [1, 2], 0.5, [1, 2], "a"]) == [0, 0, 1e-6, 1e-6, 1e-6]
    assert evalplus_atols(0, [[0.5, 1.0], 3]) == [1e-6, 1e-6]
    assert evalplus_atols(1e-4, [1, 0.5]) == [1e-4, 1e-4]
    assert evalplus_atols(0, []) == []
    # a mixed int/float list close to the reference: fails on its own, passes after a float output (evalplus)
    got, expected = [1, 0.1 + 0.2], [1, 0.3]
    assert not match(got, expected, atol=evalplus_atols(0, [expected])[0])
    assert match(got, expected, atol=evalplus_atols(0, [0.5, expected])[1])


def test_large_outputs_compare_by_digest() -> None:
    digest = Digest("str", 100_000, "ab" * 32)
    assert match(digest, Digest("str", 100_000, "ab" * 32))
    assert not match(digest, Digest("str", 100_000, "cd" * 32))
    assert not match(digest, "ab" * 50_000)
