"""Where ingest reads code: the sources behind one interface.

`plan_tasks(config)` cuts a source into tasks, `read_documents(task, config)` yields each task's documents
(`textbooks.corpus.document.Document`: a file or a record with its text), and `input_fingerprint(config)`
identifies the input's content cheaply, so that a changed input runs the stage again.
Folders (stdlib, installed, dir) live in `textbooks.corpus.folders` (installed's package folders and file
budget in `textbooks.corpus.installed`), records (files, hf) in `textbooks.corpus.records`.
"""

from __future__ import annotations

from typing import Iterator

from textbooks.corpus import folders, records
from textbooks.corpus.config import FOLDER_SOURCES, SOURCE_FIELDS, IngestConfig
from textbooks.corpus.document import Document
from textbooks.errors import UserError


def check_settings(config: IngestConfig) -> None:
    """Refuse settings that the chosen source would silently ignore (when set to other than their default),
    and missing ones that it needs."""
    for name, sources in SOURCE_FIELDS.items():
        if config.source not in sources and getattr(config, name) != IngestConfig.model_fields[name].default:
            raise UserError(f"ingest: {name} is a setting of source {' or '.join(sources)}, but source is "
                            f"{config.source}; remove it or set source")
    if config.limit and config.max_files:
        raise UserError("ingest: limit and max_files both cap the files read (the first ones, or a share of "
                        "every package); set one of them")
    if config.source in ("dir", "files") and not config.path:
        what = "the folder to read" if config.source == "dir" else "a JSONL/Parquet file, glob or folder"
        raise UserError(f"ingest: source {config.source} needs path ({what}): set path, or --path on the "
                        "command line")
    if config.source == "hf" and not config.dataset:
        raise UserError("ingest: source hf needs dataset (a hub name such as bigcode/the-stack-dedup, or a "
                        "local dataset folder): set dataset, or --dataset on the command line")


Task = folders.FileTask | records.RecordTask


def plan_tasks(config: IngestConfig) -> list[Task]:
    """The tasks, in a fixed order that depends only on the input and the settings."""
    check_settings(config)
    if config.source in FOLDER_SOURCES:
        return folders.plan_tasks(config)
    return records.plan_tasks(config)


def input_fingerprint(config: IngestConfig) -> dict:
    check_settings(config)
    if config.source in FOLDER_SOURCES:
        return folders.fingerprint(config)
    return records.fingerprint(config)


def read_documents(task: Task, config: IngestConfig) -> Iterator[Document]:
    if isinstance(task, folders.FileTask):
        return folders.read_documents(task)
    return records.read_documents(task, config)
