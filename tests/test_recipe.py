"""Recipes are validated on load, with messages that name the file, the line, the key and what was expected."""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path

import pytest

from textbooks.corpus.globs import DEFAULT_EXCLUDE, GlobFilter, list_files
from textbooks.errors import UserError
from textbooks.pipeline.recipe import load_recipe


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(UserError) as caught:
        load_recipe(write(tmp_path, text))
    return str(caught.value)


def test_demo_recipe_loads(repo_root):
    recipe = load_recipe(repo_root / "recipes" / "demo.yaml")
    steps = {step.name: step for step in recipe.steps}
    assert [step.kind for step in recipe.steps] == ["ingest", "annotate", "embed", "classify", "filter", "dedup",
                                                    "decontaminate", "tokenize", "train", "eval", "export-hf",
                                                    "mine-exercises", "decontaminate", "tokenize", "train", "eval",
                                                    "report"]
    assert steps["annotate"].input == "@ingest" and steps["annotate"].config.annotator == "rubric"
    assert steps["embed"].input == steps["classify"].input == "@ingest"
    assert (steps["classify"].config.labels, steps["classify"].config.embeddings) == ("@annotate", "@embed")
    assert steps["filter"].input == "@classify" and steps["dedup"].input == "@filter"
    assert steps["dedup"].config.threshold == 0.7
    assert [steps[name].input for name in ("decontaminate", "tokenize", "pretrain", "export-hf")] == [
        "@dedup", "@decontaminate", "@tokenize", "@pretrain"]
    assert steps["pretrain"].config.model == "tiny"
    assert steps["eval"].input == "@pretrain" and steps["eval"].config.bench == ["fresh", "humaneval"]
    assert steps["export-hf"].config.eval == ["@eval"]  # the model card's figures
    assert [steps[name].input for name in ("mine-exercises", "decontaminate-exercises", "exercises-tokens",
                                           "finetune", "eval-finetune")] == [
        "@ingest", "@mine-exercises", "@decontaminate-exercises", "@exercises-tokens", "@finetune"]
    assert steps["eval-finetune"].config.decontamination == "@decontaminate-exercises"
    assert steps["exercises-tokens"].config.tokenizer == "@tokenize/tokenizer"
    assert (steps["finetune"].config.phase, steps["finetune"].config.init) == ("finetune", "@pretrain")


def test_every_recipe_of_the_project_loads(repo_root):
    for path in sorted((repo_root / "recipes").glob("*.yaml")):
        assert load_recipe(path).steps, path


def test_job_settings_are_checked(tmp_path):
    message = error_of(tmp_path, "stages:\n  - stage: tokenize\n    input: .\n    vocab_size: lots\n")
    assert "recipe.yaml:4" in message and "vocab_size" in message
    message = error_of(tmp_path, "stages:\n  - stage: train\n    input: .\n    stage_of_training: pretrain\n")
    assert "unknown key 'stage_of_training'" in message and "phase" in message


def test_unknown_stage_key(tmp_path):
    message = error_of(tmp_path, "stages:\n  - stage: ingest\n  - stage: dedup\n    treshold: 0.8\n")
    assert message.startswith(f"{tmp_path / 'recipe.yaml'}:4: stages[1] (dedup): unknown key 'treshold'")
    assert "expected one of:" in message and "threshold" in message


def test_unknown_top_level_key(tmp_path):
    message = error_of(tmp_path, "engin: ray\nstages:\n  - stage: ingest\n")
    assert message == (f"{tmp_path / 'recipe.yaml'}:1: unknown key 'engin'; "
                       "expected one of: diversity, engine, ray_address, stages, workers")


def test_diversity_names_steps_of_the_recipe(tmp_path):
    message = error_of(tmp_path, "diversity: [ingest, dedupe]\nstages:\n  - stage: ingest\n  - stage: dedup\n")
    assert "diversity names 'dedupe', which is no step of this recipe" in message and "ingest, dedup" in message


def test_unknown_stage(tmp_path):
    message = error_of(tmp_path, "stages:\n  - stage: ingest\n  - stage: dedupe\n")
    assert ":3: stages[1]: unknown stage 'dedupe'; expected one of:" in message
    assert "dedup" in message and "ingest" in message and "report" in message


def test_wrong_type(tmp_path):
    message = error_of(tmp_path, "stages:\n  - stage: ingest\n  - stage: dedup\n    threshold: high\n")
    assert ":4: stages[1] (dedup): key 'threshold':" in message
    assert "valid number" in message and "'high'" in message


