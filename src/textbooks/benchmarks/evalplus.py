"""EvalPlus judging (evalplus 0.3.1, `evaluate.py` and `eval/__init__.py`). The reference output for an input is
what `prompt + canonical_solution` returns on a deep copy of it (for MBPP+'s not-None tasks, whether it is not
None: `compare.expected_output`). evalplus makes two runs per sample, one over `base_input` and one over
`plus_input`; "base" passes when the first does, "plus" when both do. In a run each input may take
`max(1 s, 4 x reference seconds)`, and the run is stopped after `min(60 s, sum of those) + 1 s`, which counts as
a timeout: `evalplus_time_limits`. The reference seconds are those of the calls alone, as evalplus's
`trusted_exec` times them. Measured so (in one process, 2 loaded cores, 2026-12), the references of Mbpp/123
and Mbpp/599 compute for 44-50 s over their plus inputs, close to a run's 61 s, and HumanEval/139 for 11 s;
Mbpp/255 computes for 3-5 s but returns 1.7 million tuples of 77 strings on one input (about 1.2 GB); before
its outputs were hashed fast and its calls timed alone, its recorded time was that of the whole sandboxed run,
40 s on a quiet machine, so a solution 11x slower than it passed here. Mbpp/88's reference returns a
`collections.Counter`, and Mbpp/737, 787 and 794 return `re.Match` objects.

Inputs are decoded as evalplus's `mbpp_deserialize_inputs` does (checked against its code on every task in
`tests/test_evalplus_parity.py`): JSON has no tuples or complex numbers, so for
the MBPP+ tasks in `_MBPP_PLUS_DECODERS` arguments the reference expects as tuples (or complex numbers) are
converted back. Task numbers in evalplus's table that v0.2.0 no longer has (115, 143, 307, 399-401, 417, 438,
444, 617) are left out. Mbpp/793 stores `plus_input` as `{}`, read as no plus inputs, as evalplus's loop over
it does. HumanEval+ inputs are used as parsed. HumanEval+ prompts equal HumanEval's except HumanEval/115 (evalplus
moved its `import math` to the top). Loading takes 0.3 s for HumanEval+ (122,683 plus inputs) and 0.4 s for
MBPP+ (measured 2026-11, 2 shared cores).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from textbooks.benchmarks.files import records
from textbooks.benchmarks.problem import Problem, humaneval_style


def load_humaneval_plus(benchmarks_dir: str | Path | None = None) -> list[Problem]:
    return [
        humaneval_style(record, "evalplus", base_input=record["base_input"], plus_input=record["plus_input"],
                         atol=float(record["atol"]))
        for record in records("humaneval+", benchmarks_dir)
    ]


def load_mbpp_plus(benchmarks_dir: str | Path | None = None) -> list[Problem]:
    problems = []
    for record in records("mbpp+", benchmarks_dir):
        decode = _MBPP_PLUS_DECODERS.get(int(record["task_id"].split("/")[1]), _as_given)
        problems.append(humaneval_style(
            record, "evalplus", test=record["assertion"], atol=float(record["atol"]),
            base_input=[decode(args) for args in record["base_input"]],
            plus_input=[decode(args) for args in record["plus_input"]],
        ))
    return problems


# ---- MBPP+ input decoding (the mapping of evalplus 0.3.1 `mbpp_deserialize_inputs`) ----


def _as_given(args: list) -> list:
    return args


def _each_argument_a_tuple(args: list) -> list:
    return [tuple(argument) for argument in args]


def _each_argument_a_list_of_tuples(args: list) -> list:
    return [[tuple(item) for item in argument] for argument in args]


def _each_argument_a_tuple_of_tuples(args: list) -> list:
    return [tuple(tuple(item) for item in argument) for argument in args]


def _first_a_list_of_tuples(args: list) -> list:
    return [[tuple(item) for item in args[0]], args[1]]


def _first_a_tuple(args: list) -> list:
    return [tuple(args[0]), args[1]]


def _second_a_tuple(args: list) -> list:
    return [args[0], tuple(args[1])]


def _float_and_complex(args: list) -> list:
    return [float(args[0]), complex(args[1])]


def _one_complex(args: list) -> list:
    return [complex(args[0])]


def _one_tuple_with_inner_tuples(args: list) -> list:
    return [tuple(tuple(item) if isinstance(item, list) else item for item in args[0])]


def _dict_values_tuples(args: list) -> list:
    return [{key: tuple(value) for key, value in args[0].items()}, *args[1:]]


def _all_lists_tuples(args: list) -> list:
    def deep(value: Any) -> Any:
        return tuple(deep(item) for item in value) if isinstance(value, list) else value

    return [deep(argument) for argument in args]


def _table(rules: dict[Callable[[list], list], Sequence[int]]) -> dict[int, Callable[[list], list]]:
    return {task: rule for rule, tasks in rules.items() for task in tasks}


_MBPP_PLUS_DECODERS = _table({
    _each_argument_a_tuple: (2, 116, 132, 222, 261, 273, 394, 421, 424, 429, 470, 560, 579, 596, 616, 630, 726,
                             740, 744, 809),
    _each_argument_a_list_of_tuples: (63, 64, 70, 94, 120, 237, 272, 299, 409, 473, 614, 780),
    _each_argument_a_tuple_of_tuples: (259, 445),
    _first_a_list_of_tuples: (75, 413, 753),
    _first_a_tuple: (250, 405, 446, 720, 763, 808),
    _second_a_tuple: (106, 750),
    _float_and_complex: (124,),
    _one_complex: (252,),
    _one_tuple_with_inner_tuples: (278,),
    _dict_values_tuples: (722,),
    _all_lists_tuples: (580, 615, 791),
})
