"""Folder sources: the running interpreter's standard library (`stdlib`), the environment's installed
packages (`installed`, see `textbooks.corpus.installed`) and a local folder (`dir`).

The files the globs select are sorted by relative path and cut into tasks of `files_per_task` files (one
folder per task), so the tasks depend only on the folders' content and the settings. A file that is not
UTF-8 is kept as one dropped row (decode_error), its text decoded with replacement characters so that the
audit trail shows it.
"""

from __future__ import annotations

import hashlib
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from textbooks.corpus import installed
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
    packages: bool = False  # installed: every row names its file's package (a `package` column)


def _roots(config: IngestConfig) -> list[Path]:
    if config.source == "stdlib":
        return [Path(sysconfig.get_paths()["stdlib"])]
    if config.source == "installed":
        return installed.roots()
    root = Path(config.path or "").expanduser()
    if not root.exists():
        raise UserError(f"{config.path}: no such folder; set path to the folder of code to read")
    if not root.is_dir():
        raise UserError(f"{config.path}: not a folder; source dir reads a folder (for JSONL or Parquet files "
                        "use source files)")
    return [root.resolve()]


def _where(config: IngestConfig, roots: list[Path]) -> str:
    if config.source == "dir":
        return str(config.path)
    if config.source == "stdlib":
        return f"{roots[0]} (the standard library)"
    return f"{', '.join(map(str, roots)) or 'no site-packages folder'} (the installed packages)"


def selected_files(config: IngestConfig) -> list[tuple[Path, str]]:
    """The folder and relative path of every file to read, sorted by relative path: at most `max_files` of
    them spread over the packages (installed), or the first `limit`."""
    roots = _roots(config)
    exclude = config.exclude + [installed.BYTECODE] if config.source == "installed" else config.exclude
    folder_of: dict[str, Path] = {}
    for root in roots:
        for relpath in list_files(root, config.include, exclude):
            folder_of.setdefault(relpath, root)  # a path under two folders is read from the first
    if not folder_of:
        raise UserError(f"{_where(config, roots)}: no file matches include {config.include} and not exclude "
                        f"{config.exclude}; check the folder and the globs (** spans folders: **/*.py)")
    relpaths = sorted(folder_of)
    if config.max_files:
        relpaths = installed.spread(relpaths, config.max_files)
    return [(folder_of[relpath], relpath) for relpath in relpaths[:config.limit]]


def source_name(config: IngestConfig, roots: list[Path]) -> str:
    if config.source_name:
        return config.source_name
    return roots[0].name if config.source == "dir" else config.source


def plan_tasks(config: IngestConfig) -> list[FileTask]:
    files = selected_files(config)
    by_root: dict[Path, list[str]] = {}
    for root, relpath in files:
        by_root.setdefault(root, []).append(relpath)
    source, size = source_name(config, list(by_root)), config.files_per_task
    packages = config.source == "installed"
    return [FileTask(str(root), tuple(relpaths[start:start + size]), source, packages)
            for root, relpaths in by_root.items() for start in range(0, len(relpaths), size)]


def fingerprint(config: IngestConfig) -> dict:
    """stdlib: the interpreter and the file count; dir and installed: every file's relative path, size and
    mtime (a package installed, upgraded or removed changes it)."""
    files = selected_files(config)
    if config.source == "stdlib":
        return {"python": sys.version, "stdlib": str(files[0][0]), "files": len(files)}
    digest = hashlib.sha256()
    for root, relpath in files:
        stat = (root / relpath).stat()
        digest.update(f"{relpath}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    if config.source == "dir":
        return {"folder": str(files[0][0]), "files": len(files), "content": digest.hexdigest()}
    folders = list(dict.fromkeys(str(root) for root, _ in files))
    return {"folders": folders, "files": len(files), "content": digest.hexdigest()}


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
        extra = {"package": installed.package_of(relpath)} if task.packages else None
        yield Document(task.source, relpath, "file", text, len(raw), problem, extra)
