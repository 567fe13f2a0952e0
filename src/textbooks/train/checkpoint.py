"""Checkpoints: everything a run needs to continue exactly, written so a kill never leaves half of one.

    OUT/checkpoints/step-0001000/    a model folder (model.safetensors, model.json, tokenizer/; for other
                                     transformers models a save_pretrained folder) plus
        optimizer.pt                 AdamW state (under FSDP gathered, keyed by parameter name)
        trainer.pt                   grad scaler and the RNG states of every rank (python, numpy, torch, CUDA)
        trainer.json                 step, data position, best validation so far, world size, settings
        _COMPLETE                    written last
    OUT/best/                        the model with the lowest validation loss, and trainer.json (step, val_loss)

With `checkpoint_format: sharded` nothing is gathered: model.safetensors and optimizer.pt give way to

        sharded/                     torch.distributed.checkpoint: {"model", "optimizer"} state keyed by
                                     parameter name, one __RANK_0.distcp file per rank (under FSDP its shards;
                                     under DDP each tensor once) and .metadata, the index
    OUT/best/sharded/                the same, "model" only

A sharded checkpoint resumes bit for bit on the same number of processes and loads, resharded, on any other
(with the same --fsdp): weights, optimizer state, step and data position are exact (each step takes the same
windows, `train/data.py`); dropout masks are not (every rank's RNG is seeded afresh from seed, rank and step),
nor is the order in which gradients are summed. Anything that reads a checkpoint as a model (export-hf, eval,
`init:`) reads sharded/ whole in one process (`textbooks.model.io`).

A checkpoint is written under a temporary name, finished with `_COMPLETE`, and renamed into place; best/ is
replaced the same way (the older one stays until the new one is whole). Sharded, every rank writes its files
into rank 0's temporary folder, and rank 0 writes the rest and renames it once all are written. A folder is
removed by renaming it to a temporary first, so a kill never leaves a folder that still looks complete. The next
run removes what a killed or failed one left: folders without the marker, an unfinished best/ replacement (the
last whole best/ stays), and temporaries anywhere in OUT. The newest `keep_checkpoints` are kept.
`TEXTBOOKS_KILL_AT=train:best` and `train:checkpoint` kill a run with the new folder written but not yet in place
(tests/test_train_resume.py, tests/test_train_distributed.py).
"""

from __future__ import annotations

import os
import random
import re
import shutil
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch

from textbooks.errors import UserError
from textbooks.model.io import COMPLETE
from textbooks.pipeline import hooks
from textbooks.store import data
from textbooks.store.atomic import (
    atomic_file,
    atomic_folder,
    folder_temporary,
    recover_folder,
    remove_temporaries,
    temporary_sibling,
)
from textbooks.train import distributed

CHECKPOINTS = "checkpoints"
BEST = "best"
TRAINER_JSON = "trainer.json"
TRAINER_STATE = "trainer.pt"
OPTIMIZER = "optimizer.pt"
STEP_FOLDER = re.compile(r"step-(\d+)")

WriteContents = Callable[[Path], None]


def step_folder(out: Path, step: int) -> Path:
    return Path(out) / CHECKPOINTS / f"step-{step:07d}"


def complete_checkpoints(out: Path) -> list[tuple[int, Path]]:
    """(step, folder) of every finished checkpoint, oldest first."""
    folder = Path(out) / CHECKPOINTS
    if not folder.is_dir():
        return []
    found = []
    for item in folder.iterdir():
        match = STEP_FOLDER.fullmatch(item.name)
        if match and (item / COMPLETE).is_file():
            found.append((int(match.group(1)), item))
    return sorted(found)


def clean_unfinished(out: Path) -> list[Path]:
    """Remove what a killed or failed run left in OUT: checkpoint folders without `_COMPLETE`, a replacement of
    best/ cut short (the last whole best/ is kept, or put back), and temporaries; returns the checkpoint folders
    and temporary files removed."""
    out = Path(out)
    removed = []
    folder = out / CHECKPOINTS
    if folder.is_dir():
        for item in folder.iterdir():
            if item.is_dir() and not (STEP_FOLDER.fullmatch(item.name) and (item / COMPLETE).is_file()):
                shutil.rmtree(item)
                removed.append(item)
    recover_folder(out / BEST)
    return removed + remove_temporaries(out)