def test_wrong_engine(tmp_path):
    message = error_of(tmp_path, "engine: spark\nstages:\n  - stage: ingest\n")
    assert ":1: key 'engine':" in message and "'local' or 'ray'" in message


def test_missing_input(tmp_path):
    message = error_of(tmp_path, "stages:\n  - stage: dedup\n    input: no/such/corpus.jsonl\n")
    assert "stages[0]: key 'input': 'no/such/corpus.jsonl' is neither an earlier stage nor an existing path" in message


def test_first_stage_without_input(tmp_path):
    message = error_of(tmp_path, "stages:\n  - stage: dedup\n")
    assert "stage dedup needs an `input`" in message


def test_not_a_mapping_and_not_yaml(tmp_path):
    assert "a recipe is a mapping with a `stages` list" in error_of(tmp_path, "- just\n- a list\n")
    assert "not valid YAML" in error_of(tmp_path, "stages: [unclosed\n")
    with pytest.raises(UserError, match="no such recipe file"):
        load_recipe(tmp_path / "absent.yaml")


def test_duplicate_step_names(tmp_path):
    message = error_of(tmp_path, "stages:\n  - stage: ingest\n  - stage: ingest\n")
    assert "a step named 'ingest' comes earlier" in message


def test_input_by_stage_name(tmp_path):
    recipe = load_recipe(write(tmp_path, (
        "stages:\n  - stage: ingest\n    name: code\n  - stage: ingest\n    name: more\n"
        "  - stage: dedup\n    input: code\n")))
    assert recipe.steps[2].input == "@code"


@pytest.mark.parametrize("name", ["ablation.yaml", "ablation-gpu.yaml"])
def test_the_ablation_arms_share_one_budget_and_train_on_decontaminated_data(repo_root, name):
    """recipes/ablation.yaml (and its GPU budget): every arm packs the same tokens with one tokenizer and trains
    alike; all of the data it trains on comes through a decontaminate step; compare requires equal budgets."""
    recipe = load_recipe(repo_root / "recipes" / name)
    steps = {step.name: step for step in recipe.steps}
    arms = ("raw", "filtered", "synthetic")
    tokens = [steps[f"tokens-{arm}"] for arm in arms]
    assert len({step.config.tokens for step in tokens}) == 1 and tokens[0].config.tokens
    assert [step.config.tokenizer for step in tokens[1:]] == ["@tokens-raw/tokenizer"] * 2
    assert steps["tokens-raw"].input == "@decontaminate" and steps["filter"].input == "@classify"
    assert steps["classify"].input == "@decontaminate" and steps["exercises-tokens"].input == "@exercises"
    assert steps["exercises"].kind == "decontaminate" and steps["exercises"].input == "@mine-exercises"
    assert [source.input for source in steps["tokens-synthetic"].config.mixture] == ["@filter", "@textbooks"]
    assert steps["textbooks"].kind == "decontaminate" and steps["textbooks"].input == "@textbook-sections"
    assert steps["textbook-sections"].config.form == "textbook"
    # the textbook sections and the finetuning exercises come from disjoint halves of the standard library
    exercises, sections = (GlobFilter(steps[name].config.include, steps[name].config.exclude)
                           for name in ("stdlib", "stdlib-a-l"))
    stdlib = list_files(Path(sysconfig.get_paths()["stdlib"]), ["**/*.py"], DEFAULT_EXCLUDE)
    assert not any(exercises.wants(path) and sections.wants(path) for path in stdlib)
    assert all(exercises.wants(path) or sections.wants(path) for path in stdlib)
    for phase in ("pretrain", "finetune"):
        runs = [steps[f"{phase}-{arm}-{seed}"] for arm in arms for seed in range(3)]
        settings = {json.dumps(run.config.model_dump(exclude={"seed", "init"}), sort_keys=True, default=str)
                    for run in runs}
        assert len(settings) == 1, phase  # the arms train alike: only the seed (and the model it starts from)
        assert sorted({run.config.seed for run in runs}) == [0, 1, 2]
    assert steps["compare"].config.same_budget and len(steps["compare"].config.evals) == 9
    if name == "ablation-gpu.yaml":  # each arm's first seed sampled for pass@10
        assert [steps[f"sampled-{arm}"].input for arm in arms] == [f"@finetune-{arm}-0" for arm in arms]
        assert {(steps[f"sampled-{arm}"].config.n, steps[f"sampled-{arm}"].config.k[-1]) for arm in arms} == {(20, 10)}
        assert steps["compare-sampled"].config.same_budget
