"""The one LLM client: limits, retries, the response cache and accounting, in front of one provider.

    client = LLMClient(LLMConfig(model="gpt-4o", cache=True, requests_per_minute=500))
    print(client.estimate_chat(conversations))             # dry run: requests, tokens, cost; nothing sent
    replies = client.chat_many(conversations, version="judge-v2", parse=read_grade)
    print(client.usage)

Every request goes through `LLMClient._ask`: the cache first (a hit is parsed from the stored raw response,
never asked again), then the provider under the concurrency limit (the step's `Limiter` when one is passed,
`LLMClient(config, limiter=worker.limiter)` in a stage's `setup`, else the client's own) and the request and
token rates (limits.py), with retries: 408, 429, 5xx, timeouts, lost connections and malformed bodies, with
exponential back-off and jitter, or exactly the server's `Retry-After` (retry.py). Any other 4xx fails at
once with the server's message. A request that fails for good is an `LLMError`, recorded in the cache as
failed (with its error): `return_exceptions=True` returns it in the request's place, and a rerun returns the
recorded failure again unless `retry_failed=True` (which also re-asks answers cut at max_tokens).

Sample i of a prompt is its own request (`sample=i`, or `samples=[...]` in the maps), cached under its own
key; at temperature > 0 it is sent with `seed = config.seed + i` where the provider takes a seed. With
`batch: true` the maps go through the provider's batch API instead (see `_map_batch`).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, TypeVar, cast

from tqdm.auto import tqdm

from textbooks.errors import UserError
from textbooks.llm.cache import ResponseCache
from textbooks.llm.config import LOCAL_API_KEY, LLMConfig, is_loopback_url, resolve_api_key
from textbooks.llm.limits import RateLimits
from textbooks.llm.pricing import Estimate, characters_over_4, cost_usd, estimate, price_of
from textbooks.llm.providers import Provider, make_provider
from textbooks.llm.retry import backoff_delay, retry_after_s
from textbooks.llm.types import (
    Completion,
    LLMError,
    Messages,
    ProviderError,
    Request,
    Usage,
    check_raw,
    completion_from_raw,
)
from textbooks.pipeline.executors.aio import map_bounded
from textbooks.pipeline.executors.limits import Limiter

T = TypeVar("T")
Parser = Callable[[str], Any]
BATCH_DONE = frozenset({"completed", "failed", "expired", "cancelled"})


class LLMClient:
    """Async client for one model of one provider. Use it from asyncio (`await client.chat(...)`,
    `await client.map_chat(...)`) or from plain code (`client.chat_many(...)`, `client.run(coroutine)`)."""

    def __init__(self, config: LLMConfig, limiter: Limiter | None = None, provider: Provider | None = None) -> None:
        self.config = config
        self.limiter = limiter  # a step's shared limit (the async executor's); else `config.concurrency`
        self.usage = Usage()
        api_key = resolve_api_key(config) if config.provider == "openai" else LOCAL_API_KEY
        self._scrub = _scrubber(api_key)
        self.provider = provider or make_provider(config, api_key)
        self._own_limiter = Limiter(config.concurrency)
        self.rates = RateLimits(config.requests_per_minute, config.tokens_per_minute, config.max_tokens)
        self.cache = ResponseCache.open(config.cache_path) if config.cache else None
        if config.batch and (self.cache is None or not self.provider.has_batch_api):
            raise UserError(f"batch: true needs cache: true (the batch id is kept in the cache) and a provider with "
                            f"a batch API (openai), got cache: {config.cache}, provider: {config.provider}")
        self._in_flight: dict[str, asyncio.Future[Completion]] = {}

    def __repr__(self) -> str:
        return f"LLMClient(provider={self.config.provider!r}, model={self.config.model!r})"

    @property
    def where(self) -> str:
        if self.config.provider == "openai":
            return self.config.base_url
        return f"{self.config.provider}:{self.config.model}"

    async def aclose(self) -> None:
        """Commit the answers still pending in the cache and close the connections of the current event loop
        (the usage totals are kept)."""
        if self.cache is not None:
            self.cache.flush()
        await self.provider.aclose()

    # requests

    def request(self, kind: Literal["chat", "complete"], content: Messages | str, sample: int = 0,
                version: str = "", **overrides: Any) -> Request:
        """The `Request` a call with these arguments sends (and caches under)."""
        params = {"temperature": self.config.temperature, "max_tokens": self.config.max_tokens, **overrides}
        model = params.pop("model", self.config.model)
        if params.get("stop") is None:
            params.pop("stop", None)
        if params.get("temperature", 0) > 0 and "seed" not in params and self.provider.takes_seed:
            params["seed"] = self.config.seed + sample
        if kind == "chat":
            return Request("chat", model, messages=cast(Messages, content), params=params, sample=sample,
                           version=version)
        return Request("complete", model, prompt=cast(str, content), params=params, sample=sample, version=version)

    async def chat(self, messages: Messages, sample: int = 0, version: str = "", parse: Parser | None = None,
                   retry_failed: bool = False, **overrides: Any) -> Completion:
        """One chat completion; `overrides` (temperature, max_tokens, top_p, model...) go to the server as is."""
        return await self._ask(self.request("chat", messages, sample, version, **overrides), parse, retry_failed)

    async def complete(self, prompt: str, stop: Sequence[str] | None = None, sample: int = 0, version: str = "",
                       parse: Parser | None = None, retry_failed: bool = False, **overrides: Any) -> Completion:
        """One text continuation (`/v1/completions`), as base code models are served for HumanEval."""
        if stop is not None:
            overrides["stop"] = list(stop)
        return await self._ask(self.request("complete", prompt, sample, version, **overrides), parse, retry_failed)

    def _from_cache(self, request: Request, key: str, parse: Parser | None, retry_failed: bool) -> Completion | None:
        """The cached answer to `request`; None when it must be asked; raises a recorded failure."""
        row = self.cache.get(key) if self.cache is not None else None
        if row is None or (retry_failed and (row.status == "failed" or row.finish_reason == "length")):
            return None
        if row.status == "failed":
            self.usage.failures += 1
            raise LLMError(f"{row.error} (recorded in the response cache by an earlier run; pass "
                           f"retry_failed=True to ask again)")
        self.usage.cached += 1
        return self._parsed(completion_from_raw(request.kind, cast(dict, row.raw)), parse, cached=True)

    async def _ask(self, request: Request, parse: Parser | None, retry_failed: bool) -> Completion:
        """The answer to `request`: from the cache, or from the one task already asking it (with a cache, the
        same request twice in one run is sent once), or asked now."""
        key = request.key(self.provider.identity)
        hit = self._from_cache(request, key, parse, retry_failed)
        if hit is not None:
            return hit
        if self.cache is None:
            return self._parsed(await self._fetch(request, key), parse)
        asking = self._in_flight.get(key)
        if asking is not None:
            return self._parsed(await asyncio.shield(asking), parse, cached=True)
        asking = self._in_flight[key] = asyncio.get_running_loop().create_future()
        asking.add_done_callback(_retrieved)
        try:
            completion = await self._fetch(request, key)
        except Exception as error:
            asking.set_exception(error)  # for the others asking the same
            raise
        except BaseException:  # cancelled: so are the others
            asking.cancel()
            raise
        else:
            asking.set_result(completion)
        finally:
            del self._in_flight[key]
        return self._parsed(completion, parse)

    async def _fetch(self, request: Request, key: str) -> Completion:
        try:
            raw = await self._send(request)
        except LLMError as error:
            if self.cache is not None:
                self.cache.put_failed(key, self.provider.identity, request, str(error))
            raise
        completion = completion_from_raw(request.kind, raw)
        if self.cache is not None:
            self.cache.put_ok(key, self.provider.identity, request, raw, completion.finish_reason)
        self._count(request, completion)
        return completion

    def _count(self, request: Request, completion: Completion) -> None:
        self.usage.requests += 1
        self.usage.prompt_tokens += completion.prompt_tokens
        self.usage.completion_tokens += completion.completion_tokens
        cost = cost_usd(price_of(request.model, self.config.prices), completion.prompt_tokens,
                        completion.completion_tokens)
        self.usage.cost_usd += cost or 0.0

    @staticmethod
    def _parsed(completion: Completion, parse: Parser | None, cached: bool = False) -> Completion:
        return Completion(completion.text, completion.finish_reason, completion.prompt_tokens,
                          completion.completion_tokens, parse(completion.text) if parse else None, cached)

    async def _send(self, request: Request) -> dict[str, Any]:
        """The provider's answer to `request` under the concurrency limit and the rates, retried. The slot is
        held while backing off, so a server that is shedding load sees fewer requests, not the same number."""
        tokens = characters_over_4(request.prompt_text()) + int(request.params.get("max_tokens") or 0)
        async with self.limiter or self._own_limiter:
            return await self._retrying(lambda: self.provider.send(request), tokens)

    async def _retrying(self, call: Callable[[], Awaitable[T]], tokens: float | None = None) -> T:
        """`call()` until it succeeds, retrying what a retry can fix; before each attempt, the rates (when
        `tokens` is given: a request to a model, not a batch's bookkeeping)."""
        attempt = 0
        while True:
            if tokens is not None:
                await self.rates.acquire(tokens)
            try:
                return await call()
            except ProviderError as error:
                message = self._scrub(str(error))
                if not error.retryable:
                    self.usage.failures += 1
                    raise LLMError(f"{self.where} refused the request ({_status(error)}, not retried): "
                                   f"{message}", error.status) from None
                if attempt == self.config.max_retries:
                    self.usage.failures += 1
                    tries = f"{attempt + 1} attempt{'s' if attempt else ''}"
                    raise LLMError(f"{self.where} failed {tries}; last: {message} (is the server up? lower "
                                   f"concurrency or raise max_retries)", error.status) from None
                delay = error.retry_after_s
                if delay is None:
                    delay = backoff_delay(attempt, self.config.retry_base_s, self.config.retry_max_s)
                self.usage.retries += 1
                attempt += 1
                await asyncio.sleep(min(delay, self.config.retry_max_s))

    # many requests

    async def map_chat(self, list_of_messages: Sequence[Messages], progress: bool | tqdm = True,
                       return_exceptions: bool = False, samples: Sequence[int] | None = None, version: str = "",
                       parse: Parser | None = None, retry_failed: bool = False,
                       **overrides: Any) -> list[Completion | LLMError]:
        """`chat` on each conversation, `concurrency` at a time; results in input order. `samples[i]` is the
        sample index of conversation i (default 0). With `return_exceptions`, a failed request gives its
        `LLMError` in place of a `Completion`. `progress`: a bar of this call (requests/s, tokens/s, spend), or a
        tqdm bar that several calls share (each adds its requests to the total)."""
        requests = [self.request("chat", messages, sample, version, **overrides)
                    for messages, sample in zip(list_of_messages, samples or [0] * len(list_of_messages))]
        return await self._map(requests, progress, return_exceptions, parse, retry_failed, "chat")

    async def map_complete(self, prompts: Sequence[str], stop: Sequence[str] | None = None,
                           progress: bool | tqdm = True,
                           return_exceptions: bool = False, samples: Sequence[int] | None = None, version: str = "",
                           parse: Parser | None = None, retry_failed: bool = False,
                           **overrides: Any) -> list[Completion | LLMError]:
        """`complete` on each prompt, `concurrency` at a time; results in input order (see `map_chat`)."""
        if stop is not None:
            overrides["stop"] = list(stop)
        requests = [self.request("complete", prompt, sample, version, **overrides)
                    for prompt, sample in zip(prompts, samples or [0] * len(prompts))]
        return await self._map(requests, progress, return_exceptions, parse, retry_failed, "complete")

    async def _map(self, requests: list[Request], progress: bool | tqdm, return_exceptions: bool,
                   parse: Parser | None, retry_failed: bool, what: str) -> list[Completion | LLMError]:
        shared = progress if isinstance(progress, tqdm) else None
        if shared is not None:
            shared.total = (shared.total or 0) + len(requests)
            shared.refresh()
        with contextlib.nullcontext(shared) if shared is not None else tqdm(
                total=len(requests), desc=f"{self.config.model} {what}", unit="req",
                disable=None if progress else True) as bar:
            clock = time.time if shared is not None else time.perf_counter  # tqdm's start_t is wall time
            started = getattr(shared, "start_t", None) or clock()

            def done() -> None:
                seconds = max(clock() - started, 1e-9)
                tokens = self.usage.prompt_tokens + self.usage.completion_tokens
                bar.update(1)
                bar.set_postfix_str(f"{self.usage.requests / seconds:.1f} req/s, {tokens / seconds:.0f} tok/s, "
                                    f"${self.usage.cost_usd:.4f}", refresh=False)

            if self.config.batch:
                return await self._map_batch(requests, return_exceptions, parse, retry_failed, done)

            async def tracked(request: Request) -> Completion | LLMError:
                try:
                    return await self._ask(request, parse, retry_failed)
                except LLMError as error:
                    if not return_exceptions:
                        raise
                    return error
                finally:
                    done()

            try:  # as many workers as requests may be in flight under the limit `_send` takes
                return await map_bounded(tracked, requests, (self.limiter or self._own_limiter).concurrency)
            finally:
                if self.cache is not None:
                    self.cache.flush()  # every answer of the map committed before it returns

    async def _map_batch(self, requests: list[Request], return_exceptions: bool, parse: Parser | None,
                         retry_failed: bool, done: Callable[[], None]) -> list[Completion | LLMError]:
        """The maps through the batch API: what the cache lacks is first looked for in batches an earlier run
        started (polled, not resubmitted), then sent as one new batch, polled every `batch_poll_s` until done.
        Each answer is written to the cache; a line the batch failed is recorded as failed."""
        assert self.cache is not None
        keys = [request.key(self.provider.identity) for request in requests]

        def missing() -> dict[str, Request]:
            return {key: request for key, request in zip(keys, requests)
                    if (row := self.cache.get(key)) is None  # type: ignore[union-attr]
                    or (retry_failed and (row.status == "failed" or row.finish_reason == "length"))}

        wanted = missing()
        for batch_id, batch_keys in self.cache.running_batches(self.provider.identity, self.config.model):
            if wanted.keys() & set(batch_keys):
                await self._collect_batch(batch_id, batch_keys, requests_by_key=dict(zip(keys, requests)))
        wanted = missing()
        if wanted:
            batch_id = await self._retrying(lambda: self.provider.submit_batch(wanted))  # type: ignore[attr-defined]
            self.cache.add_batch(batch_id, self.provider.identity, self.config.model, list(wanted))
            await self._collect_batch(batch_id, list(wanted), requests_by_key=wanted)
        results: list[Completion | LLMError] = []
        for key, request in zip(keys, requests):
            try:
                results.append(cast(Completion, self._from_cache(request, key, parse, retry_failed=False)))
            except LLMError as error:
                if not return_exceptions:
                    raise
                results.append(error)
            done()
        return results

    async def _collect_batch(self, batch_id: str, batch_keys: list[str], requests_by_key: dict[str, Request]) -> None:
        provider: Any = self.provider
        while True:
            status, output_file, error_file = await self._retrying(lambda: provider.poll_batch(batch_id))
            if status in BATCH_DONE:
                break
            await asyncio.sleep(self.config.batch_poll_s)
        answered: set[str] = set()
        for file_id in (output_file, error_file):
            if not file_id:
                continue
            for line in await self._retrying(lambda: provider.batch_lines(file_id)):
                key = str(line.get("custom_id"))
                request = requests_by_key.get(key)
                if request is None:
                    continue
                answered.add(key)
                self._record_batch_line(key, request, line)
        for key in set(batch_keys) - answered:
            if key in requests_by_key:
                self.cache.put_failed(key, self.provider.identity, requests_by_key[key],  # type: ignore[union-attr]
                                      f"{self.where}: batch {batch_id} ended {status} without this request")
        self.cache.finish_batch(batch_id, status)  # type: ignore[union-attr]

    def _record_batch_line(self, key: str, request: Request, line: dict[str, Any]) -> None:
        assert self.cache is not None
        response = line.get("response") or {}
        raw = response.get("body")
        try:
            if response.get("status_code") != 200:
                raise ValueError(f"HTTP {response.get('status_code')}: {line.get('error') or raw}")
            check_raw(request.kind, raw)
        except ValueError as error:
            self.usage.failures += 1
            self.cache.put_failed(key, self.provider.identity, request, self._scrub(f"{self.where} batch: {error}"))
            return
        completion = completion_from_raw(request.kind, raw)
        self.cache.put_ok(key, self.provider.identity, request, raw, completion.finish_reason)
        self._count(request, completion)

    # dry run

    def estimate_chat(self, list_of_messages: Sequence[Messages], samples: Sequence[int] | None = None,
                      version: str = "", tokenizer: Any = None, **overrides: Any) -> Estimate:
        """What `map_chat` with these arguments would send and cost, sending nothing (see pricing.py)."""
        requests = [self.request("chat", messages, sample, version, **overrides)
                    for messages, sample in zip(list_of_messages, samples or [0] * len(list_of_messages))]
        return self._estimate(requests, tokenizer)

    def estimate_complete(self, prompts: Sequence[str], samples: Sequence[int] | None = None, version: str = "",
                          tokenizer: Any = None, **overrides: Any) -> Estimate:
        """What `map_complete` with these arguments would send and cost, sending nothing."""
        requests = [self.request("complete", prompt, sample, version, **overrides)
                    for prompt, sample in zip(prompts, samples or [0] * len(prompts))]
        return self._estimate(requests, tokenizer)

    def _estimate(self, requests: list[Request], tokenizer: Any) -> Estimate:
        cached = []
        for request in requests:
            row = self.cache.get(request.key(self.provider.identity)) if self.cache is not None else None
            cached.append(row is not None and row.status == "ok")
        count = characters_over_4 if tokenizer is None else _token_counter(tokenizer)
        return estimate(requests, cached, self.config.prices, count)

    # outside asyncio

    def run(self, coroutine: Awaitable[T]) -> T:
        """Run a coroutine of this client from code outside asyncio, closing its connections afterwards."""
        async def main() -> T:
            try:
                return await coroutine
            finally:
                await self.aclose()

        return asyncio.run(main())

    def chat_many(self, list_of_messages: Sequence[Messages], progress: bool | tqdm = True,
                  **options: Any) -> list[Completion]:
        """`map_chat` for callers outside asyncio; the first request that fails raises its `LLMError`."""
        return cast(list[Completion], self.run(self.map_chat(list_of_messages, progress=progress, **options)))

    def complete_many(self, prompts: Sequence[str], stop: Sequence[str] | None = None,
                      progress: bool | tqdm = True,
                      **options: Any) -> list[Completion]:
        """`map_complete` for callers outside asyncio; the first request that fails raises its `LLMError`."""
        return cast(list[Completion], self.run(self.map_complete(prompts, stop, progress=progress, **options)))


def _retrieved(future: asyncio.Future[Any]) -> None:
    """Mark a failure as seen: the request's own caller raises it; the others asking the same are optional."""
    if not future.cancelled():
        future.exception()


def _status(error: ProviderError) -> str:
    return f"HTTP {error.status}" if error.status is not None else "no HTTP status"


def _scrubber(secret: str) -> Callable[[str], str]:
    """A function that blanks `secret` out of a text (a server may echo the key in an error message)."""
    if not secret or secret == LOCAL_API_KEY:
        return lambda text: text
    return lambda text: text.replace(secret, "[API key]")


def _token_counter(tokenizer: Any) -> Callable[[str], int]:
    if callable(getattr(tokenizer, "encode", None)):
        return lambda text: len(tokenizer.encode(text))
    return lambda text: int(tokenizer(text))


__all__ = ["LLMClient", "LLMConfig", "LLMError", "Completion", "Usage", "Messages", "is_loopback_url",
           "resolve_api_key", "backoff_delay", "retry_after_s", "LOCAL_API_KEY"]
