"""Sharded state dicts read whole in one process: a folder that every rank of a training run wrote its own part
of with `torch.distributed.checkpoint` (DCP), turned back into plain tensors without a process group.

    state = read_sharded(Path("runs/x/best/sharded"), "model")   # {"lm_head.weight": tensor, ...}

DCP flattens the nested state it is given into dotted keys ("model.lm_head.weight", "optimizer.state...");
the tensors under one top-level key are allocated at their full size from the folder's metadata and filled by
DCP's own loader, which reassembles each from however many shards wrote it. Only that key's tensors are read.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from textbooks.errors import UserError

METADATA = ".metadata"  # DCP's index of the folder, written last by the coordinating rank


@contextmanager
def single_process_is_meant() -> Iterator[None]:
    """Silence DCP's warning that it runs without a process group: a one-process run and the readers mean to."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled, unavailable or uninitialized")
        yield


def read_sharded(folder: Path, key: str) -> dict[str, torch.Tensor]:
    """The tensors saved under `key` in the DCP folder `folder`, whole, on the CPU, keyed without `key.`."""
    from torch.distributed.checkpoint import FileSystemReader, load
    from torch.distributed.checkpoint.api import CheckpointException
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    folder = Path(folder)
    if not (folder / METADATA).is_file():
        raise UserError(f"{folder} has no {METADATA}: the sharded save was cut short; use another checkpoint")
    reader = FileSystemReader(str(folder))
    prefix = f"{key}."
    try:
        entries = reader.read_metadata().state_dict_metadata
        state = {name: torch.empty(entry.size, dtype=entry.properties.dtype) for name, entry in entries.items()
                 if name.startswith(prefix) and isinstance(entry, TensorStorageMetadata)}
        if not state:
            raise UserError(f"{folder} holds no tensors under {key!r}: it is not a sharded model")
        with single_process_is_meant():
            load(state, storage_reader=reader, no_dist=True)
    except (CheckpointException, OSError, RuntimeError, ValueError) as error:
        raise UserError(f"{folder} is damaged ({type(error).__name__}: {str(error)[:300]}); use another "
                        f"checkpoint") from None
    return {name[len(prefix):]: tensor for name, tensor in state.items()}
