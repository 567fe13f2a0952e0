"""Training under torchrun on the CPU (gloo): DDP and FSDP2 with two processes, one log, exact FSDP resume; sharded
checkpoints (every rank writing its own) killed and resumed bit for bit, loaded into one process, exported."""

from __future__ import annotations

import json
import shutil
import socket
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
from textbooks.model.hf import export_checkpoint
from textbooks.model.io import load_model
from textbooks.pipeline.hooks import ENV_VAR
from textbooks.store import data
from textbooks.train import checkpoint, distributed
from textbooks.train.plan import plan_run
from textbooks.train.trainer import Trainer, train

DDP = tiny_config(max_steps=6, checkpoint_every=3, eval_every=3)
FSDP = tiny_config(max_steps=6, checkpoint_every=3, eval_every=3, fsdp=True)
# The same run, but each rank writes its shards and recomputes its blocks' activations: neither changes a loss.
SHARDED = tiny_config(**{**FSDP.model_dump(), "checkpoint_format": "sharded", "activation_checkpointing": True})


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


@pytest.fixture(scope="module")
def fsdp_run(tokens: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted FSDP run writing full checkpoints (keep it as it is: tests copy what they change)."""
    out = tmp_path_factory.mktemp("fsdp") / "run"
    run_script(script_args(FSDP, tokens, out), torchrun_processes=2)
    return out


def test_fsdp_matches_ddp_and_resumes_exactly(ddp_run: Path, fsdp_run: Path, tmp_path: Path, tokens: Path) -> None:
    out = tmp_path / "fsdp"
    shutil.copytree(fsdp_run, out)
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


def _equal_states(state: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> bool:
    return state.keys() == reference.keys() and all(torch.equal(state[name], reference[name]) for name in state)


@pytest.fixture(scope="module")
def sharded_run(tokens: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A sharded run killed with its step-6 checkpoint written but not renamed into place, then resumed; what
    it left when killed is noted for the test that checks it."""
    out = tmp_path_factory.mktemp("sharded") / "run"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    killed = subprocess.run(launcher + script_args(SHARDED, tokens, out), capture_output=True, text=True,
                            timeout=120, check=False, env={**ONE_THREAD_ENV, ENV_VAR: "train:checkpoint:2"})
    left = {"returncode": killed.returncode, "losses": [line["loss"] for line in read_log(out)[0]],
            "complete": [step for step, _ in checkpoint.complete_checkpoints(out)],
            "temporaries": sorted(path.name for path in (out / "checkpoints").iterdir() if path.name[0] == "."),
            "files": sorted(path.name for path in (out / "checkpoints" / "step-0000003").rglob("*"))}
    run_script(script_args(SHARDED, tokens, out, resume=True), torchrun_processes=2)
    return {"out": out, "killed": left}


def test_sharded_run_killed_while_checkpointing_resumes_bit_for_bit(sharded_run: dict, fsdp_run: Path) -> None:
    out, killed = sharded_run["out"], sharded_run["killed"]
    uninterrupted = [line["loss"] for line in read_log(fsdp_run)[0]]
    assert killed["returncode"] != 0 and killed["complete"] == [3] and killed["temporaries"] == [".step-0000006.tmp"]
    assert killed["losses"] == uninterrupted  # activation checkpointing and the format change no loss
    assert {"__0_0.distcp", "__1_0.distcp", ".metadata", "model.json", "trainer.pt", "_COMPLETE"} <= set(
        killed["files"]) and not {"model.safetensors", "optimizer.pt"} & set(killed["files"])  # nothing gathered

    assert [line["loss"] for line in read_log(out)[0]] == uninterrupted  # resumed from step 3, bitwise
    for folder in ("checkpoints/step-0000006", "best"):
        reference = load_file(fsdp_run / folder / "model.safetensors")
        assert _equal_states(load_model(out / folder).state_dict(), reference)  # read whole, in one process
    assert sorted(path.name for path in (out / "checkpoints").iterdir()) == ["step-0000003", "step-0000006"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_sharded_checkpoint_of_two_processes_loads_and_trains_on_in_one(sharded_run: dict, fsdp_run: Path,
                                                                       tokens: Path, tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Step 3 of the 2-process run resumed by one process (torchrun --nproc_per_node 1): the weights and AdamW
    state it loads are those the 2-process run had; it then trains on with the same data, other dropout masks."""
    out = tmp_path / "run"
    shutil.copytree(sharded_run["out"] / "checkpoints" / "step-0000003", out / "checkpoints" / "step-0000003")
    for name, value in {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": str(_free_port())}.items():
        monkeypatch.setenv(name, value)
    world = distributed.world_from_env()
    started = distributed.start(world, torch.device("cpu"))
    try:
        trainer = Trainer(plan_run(SHARDED, tokens, out, world, resume=True), say=lambda message: None)
        reference = fsdp_run / "checkpoints" / "step-0000003"
        assert _equal_states(distributed.full_model_state(trainer.model, fsdp=True),
                             load_file(reference / "model.safetensors"))
        optimizer = distributed.full_optimizer_state(trainer.model, trainer.optimizer, fsdp=True)["state"]
        saved = checkpoint.load_torch(reference / checkpoint.OPTIMIZER)["state"]
        assert optimizer.keys() == saved.keys() and all(_equal_states(optimizer[name], saved[name]) for name in saved)
        summary = trainer.run()
    finally:
        distributed.stop(started)
    assert summary["final_step"] == 6 and summary["world_size"] == 1
    two_processes = {line["step"]: line["loss"] for line in read_log(fsdp_run)[0]}
    for line in read_log(out)[0]:
        assert line["loss"] == pytest.approx(two_processes[line["step"]], rel=0.02)
    assert sorted(path.name for path in (out / "checkpoints" / "step-0000006" / "sharded").iterdir()) == [
        ".metadata", "__0_0.distcp"]


def test_export_hf_from_a_sharded_run_gives_the_logits_of_a_full_one(sharded_run: dict, fsdp_run: Path,
                                                                     tmp_path: Path) -> None:
    from transformers import PhiForCausalLM

    ids = torch.arange(1, 65).remainder(500).view(2, 32)
    for source in ("", "checkpoints/step-0000006"):  # the run folder (its best/) and a checkpoint
        logits = []
        for run, name in ((sharded_run["out"], "sharded"), (fsdp_run, "full")):
            exported = export_checkpoint(run / source, tmp_path / f"{name}-{source.replace('/', '-')}")
            with torch.no_grad():
                logits.append(PhiForCausalLM.from_pretrained(exported).eval()(ids).logits)
        assert torch.equal(*logits)


SPY = """
import json, os, sys
from pathlib import Path
from textbooks.pipeline.runner import run_step
from textbooks.store import data
from textbooks.train.config import TrainConfig
from textbooks.train.step import TrainStep

spec = json.loads(sys.argv[1])
written = Path(spec["log"]) / f"rank-{os.environ['RANK']}.txt"
real = data.write_json

def write_json(obj, path):  # the real write, noted per rank
    with open(written, "a") as handle:
        handle.write(Path(path).name + "\\n")
    real(obj, path)

data.write_json = write_json
run_step(TrainStep(TrainConfig(**spec["config"]), spec["data"]), spec["out"])
"""


def test_under_torchrun_only_rank_0_writes_the_stats_and_the_marker(tokens: Path, tmp_path: Path) -> None:
    script = tmp_path / "spy.py"
    script.write_text(SPY)
    out = tmp_path / "run"
    spec = {"config": tiny_config(max_steps=2, checkpoint_every=2, eval_every=2).model_dump(mode="json"),
            "data": str(tokens), "out": str(out), "log": str(tmp_path)}
    run_script([str(script), json.dumps(spec)], torchrun_processes=2)
    by_rank = {rank: (tmp_path / f"rank-{rank}.txt").read_text().split() if (tmp_path / f"rank-{rank}.txt").exists()
               else [] for rank in (0, 1)}
    assert {"stats.json", "_SUCCESS"} <= set(by_rank[0])
    assert not {"stats.json", "_SUCCESS"} & set(by_rank[1])
    assert data.read_stats(out)["world_size"] == 2 and data.is_complete(out)
