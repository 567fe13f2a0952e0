"""Records: small JSON files, each written atomically under a name, that one run leaves and the next reads.

    records = Records(folder)
    records.put("map-00003", {"rows_out": 12})              # what a finished task did
    records.put(task_id, outputs, key=content_key)           # a cache entry, valid only for that key
    records.get(task_id, key=content_key)                    # None when absent, unreadable or made for another key

The runner's `.work/` records, eval's generated completions and the judge's reference outputs are all kept
this way, so every "is this done, and where do I resume" question has one answer.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from textbooks.store.atomic import read_json, write_text

_UNSAFE = re.compile(r"[^A-Za-z0-9_.+-]")


class Records:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path(self, name: str) -> Path:
        return self.folder / f"{_UNSAFE.sub('_', name)}.json"

    def put(self, name: str, value: Any, key: str | None = None) -> None:
        write_text(json.dumps({"key": key, "value": value}, sort_keys=True), self.path(name))

    def get(self, name: str, key: str | None = None) -> Any:
        path = self.path(name)
        if not path.is_file():
            return None
        try:
            record = read_json(path)
        except (OSError, json.JSONDecodeError):
            return None
        if not isinstance(record, dict) or record.get("key") != key:
            return None
        return record.get("value")

    def has(self, name: str, key: str | None = None) -> bool:
        return self.get(name, key) is not None
