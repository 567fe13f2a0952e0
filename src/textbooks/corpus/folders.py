"""Folder sources: the running interpreter's standard library (`stdlib`) and a local folder (`dir`).

The files the globs select are sorted by relative path and cut into tasks of `files_per_task` files, so the
tasks depend only on the folder's content and the settings. A file that is not UTF-8 is kept as one dropped
row (decode_error), its text decoded with replacement characters so that the audit trail shows it.
"""

from __future__ import annotations

import hashlib
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from textbooks.corpus.config import IngestConfig
from textbooks.corpus.document import Document
from textbooks.corpus.filters import DECODE_ERROR
from textbooks.corpus.globs import list_files
from textbooks.errors import UserError


@dataclass(frozen=True)
class FileTask:
    root: str  # absolute, so that a worker in another folder (Ray) finds the files
    relpaths: tuple[str, ...]
    source: str


def _root(config: IngestConfig) -> Path:
    if config.source == "stdlib":
        return Path(sysconfig.get_paths()["stdlib"])
    root = Path(config.path or "").expanduser()
    if not root.exists():
        raise UserError(f"{config.path}: no such folder; set path to the folder of code to read")
    if not root.is_dir():
        raise UserError(f"{config.path}: not a folder; source dir reads a folder (for JSONL or Parquet files "
                        "use source files)")
    return root.resolve()


def selected_files(config: IngestConfig) -> tuple[Path, list[str]]:
    """The folder and the relative paths of the files to read, sorted, at most `limit` of them."""
    root = _root(config)
    relpaths = list_files(root, config.include, config.exclude)
    if not relpaths:
        where = config.path if config.source == "dir" else f"{root} (the standard library)"
        raise UserError(f"{where}: no file matches include {config.include} and not exclude "
                        f"{config.exclude}; check the folder and the globs (** spans folders: **/*.py)")
    return root, relpaths[:config.limit]


def source_name(config: IngestConfig, root: Path) -> str:
    return config.source_name or ("stdlib" if config.source == "stdlib" else root.name)


def plan_tasks(config: IngestConfig) -> list[FileTask]:
    root, relpaths = selected_files(config)
    source, size = source_name(config, root), config.files_per_task
    return [FileTask(str(root), tuple(relpaths[start:start + size]), source)
            for start in range(0, len(relpaths), size)]


def fingerprint(config: IngestConfig) -> dict:
    """stdlib: the interpreter and the file count; dir: every file's relative path, size and mtime."""
    root, relpaths = selected_files(config)
    if config.source == "stdlib":
        return {"python": sys.version, "stdlib": str(root), "files": len(relpaths)}
    digest = hashlib.sha256()
    for relpath in relpaths:
        stat = (root / relpath).stat()
        digest.update(f"{relpath}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return {"folder": str(root), "files": len(relpaths), "content": digest.hexdigest()}


def read_documents(task: FileTask) -> Iterator[Document]:
    root = Path(task.root)
    for relpath in task.relpaths:
        try:
            raw = (root / relpath).read_bytes()
        except OSError as error:
            raise UserError(f"{root / relpath}: cannot read this file ({error.strerror}); it was listed when "
                            "the stage started: restore it, or run again to list the folder anew") from None
        try:
            text, problem = raw.decode("utf-8-sig"), None
        except UnicodeDecodeError:
            text, problem = raw.decode("utf-8", "replace"), DECODE_ERROR
        yield Document(task.source, relpath, "file", text, len(raw), problem)
