"""The step contract: what the runner guarantees to every step, and what a recipe checks before anything runs."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import Field
from toy_stage import ExcludeConfig, ExcludeStage, MinCharsConfig, MinCharsStage, VerifyConfig, VerifyStage

from textbooks.cli import FlagSettings, main
from textbooks.errors import UserError
from textbooks.llm import LLMConfig
from textbooks.pipeline.executors import make_executor
from textbooks.pipeline.recipe import load_recipe
from textbooks.pipeline.runner import run_step
from textbooks.pipeline.step import KIND_LABELS, Step, StepConfig
from textbooks.pipeline.table import ENTRIES, STEPS, Entry, _index, step_class
from textbooks.store import data

ROOT = Path(__file__).resolve().parents[1]


def write_jsonl(path: Path, texts: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"id": f"{path.stem}-{index}", "text": text}) + "\n"
                            for index, text in enumerate(texts)))
    return path


def run(step: Step, out: Path, run_folder: Path | None = None) -> list[str]:
    messages: list[str] = []
    run_step(step, out, executor=make_executor("process", 1), say=messages.append, run_folder=run_folder)
    return messages


def texts(folder: Path) -> list[str]:
    return data.read_dataset(folder)["text"].to_pylist()


def test_a_stage_that_overrides_nothing_runs_again_when_anything_it_reads_changes(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in" / "a.jsonl", ["aa", "bbbb", "cccccc"])
    first = tmp_path / "run" / "first"
    assert run(MinCharsStage(MinCharsConfig(min_chars=3), str(source)), first)[-1].startswith("min_chars: 3 rows in")
    assert run(MinCharsStage(MinCharsConfig(min_chars=3), str(source)), first)[0].startswith("min_chars: done earlier")

    # Its input file changes: it runs again and reads the new rows.
    write_jsonl(source, ["aa", "bbbb", "cccccc", "dddddddd"])
    said = run(MinCharsStage(MinCharsConfig(min_chars=3), str(source)), first)
    assert "settings or input changed" in said[0] and "its input changed" in said[0]
    assert texts(first) == ["bbbb", "cccccc", "dddddddd"]

    # A step downstream runs again when the step before it ran again with other settings.
    second = tmp_path / "run" / "second"
    run(MinCharsStage(MinCharsConfig(min_chars=1), str(first)), second)
    assert run(MinCharsStage(MinCharsConfig(min_chars=1), str(first)), second)[0].startswith("min_chars: done")
    run(MinCharsStage(MinCharsConfig(min_chars=7), str(source)), first)
    said = run(MinCharsStage(MinCharsConfig(min_chars=1), str(first)), second)
    assert "its input changed" in said[0] and texts(second) == ["dddddddd"]

    # A reference inside its settings (`@first`) points at content that changed.
    third = tmp_path / "run" / "third"
    exclude = ExcludeStage(ExcludeConfig(exclude="@first"), str(source))
    run(exclude, third, run_folder=tmp_path / "run")
    assert texts(third) == ["aa", "bbbb", "cccccc"]
    assert run(exclude, third, run_folder=tmp_path / "run")[0].startswith("exclude: done earlier")
    run(MinCharsStage(MinCharsConfig(min_chars=5), str(source)), first)
    said = run(exclude, third, run_folder=tmp_path / "run")
    assert "what exclude refers to changed" in said[0]
    assert texts(third) == ["aa", "bbbb"]


def test_a_reference_to_a_step_outside_a_recipe_is_refused(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "a.jsonl", ["aa"])
    with pytest.raises(UserError, match="'@first' names a recipe step; outside a recipe give a path"):
        run(ExcludeStage(ExcludeConfig(exclude="@first"), str(source)), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_empty_result_is_a_dataset_when_the_stage_allows_it(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "a.jsonl", ["no", "nope"])
    out = tmp_path / "verified"
    said = run(VerifyStage(VerifyConfig(), str(source)), out)
    assert said[-1] == f"verify: 2 rows in, none kept (failed_check: 2): an empty dataset -> {out}"
    assert data.is_complete(out) and data.read_dataset(out).num_rows == 0
    assert data.read_dataset(out / data.DROPPED)["drop_reason"].to_pylist() == ["failed_check"] * 2
    assert data.read_stats(out)["rows_out"] == 0
    with pytest.raises(UserError, match="produced no rows"):  # a stage that does not allow it still refuses
        run(MinCharsStage(MinCharsConfig(min_chars=9), str(source)), tmp_path / "short")


def test_the_step_table_loads_every_step_and_refuses_a_duplicate_name() -> None:
    for name in STEPS:
        cls = step_class(name)
        assert cls.name == name and cls.makes in KIND_LABELS and set(cls.takes) <= set(KIND_LABELS)
    with pytest.raises(ValueError, match="two steps are named 'dedup'"):
        _index((*ENTRIES, Entry("dedup", "elsewhere:Dedup", "another dedup")))
    with pytest.raises(UserError, match="unknown step 'dedupe'"):
        step_class("dedupe")


RECIPE_HEAD = "stages:\n  - stage: ingest\n  - stage: dedup\n"


@pytest.mark.parametrize(("steps", "where", "message"), [
    ("  - stage: tokenize\n    mixture: [{input: '@dedupp', weight: 1}]\n", ":5: stages[2] (tokenize): "
     "key 'mixture.0.input'", "'@dedupp' names no earlier step (the steps before it: ingest, dedup)"),
    ("  - stage: tokenize\n    mixture: [{input: '@later'}]\n  - stage: dedup\n    name: later\n    input: dedup\n",
     ":5: stages[2] (tokenize): key 'mixture.0.input'", "'@later' names no earlier step"),
    ("  - stage: train\n", ":4: stages[2]", "train takes token data, but the step before it, dedup, is a dataset"),
    ("  - stage: tokenize\n  - stage: export-hf\n", ":5: stages[3]",
     "export-hf takes a model, but the step before it, tokenize, is token data"),
    ("  - stage: tokenize\n  - stage: dedup\n    name: again\n", ":5: stages[3]",
     "dedup takes a dataset, but the step before it, tokenize, is token data"),
    ("  - stage: tokenize\n  - stage: train\n    model: phi-7\n", ":6: stages[3] (train): key 'model'",
     "unknown model preset 'phi-7'"),
    ("  - stage: tokenize\n  - stage: train\n    init: '@dedup'\n", ":6: stages[3] (train): key 'init'",
     "'@dedup' is a dataset (made by dedup); this setting takes a model"),
])
def test_a_recipe_that_cannot_work_exits_2_before_any_step_runs(tmp_path: Path, capsys, steps: str, where: str,
                                                                 message: str) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE_HEAD + steps)
    out = tmp_path / "run"
    assert main(["run", str(recipe), "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert f"{recipe}{where}" in error and message in error, error
    assert "Traceback" not in error and not out.exists()


def test_a_recipe_refers_to_earlier_steps_and_their_subfolders(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE_HEAD + "  - stage: tokenize\n    name: first\n  - stage: tokenize\n"
                      "    mixture: ['@ingest=2', {input: '@dedup'}]\n    tokenizer: '@first/tokenizer'\n"
                      "  - stage: dedup\n    name: strict\n    input: dedup\n    executor: {name: ray, num_cpus: 2}\n")
    steps = load_recipe(recipe).steps
    assert [step.input for step in steps] == [None, "@ingest", "@dedup", None, "@dedup"]
    assert [item.input for item in steps[3].config.mixture] == ["@ingest", "@dedup"]
    assert steps[3].config.tokenizer == "@first/tokenizer"
    assert (steps[4].executor.name, steps[4].executor.num_cpus) == ("ray", 2)


class NestedConfig(StepConfig):
    judge: LLMConfig | None = Field(None, description="The model that judges.")
    ks: list[int] = Field([1], description="Which k.")


def test_nested_settings_are_flags_too() -> None:
    parser = argparse.ArgumentParser()
    flags = FlagSettings("toy", NestedConfig, parser)
    config = flags.config(parser.parse_args(["--judge.model", "gpt-x", "--judge.base-url", "http://127.0.0.1:9/v1",
                                             "--judge.concurrency", "3", "--ks", "1", "10"]))
    assert (config.judge.model, config.judge.base_url, config.judge.concurrency, config.ks) == (
        "gpt-x", "http://127.0.0.1:9/v1", 3, [1, 10])
    with pytest.raises(UserError, match=r"textbooks toy: flag '--judge\.concurrency': Input should be greater"):
        flags.config(parser.parse_args(["--judge.model", "m", "--judge.concurrency", "0"]))


def test_help_imports_no_step_and_not_torch() -> None:
    probe = ("import sys\nfrom textbooks.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(name for name in ('torch', 'transformers', 'datasets', 'textbooks.tokens.pack', "
             "'textbooks.corpus.ingest') if name in sys.modules))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert "    tokenize" in result.stdout and result.stdout.strip().endswith("[]"), result.stdout


def test_the_package_has_no_import_cycles() -> None:
    tool = ROOT.parent / "shared" / "tools" / "import_cycles.py"
    if not tool.is_file():
        pytest.skip(f"{tool} is not on this machine")
    result = subprocess.run([sys.executable, str(tool), str(ROOT / "src" / "textbooks")], capture_output=True,
                            text=True, timeout=60, env={**os.environ, "PYTHONPATH": ""})
    assert result.returncode == 0 and result.stdout.startswith("no import cycles"), result.stdout


def test_a_temporary_left_by_a_killed_write_is_removed_by_the_next_run(tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "a.jsonl", ["aaaa", "bbbb"])
    out = tmp_path / "out"
    script = ("import sys; sys.path.insert(0, sys.argv[3]); from toy_stage import MinCharsConfig, MinCharsStage; "
              "from textbooks.pipeline.executors import make_executor; from textbooks.pipeline.runner import run_step; "
              "run_step(MinCharsStage(MinCharsConfig(), sys.argv[1]), sys.argv[2], executor=make_executor('local'))")
    killed = subprocess.run([sys.executable, "-c", script, str(source), str(out), str(Path(__file__).parent)],
                            env={**os.environ, "TEXTBOOKS_KILL_AT": "write:part-00000.parquet"},
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr  # killed with the shard's temporary written, not renamed
    left = [path for path in out.rglob(".*.tmp")]
    assert [path.name.split(".")[1] for path in left] == ["part-00000"] and not (out / "part-00000.parquet").exists()
    run(MinCharsStage(MinCharsConfig(), str(source)), out)
    assert not any(path.exists() for path in left) and list(out.rglob(".*.tmp")) == []
    assert texts(out) == ["aaaa", "bbbb"]
