"""Benchmark loaders on the real data files (found through TEXTBOOKS_BENCHMARKS, set in conftest.py)."""

from __future__ import annotations

import ast
import gzip
import io
import json
import os
import subprocess
import sys
import types
import warnings
from pathlib import Path

import pytest

from textbooks.benchmarks import Problem, evalplus, files, load_benchmark
from textbooks.errors import UserError

COUNTS = {"humaneval": 164, "mbpp": 500, "humaneval+": 164, "mbpp+": 378}
FRESH_MIN = 50


@pytest.fixture(scope="module")
def loaded() -> dict[str, list[Problem]]:
    return {name: load_benchmark(name) for name in COUNTS}


def by_id(problems: list[Problem]) -> dict[str, Problem]:
    return {problem.task_id: problem for problem in problems}


def passes(program: str) -> bool:
    return subprocess.run([sys.executable, "-I", "-c", program], capture_output=True, timeout=60,
                          check=False).returncode == 0


def test_counts_and_ids(loaded: dict[str, list[Problem]]) -> None:
    assert {name: len(problems) for name, problems in loaded.items()} == COUNTS
    assert [p.task_id for p in loaded["humaneval"]] == [f"HumanEval/{i}" for i in range(164)]
    assert [p.task_id for p in loaded["humaneval+"]] == [f"HumanEval/{i}" for i in range(164)]
    assert [p.task_id for p in loaded["mbpp"]] == [f"Mbpp/{i}" for i in range(11, 511)]
    mbpp_plus = [int(p.task_id.split("/")[1]) for p in loaded["mbpp+"]]
    assert mbpp_plus[0] == 2 and mbpp_plus[-1] == 809 and mbpp_plus == sorted(set(mbpp_plus))


def test_kinds_and_input_totals(loaded: dict[str, list[Problem]]) -> None:
    kinds = {name: {p.kind for p in problems} for name, problems in loaded.items()}
    assert kinds == {"humaneval": {"check"}, "mbpp": {"asserts"}, "humaneval+": {"evalplus"}, "mbpp+": {"evalplus"}}
    assert sum(len(p.base_input) for p in loaded["humaneval+"]) == 1_570
    assert sum(len(p.plus_input) for p in loaded["humaneval+"]) == 122_683
    assert all(p.base_input for p in loaded["mbpp+"])
    assert {p.atol for p in loaded["humaneval+"]} == {0.0, 1e-6, 1e-4}


def test_mbpp_prompt_is_a_docstring_with_description_and_first_test(loaded: dict[str, list[Problem]]) -> None:
    problem = by_id(loaded["mbpp"])["Mbpp/11"]
    assert problem.prompt == (
        '"""\nWrite a python function to remove first and last occurrence of a given character from the string.\n'
        'assert remove_Occ("hello","l") == "heo"\n"""\n'
    )
    assert problem.entry_point == "remove_Occ"
    assert problem.test.splitlines()[1:] == [
        'assert remove_Occ("hello","l") == "heo"',
        'assert remove_Occ("abcda","a") == "bcd"',
        'assert remove_Occ("PHP","P") == "H"',
    ]
    assert problem.canonical_solution.startswith("def remove_Occ(s,ch):")


def test_mbpp_details(loaded: dict[str, list[Problem]]) -> None:
    mbpp = by_id(loaded["mbpp"])
    assert mbpp["Mbpp/367"].test.startswith("root = Node(1)")  # test_setup_code comes first
    assert "ordered tuples" in mbpp["Mbpp/341"].prompt and "sorted" in mbpp["Mbpp/341"].canonical_solution
    assert "challenge" not in mbpp["Mbpp/11"].test and mbpp["Mbpp/11"].test.count("assert") == 3
    assert mbpp["Mbpp/18"].entry_point == "remove_dirty_chars"  # the reference defines helpers too


def parse(source: str) -> ast.Module:
    with warnings.catch_warnings():  # MBPP regex tasks put `\w` and the like in the docstring prompt
        warnings.simplefilter("ignore")
        return ast.parse(source)


