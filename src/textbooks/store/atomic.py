"""The one way files are written: under a temporary name, fsynced, then renamed into place.

    with atomic_file(path) as tmp:         # any writer: pq.write_table, safetensors, torch.save ...
        torch.save(state, tmp)
    write_json({"step": 3}, path)          # small files in one call
    with atomic_folder(folder) as tmp:     # a whole folder (save_pretrained, a checkpoint)
        tokenizer.save_pretrained(tmp)

A process killed mid-write leaves at most a temporary `.NAME.PID-XXXXXXXX.tmp` next to the target, never a
half-written file under the final name; `remove_temporaries(folder)` clears what a killed writer left, and
`recover_folder(path)` finishes a folder replacement a kill interrupted.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from textbooks.errors import FULL_BYTES
from textbooks.pipeline import hooks

TEMPORARY = re.compile(r"^\..+\.\d+-[0-9a-f]{8}\.tmp$")
FOLDER_TEMPORARY = re.compile(r"^\.(.+)\.(?:tmp|old)$")  # atomic_folder's siblings of `name`


def temporary_sibling(path: Path) -> Path:
    """A name next to `path` that no other process uses and `remove_temporaries` recognises."""
    return path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary path to write; on success it is fsynced and renamed to `path`, on failure removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_sibling(path)
    try:
        yield tmp
        hooks.reached("write", path.name)  # a test killing a write half-way: the temporary is there, full
        _fsync(tmp)
        os.replace(tmp, path)
    except Exception as error:
        if not isinstance(error, OSError) and _is_full(path.parent):
            # torch.save says "unexpected pos" when the disk fills up: name the cause while it is visible
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from error
        raise
    finally:
        tmp.unlink(missing_ok=True)


def _is_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < FULL_BYTES
    except OSError:
        return False


def _folder_siblings(path: Path) -> tuple[Path, Path]:
    return path.with_name(f".{path.name}.tmp"), path.with_name(f".{path.name}.old")


def folder_temporary(path: Path) -> Path:
    """The temporary folder `atomic_folder(path)` fills: its name is known to other processes that write into it
    while its one owner holds it (the ranks of a training run saving their shards)."""
    return _folder_siblings(Path(path))[0]


def recover_folder(path: Path) -> None:
    """Finish what an `atomic_folder` killed mid-way left: the half-filled folder is removed, and an older
    folder moved aside but not yet replaced is put back (it is the last complete one)."""
    tmp, old = _folder_siblings(Path(path))
    shutil.rmtree(tmp, ignore_errors=True)
    if old.is_dir():
        if Path(path).exists():
            shutil.rmtree(old)
        else:
            os.replace(old, path)


@contextmanager
def atomic_folder(path: Path) -> Iterator[Path]:
    """Yield an empty temporary folder to fill; on success its files are fsynced and it replaces `path` (an
    older `path` is moved aside first and removed last), on failure it is removed. A folder has one owner
    (other processes may write into `folder_temporary(path)` while it holds it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_folder(path)
    tmp, old = _folder_siblings(path)
    tmp.mkdir()
    try:
        yield tmp
        for item in tmp.rglob("*"):
            if item.is_file():
                _fsync(item)
        if path.exists():
            os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_bytes(content: bytes, path: Path) -> None:
    with atomic_file(path) as tmp:
        tmp.write_bytes(content)


def write_text(text: str, path: Path) -> None:
    write_bytes(text.encode("utf-8"), path)


def write_json(obj: Any, path: Path) -> None:
    """`obj` as indented JSON with sorted keys."""
    write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", path)


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def remove_temporaries(folder: Path) -> list[Path]:
    """Remove the temporaries a killed writer left in `folder` and below it (files and folders, `atomic_folder`'s
    half-filled folders too, whose replacement is finished by `recover_folder`); what was removed.
    Only for a folder no other process writes to at the same time."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = [item for item in folder.rglob(".*.tmp") if TEMPORARY.match(item.name)]
    for item in removed:
        if item.is_dir():
            shutil.rmtree(item, ignore_errors=True)
        else:
            item.unlink(missing_ok=True)
    for item in sorted(folder.rglob(".*"), reverse=True):  # deepest first
        target = FOLDER_TEMPORARY.match(item.name)
        if target and item.is_dir() and item.exists():
            recover_folder(item.with_name(target.group(1)))
            removed.append(item)
    return removed
