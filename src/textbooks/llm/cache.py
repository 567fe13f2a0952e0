"""The persistent response cache: one SQLite file in WAL mode, one connection per process and file.

    cache = ResponseCache.open(path)             # the same object for every client of this process and path
    row = cache.get(request.key("openai"))       # None, or CachedRow(status "ok" with the raw response, or
                                                 #   "failed" with the error)

A row is written (and committed) as soon as its answer arrives, so a run killed at any point resumes without
resending one answered request. The raw response (the provider's JSON) is stored, never a parsed value: the
caller's parser runs on it afterwards, so a changed parser re-parses without asking again. The key (see
`Request.key`) covers the provider (a server's address too), model, messages or prompt, every sampling
parameter, the sample index and the caller's template version. The API key is never written here. `batches`
holds the provider batches in flight (their id and the request keys they carry) so that a killed batch run
polls them instead of resubmitting.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from textbooks.llm.types import Request
from textbooks.store.cache import cache_dir

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY, provider TEXT NOT NULL, model TEXT NOT NULL, request TEXT NOT NULL,
    status TEXT NOT NULL, raw TEXT, error TEXT, finish_reason TEXT, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY, provider TEXT NOT NULL, model TEXT NOT NULL, keys TEXT NOT NULL, status TEXT NOT NULL,
    created REAL NOT NULL);
"""


def default_cache_path() -> Path:
    return cache_dir("llm") / "responses.sqlite"


@dataclass(frozen=True)
class CachedRow:
    status: str  # "ok" or "failed"
    raw: dict[str, Any] | None
    error: str | None
    finish_reason: str | None


class ResponseCache:
    _open: dict[tuple[int, str], ResponseCache] = {}
    _open_lock = threading.Lock()

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()  # local providers answer from worker threads
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a killed process loses nothing committed
        self._db.executescript(SCHEMA)

    @classmethod
    def open(cls, path: str | Path | None = None) -> ResponseCache:
        """The process's one connection to `path` (default: `default_cache_path()`); a forked child opens its own."""
        resolved = Path(path).expanduser().resolve() if path is not None else default_cache_path().resolve()
        with cls._open_lock:
            key = (os.getpid(), str(resolved))
            if key not in cls._open:
                cls._open[key] = cls(resolved)
            return cls._open[key]

    def get(self, key: str) -> CachedRow | None:
        with self._lock:
            row = self._db.execute("SELECT status, raw, error, finish_reason FROM responses WHERE key = ?",
                                   (key,)).fetchone()
        if row is None:
            return None
        status, raw, error, finish_reason = row
        return CachedRow(status, json.loads(raw) if raw is not None else None, error, finish_reason)

    def put_ok(self, key: str, provider: str, request: Request, raw: dict[str, Any],
               finish_reason: str | None) -> None:
        self._put(key, provider, request, "ok", json.dumps(raw, ensure_ascii=False), None, finish_reason)

    def put_failed(self, key: str, provider: str, request: Request, error: str) -> None:
        self._put(key, provider, request, "failed", None, error, None)

    def _put(self, key: str, provider: str, request: Request, status: str, raw: str | None, error: str | None,
             finish_reason: str | None) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             (key, provider, request.model, json.dumps(_described(request), ensure_ascii=False),
                              status, raw, error, finish_reason, time.time()))

    def count(self, status: str | None = None) -> int:
        with self._lock:
            if status is None:
                return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
            return self._db.execute("SELECT COUNT(*) FROM responses WHERE status = ?", (status,)).fetchone()[0]

    def add_batch(self, batch_id: str, provider: str, model: str, keys: list[str]) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?, 'running', ?)",
                             (batch_id, provider, model, json.dumps(keys), time.time()))

    def running_batches(self, provider: str, model: str) -> list[tuple[str, list[str]]]:
        """(batch id, request keys) of every batch not yet collected, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT id, keys FROM batches WHERE provider = ? AND model = ? AND "
                                    "status = 'running' ORDER BY created", (provider, model)).fetchall()
        return [(batch_id, json.loads(keys)) for batch_id, keys in rows]

    def finish_batch(self, batch_id: str, status: str) -> None:
        with self._lock:
            self._db.execute("UPDATE batches SET status = ? WHERE id = ?", (status, batch_id))


def _described(request: Request) -> dict[str, Any]:
    return {"kind": request.kind, "body": request.body(), "sample": request.sample, "version": request.version}
