"""Benchmark problems as `Problem`s: HumanEval, MBPP, HumanEval+, MBPP+ and the package's fresh problems.

    from textbooks.evaluate.benchmarks import load_benchmark
    problems = load_benchmark("mbpp+")          # humaneval | mbpp | humaneval+ | mbpp+ | fresh

| name | problems | file | `kind`: how a completion is judged |
|---|---|---|---|
| `humaneval` | 164 | `HumanEval.jsonl.gz` | `check`: `prompt + completion + test + check(entry_point)` runs cleanly |
| `mbpp` | 500 | `mbpp.jsonl` (test ids 11-510) | `asserts`: `prompt + completion + test` runs cleanly |
| `humaneval+` | 164 | `HumanEvalPlus-v0.1.10.jsonl.gz` | `evalplus`: outputs on `base_input`/`plus_input` match |
| `mbpp+` | 378 | `MbppPlus-v0.2.0.jsonl.gz` | `evalplus` |
| `fresh` | see file | `textbooks/evaluate/fresh.jsonl`, in the package | `check` |

`Problem.program(completion)` builds the program to run. For `evalplus` problems it is only the definitions; the
judge calls `entry_point(*args)` for each input and compares with `textbooks.evaluate.compare.outputs_match`.

Where files come from: `benchmarks_dir`, else the folder in `$TEXTBOOKS_BENCHMARKS` (laid out like
`shared/benchmarks`), else a download. `humaneval` and `mbpp` come from the Hugging Face hub
(`openai/openai_humaneval`; `google-research-datasets/mbpp`, config `full`; split `test`, same field names as the
files). The hub copies of EvalPlus (`evalplus/humanevalplus`, `evalplus/mbppplus`) have no `base_input`,
`plus_input` or `atol` (their inputs are baked into test code), so `humaneval+` and `mbpp+` come from the
release assets evalplus itself downloads, checked against the sha256 in `_RELEASES` and kept in
`$XDG_CACHE_HOME/textbooks/benchmarks` (default `~/.cache`), never in the project. With `HF_HUB_OFFLINE` or
`HF_DATASETS_OFFLINE` set nothing is downloaded and a missing file is a `UserError`.

MBPP prompt (zero-shot, "the description and the first test"). MBPP has no function signature, so the model
writes the whole function after a docstring:

    '\"\"\"\\n' + text + '\\n' + test_list[0] + '\\n\"\"\"\\n'

This is the layout of MBPP+'s own prompts (134 of its 378 prompts equal ours byte for byte; the rest differ
because MBPP+ rewrote the text or the assert). `entry_point` is the function that the first test calls and the
reference `code` defines (found with `ast`). `canonical_solution` is MBPP's `code`, a whole program (its CRLF
line endings kept). `test` is `test_setup_code`, a newline, and the three `test_list` asserts;
`challenge_test_list` is ignored. Task ids are `Mbpp/<n>` as in MBPP+. Revision: task 341 reads "convert the
given set into ordered tuples" with `tuple(sorted(s))`, the later upstream revision (the earlier one says "into
tuples" with `tuple(s)`, whose tests depend on set order); see `shared/benchmarks/README.md`. Task 118's text
starts with a junk markdown-link fragment, kept as is. All 500 reference programs pass their own tests
(Python 3.11, four runs with random hash seeds, 2026-11).

EvalPlus judging (evalplus 0.3.1, `evaluate.py` and `eval/__init__.py`). The reference output for an input is
what `prompt + canonical_solution` returns on a deep copy of it (for MBPP+'s not-None tasks, whether it is not
None: `compare.expected_output`). evalplus makes two runs per sample, one over `base_input` and one over
`plus_input`; "base" passes when the first does, "plus" when both do. In a run each input may take
`max(1 s, 4 x reference seconds)`, and the run is stopped after `min(60 s, sum of those) + 1 s`, which counts as
a timeout: `evalplus_time_limits`. Measured here (2 shared cores, 2026-11), the reference itself needs longer
than that for the plus inputs of Mbpp/255 (189 s; one input takes 140 s and about 2 GB) and Mbpp/599 (100 s),
so no sample of reference speed passes them; HumanEval/139 (54 s) and HumanEval/130 (44 s) come close. Mbpp/88's
reference returns a `collections.Counter`, and Mbpp/737, 787 and 794 return `re.Match` objects.

Inputs are decoded as evalplus's `mbpp_deserialize_inputs` does: JSON has no tuples or complex numbers, so for
the MBPP+ tasks in `_MBPP_PLUS_DECODERS` arguments the reference expects as tuples (or complex numbers) are
converted back. Task numbers in evalplus's table that v0.2.0 no longer has (115, 143, 307, 399-401, 417, 438,
444, 617) are left out. Mbpp/793 stores `plus_input` as `{}`, read as no plus inputs, as evalplus's loop over
it does. HumanEval+ inputs are used as parsed. HumanEval+ prompts equal HumanEval's except HumanEval/115 (evalplus
moved its `import math` to the top). Loading takes 0.3 s for HumanEval+ (122,683 plus inputs) and 0.4 s for
MBPP+ (measured 2026-11, 2 shared cores).
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import importlib.resources
import json
import os
import urllib.request
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from textbooks.errors import UserError

ENV_VAR = "TEXTBOOKS_BENCHMARKS"
FILES = {
    "humaneval": "HumanEval.jsonl.gz",
    "mbpp": "mbpp.jsonl",
    "humaneval+": "HumanEvalPlus-v0.1.10.jsonl.gz",
    "mbpp+": "MbppPlus-v0.2.0.jsonl.gz",
}
MBPP_TEST_IDS = range(11, 511)
FRESH_KEYS = ("task_id", "prompt", "entry_point", "canonical_solution", "test", "description")

# Release assets (url, sha256 of the uncompressed JSON Lines), as pinned in shared/benchmarks/README.md.
_RELEASES = {
    "humaneval+": (
        "https://github.com/evalplus/humanevalplus_release/releases/download/v0.1.10/HumanEvalPlus.jsonl.gz",
        "42526ec0e7d5f3ee0b06d6ced98f8c8bae3d76519151bfb3d36f79010645bd7f",
    ),
    "mbpp+": (
        "https://github.com/evalplus/mbppplus_release/releases/download/v0.2.0/MbppPlus.jsonl.gz",
        "b54e762755248ca411b523c917fa9f93c07b5ff2966bf60b3917b853926a3dad",
    ),
}
_HUB = {"humaneval": ("openai/openai_humaneval", None), "mbpp": ("google-research-datasets/mbpp", "full")}

EVALPLUS_MIN_TIME_LIMIT_S = 1.0
EVALPLUS_TIME_LIMIT_FACTOR = 4.0
EVALPLUS_TASK_TIMEOUT_S = 60.0

Kind = Literal["check", "asserts", "evalplus"]


@dataclass(frozen=True)
class Problem:
    """One problem. `prompt` is what the model continues; `canonical_solution` completes it (a function body for
    HumanEval-style prompts, a whole program for MBPP, a whole function for MBPP+); `test` is `check(candidate)`
    code (HumanEval, HumanEval+, fresh) or assert lines (MBPP, MBPP+). EvalPlus problems also carry decoded
    argument lists `base_input` and `plus_input` and the task's `atol`; fresh problems a `description`."""

    task_id: str
    prompt: str
    entry_point: str
    canonical_solution: str
    test: str
    kind: Kind
    base_input: list[Sequence[Any]] = field(default_factory=list)
    plus_input: list[Sequence[Any]] = field(default_factory=list)
    atol: float = 0.0
    description: str = ""

    def program(self, completion: str) -> str:
        """The program to run for `completion`: it must exit cleanly (`check`, `asserts`), or it defines
        `entry_point` for the judge to call on each input (`evalplus`)."""
        if self.kind == "check":
            return f"{self.prompt}{completion}\n{self.test}\ncheck({self.entry_point})\n"
        if self.kind == "asserts":
            return f"{self.prompt}{completion}\n{self.test}\n"
        return self.prompt + completion


