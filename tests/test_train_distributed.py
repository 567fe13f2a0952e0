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
from textbooks.store import data
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
