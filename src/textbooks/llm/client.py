"""The one LLM client: any OpenAI-compatible HTTP server (OpenAI, vLLM, llama.cpp, Ollama, TGI).

    client = LLMClient(LLMConfig(model="gpt-4o", base_url="http://localhost:8000/v1"))
    replies = client.chat_many([[{"role": "user", "content": "Write a haiku."}]] * 100)
    print(client.usage)

Every request goes through `LLMClient._request`, which owns the concurrency limit and the retries; that one
place is where a response cache and cost accounting will hook in. Inside a step on the `async` executor, pass
the step's `Limiter` (`LLMClient(config, limiter=worker.limiter)` in the stage's `setup`): then one
concurrency limit and one request rate hold for every task of the step. The SDK's own retries are off
(`max_retries=0`) so that each retry is ours: visible in `client.usage.retries` and tested against a real
server in tests/test_llm.py.

Retried: 408, 429, 5xx, timeouts and connection errors, with exponential back-off and jitter, or exactly the
server's `Retry-After` when it sends one. Not retried: any other 4xx (bad key, unknown model, prompt too
long), which fails at once with the status and the server's own message.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import random
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar, cast
from urllib.parse import urlparse

import openai
from pydantic import BaseModel, ConfigDict, Field, field_validator
from tqdm.auto import tqdm

from textbooks.errors import UserError
from textbooks.pipeline.executors.aio import gather_or_cancel
from textbooks.pipeline.executors.limits import Limiter

OPENAI_BASE_URL = "https://api.openai.com/v1"
LOCAL_API_KEY = "EMPTY"  # local servers (vLLM, llama.cpp, Ollama) ignore the key, but the SDK wants one
RETRIED_STATUSES = frozenset({408, 429})  # and every 5xx

Messages = list[dict[str, Any]]
T = TypeVar("T")


def _default_base_url() -> str:
    return os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL


class LLMConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Model name as the server knows it (e.g. gpt-4o, or the model vLLM serves).")
    base_url: str = Field(default_factory=_default_base_url,
                          description="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL, else OpenAI's).")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable that holds the API key.")
    concurrency: int = Field(8, ge=1, description="Requests in flight at once.")
    max_retries: int = Field(5, ge=0, description="Retries of a request after 429, 5xx, timeout or lost connection.")
    retry_base_s: float = Field(1.0, gt=0, description="First back-off delay in seconds; doubles on each retry.")
    retry_max_s: float = Field(60.0, gt=0, description="Longest wait between retries, Retry-After included.")
    timeout_s: float = Field(120.0, gt=0, description="Seconds to wait for one response before retrying.")
    temperature: float = Field(0.0, ge=0, description="Sampling temperature (0: greedy).")
    max_tokens: int = Field(1024, ge=1, description="Most tokens to generate per request.")

    @field_validator("base_url", mode="before")
    @classmethod
    def _base_url_or_default(cls, value: str | None) -> str:
        return _default_base_url() if value is None else value


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str | None  # "stop", "length", ... as the server reports it
    prompt_tokens: int
    completion_tokens: int


@dataclass
class Usage:
    """Running totals for one client: successful requests, retries, failed requests and tokens."""

    requests: int = 0
    retries: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0


class LLMError(UserError):
    """A request the server refused (4xx) or kept failing (after every retry); says which and why."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # HTTP status of the last attempt, None for timeouts and connection errors


