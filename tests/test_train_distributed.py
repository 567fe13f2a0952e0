"""Training under torchrun on the CPU (gloo): DDP and FSDP2 with two processes, one log, exact FSDP resume."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import (
    make_tokens,
    read_log,
    run_script,
    script_args,
    single_thread,  # noqa: F401  (autouse: torch on one thread)
    tiny_config,
)

from textbooks.errors import UserError
from textbooks.train.trainer import train

DDP = tiny_config(max_steps=6, checkpoint_every=3, eval_every=3)
FSDP = tiny_config(max_steps=6, checkpoint_every=3, eval_every=3, fsdp=True)


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tokens(tmp_path_factory.mktemp("distributed")).folder


@pytest.fixture(scope="module")
def ddp_run(tokens: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ddp") / "run"
    run_script(script_args(DDP, tokens, out), torchrun_processes=2)
    return out


def test_ddp_writes_one_log_and_refuses_another_world_size_on_resume(tokens: Path, ddp_run: Path) -> None:
    steps, vals = read_log(ddp_run)
    assert [line["step"] for line in steps] == [1, 2, 3, 4, 5, 6]  # rank 0 alone writes
    assert [line["step"] for line in vals] == [3, 6] and vals[1]["val_loss"] < vals[0]["val_loss"]
    summary = json.loads((ddp_run / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["tokens_seen"] == 6 * 8 * 64
    with pytest.raises(UserError, match=r"run of 2 process\(es\); this one has 1"):
        train(DDP, tokens, ddp_run, resume=True)


def test_fsdp_matches_ddp_and_resumes_exactly(tokens: Path, ddp_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "fsdp"
    run_script(script_args(FSDP, tokens, out), torchrun_processes=2)
    fsdp_steps, ddp_steps = read_log(out)[0], read_log(ddp_run)[0]
    for sharded, replicated in zip(fsdp_steps, ddp_steps, strict=True):  # same data, same dropout masks
        assert sharded["loss"] == pytest.approx(replicated["loss"], rel=1e-5)
    final = out / "checkpoints" / "step-0000006"
    weights = load_file(final / "model.safetensors")  # gathered from the shards into one model folder
    reference = load_file(ddp_run / "checkpoints" / "step-0000006" / "model.safetensors")
    assert all(torch.allclose(weights[name], reference[name], atol=1e-5) for name in reference)

    (final / "_COMPLETE").unlink()  # as if killed while writing it: resume from step 3
    run_script(script_args(FSDP, tokens, out, resume=True), torchrun_processes=2)
    resumed = load_file(final / "model.safetensors")
    assert all(torch.equal(weights[name], resumed[name]) for name in weights)
    assert [line["loss"] for line in read_log(out)[0]] == [line["loss"] for line in fsdp_steps]