def evalplus_time_limits(reference_seconds: Sequence[float]) -> tuple[list[float], float]:
    """Per-input time limits and the limit for one run over all of a task's inputs, from the reference
    solution's time on each input, as evalplus 0.3.1's `untrusted_check` sets them."""
    limits = [max(EVALPLUS_MIN_TIME_LIMIT_S, EVALPLUS_TIME_LIMIT_FACTOR * seconds) for seconds in reference_seconds]
    return limits, min(EVALPLUS_TASK_TIMEOUT_S, sum(limits)) + 1.0


def mbpp_prompt(text: str, first_test: str) -> str:
    """The zero-shot MBPP prompt: a docstring with the task description and its first test."""
    return f'"""\n{text}\n{first_test}\n"""\n'


def load_humaneval(benchmarks_dir: str | Path | None = None) -> list[Problem]:
    return [_humaneval_style(record, "check") for record in _records("humaneval", benchmarks_dir)]


def load_humaneval_plus(benchmarks_dir: str | Path | None = None) -> list[Problem]:
    return [
        _humaneval_style(record, "evalplus", base_input=record["base_input"], plus_input=record["plus_input"],
                         atol=float(record["atol"]))
        for record in _records("humaneval+", benchmarks_dir)
    ]


def load_mbpp(benchmarks_dir: str | Path | None = None) -> list[Problem]:
    problems = []
    for record in _records("mbpp", benchmarks_dir):
        if record["task_id"] not in MBPP_TEST_IDS:
            continue
        first_test = record["test_list"][0]
        problems.append(Problem(
            task_id=f"Mbpp/{record['task_id']}",
            prompt=mbpp_prompt(record["text"], first_test),
            entry_point=_mbpp_entry_point(record["code"], first_test, record["task_id"]),
            canonical_solution=record["code"],
            test=record["test_setup_code"] + "\n" + "\n".join(record["test_list"]),
            kind="asserts",
        ))
    return sorted(problems, key=lambda problem: int(problem.task_id.split("/")[1]))


