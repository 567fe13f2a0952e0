"""Shared pieces of the training tests: real token data from the standard library, tiny settings, and a script
that runs `train` in a fresh process (plainly or under torchrun) so a test can kill it.

    python tests/train_helpers.py '{"config": {...}, "data": "...", "out": "...", "resume": false}'

With "pause_after_val_step": N the script stops for a minute after the validation of step N (inside the
trainer's `say` callback), so that a test can SIGKILL it at a known point past a checkpoint.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pytest
import torch

from textbooks.pipeline.runner import run_step
from textbooks.store import data
from textbooks.tokens.folder import TokenData, open_tokens
from textbooks.tokens.pack import TokenizeConfig, TokenizeStep
from textbooks.train.config import TrainConfig

SCRIPT = Path(__file__).resolve()
# One thread per process: two threads on a two-core machine that also runs other work wait on each other for
# seconds per step, and every run computes alike whatever else the machine runs.
ONE_THREAD_ENV = {**os.environ, "OMP_NUM_THREADS": "1"}
TINY_MODEL = {"num_hidden_layers": 2, "hidden_size": 128, "intermediate_size": 512, "num_attention_heads": 2}


@contextmanager
def one_thread() -> Iterator[None]:
    """torch on one thread inside the block, as the scripts run (tiny models gain nothing from more)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def single_thread() -> Iterator[None]:
    """Every test of a module that imports this fixture runs torch on one thread."""
    with one_thread():
        yield


def stdlib_dataset(folder: Path, max_bytes: int = 1_500_000) -> Path:
    """A finished dataset of this interpreter's standard-library modules under 20 kB (one document per file)."""
    rows, used = [], 0
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).parts
        if {"site-packages", "test", "tests", "idlelib"} & set(parts) or path.stat().st_size > 20_000:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        if used + len(text) > max_bytes:
            break
        rows.append({"id": str(path.relative_to(root)), "text": text, "source": "stdlib"})
        used += len(text)
    data.write_table(pa.Table.from_pylist(rows), folder / data.shard_name(0))
    data.write_marker(folder, {"stage": "ingest", "fingerprint": f"stdlib-{used}"})
    return folder


def make_tokens(folder: Path, vocab_size: int = 512, max_bytes: int = 1_500_000) -> TokenData:
    """Standard-library code tokenized by the real `tokenize` job with a small trained BPE."""
    dataset = stdlib_dataset(folder / "dataset", max_bytes)
    job = TokenizeStep(TokenizeConfig(vocab_size=vocab_size, val_fraction=0.05), input=str(dataset))
    run_step(job, folder / "tokens", say=lambda message: None)
    return open_tokens(folder / "tokens")


def tiny_config(**settings) -> TrainConfig:
    """A two-layer, 128-wide phi on 64-token windows: a step takes milliseconds on a CPU."""
    values = {"model": "tiny", "model_overrides": TINY_MODEL, "seq_len": 64, "batch_size": 8,
              "micro_batch_size": 4, "lr": 3e-3, "warmup_steps": 5, "max_steps": 20, "checkpoint_every": 10,
              "eval_windows": 16, "device": "cpu", "seed": 7}
    return TrainConfig(**{**values, **settings})


def read_log(out: Path) -> tuple[list[dict], list[dict]]:
    lines = [json.loads(line) for line in (Path(out) / "log.jsonl").read_text().splitlines()]
    return [line for line in lines if line.get("kind") != "val"], [line for line in lines if line.get("kind") == "val"]


def script_args(config: TrainConfig, tokens: Path, out: Path, resume: bool = False,
                pause_after_val_step: int | None = None) -> list[str]:
    return [str(SCRIPT), json.dumps({"config": config.model_dump(mode="json"), "data": str(tokens),
                                     "out": str(out), "resume": resume,
                                     "pause_after_val_step": pause_after_val_step})]


def run_script(args: list[str], torchrun_processes: int | None = None, timeout: float = 120) -> None:
    """Run the script to the end (under torchrun with that many processes); a failure shows its output."""
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                 str(torchrun_processes)] if torchrun_processes else [sys.executable])
    result = subprocess.run(launcher + args, capture_output=True, text=True, timeout=timeout, env=ONE_THREAD_ENV,
                            check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def main(argument: str) -> None:
    from textbooks.train.trainer import train

    spec = json.loads(argument)
    pause_at = spec["pause_after_val_step"]

    def say(message: str) -> None:
        print(message, flush=True)
        if pause_at is not None and f"step {pause_at}: validation" in message:
            time.sleep(60)

    train(TrainConfig(**spec["config"]), Path(spec["data"]), Path(spec["out"]), say=say, resume=spec["resume"])


if __name__ == "__main__":
    main(sys.argv[1])
