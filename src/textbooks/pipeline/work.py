"""`OUT/.work/`: what an unfinished step has done, stamped with the fingerprint it belongs to.

    OUT/.work/fingerprint.json          the fingerprint and its parts (settings, input identities)
    OUT/.work/map-00003.json            a record: task 3 of phase `map` is done (what it counted)
    OUT/.work/reduce.pkl                a recorded result (a stage's reduce), not computed again on resume
    OUT/.work/map-00003.kept.parquet    any other file a step keeps while it works (`path`)

The runner writes the stamp before the step starts and removes the folder once the step's marker is written.
A run killed in between resumes from these records when the fingerprint is the same, and starts over when it
is not. Records are written atomically, then the test hook `textbooks.pipeline.hooks` is told.
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path
from typing import Any

from textbooks.pipeline import hooks
from textbooks.pipeline.records import Records
from textbooks.store.atomic import atomic_file, read_json, write_json

FOLDER = ".work"
STAMP = "fingerprint.json"


class Work:
    def __init__(self, out: Path, step: str) -> None:
        self.folder = Path(out) / FOLDER
        self.step = step
        self.records = Records(self.folder)

    def stamp(self) -> dict | None:
        """The fingerprint record of the unfinished run in this folder, or None."""
        path = self.folder / STAMP
        try:
            return read_json(path) if path.is_file() else None
        except (OSError, ValueError):
            return None

    def begin(self, fingerprint: str, parts: dict) -> None:
        write_json({"fingerprint": fingerprint, "parts": parts}, self.folder / STAMP)

    def path(self, name: str) -> Path:
        return self.folder / name

    def record(self, phase: str, index: int, value: dict) -> None:
        """Record that task `index` of `phase` is done, with what it counted."""
        self.records.put(f"{phase}-{index:05d}", value)
        hooks.reached(self.step, phase)

    def read(self, phase: str, index: int) -> dict:
        value = self.records.get(f"{phase}-{index:05d}")
        if value is None:
            raise FileNotFoundError(self.records.path(f"{phase}-{index:05d}"))
        return value

    def done(self, phase: str, count: int) -> set[int]:
        """The tasks among `range(count)` whose `phase` is recorded."""
        return {index for index in range(count) if self.records.has(f"{phase}-{index:05d}")}

    def save(self, name: str, value: Any) -> None:
        """Record a result of the whole step (a reduce), pickled."""
        with atomic_file(self.path(f"{name}.pkl")) as tmp:
            with open(tmp, "wb") as handle:
                pickle.dump(value, handle, protocol=pickle.HIGHEST_PROTOCOL)
        hooks.reached(self.step, name)

    def load(self, name: str) -> Any:
        """A result recorded with `save`, or None."""
        path = self.path(f"{name}.pkl")
        if not path.is_file():
            return None
        try:
            with open(path, "rb") as handle:
                return pickle.load(handle)
        except (OSError, EOFError, pickle.UnpicklingError):
            return None

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