def load_mbpp_plus(benchmarks_dir: str | Path | None = None) -> list[Problem]:
    problems = []
    for record in _records("mbpp+", benchmarks_dir):
        decode = _MBPP_PLUS_DECODERS.get(int(record["task_id"].split("/")[1]), _as_given)
        problems.append(_humaneval_style(
            record, "evalplus", test=record["assertion"], atol=float(record["atol"]),
            base_input=[decode(args) for args in record["base_input"]],
            plus_input=[decode(args) for args in record["plus_input"]],
        ))
    return problems


def load_fresh(benchmarks_dir: str | Path | None = None) -> list[Problem]:
    """The package's own fresh problems (HumanEval format plus `description`); `benchmarks_dir` is unused."""
    resource = importlib.resources.files("textbooks.evaluate").joinpath("fresh.jsonl")
    if not resource.is_file():
        raise UserError(f"the fresh problems file {resource} is missing from the installed package; "
                        "reinstall textbooks (pip install -e .) from a checkout that has it")
    problems = []
    for line_number, record in enumerate(_parse_jsonl(resource.read_text(encoding="utf-8")), start=1):
        missing = [key for key in FRESH_KEYS if key not in record]
        if missing:
            raise UserError(f"{resource}, record {line_number}: missing keys {missing}; each record needs {FRESH_KEYS}")
        problems.append(_humaneval_style(record, "check", description=record["description"]))
    return problems


