"""Cards for the Hugging Face Hub: the README.md of every dataset folder (front matter the Hub and `datasets`
read, rows, columns, drops, the steps that made it, diversity figures) and of an exported model (the recipe, the
data mixture and token counts, the training settings, evaluation figures)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from test_runner import write_inputs
from toy_stage import MinCharsConfig, MinCharsStage

from textbooks.pipeline.card import CARD, size_category
from textbooks.pipeline.executors import make_executor
from textbooks.pipeline.runner import run_step
from textbooks.store import data
from textbooks.store.inputs import plan_parts


def front_matter(path: Path) -> tuple[dict, str]:
    _, matter, body = path.read_text(encoding="utf-8").split("---\n", 2)
    return yaml.safe_load(matter), body


@pytest.fixture
def chain(tmp_path: Path) -> Path:
    """Two dataset steps in a run folder, the second reading the first."""
    executor = make_executor("local", 1)
    run = tmp_path / "run"
    run_step(MinCharsStage(MinCharsConfig(min_chars=3), str(write_inputs(tmp_path / "in"))), run / "short",
             executor=executor, say=lambda message: None)
    run_step(MinCharsStage(MinCharsConfig(min_chars=5), str(run / "short")), run / "long", executor=executor,
             say=lambda message: None)
    return run


def test_a_dataset_card_names_its_shards_rows_drops_and_the_steps_that_made_it(chain: Path, tmp_path: Path) -> None:
    from datasets import load_dataset
    from huggingface_hub import DatasetCard

    folder = chain / "long"
    matter, body = front_matter(folder / CARD)
    assert matter["configs"][0] == {"config_name": "default", "default": True,
                                    "data_files": [{"split": "train", "path": "part-*.parquet"}]}
    assert matter["configs"][1]["config_name"] == "dropped" and matter["size_categories"] == ["n<1K"]
    assert DatasetCard.load(folder / CARD).data.to_dict()["configs"] == matter["configs"]
    cache = str(tmp_path / "hf-cache")
    for config in matter["configs"]:
        (files,) = config["data_files"]
        rows = load_dataset("parquet", data_files=str(folder / files["path"]), cache_dir=cache)["train"]
        expected = data.read_dataset(folder if config["config_name"] == "default" else folder / data.DROPPED)
        assert sorted(rows["id"]) == sorted(expected.column("id").to_pylist())
    by_card = load_dataset(str(folder), cache_dir=cache)["train"]  # the card's configs, so not dropped/
    assert sorted(by_card["id"]) == sorted(data.read_dataset(folder).column("id").to_pylist())
    assert "| `text` | string |" in body and "| too_short | 3 |" in body
    assert "| min_chars | short | 9 | 5 | too_short: 4 |" in body  # the step before, from its own stats.json
    assert "| min_chars | long | 5 | 2 | too_short: 3 |" in body
    recipe = yaml.safe_load(body.split("```yaml\n")[1].split("```")[0])
    assert recipe == [{"stage": "min_chars", "name": "short", "min_chars": 3, "fail_on": None},
                      {"stage": "min_chars", "name": "long", "min_chars": 5, "fail_on": None}]
    assert f"The first step read {(tmp_path / 'in').resolve()}." in body
    assert {Path(part.path).suffix for part in plan_parts(str(folder))} == {".parquet"}  # the card is no shard


def test_diversity_figures_join_the_card_when_a_recipe_measures_the_dataset(chain: Path) -> None:
    from textbooks.diversity.step import measure_step

    before = (chain / "long" / CARD).read_text()
    assert "## Diversity" not in before
    measure_step(chain / "long", say=lambda message: None)
    after = (chain / "long" / CARD).read_text()
    figures = json.loads((chain / "long" / "diversity.json").read_text())
    assert "## Diversity" in after and f"| rows measured | {figures['rows']:,} |" in after
    assert after.startswith(before)  # the same card, with the figures after it


def test_size_categories_follow_the_hub_bounds() -> None:
    assert [size_category(rows) for rows in (0, 999, 1000, 54_321, 2_000_000_000)] == [
        "n<1K", "n<1K", "1K<n<10K", "10K<n<100K", "n>1B"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run folder: stdlib rows, their token data, and a 10-step tiny training run read from them."""
    from train_helpers import make_tokens, one_thread, tiny_config

    from textbooks.train.step import TrainStep

    run = tmp_path_factory.mktemp("card")
    make_tokens(run, max_bytes=700_000)
    with one_thread():
        run_step(TrainStep(tiny_config(max_steps=10, checkpoint_every=5), str(run / "tokens")), run / "train",
                 say=lambda message: None)
    return run