def is_loopback_url(url: str) -> bool:
    """Whether `url` points at this machine (localhost, 127.x.x.x, ::1)."""
    host = urlparse(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_api_key(config: LLMConfig) -> str:
    """The key from `config.api_key_env`; a placeholder for a loopback server; else a UserError."""
    key = os.environ.get(config.api_key_env)
    if key:
        return key
    if is_loopback_url(config.base_url):
        return LOCAL_API_KEY
    raise UserError(f"no API key for {config.base_url}: set the environment variable {config.api_key_env} "
                    f"(or point base_url at a local server, which needs no key)")


def backoff_delay(attempt: int, base_s: float, max_s: float) -> float:
    """Seconds to wait before retry number `attempt` (0-based): base * 2**attempt, capped, times a jitter in
    [0.5, 1] so that many clients refused at once do not all come back at once."""
    return min(max_s, base_s * 2**attempt) * random.uniform(0.5, 1.0)


def retry_after_s(headers: Any) -> float | None:
    """The server's requested wait, from `retry-after-ms` (OpenAI) or `Retry-After` (seconds or HTTP date)."""
    if value := headers.get("retry-after-ms"):
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _server_message(error: openai.APIStatusError) -> str:
    body = error.body  # the SDK has already unwrapped {"error": {...}}
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(body) if body else error.message


class LLMClient:
    """Async client for one model on one server. Use it from asyncio (`await client.chat(...)`,
    `await client.map_chat(...)`) or from plain code (`client.chat_many(...)`, `client.run(coroutine)`)."""

    def __init__(self, config: LLMConfig, limiter: Limiter | None = None) -> None:
        self.config = config
        self.limiter = limiter  # a step's shared limit (the async executor's); else `config.concurrency`
        self.usage = Usage()
        self._api_key = resolve_api_key(config)
        # The SDK client and the semaphore belong to one event loop; they are made on first use in each loop.
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sdk: openai.AsyncOpenAI | None = None
        self._semaphore: asyncio.Semaphore | None = None

    def _session(self) -> tuple[openai.AsyncOpenAI, asyncio.Semaphore | Limiter]:
        loop = asyncio.get_running_loop()
        if self._sdk is None or self._semaphore is None or loop is not self._loop:
            self._loop = loop
            self._sdk = openai.AsyncOpenAI(api_key=self._api_key, base_url=self.config.base_url,
                                           timeout=self.config.timeout_s, max_retries=0)
            self._semaphore = asyncio.Semaphore(self.config.concurrency)
        return self._sdk, self.limiter or self._semaphore

    async def aclose(self) -> None:
        """Close the connections of the current event loop (the usage totals are kept)."""
        if self._sdk is not None:
            await self._sdk.close()
        self._loop = self._sdk = self._semaphore = None

    def _settings(self, overrides: dict[str, Any]) -> dict[str, Any]:
        return {"model": self.config.model, "temperature": self.config.temperature,
                "max_tokens": self.config.max_tokens, **overrides}

    async def chat(self, messages: Messages, **overrides: Any) -> Completion:
        """One chat completion (`/v1/chat/completions`); `overrides` are passed to the server as is."""
        settings = self._settings(overrides)

        async def call(sdk: openai.AsyncOpenAI) -> Any:
            return await sdk.chat.completions.create(messages=messages, **settings)

        response = await self._request(call)
        choice = response.choices[0]
        return self._completion(response, choice.message.content or "", choice.finish_reason)

    async def complete(self, prompt: str, stop: Sequence[str] | None = None, **overrides: Any) -> Completion:
        """One text continuation (legacy `/v1/completions`), as base code models are served for HumanEval."""
        settings = self._settings(overrides)
        if stop is not None:
            settings["stop"] = list(stop)

        async def call(sdk: openai.AsyncOpenAI) -> Any:
            return await sdk.completions.create(prompt=prompt, **settings)

        response = await self._request(call)
        choice = response.choices[0]
        return self._completion(response, choice.text or "", choice.finish_reason)

    def _completion(self, response: Any, text: str, finish_reason: str | None) -> Completion:
        usage = response.usage
        completion = Completion(text=text, finish_reason=finish_reason,
                                prompt_tokens=usage.prompt_tokens if usage else 0,
                                completion_tokens=usage.completion_tokens if usage else 0)
        self.usage.prompt_tokens += completion.prompt_tokens
        self.usage.completion_tokens += completion.completion_tokens
        return completion

    async def _request(self, call: Callable[[openai.AsyncOpenAI], Awaitable[T]]) -> T:
        """Run `call` under the concurrency limit, retrying what a retry can fix. The slot is held while
        backing off, so a server that is shedding load sees fewer requests, not the same number."""
        sdk, limit = self._session()
        async with limit:
            attempt = 0
            while True:
                try:
                    result = await call(sdk)
                    self.usage.requests += 1
                    return result
                except openai.APIStatusError as error:
                    status, message = error.status_code, _server_message(error)
                    if status not in RETRIED_STATUSES and status < 500:
                        self.usage.failures += 1
                        raise LLMError(f"{self.config.base_url} refused the request (HTTP {status}, not retried): "
                                       f"{message}", status) from error
                    failed, last = error, f"HTTP {status}: {message}"
                    delay = retry_after_s(error.response.headers)
                except openai.APIConnectionError as error:  # includes APITimeoutError
                    cause = error.__cause__
                    failed, status, delay = error, None, None
                    last = error.message if cause is None else f"{error.message} ({type(cause).__name__}: {cause})"
                if attempt == self.config.max_retries:
                    self.usage.failures += 1
                    raise LLMError(f"{self.config.base_url} failed {attempt + 1} attempts; last: {last} "
                                   f"(is the server up? lower concurrency or raise max_retries)", status) from failed
                if delay is None:
                    delay = backoff_delay(attempt, self.config.retry_base_s, self.config.retry_max_s)
                self.usage.retries += 1
                attempt += 1
                await asyncio.sleep(min(delay, self.config.retry_max_s))

    async def map_chat(self, list_of_messages: Sequence[Messages], progress: bool = True,
                       return_exceptions: bool = False, **overrides: Any) -> list[Completion | LLMError]:
        """`chat` on each conversation, `concurrency` at a time; results in input order. With
        `return_exceptions`, a failed request gives its `LLMError` in place of a `Completion`."""
        coroutines = [self.chat(messages, **overrides) for messages in list_of_messages]
        return await self._gather(coroutines, progress, return_exceptions, "chat")

    async def map_complete(self, prompts: Sequence[str], stop: Sequence[str] | None = None, progress: bool = True,
                           return_exceptions: bool = False, **overrides: Any) -> list[Completion | LLMError]:
        """`complete` on each prompt, `concurrency` at a time; results in input order (see `map_chat`)."""
        coroutines = [self.complete(prompt, stop, **overrides) for prompt in prompts]
        return await self._gather(coroutines, progress, return_exceptions, "complete")

    async def _gather(self, coroutines: list[Coroutine[Any, Any, Completion]], progress: bool,
                      return_exceptions: bool, what: str) -> list[Completion | LLMError]:
        with tqdm(total=len(coroutines), desc=f"{self.config.model} {what}", disable=None if progress else True) as bar:
            async def tracked(coroutine: Coroutine[Any, Any, Completion]) -> Completion | LLMError:
                try:
                    return await coroutine
                except LLMError as error:
                    if not return_exceptions:
                        raise
                    return error
                finally:
                    bar.update(1)

            return await gather_or_cancel([tracked(coroutine) for coroutine in coroutines])

    def run(self, coroutine: Awaitable[T]) -> T:
        """Run a coroutine of this client from code outside asyncio, closing its connections afterwards."""
        async def main() -> T:
            try:
                return await coroutine
            finally:
                await self.aclose()

        return asyncio.run(main())

    def chat_many(self, list_of_messages: Sequence[Messages], progress: bool = True,
                  **overrides: Any) -> list[Completion]:
        """`map_chat` for callers outside asyncio; the first request that fails raises its `LLMError`."""
        return cast(list[Completion], self.run(self.map_chat(list_of_messages, progress=progress, **overrides)))

    def complete_many(self, prompts: Sequence[str], stop: Sequence[str] | None = None, progress: bool = True,
                      **overrides: Any) -> list[Completion]:
        """`map_complete` for callers outside asyncio; the first request that fails raises its `LLMError`."""
        return cast(list[Completion], self.run(self.map_complete(prompts, stop, progress=progress, **overrides)))
