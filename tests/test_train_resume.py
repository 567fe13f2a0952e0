"""Resume: a training run SIGKILLed past a checkpoint and resumed ends exactly where an uninterrupted run ends."""

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
