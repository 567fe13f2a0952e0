"""The interface every provider implements: send one request, get its raw OpenAI-shaped response.

A provider does one attempt; the client owns limits, retries, the cache and accounting. A failed attempt
raises `ProviderError` saying whether a retry can fix it. The raw response has OpenAI's shape
(`choices[0].message.content` or `choices[0].text`, `finish_reason`, `usage`), whatever the backend, so one
parser reads every provider's answers and the cache stores them alike.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from textbooks.llm.types import ProviderError, Request


class Provider(ABC):
    name: str
    takes_seed: bool = True  # whether a request's `seed` is honoured (else it is not sent)
    has_batch_api: bool = False

    @abstractmethod
    async def send(self, request: Request) -> dict[str, Any]:
        """The raw response to `request`; raises `ProviderError` for a failed attempt."""

    @property
    def identity(self) -> str:
        """Who answers, as part of every cache key: the provider, and for a server its address (two servers
        that name their models alike do not share answers)."""
        return self.name

    async def aclose(self) -> None:
        """Release what the current event loop holds (connections)."""


class LocalBatcher:
    """Requests sent at once by many tasks, run together by `run_batch` (up to `batch_size` at a time) in a
    worker thread, so that the event loop stays free and a local engine sees batches, not single prompts."""

    def __init__(self, run_batch: Callable[[list[Request]], list[dict[str, Any]]], batch_size: int) -> None:
        self.run_batch, self.batch_size = run_batch, batch_size
        self._pending: list[tuple[Request, asyncio.Future[dict[str, Any]]]] = []
        self._draining = False

    async def send(self, request: Request) -> dict[str, Any]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending.append((request, future))
        if not self._draining:
            self._draining = True
            asyncio.ensure_future(self._drain())
        return await future

    async def _drain(self) -> None:
        try:
            await asyncio.sleep(0)  # let the other tasks of this turn queue their requests
            while self._pending:
                batch, self._pending = self._pending[:self.batch_size], self._pending[self.batch_size:]
                try:
                    raws = await asyncio.to_thread(self.run_batch, [request for request, _ in batch])
                except Exception as error:  # the engine failed: every request of the batch gets the error
                    if not isinstance(error, ProviderError):
                        error = ProviderError(f"{type(error).__name__}: {error}", retryable=False)
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for (_, future), raw in zip(batch, raws):
                    if not future.done():
                        future.set_result(raw)
        finally:
            self._draining = False


def openai_shaped(kind: str, text: str, finish_reason: str, prompt_tokens: int, completion_tokens: int,
                  model: str) -> dict[str, Any]:
    """A local answer in OpenAI's response shape."""
    choice: dict[str, Any] = {"index": 0, "finish_reason": finish_reason}
    if kind == "chat":
        choice["message"] = {"role": "assistant", "content": text}
    else:
        choice["text"] = text
    return {"object": "chat.completion" if kind == "chat" else "text_completion", "model": model,
            "choices": [choice], "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                           "total_tokens": prompt_tokens + completion_tokens}}
