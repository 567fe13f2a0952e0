"""A recipe run again after a setting changed: the demo's steps, at a size that runs in seconds.

The recipe is recipes/demo.yaml with smaller settings (a slice of the stdlib, a 4-step training, two fresh
problems) and without its quality and finetuning steps, so every other kind of step the demo has is in it:
dataset stages, tokenize, train, export-hf, eval, report.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml
from conftest import shard_tables

from textbooks.cli import main
from textbooks.pipeline.recipe import load_recipe
from textbooks.pipeline.runner import run_recipe
from textbooks.store import data

ROOT = Path(__file__).resolve().parents[1]
SMALLER = {
    "ingest": {"include": ["json/*.py", "email/_*.py", "http/*.py"]},
    "tokenize": {"vocab_size": 320, "val_fraction": 0.1},
    "train": {"model_overrides": {"num_hidden_layers": 1, "hidden_size": 64, "intermediate_size": 128,
                                  "num_attention_heads": 2}, "seq_len": 32, "batch_size": 4, "micro_batch_size": 4,
              "max_steps": 4, "warmup_steps": 1, "checkpoint_every": 2, "eval_every": 2, "eval_windows": 4},
    "eval": {"bench": ["fresh"], "limit": 2, "max_new_tokens": 8, "batch_size": 2},
}
QUALITY = ("annotate", "embed", "classify", "filter", "decontaminate")  # decontaminate: test_decontaminate.py
FINETUNING = ("mine-exercises", "decontaminate-exercises", "exercises-tokens", "finetune", "eval-finetune")
STEP_FOLDERS = ("ingest", "dedup", "tokenize", "pretrain", "export-hf", "eval", "report_files")


def small_demo(path: Path, threshold: float = 0.7, max_steps: int = 4, steps: int | None = None) -> Path:
    recipe = yaml.safe_load((ROOT / "recipes" / "demo.yaml").read_text())
    # the quality steps (tests/test_quality.py, tests/test_annotate.py; the demo in test_pipeline.py) are left
    # out to keep each run short: dedup then reads ingest's rows
    recipe.pop("diversity", None)  # tests/test_diversity.py; the demo in test_pipeline.py
    recipe["stages"] = [step for step in recipe["stages"] if step["stage"] not in QUALITY
                        and step.get("name", step["stage"]) not in FINETUNING][:steps]
    for step in recipe["stages"]:
        step.update(SMALLER.get(step["stage"], {}))
    recipe["stages"][1]["threshold"] = threshold
    recipe["stages"][3]["max_steps"] = max_steps
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path


def run(recipe: Path, out: Path) -> list[str]:
    said: list[str] = []
    run_recipe(load_recipe(recipe), out, say=said.append)
    return said


def markers(run_dir: Path) -> dict[str, dict | None]:
    return {name: data.read_marker(run_dir / name) for name in STEP_FOLDERS}


def losses(run_dir: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run_dir / "pretrain" / "log.jsonl").read_text().splitlines()
            if '"loss"' in line]


def test_a_changed_setting_runs_every_step_after_it_again_and_ends_as_a_fresh_run(tmp_path: Path) -> None:
    first, stricter, longer = (small_demo(tmp_path / "first.yaml"), small_demo(tmp_path / "stricter.yaml", 0.8),
                               small_demo(tmp_path / "longer.yaml", 0.8, max_steps=6))
    run_dir, fresh = tmp_path / "run", tmp_path / "fresh"
    run(first, run_dir)
    before = markers(run_dir)
    assert all(before.values())

    # Killed while dedup makes its first shard anew: only dedup has decided to run again, so only its marker is gone.
    env = {**os.environ, "TEXTBOOKS_KILL_AT": "dedup:map:1"}
    killed = subprocess.run([sys.executable, "-m", "textbooks", "run", str(stricter), "--out", str(run_dir)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    after_kill = markers(run_dir)
    assert after_kill["dedup"] is None and after_kill["ingest"] == before["ingest"]
    assert all(after_kill[name] == before[name] for name in STEP_FOLDERS[2:])

    said = run(stricter, run_dir)
    assert any(line.startswith("ingest: done earlier") for line in said)
    for name in ("tokenize", "train", "export-hf", "eval", "report"):
        assert any(line.startswith(f"{name}: settings or input changed") for line in said), (name, said)
    assert [line.split(":")[0] for line in said if line.endswith("nothing to do")] == ["ingest"]
    assert any(line.startswith("dedup: resuming, 1/") for line in said)  # the shard the killed run made
    run(stricter, fresh)
    for name in ("dedup", "tokenize"):
        assert shard_tables(run_dir / name) == shard_tables(fresh / name)
    assert (run_dir / "tokenize" / "train.bin").read_bytes() == (fresh / "tokenize" / "train.bin").read_bytes()
    assert losses(run_dir) == losses(fresh)
    summary = json.loads((run_dir / "eval" / "summary.json").read_text())
    assert summary["benchmarks"] == json.loads((fresh / "eval" / "summary.json").read_text())["benchmarks"]

    # Train's max_steps: the steps before it are done; train starts over (it does not refuse) and so does the rest.
    said = run(longer, run_dir)
    assert [line.split(":")[0] for line in said if "done earlier" in line] == ["ingest", "dedup", "tokenize"]
    assert any(line.startswith("train: settings or input changed") and "max_steps: 4 -> 6" in line
               for line in said)
    run(longer, fresh)
    assert len(losses(run_dir)) == 6 and losses(run_dir) == losses(fresh)


def test_train_resume_with_other_settings_exits_2_naming_them_and_touches_nothing(tmp_path: Path, capsys) -> None:
    recipe = small_demo(tmp_path / "recipe.yaml", steps=4)  # up to train
    settings = yaml.safe_load(recipe.read_text())
    settings["stages"][0]["files_per_task"] = 4  # several parts: ingest and dedup run on the process pool
    recipe.write_text(yaml.safe_dump(settings, sort_keys=False))
    run_dir = tmp_path / "run"
    config = load_recipe(recipe).steps[3].config
    said, pool_workers = [], []  # the process pool's workers alive when train reports: none, it is closed first

    def say(line: str) -> None:
        said.append(line)
        if line.startswith("train"):
            pool_workers.append(len(multiprocessing.active_children()))

    run_recipe(load_recipe(recipe), run_dir, say=say)
    assert any(line.startswith("dedup") for line in said) and set(pool_workers) == {0}, (said, pool_workers)
    pretrain = run_dir / "pretrain"
    files = {path: path.stat().st_mtime_ns for path in pretrain.rglob("*")}
    flags = ["--input", str(run_dir / "tokenize"), "--out", str(pretrain), "--resume", "--lr", "0.01",
             "--max-steps", "5", "--model", config.model, "--seq-len", str(config.seq_len)]
    assert main(["train", *flags]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"textbooks: error: train --resume: {pretrain} was made with other settings")
    assert "lr: None -> 0.01" in error and "max_steps: 4 -> 5" in error and "Traceback" not in error
    assert {path: path.stat().st_mtime_ns for path in pretrain.rglob("*")} == files
