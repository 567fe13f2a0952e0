"""EvalPlus-style comparison of a candidate's output with the reference output, for one input.

    from textbooks.evaluate.compare import evalplus_atols, expected_output, outputs_match
    expected = [expected_output("mbpp+", problem.entry_point, value) for value in reference_outputs]
    atols = evalplus_atols(problem.atol, expected)   # one run: the base inputs; the plus inputs are another
    ok = outputs_match("mbpp+", problem.entry_point, args[i], got[i], expected[i], atols[i])

This runs in the harness, never in the process that ran untrusted code: `got` and `expected` arrive already
decoded as plain Python data (None, bool, int, float, complex, str, bytes, list, tuple, dict, set, frozenset),
or as the sandbox's `Digest` of a large output. A value of any other type never matches.
The semantics are those of evalplus 0.3.1's `unsafe_execute` (`evalplus/eval/__init__.py`):

- exact equality first, then the special oracles: for MBPP+, `are_equivalent` (Mbpp/164) passes any output,
  `sum_div` (Mbpp/295) also accepts 0, `surface_Area` (Mbpp/581) and `digit_distance_nums` (Mbpp/558) also accept
  an alternative reading of the task, the set-equal tasks compare `set(got) == set(expected)`, and the not-None
  tasks (whose outputs are `re.Match` objects) compare "is not None" (`expected_output` makes the reference side a
  bool); for HumanEval+, `find_zero` passes when `|poly(xs, got)| <= atol`, whatever the reference root;
- when the task's `atol` is 0 and the expected output is a float or a non-empty list/tuple of floats, `atol` is
  1e-6; when `atol` is not 0 and the output is not exactly equal, `got` passes when it has the same type (and
  length, for a list or tuple) and `np.allclose(got, expected, rtol=1e-7, atol=atol)` holds;
- any exception while comparing (e.g. `np.allclose` on strings, `abs()` of a list) is a failure.

Equality is Python's `==` with two deliberate changes, both of which only matter for values a plain decoder
could not produce or for NaN:

- Types must agree recursively, except within the numeric tower (bool, int, float, complex: `1 == 1.0 == True`
  passes, as in evalplus) and between set and frozenset. In evalplus another type could only pass `==` through a
  custom `__eq__` (an object that equals everything); here such a value, or a subclass of a plain type, fails.
- NaN is unequal to everything, NaN included, also inside lists, tuples and dict values. That is what evalplus
  does in practice: its output and reference are never the same object, so Python's identity shortcut
  (`[x] == [x]` when `x` is one NaN object) never applies there, and `np.allclose` treats NaN as unequal. A
  reference output containing NaN therefore fails every candidate, exactly as in evalplus.

Order: evalplus sets the 1e-6 tolerance on a variable that lives for the whole run over a task's inputs, so
once one reference output is a float (list), every later input of that run is compared with atol 1e-6 too.
`outputs_match` judges one input on its own; the judge reproduces evalplus by passing it the tolerances
`evalplus_atols` gives for one run, computed separately for the base and the plus inputs (evalplus runs them as
two runs). This changes some inputs' tolerance in 12 HumanEval+ and 39 MBPP+ tasks, whose reference outputs mix
floats with ints, lists, tuples or strings: a mixed int/float list close to the reference passes after the
first float output, not before. (Measured on the stored files, 2026-11; no reference output there holds a NaN.)
The oracles that look at the input (`find_zero`, `surface_Area`, `digit_distance_nums`) see the harness's copy
of it, not one the candidate may have mutated.
"""

from __future__ import annotations

import cmath
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from textbooks.sandbox.values import Digest

DEFAULT_FLOAT_ATOL = 1e-6
RTOL = 1e-7
EVALPLUS_BENCHMARKS = ("humaneval+", "mbpp+")

MBPP_NOT_NONE_ENTRY_POINTS = frozenset({"check_str", "text_match_three", "text_starta_endb"})
MBPP_SET_EQUAL_ENTRY_POINTS = frozenset({
    "similar_elements", "find_char_long", "common_in_nested_lists", "extract_singly", "larg_nnum",
    "intersection_array", "find_dissimilar", "Diff",
})

_NUMBER_TYPES = (bool, int, float, complex)
_SET_TYPES = (set, frozenset)
_ATOM_TYPES = (type(None), str, bytes, Digest)  # Digest: a large output, equal exactly when its value is


def expected_output(benchmark: str, entry_point: str, reference_output: Any) -> Any:
    """The value to compare against, from the reference solution's output (evalplus's `trusted_exec`): for MBPP+'s
    not-None tasks, whether the output is not None; otherwise the output itself."""
    if benchmark == "mbpp+" and entry_point in MBPP_NOT_NONE_ENTRY_POINTS:
        return reference_output is not None
    return reference_output


