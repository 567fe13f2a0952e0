"""Record sources: JSONL/Parquet files (`files`) and Hugging Face datasets (`hf`), through `textbooks.store.inputs`.

One task per input part (a file, or a slice of a dataset). A record's `path` is its own id (`id_column`)
when it has one, else its position: `data.jsonl:12` (file and line), `train:3041` (split and row). With a
`limit`, planning counts records from the start until it has enough, so the tasks, and the rows, are the
same on every run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Iterator

from textbooks.corpus.config import IngestConfig
from textbooks.corpus.document import Document
from textbooks.corpus.filters import DECODE_ERROR
from textbooks.store import inputs


@dataclass(frozen=True)
class RecordTask:
    part: inputs.Part
    label: str  # names positions: the file's path relative to the input, or the split
    source: str
    max_records: int | None = None


def _has_magic(name: str) -> bool:
    return any(char in name for char in "*?[")


def _spec(config: IngestConfig) -> str:
    """The input for `inputs.plan_parts`, with local paths absolute so that any worker finds them."""
    if config.source == "hf":
        dataset = config.dataset or ""
        return inputs.HF_PREFIX + (os.path.abspath(dataset) if os.path.exists(dataset) else dataset)
    return os.path.abspath(os.path.expanduser(config.path or ""))


def _parts(config: IngestConfig) -> list[inputs.Part]:
    return inputs.plan_parts(_spec(config), hf_split=config.split, hf_config=config.hf_config,
                             hf_data_dir=config.data_dir, streaming=config.streaming)


def _input_root(config: IngestConfig) -> Path:
    """The folder named by `path`, the folder a glob starts in, or the file itself."""
    root = Path(_spec(config))
    while _has_magic(root.name):
        root = root.parent
    return root


def source_name(config: IngestConfig) -> str:
    """The dataset's name, the folder's name, or the file's name without its suffixes."""
    if config.source_name:
        return config.source_name
    if config.source == "hf":
        return (config.dataset or "").rstrip("/").split("/")[-1]
    root = _input_root(config)
    return root.name if root.is_dir() else inputs.stem(root.name)


def _label(part: inputs.Part, config: IngestConfig) -> str:
    if part.kind == "hf":
        return config.split
    root = _input_root(config)
    return Path(part.path).relative_to(root if root.is_dir() else root.parent).as_posix()


def plan_tasks(config: IngestConfig) -> list[RecordTask]:
    source = source_name(config)
    tasks = [RecordTask(part, _label(part, config), source) for part in _parts(config)]
    return _limited(tasks, config) if config.limit else tasks


def _limited(tasks: list[RecordTask], config: IngestConfig) -> list[RecordTask]:
    """The first tasks holding `limit` records, the last one cut short."""
    kept, remaining = [], config.limit or 0
    for task in tasks:
        count = sum(1 for _ in islice(_read(task, config, "skip"), remaining))
        if count == remaining:
            return kept + [RecordTask(task.part, task.label, task.source, count)]
        if count:
            kept.append(task)
            remaining -= count
    return kept


def fingerprint(config: IngestConfig) -> dict:
    return {"parts": [inputs.fingerprint(part) for part in _parts(config)]}


def _read(task: RecordTask, config: IngestConfig,
          on_error: inputs.OnError) -> Iterator[dict | inputs.Malformed]:
    return inputs.read_part(task.part, text_column=config.column_of_text(), id_column=config.id_column,
                            source=task.source, label=task.label, on_error=on_error)


def read_documents(task: RecordTask, config: IngestConfig) -> Iterator[Document]:
    for record in islice(_read(task, config, config.on_error), task.max_records):
        if isinstance(record, inputs.Malformed):
            yield Document(task.source, record.id, "record", record.text, len(record.text.encode()),
                           record.reason)
        else:
            extra = {key: value for key, value in record.items() if key not in ("id", "text", "source")}
            yield _document(record["source"], record["id"], record["text"], extra if config.extra_columns else None)


def _document(source: str, path: str, text: str, extra: dict | None) -> Document:
    """A record's document; text with lone surrogates (from JSON escapes) is not UTF-8: decode_error."""
    try:
        return Document(source, path, "record", text, len(text.encode("utf-8")), extra=extra)
    except UnicodeEncodeError:
        repaired = text.encode("utf-8", "replace").decode("utf-8")
        return Document(source, path, "record", repaired, len(repaired.encode("utf-8")), DECODE_ERROR, extra)
