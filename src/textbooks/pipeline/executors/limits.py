"""One concurrency limit and one request rate for a whole step, shared by every task of the step.

    async with limiter:          # waits for a free slot and for the rate, then counts the request
        reply = await send(...)

On the `async` executor every task of a step runs on one event loop in one process and shares one `Limiter`,
so `concurrency: 16` means 16 requests in flight for the step, however many tasks it has. The rate limit is
aiolimiter's leaky bucket over a minute.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiolimiter import AsyncLimiter


class Limiter:
    def __init__(self, concurrency: int, requests_per_minute: float | None = None) -> None:
        self.concurrency = concurrency
        self.requests_per_minute = requests_per_minute
        self.requests = 0  # slots handed out so far
        self.in_flight = 0
        self.most_in_flight = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._rate: AsyncLimiter | None = None

    def _bind(self) -> tuple[asyncio.Semaphore, AsyncLimiter | None]:
        """The semaphore and bucket of the running loop (made on first use in each loop)."""
        loop = asyncio.get_running_loop()
        if self._semaphore is None or loop is not self._loop:
            self._loop = loop
            self._semaphore = asyncio.Semaphore(self.concurrency)
            self._rate = AsyncLimiter(self.requests_per_minute, 60) if self.requests_per_minute else None
        return self._semaphore, self._rate

    async def __aenter__(self) -> Limiter:
        semaphore, rate = self._bind()
        await semaphore.acquire()
        try:
            if rate is not None:
                await rate.acquire()
        except BaseException:
            semaphore.release()
            raise
        self.requests += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.in_flight -= 1
        assert self._semaphore is not None
        self._semaphore.release()
