"""A document: one file or record as read, before parsing and filtering."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Document:
    source: str  # the `source` column
    path: str  # relative path of the file, or the record's id
    kind: str  # "file" | "record"
    text: str
    size: int  # UTF-8 bytes
    problem: str | None = None  # decode_error or malformed_input: the document is dropped whole, unparsed
    extra: dict[str, Any] | None = None  # a record's other columns, carried to every row made from it
