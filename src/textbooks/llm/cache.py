"""The persistent response cache: one SQLite file in WAL mode, one connection per process and file.

    cache = ResponseCache.open(path)             # the same object for every client of this process and path
    row = cache.get(request.key("openai"))       # None, or CachedRow(status "ok" with the raw response, or
                                                 #   "failed" with the error)

A row is committed as soon as its answer arrives: at once outside asyncio, and in the event loop's next turn
inside it (with the other answers of that turn, in one transaction), so that the request's worker sends its
next request first and the write is not on the path of any request (`get` reads a pending row as it is). A run
killed at any point resumes without resending an answered request, apart from the answers of the turn it was
killed in; `flush()`, `count()`, the end of a map and the end of the process commit what is pending. The raw
response (the provider's JSON) is stored, never a parsed value: the caller's parser runs on it afterwards, so a
changed parser re-parses without asking again. The key (see `Request.key`) covers the provider (a server's
address too), model, messages or prompt, every sampling parameter, the sample index and the caller's template
version. The API key is never written here. `batches` holds the provider batches in flight (their id and the
request keys they carry) so that a killed batch run polls them instead of resubmitting.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
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
        self._pending: dict[str, tuple[Any, ...]] = {}  # rows answered, not yet committed, by key (module doc)
        self._flush_loop: asyncio.AbstractEventLoop | None = None  # the loop whose next turn commits them

    @classmethod
    def open(cls, path: str | Path | None = None) -> ResponseCache:
        """The process's one connection to `path` (default: `default_cache_path()`); a forked child opens its own."""
        resolved = Path(path).expanduser().resolve() if path is not None else default_cache_path().resolve()
        with cls._open_lock:
            key = (os.getpid(), str(resolved))
            if key not in cls._open:
                cls._open[key] = cls(resolved)
            return cls._open[key]

    def flush(self) -> None:
        """Commit the rows still pending, in one transaction."""
        with self._lock:
            self._commit_pending()

    def _commit_pending(self) -> None:
        self._flush_loop = None
        if not self._pending:
            return
        rows = [_row(*pending) for pending in self._pending.values()]
        self._db.execute("BEGIN")
        try:
            self._db.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        self._pending = {}

    def get(self, key: str) -> CachedRow | None:
        with self._lock:
            pending = self._pending.get(key)
            if pending is not None:  # answered this turn: read it without committing it on the caller's path
                _, _, _, status, raw, error, finish_reason, _ = pending
                return CachedRow(status, raw, error, finish_reason)
            row = self._db.execute("SELECT status, raw, error, finish_reason FROM responses WHERE key = ?",
                                   (key,)).fetchone()
        if row is None:
            return None
        status, raw, error, finish_reason = row
        return CachedRow(status, json.loads(raw) if raw is not None else None, error, finish_reason)

    def put_ok(self, key: str, provider: str, request: Request, raw: dict[str, Any],
               finish_reason: str | None) -> None:
        self._put((key, provider, request, "ok", raw, None, finish_reason, time.time()))

    def put_failed(self, key: str, provider: str, request: Request, error: str) -> None:
        self._put((key, provider, request, "failed", None, error, None, time.time()))

    def _put(self, pending: tuple[Any, ...]) -> None:
        try:
            loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        with self._lock:
            self._pending[pending[0]] = pending
            if loop is None or (self._flush_loop is not None and self._flush_loop is not loop):
                self._commit_pending()  # no loop here (or another loop's turn is due): now
            elif self._flush_loop is None:
                self._flush_loop = loop
                loop.call_soon(self.flush)

    def count(self, status: str | None = None) -> int:
        with self._lock:
            self._commit_pending()
            if status is None:
                return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]
            return self._db.execute("SELECT COUNT(*) FROM responses WHERE status = ?", (status,)).fetchone()[0]

    def add_batch(self, batch_id: str, provider: str, model: str, keys: list[str]) -> None:
        with self._lock:
            self._commit_pending()
            self._db.execute("INSERT OR REPLACE INTO batches VALUES (?, ?, ?, ?, 'running', ?)",
                             (batch_id, provider, model, json.dumps(keys), time.time()))

    def running_batches(self, provider: str, model: str) -> list[tuple[str, list[str]]]:
        """(batch id, request keys) of every batch not yet collected, oldest first."""
        with self._lock:
            self._commit_pending()
            rows = self._db.execute("SELECT id, keys FROM batches WHERE provider = ? AND model = ? AND "
                                    "status = 'running' ORDER BY created", (provider, model)).fetchall()
        return [(batch_id, json.loads(keys)) for batch_id, keys in rows]

    def finish_batch(self, batch_id: str, status: str) -> None:
        with self._lock:
            self._commit_pending()  # the batch's answers before the batch is marked collected
            self._db.execute("UPDATE batches SET status = ? WHERE id = ?", (status, batch_id))


def _row(key: str, provider: str, request: Request, status: str, raw: dict[str, Any] | None, error: str | None,
         finish_reason: str | None, created: float) -> tuple[Any, ...]:
    described = {"kind": request.kind, "body": request.body(), "sample": request.sample, "version": request.version}
    return (key, provider, request.model, json.dumps(described, ensure_ascii=False), status,
            json.dumps(raw, ensure_ascii=False) if raw is not None else None, error, finish_reason, created)


@atexit.register
def _flush_all() -> None:
    """What is pending in this process's caches (not a forked parent's), committed when the process ends."""
    for (pid, _), cache in list(ResponseCache._open.items()):
        if pid == os.getpid():
            with contextlib.suppress(sqlite3.Error):
                cache.flush()