def fake_eval(folder: Path, model: str) -> Path:
    """An eval folder as `textbooks eval` writes it (the figures are made up: this test reads, not scores)."""
    summary = {"model": model, "benchmarks": {
        "humaneval": {"problems": 164, "samples": 1, "pass@k": {"1": 0.0488}, "solution_loss": 1.25},
        "fresh": {"problems": 2, "samples": 1, "pass@k": {"1": 0.5}, "solution_loss": None}}}
    data.write_json(summary, folder / "summary.json")
    data.write_marker(folder, {"stage": "eval", "kind": "evaluation", "fingerprint": "made-up"})
    return folder


def test_the_exported_model_card_has_the_recipe_data_settings_and_evaluation(trained: Path, capsys) -> None:
    from huggingface_hub import ModelCard

    from textbooks.cli import main
    from textbooks.model.io import load_model

    evaluation = fake_eval(trained / "eval", str(trained / "train"))
    out = trained / "hf"
    assert main(["export-hf", str(trained / "train"), str(out), "--eval", str(evaluation), "--license", "mit"]) == 0
    card = ModelCard.load(out / "README.md")
    assert (card.data.license, card.data.library_name) == ("mit", "transformers")
    results = {(result.dataset_type, result.metric_type): result.metric_value for result in card.data.eval_results}
    assert results == {("openai/openai_humaneval", "pass@1"): 4.88, ("openai/openai_humaneval", "solution_loss"): 1.25,
                       ("fresh", "pass@1"): 50.0}
    body = card.text
    parameters = load_model(trained / "train" / "best").num_parameters()
    assert f"| parameters | {parameters:,} |" in body and "| preset | tiny |" in body
    meta = json.loads((trained / "tokens" / "meta.json").read_text())
    assert f"{meta['splits']['train']['tokens']:,} training tokens" in body
    assert f"| {trained / 'dataset'} | not recorded | 1.0 | {meta['splits']['train']['tokens']:,} | 100.0% |" in body
    summary = json.loads((trained / "train" / "summary.json").read_text())
    assert f"| tokens seen | {summary['tokens_seen']:,} |" in body and "| lr | 0.003 |" in body
    assert "| humaneval | 164 | 1 | 4.9% | 1.250 |" in body and "| fresh | 2 | 1 | 50.0% | not recorded |" in body
    recipe = yaml.safe_load(body.split("```yaml\n")[1].split("```")[0])
    assert recipe[0]["stage"] == "train" and recipe[0]["max_steps"] == 10
    assert "| best validation loss | " in body and "| hardware | 1 x cpu, fp32 |" in body


def test_a_model_without_a_training_run_gets_a_card_that_says_what_is_not_recorded(trained: Path) -> None:
    import shutil

    from huggingface_hub import ModelCard

    from textbooks.model.step import ExportConfig, ExportStep

    alone = trained / "alone"
    shutil.copytree(trained / "train" / "best", alone)  # a model folder with no run around it
    run_step(ExportStep(ExportConfig(), str(alone)), trained / "hf-alone", say=lambda message: None)
    card = ModelCard.load(trained / "hf-alone" / "README.md")
    assert card.data.license is None and card.data.eval_results is None
    assert "Not recorded: " in card.text and "is not a checkpoint of a training run" in card.text
    assert "| num_hidden_layers | 2 |" in card.text


def test_an_eval_folder_without_an_evaluation_is_refused_before_the_export(trained: Path, capsys) -> None:
    from textbooks.cli import main

    wrong = trained / "hf-wrong"
    assert main(["export-hf", str(trained / "train"), str(wrong), "--eval", str(trained / "tokens")]) == 2
    assert "holds no evaluation" in capsys.readouterr().err and not (wrong / "config.json").exists()
