"""Resume: a training run SIGKILLed past a checkpoint and resumed ends exactly where an uninterrupted run ends; a
run killed or failing while it writes best/ or a checkpoint leaves nothing that looks complete, and the next run
leaves no temporary."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import (
    ONE_THREAD_ENV,
    make_tokens,
    read_log,
    run_script,
    script_args,
    single_thread,  # noqa: F401  (autouse: torch on one thread)
    tiny_config,
)

from textbooks.errors import UserError
from textbooks.model.io import load_model, resolve_model_folder
from textbooks.pipeline.hooks import ENV_VAR
from textbooks.store.atomic import temporary_sibling
from textbooks.train import checkpoint
from textbooks.train.metrics import read_jsonl
from textbooks.train.trainer import train

# Killed after the validation of step 15: past the checkpoint of step 10, before the one of step 20.
CONFIG = tiny_config(max_steps=30, checkpoint_every=10, eval_every=5)


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tokens(tmp_path_factory.mktemp("resume")).folder


def _run_killed(tokens: Path, out: Path) -> None:
    """Start a run that pauses in its `say` after step 15's validation (best/ written), and SIGKILL it there."""
    process = subprocess.Popen([sys.executable, *script_args(CONFIG, tokens, out, pause_after_val_step=15)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ONE_THREAD_ENV)
    try:
        output = []
        for line in process.stdout:
            output.append(line)
            if "step 15: validation" in line:
                break
        else:
            pytest.fail("the run ended before step 15:\n" + "".join(output))
        assert (out / "checkpoints" / "step-0000010" / "_COMPLETE").is_file()
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()


def _lines(out: Path) -> list[dict]:
    path = out / "log.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")] if path.is_file() else []


def _losses(out: Path) -> tuple[list, list]:
    steps, vals = read_log(out)
    return ([(line["step"], line["loss"], line["lr"], line["grad_norm"]) for line in steps],
            [(line["step"], line["val_loss"]) for line in vals])


def test_killed_and_resumed_run_equals_uninterrupted_run(tokens: Path, tmp_path: Path) -> None:
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    run_script(script_args(CONFIG, tokens, whole))
    _run_killed(tokens, killed)
    assert not (killed / "checkpoints" / "step-0000020").exists()
    assert max(line["step"] for line in _lines(killed)) == 15
    assert json.loads((killed / "best" / "trainer.json").read_text())["step"] == 15

    run_script(script_args(CONFIG, tokens, killed, resume=True))

    assert _losses(killed) == _losses(whole)  # bitwise: dropout on, same masks, same data order
    for folder in ("checkpoints/step-0000030", "best"):
        final = load_file(whole / folder / "model.safetensors")
        resumed = load_file(killed / folder / "model.safetensors")
        assert final.keys() == resumed.keys()
        assert all(torch.equal(final[name], resumed[name]) for name in final)
    assert json.loads((killed / "best" / "trainer.json").read_text()) == json.loads(
        (whole / "best" / "trainer.json").read_text())
    summary = json.loads((killed / "summary.json").read_text())
    assert summary["final_step"] == 30 and summary["tokens_seen"] == 30 * 8 * 64

    with pytest.raises(UserError, match=r"lr: 0\.003 -> 0\.001"):
        train(tiny_config(**{**CONFIG.model_dump(), "lr": 1e-3}), tokens, killed, resume=True)
    with pytest.raises(UserError, match="pass --resume to continue, or choose another --out"):
        train(CONFIG, tokens, killed)


def test_unfinished_checkpoint_is_ignored_and_removed(tokens: Path, tmp_path: Path) -> None:
    """A checkpoint without its marker (a kill while writing it) is not resumed from, and is written again."""
    out = tmp_path / "run"
    config = tiny_config(max_steps=20, checkpoint_every=5, keep_checkpoints=2)
    train(config, tokens, out, say=lambda message: None)
    final = load_file(out / "checkpoints" / "step-0000020" / "model.safetensors")
    (out / "checkpoints" / "step-0000020" / "_COMPLETE").unlink()
    messages: list[str] = []

    train(config, tokens, out, say=messages.append, resume=True)

    assert any("resuming from" in message and "step-0000015" in message for message in messages)
    assert any("removed" in message and "step-0000020" in message for message in messages)
    resumed = load_file(out / "checkpoints" / "step-0000020" / "model.safetensors")
    assert all(torch.equal(final[name], resumed[name]) for name in final)
    assert [line["step"] for line in read_log(out)[0]] == list(range(1, 21))


def _hidden(out: Path) -> list[str]:
    """Every name under `out` starting with a dot: what the atomic writers use for unfinished work."""
    return sorted(str(path.relative_to(out)) for path in out.rglob(".*"))


@pytest.mark.parametrize("kill_point", ["best", pytest.param("checkpoint", marks=pytest.mark.slow)])
def test_killed_folder_write_leaves_nothing_complete_and_the_next_run_no_temporary(tokens: Path, tmp_path: Path,
                                                                                  kill_point: str) -> None:
    """Killed with the second best/ (or checkpoint) written under its temporary name, about to be renamed."""
    out, config = tmp_path / "run", tiny_config(max_steps=6, checkpoint_every=2, eval_every=2)
    killed = subprocess.run([sys.executable, *script_args(config, tokens, out)], capture_output=True, text=True,
                            env={**ONE_THREAD_ENV, ENV_VAR: f"train:{kill_point}:2"}, timeout=120, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stdout[-2000:] + killed.stderr[-2000:]
    assert _hidden(out)  # the temporary folder the kill cut short
    assert [step for step, _ in checkpoint.complete_checkpoints(out)] == [2]
    assert checkpoint.read_best(out)["step"] == (2 if kill_point == "best" else 4)  # the last whole best/
    assert resolve_model_folder(out) == out / "best" and load_model(out / "best").config.num_hidden_layers == 2
    torn = temporary_sibling(out / "log.jsonl")  # what a kill inside an atomic file write leaves
    torn.write_text('{"step": 1, "lo')
    messages: list[str] = []

    train(config, tokens, out, say=messages.append, resume=True)

    assert _hidden(out) == []
    assert any("resuming from" in message and "step-0000002" in message for message in messages)
    assert any("removed" in message and torn.name in message for message in messages)
    vals = [line for line in read_jsonl(out / "log.jsonl") if line.get("kind") == "val"]
    best = min(vals, key=lambda line: line["val_loss"])
    assert checkpoint.read_best(out) == {"step": best["step"], "val_loss": best["val_loss"]}
    assert [step for step, _ in checkpoint.complete_checkpoints(out)] == [4, 6]


def test_failing_best_write_keeps_the_last_best_and_leaves_no_temporary(tmp_path: Path) -> None:
    out = tmp_path / "run"
    checkpoint.write_best(out, lambda folder: (folder / "model.json").write_text("{}"), step=2, val_loss=3.0)

    def fails_half_way(folder: Path) -> None:
        (folder / "model.json").write_text("{}")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        checkpoint.write_best(out, fails_half_way, step=4, val_loss=2.0)
    assert sorted(path.name for path in out.iterdir()) == ["best"]
    assert checkpoint.read_best(out) == {"step": 2, "val_loss": 3.0}