def test_entry_points_parse(loaded: dict[str, list[Problem]]) -> None:
    for name, problems in loaded.items():
        for problem in problems:
            source = problem.program(problem.canonical_solution)
            defined = {node.name for node in ast.walk(parse(source)) if isinstance(node, ast.FunctionDef)}
            assert problem.entry_point in defined, (name, problem.task_id)
    for problem in loaded["mbpp"]:
        first_test = problem.test.split("\n")[-3]
        called = {node.func.id for node in ast.walk(parse(first_test))
                  if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
        assert problem.entry_point in called and first_test in problem.prompt, problem.task_id


def test_humaneval_plus_prompts_equal_humaneval_but_115(loaded: dict[str, list[Problem]]) -> None:
    pairs = list(zip(loaded["humaneval"], loaded["humaneval+"], strict=True))
    assert [old.task_id for old, new in pairs if old.prompt != new.prompt] == ["HumanEval/115"]
    assert all(old.test == new.test and old.entry_point == new.entry_point for old, new in pairs)
    old, new = pairs[115]  # evalplus moved the function's first line, `import math`, to the top
    assert new.prompt == "import math\n" + old.prompt.replace("    import math\n", "")


def test_mbpp_plus_inputs_are_decoded_as_evalplus_does(loaded: dict[str, list[Problem]]) -> None:
    mbpp_plus = by_id(loaded["mbpp+"])
    assert mbpp_plus["Mbpp/2"].base_input[0] == [(3, 4, 5, 6), (5, 7, 4, 10)]
    assert all(type(argument) is tuple for args in mbpp_plus["Mbpp/2"].plus_input for argument in args)
    assert mbpp_plus["Mbpp/75"].base_input[0] == [[(6, 24, 12), (7, 9, 6), (12, 18, 21)], 6]
    assert mbpp_plus["Mbpp/124"].base_input[0] == [0.0, 1j]
    assert mbpp_plus["Mbpp/580"].base_input[0] == [(4, 5, (7, 6, (2, 4)), 6, 8)]
    assert mbpp_plus["Mbpp/722"].base_input[0][0]["Cierra Vega"] == (6.2, 70)
    assert mbpp_plus["Mbpp/793"].plus_input == []  # stored as {} in the file
    assert type(mbpp_plus["Mbpp/3"].base_input[0][0]) is int  # tasks outside the table keep JSON values
    assert set(evalplus._MBPP_PLUS_DECODERS) <= {int(task_id.split("/")[1]) for task_id in mbpp_plus}


def test_programs_run_their_reference_solutions(loaded: dict[str, list[Problem]]) -> None:
    humaneval, mbpp = by_id(loaded["humaneval"]), by_id(loaded["mbpp"])
    for problem in (humaneval["HumanEval/0"], humaneval["HumanEval/115"], mbpp["Mbpp/341"], mbpp["Mbpp/367"]):
        assert passes(problem.program(problem.canonical_solution)), problem.task_id
    assert not passes(humaneval["HumanEval/0"].program("    return None\n"))
    assert not passes(mbpp["Mbpp/11"].program("def remove_Occ(s, ch):\n    return s\n"))


def test_missing_files_name_the_env_var_and_the_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(UserError, match=r"TEXTBOOKS_BENCHMARKS.*") as error:
        load_benchmark("humaneval+", tmp_path / "nowhere")
    assert "HumanEvalPlus-v0.1.10.jsonl.gz" in str(error.value)
    monkeypatch.setenv("TEXTBOOKS_BENCHMARKS", str(tmp_path))
    with pytest.raises(UserError, match="mbpp.jsonl") as error:
        load_benchmark("mbpp")
    assert "TEXTBOOKS_BENCHMARKS" in str(error.value)
    monkeypatch.delenv("TEXTBOOKS_BENCHMARKS")
    with pytest.raises(UserError, match="TEXTBOOKS_BENCHMARKS not set"):
        load_benchmark("humaneval")


def test_evalplus_release_download_is_checked_and_cached(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    packed = (Path(os.environ["TEXTBOOKS_BENCHMARKS"]) / "MbppPlus-v0.2.0.jsonl.gz").read_bytes()
    served: list[str] = []

    def fake_urlopen(url: str, timeout: float) -> io.BytesIO:
        served.append(url)
        return io.BytesIO(packed if len(served) == 1 else gzip.compress(b'{"task_id": "Mbpp/2"}\n'))

    monkeypatch.setattr(files.urllib.request, "urlopen", fake_urlopen)
    for flag in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(flag, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert len(load_benchmark("mbpp+", tmp_path)) == 378
    assert served == ["https://github.com/evalplus/mbppplus_release/releases/download/v0.2.0/MbppPlus.jsonl.gz"]
    cached = tmp_path / "cache" / "textbooks" / "benchmarks" / "MbppPlus-v0.2.0.jsonl.gz"
    assert cached.read_bytes() == packed and [path.name for path in cached.parent.iterdir()] == [cached.name]
    assert len(load_benchmark("mbpp+", tmp_path)) == 378 and len(served) == 1  # the cache, no new download
    cached.unlink()
    with pytest.raises(UserError, match="not the expected release"):  # the second download has other content
        load_benchmark("mbpp+", tmp_path)
    assert not cached.exists()


def test_hub_download_uses_the_test_split(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    rows = [json.loads(line) for line in (Path(os.environ["TEXTBOOKS_BENCHMARKS"]) / "mbpp.jsonl").read_text()
            .splitlines()]
    calls = []
    hub = types.ModuleType("datasets")
    hub.load_dataset = lambda name, config, split: calls.append((name, config, split)) or rows
    monkeypatch.setitem(sys.modules, "datasets", hub)
    monkeypatch.setattr("textbooks.store.hub.unreachable", lambda: None)  # as if online: the hub answers
    for flag in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(flag, raising=False)
    assert len(load_benchmark("mbpp", tmp_path)) == 500
    assert calls == [("google-research-datasets/mbpp", "full", "test")]


def test_unknown_benchmark_is_a_user_error() -> None:
    with pytest.raises(UserError, match="humaneval"):
        load_benchmark("humaneval-x")


def test_fresh_problems_load_when_the_file_exists() -> None:
    problems = load_benchmark("fresh")
    assert len(problems) >= FRESH_MIN
    assert len({p.task_id for p in problems}) == len(problems)
    assert all(p.kind == "check" and p.description and f"def {p.entry_point}(" in p.prompt for p in problems)


def test_offline_a_hub_lookup_fails_at_once_in_one_line(tmp_path: Path) -> None:
    from textbooks.store import hub

    if hub.unreachable() is None:
        pytest.skip("the Hugging Face Hub answers from this machine: the offline path cannot be seen here")
    env = {key: value for key, value in os.environ.items()
           if key not in ("TEXTBOOKS_BENCHMARKS", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    env.update(TEXTBOOKS_CACHE=str(tmp_path / "cache"), HF_HOME=str(tmp_path / "hf"))
    samples = tmp_path / "samples.jsonl"
    samples.write_text('{"task_id": "Mbpp/2", "completion": "x = 1"}\n')
    result = subprocess.run([sys.executable, "-m", "textbooks", "eval", "--samples", str(samples), "--bench", "mbpp",
                             "--out", str(tmp_path / "eval")], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "the Hugging Face Hub cannot be reached" in lines[0], result.stderr
    assert "Retrying" not in result.stderr  # datasets' own retries print a line each, over about 45 s
