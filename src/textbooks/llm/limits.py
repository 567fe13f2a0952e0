"""Request and token rates for one client, on top of the concurrency `Limiter` of pipeline/executors/limits.py.

    rates = RateLimits(requests_per_minute=600, tokens_per_minute=90_000)
    await rates.acquire(estimated_tokens)     # before every attempt: a retry is a request the server counts

Each rate is a leaky bucket (aiolimiter) that holds one second's worth (at least one request, or the largest
request), so in any window of t seconds at most rate*t/60 + one second's worth start: no minute-long burst at
start-up as a bucket of a whole minute would allow. Tokens are counted before sending, as prompt characters/4 +
max_tokens, the most a request can cost; a request larger than the bucket waits for a full bucket.
"""

from __future__ import annotations

import asyncio

from aiolimiter import AsyncLimiter


def _bucket(per_minute: float, least: float) -> tuple[float, float]:
    """(capacity, seconds to refill it) of a bucket for `per_minute` holding a second's worth or `least`."""
    capacity = max(per_minute / 60, least)
    return capacity, capacity * 60 / per_minute


class RateLimits:
    def __init__(self, requests_per_minute: float | None = None, tokens_per_minute: float | None = None,
                 largest_request_tokens: float = 1.0) -> None:
        self.requests_per_minute, self.tokens_per_minute = requests_per_minute, tokens_per_minute
        self.largest_request_tokens = largest_request_tokens
        self._loop: asyncio.AbstractEventLoop | None = None
        self._requests: AsyncLimiter | None = None
        self._tokens: AsyncLimiter | None = None
        self._token_capacity = 0.0

    def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        if loop is self._loop:
            return
        self._loop = loop
        self._requests = AsyncLimiter(*_bucket(self.requests_per_minute, 1)) if self.requests_per_minute else None
        self._tokens = None
        if self.tokens_per_minute:
            self._token_capacity, period = _bucket(self.tokens_per_minute, self.largest_request_tokens)
            self._tokens = AsyncLimiter(self._token_capacity, period)

    async def acquire(self, tokens: float) -> None:
        """Wait until one more request of `tokens` tokens fits both rates."""
        self._bind()
        if self._requests is not None:
            await self._requests.acquire()
        if self._tokens is not None:
            await self._tokens.acquire(min(tokens, self._token_capacity))