Loader = Callable[[str | Path | None], list[Problem]]
BENCHMARKS: dict[str, Loader] = {
    "humaneval": load_humaneval,
    "mbpp": load_mbpp,
    "humaneval+": load_humaneval_plus,
    "mbpp+": load_mbpp_plus,
    "fresh": load_fresh,
}


def load_benchmark(name: str, benchmarks_dir: str | Path | None = None) -> list[Problem]:
    """The problems of benchmark `name` (a key of `BENCHMARKS`), in task order."""
    if name not in BENCHMARKS:
        raise UserError(f"unknown benchmark {name!r}; choose one of {sorted(BENCHMARKS)}")
    return BENCHMARKS[name](benchmarks_dir)


def _humaneval_style(record: dict, kind: Kind, **fields: Any) -> Problem:
    return Problem(**{
        "task_id": record["task_id"], "prompt": record["prompt"], "entry_point": record["entry_point"],
        "canonical_solution": record["canonical_solution"], "test": record.get("test", ""), "kind": kind, **fields,
    })


def _mbpp_entry_point(code: str, first_test: str, task_id: int) -> str:
    """The function the first test calls that the reference code defines (some references define helpers, and
    some tests wrap the call, as in `set(f(x)) == ...`)."""
    with warnings.catch_warnings():  # regex tasks hold escapes like '\w' that Python warns about
        warnings.simplefilter("ignore", (DeprecationWarning, SyntaxWarning))
        defined = {node.name for node in ast.parse(code).body if isinstance(node, ast.FunctionDef)}
        called = list(ast.walk(ast.parse(first_test)))
    for node in called:
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in defined:
            return node.func.id
    raise UserError(f"MBPP task {task_id}: its first test calls none of the functions its code defines "
                    f"({sorted(defined)}); the mbpp.jsonl in use is not the MBPP this loader knows")


# ---- locating and reading the files ----


def _records(name: str, benchmarks_dir: str | Path | None) -> list[dict]:
    """The raw records of `name`: from the folder, else the download cache, else a download."""
    file_name = FILES[name]
    folder = benchmarks_dir if benchmarks_dir is not None else os.environ.get(ENV_VAR)
    candidates = [Path(folder) / file_name] if folder else []
    if name in _RELEASES:
        candidates.append(_cache_dir() / file_name)
    for path in candidates:
        if path.is_file():
            return _parse_jsonl(_read_text(path))
    try:
        return _download(name)
    except Exception as error:  # offline, hub or HTTP failure: datasets and urllib raise many error types
        where = f"folder {folder}" if folder else f"no folder (benchmarks_dir not given, {ENV_VAR} not set)"
        raise UserError(
            f"benchmark {name!r}: {file_name} was not found in {where}, and downloading it failed ({error}). "
            f"Set {ENV_VAR} to a folder holding {file_name} (laid out like shared/benchmarks) or pass "
            "benchmarks_dir; or run once with network access."
        ) from error


def _read_text(path: Path) -> str:
    if path.suffix == ".gz":
        return gzip.decompress(path.read_bytes()).decode("utf-8")
    return path.read_text(encoding="utf-8")


def _parse_jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "textbooks" / "benchmarks"


def _download(name: str) -> list[dict]:
    for flag in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        if os.environ.get(flag, "").strip().lower() in ("1", "true", "yes", "on"):
            raise ConnectionError(f"{flag} is set")
    if name in _HUB:
        import datasets  # slow to import and only needed without local files

        dataset, config = _HUB[name]
        return [dict(row) for row in datasets.load_dataset(dataset, config, split="test")]
    url, sha256 = _RELEASES[name]
    with urllib.request.urlopen(url, timeout=120) as response:
        packed = response.read()
    text = gzip.decompress(packed)
    if hashlib.sha256(text).hexdigest() != sha256:
        raise ValueError(f"{url} is not the expected release (sha256 of its content is not {sha256})")
    target = _cache_dir() / FILES[name]
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        partial.write_bytes(packed)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return _parse_jsonl(text.decode("utf-8"))


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
