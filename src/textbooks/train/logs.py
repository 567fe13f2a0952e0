"""Where a run's step records go: OUT/log.jsonl always, and TensorBoard or Weights & Biases when asked.

    textbooks train --input TOKENS --model tiny --out runs/x/pretrain --log tensorboard wandb
    tensorboard --logdir runs/x/pretrain/tensorboard
    wandb sync runs/x/pretrain/wandb/offline-run-*      # an offline run, uploaded later

Each backend is a small class with `write(record)` and `close()`; rank 0 alone opens them (the trainer's
`open_logs`). A record is what the trainer writes to log.jsonl: a training step (`loss`, `lr`, `grad_norm`,
`tokens_per_s`, `mfu`, ...) or a validation (`{"kind": "val", "step": 25, "val_loss": 3.2}`); the backends get
its numbers as `train/loss`, `train/lr`, ..., `val/loss`, at the record's step.

Resuming: TensorBoard purges the events after the checkpoint's step (`purge_step`), so the steps a killed run
logged past its checkpoint are not shown twice. W&B continues the same run: its id is kept in OUT/wandb/run-id.
Without `WANDB_MODE` set, W&B runs online only when an API key is configured (WANDB_API_KEY or `wandb login`),
else offline, with the files under OUT/wandb for `wandb sync`. Logging changes nothing the run computes: the
`log` setting is left out of the fingerprint and may differ on --resume.
"""

from __future__ import annotations

import importlib.util
import netrc
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Protocol

from textbooks.errors import UserError
from textbooks.train.metrics import JsonlLog

Backend = Literal["tensorboard", "wandb"]
LOG = "log.jsonl"
TENSORBOARD = "tensorboard"  # OUT/tensorboard: the event files
WANDB = "wandb"  # OUT/wandb: W&B's run folders and run-id
RUN_ID = "run-id"
EXTRA = "pip install 'textbooks[log]'"
PACKAGES = {"tensorboard": "tensorboard", "wandb": "wandb"}


class RunLog(Protocol):
    def write(self, record: dict) -> None: ...

    def close(self) -> None: ...


def check_available(backends: list[str]) -> None:
    """Refuse a backend whose package is not installed, before any model is built."""
    missing = [name for name in backends if importlib.util.find_spec(PACKAGES[name]) is None]
    if missing:
        raise UserError(f"train --log {' '.join(missing)}: the package {', '.join(PACKAGES[n] for n in missing)} "
                        f"is not installed; install it with {EXTRA}, or drop it from --log")


def scalars(record: dict) -> dict[str, float]:
    """The record's numbers under the backends' names (`train/loss`, `val/loss`); None and text are left out."""
    if record.get("kind") == "val":
        return {"val/loss": float(record["val_loss"])}
    return {f"train/{key}": float(value) for key, value in record.items()
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool)}


class TensorboardLog:
    """Event files under OUT/tensorboard (torch's SummaryWriter)."""

    def __init__(self, folder: Path, resume_step: int | None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: events at or after it, written by a run killed past its checkpoint, are discarded
        self.writer = SummaryWriter(str(folder), purge_step=None if resume_step is None else resume_step + 1)

    def write(self, record: dict) -> None:
        for tag, value in scalars(record).items():
            self.writer.add_scalar(tag, value, record["step"])

    def close(self) -> None:
        self.writer.close()


def wandb_mode() -> str:
    """WANDB_MODE when set; else online when an API key is configured, offline otherwise."""
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("://")[-1].split("/")[0]
    try:
        return "online" if netrc.netrc().authenticators(host) else "offline"
    except (OSError, netrc.NetrcParseError):
        return "offline"


class WandbLog:
    """A W&B run (project WANDB_PROJECT, default textbooks) named after the run folder, with the settings as its
    config; its id is kept in OUT/wandb/run-id so that a resumed training continues the same run."""

    def __init__(self, folder: Path, name: str, config: dict, resume_step: int | None,
                 say: Callable[[str], None]) -> None:
        import wandb

        folder.mkdir(parents=True, exist_ok=True)
        id_file = folder / RUN_ID
        if resume_step is None or not id_file.is_file():
            id_file.write_text(secrets.token_hex(4), encoding="utf-8")  # W&B ids: [a-z0-9]
        mode = wandb_mode()
        # W&B refuses steps below the last one it has, so on resume the steps a killed run logged past its
        # checkpoint are not logged twice (online; offline, each resumed process writes a run folder of its own).
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "textbooks"), name=name, config=config,
                              id=id_file.read_text(encoding="utf-8").strip(), resume="allow", dir=str(folder.parent),
                              mode=mode, settings=wandb.Settings(console="off", save_code=False, silent=True))
        if mode == "offline":
            say(f"train: W&B is offline (no API key or WANDB_MODE=offline); upload later with "
                f"`wandb sync {folder}/offline-run-*`")

    def write(self, record: dict) -> None:
        self.run.log(scalars(record), step=record["step"])

    def close(self) -> None:
        self.run.finish()


class Logs:
    """log.jsonl and the chosen backends, written together."""

    def __init__(self, logs: list[RunLog]) -> None:
        self.logs = logs

    def write(self, record: dict) -> None:
        for log in self.logs:
            log.write(record)

    def close(self) -> None:
        for log in self.logs:
            log.close()


def open_logs(out: Path, backends: list[str], name: str, config: dict, resume_step: int | None,
              say: Callable[[str], None]) -> Logs:
    """log.jsonl in `out`, then each backend; `resume_step` is the checkpoint's step when resuming."""
    logs: list[RunLog] = [JsonlLog(out / LOG)]
    if TENSORBOARD in backends:
        logs.append(TensorboardLog(out / TENSORBOARD, resume_step))
    if WANDB in backends:
        logs.append(WandbLog(out / WANDB, name, config, resume_step, say))
    return Logs(logs)