def evalplus_atols(atol: float, expected: Sequence[Any]) -> list[float]:
    """The tolerance evalplus 0.3.1 applies to each input of one run (the base inputs, or the plus inputs), from
    the task's `atol` and the run's reference outputs in order: an `atol` of 0 becomes 1e-6 at the first float
    (or all-float list/tuple) reference output and stays so for the rest of the run."""
    atols = []
    for value in expected:
        if atol == 0 and _is_floats(value):
            atol = DEFAULT_FLOAT_ATOL
        atols.append(atol)
    return atols


def outputs_match(benchmark: str, entry_point: str, inputs: Sequence[Any], got: Any, expected: Any,
                  atol: float) -> bool:
    """Whether output `got` of `entry_point(*inputs)` passes against `expected` (from `expected_output`), with the
    task's `atol`, as evalplus judges one input of a HumanEval+ or MBPP+ task."""
    if benchmark not in EVALPLUS_BENCHMARKS:
        raise ValueError(f"outputs_match judges EvalPlus benchmarks {EVALPLUS_BENCHMARKS}, not {benchmark!r}")
    try:
        return _match(benchmark, entry_point, inputs, got, expected, atol)
    except Exception:  # noqa: BLE001 - evalplus counts any exception while checking an output as a failed input
        return False


def _match(benchmark: str, entry_point: str, inputs: Sequence[Any], got: Any, expected: Any, atol: float) -> bool:
    if benchmark == "humaneval+" and entry_point == "find_zero":
        return abs(_poly(*inputs, got)) <= atol
    exact = _equal(got, expected)
    if benchmark == "mbpp+":
        exact = _mbpp_oracle(entry_point, inputs, got, expected, atol, exact)
    if atol == 0 and _is_floats(expected):
        atol = DEFAULT_FLOAT_ATOL
    if exact or atol == 0:
        return exact
    if type(got) is not type(expected):
        return False
    if isinstance(expected, (list, tuple)) and len(got) != len(expected):
        return False
    with np.errstate(all="ignore"):
        return bool(np.allclose(got, expected, rtol=RTOL, atol=atol))


def _mbpp_oracle(entry_point: str, inputs: Sequence[Any], got: Any, expected: Any, atol: float, exact: bool) -> bool:
    if entry_point == "are_equivalent":
        return True
    if entry_point == "sum_div":
        return exact or _equal(got, 0)
    if entry_point == "surface_Area":
        return exact or abs(got - _surface_area(*inputs)) <= atol
    if entry_point == "digit_distance_nums":
        return exact or _equal(got, _digit_distance_nums(*inputs))
    if entry_point in MBPP_SET_EQUAL_ENTRY_POINTS:
        return _equal(set(got), set(expected))
    if entry_point in MBPP_NOT_NONE_ENTRY_POINTS:
        return _equal(got, expected) if isinstance(got, bool) else expected == (got is not None)
    return exact


def _equal(got: Any, expected: Any) -> bool:
    """`got == expected` for plain data, with types agreeing recursively (numbers with numbers, sets with sets)
    and without the identity shortcut, so NaN never equals NaN."""
    got_type, expected_type = type(got), type(expected)
    if got_type in _NUMBER_TYPES and expected_type in _NUMBER_TYPES:
        return bool(got == expected)
    if got_type in _SET_TYPES and expected_type in _SET_TYPES:
        return got == expected and not any(_has_nan(item) for item in got)
    if got_type is not expected_type:
        return False
    if got_type in (list, tuple):
        return len(got) == len(expected) and all(map(_equal, got, expected))
    if got_type is dict:
        return got.keys() == expected.keys() and not any(_has_nan(key) for key in got) and all(
            _equal(value, expected[key]) for key, value in got.items())
    return got_type in _ATOM_TYPES and got == expected


def _has_nan(value: Any) -> bool:
    """Whether a hashable plain value (a set element or dict key) holds a NaN anywhere."""
    if type(value) is float:
        return math.isnan(value)
    if type(value) is complex:
        return cmath.isnan(value)
    if type(value) in (tuple, frozenset):
        return any(_has_nan(item) for item in value)
    return False


def _is_floats(value: Any) -> bool:
    """A float, or a non-empty list or tuple of floats (evalplus's `is_floats` for plain data)."""
    if isinstance(value, float):
        return True
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(item, float) for item in value)


def _poly(coefficients: Sequence[float], x: float) -> float:
    """HumanEval/32's polynomial, evaluated as evalplus's oracle does."""
    return sum(coefficient * math.pow(x, power) for power, coefficient in enumerate(coefficients))


def _surface_area(base_edge: float, height: float) -> int:
    """Mbpp/581's alternative reading: `height` is the pyramid's perpendicular height, not its slant height."""
    slant_height = math.sqrt((base_edge / 2) ** 2 + height**2)
    return round(base_edge**2 + 2 * base_edge * slant_height)


def _digit_distance_nums(first: int, second: int) -> int:
    """Mbpp/558's alternative reading: the shorter number is padded with leading zeros."""
    width = max(len(str(first)), len(str(second)))
    return sum(abs(int(a) - int(b)) for a, b in zip(str(first).zfill(width), str(second).zfill(width)))