def remove_folder(folder: Path) -> None:
    """Rename `folder` to a temporary, then delete it: a kill half-way through leaves a temporary, never a
    folder under its own name with some of its files gone (a checkpoint that still has its `_COMPLETE`)."""
    folder = Path(folder)
    if folder.exists():
        hidden = temporary_sibling(folder)
        os.replace(folder, hidden)
        shutil.rmtree(hidden)


def _write_folder(final: Path, write_contents: WriteContents, marker: bool, kill_point: str,
                  write_shards: WriteContents | None, main: bool) -> None:
    """Rank 0 fills a temporary sibling of `final`, then renames it into place (replacing an older `final`);
    with `write_shards` every rank first writes its own files into that temporary, together."""
    if write_shards is None and not main:
        return
    with atomic_folder(final) if main else nullcontext(folder_temporary(final)) as tmp:
        if write_shards is not None:
            distributed.barrier()  # rank 0 has made the temporary (and removed an older one) before anyone writes
            write_shards(tmp)  # collective: it returns on every rank once all ranks' files are written
        if main:
            write_contents(tmp)
            if marker:
                data.write_bytes(b"", tmp / COMPLETE)
            hooks.reached("train", kill_point)


def write_checkpoint(out: Path, step: int, write_contents: WriteContents, write_shards: WriteContents | None = None,
                     main: bool = True) -> Path:
    """A complete checkpoint folder for `step`: rank 0 (`main`) writes the files `write_contents(folder)` writes,
    after every rank has written its shards with `write_shards(folder)` when that is given (then every rank
    calls this)."""
    final = step_folder(out, step)
    _write_folder(final, write_contents, True, "checkpoint", write_shards, main)
    return final


def prune(out: Path, keep: int) -> list[Path]:
    """Remove all but the newest `keep` complete checkpoints; returns the removed folders."""
    removed = [folder for _, folder in complete_checkpoints(out)[:-keep]]
    for folder in removed:
        remove_folder(folder)
    return removed


def write_best(out: Path, write_model: WriteContents, step: int, val_loss: float,
               write_shards: WriteContents | None = None, main: bool = True) -> None:
    """Replace OUT/best/ with the model `write_model` writes (after `write_shards` on every rank, as in
    `write_checkpoint`), and its step and validation loss."""
    def contents(folder: Path) -> None:
        write_model(folder)
        data.write_json({"step": step, "val_loss": val_loss}, folder / TRAINER_JSON)

    _write_folder(Path(out) / BEST, contents, False, "best", write_shards, main)


def read_best(out: Path) -> dict | None:
    path = Path(out) / BEST / TRAINER_JSON
    return data.read_json(path) if path.is_file() else None


def read_trainer_json(folder: Path) -> dict:
    try:
        return data.read_json(Path(folder) / TRAINER_JSON)
    except (OSError, ValueError) as error:
        raise UserError(f"{folder}: checkpoint without a readable {TRAINER_JSON} ({error}); remove the folder "
                        f"to resume from the one before it") from None


def rng_state() -> dict[str, Any]:
    """This process's random number generators (numpy's key as a tensor, so `torch.load` needs no pickles)."""
    name, key, position, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": (name, torch.from_numpy(key.astype(np.int64)), position, has_gauss, cached),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def seed_rng(seed: int, rank: int, step: int) -> None:
    """Seed every generator from (seed, rank, step): a rank resuming a run of another world size has no
    recorded state of its own."""
    derived = int(np.random.SeedSequence([seed, rank, step]).generate_state(1)[0])
    random.seed(derived)
    np.random.seed(derived)
    torch.manual_seed(derived)


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    name, key, position, has_gauss, cached = state["numpy"]
    np.random.set_state((name, key.numpy().astype(np.uint32), position, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_torch(obj: Any, path: Path) -> None:
    """`torch.save` under a temporary name and renamed, streamed rather than held twice in memory."""
    with atomic_file(path) as tmp:
        torch.save(obj, tmp)


def load_torch(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as error:
        raise UserError(f"{path} is damaged ({error}); remove its checkpoint folder to resume from the one "
                        f"before it") from None
