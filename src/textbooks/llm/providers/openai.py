"""Any OpenAI-compatible server (OpenAI, vLLM, llama.cpp, Ollama, TGI, `transformers serve`) through the SDK.

The SDK's own retries are off (`max_retries=0`) so that each retry is the client's: visible and counted. The
response body is read raw and kept as is (the cache stores it); a 200 whose body is not a response (not JSON,
no choices) is a failed attempt, retried like a 5xx. Retried: 408, 429, 5xx, timeouts, lost connections and
malformed bodies; any other 4xx fails at once with the server's message. The batch API is OpenAI's: a JSONL
file uploaded to /v1/files, a batch made on /v1/batches, polled, its output file read from
/v1/files/{id}/content.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai

from textbooks.llm.config import LLMConfig
from textbooks.llm.providers.base import Provider
from textbooks.llm.retry import retry_after_s
from textbooks.llm.types import ProviderError, Request, check_raw

RETRIED_STATUSES = frozenset({408, 429})  # and every 5xx
POOL = 8  # requests in flight per SDK client (per httpcore connection pool)
MAX_POOLS = 16  # a client configured for 100,000 in flight (a step's limiter bounds it) makes 16, not 12,500
ENDPOINTS = {"chat": "/v1/chat/completions", "complete": "/v1/completions"}


def _server_message(error: openai.APIStatusError) -> str:
    body = error.body  # the SDK has already unwrapped {"error": {...}}
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(body) if body else error.message


class OpenAIProvider(Provider):
    name = "openai"
    has_batch_api = True

    def __init__(self, config: LLMConfig, api_key: str) -> None:
        self.config = config
        self._api_key = api_key  # held here only; never in a message, row or repr
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sdks: list[openai.AsyncOpenAI] = []
        self._turn = 0

    def __repr__(self) -> str:
        return f"OpenAIProvider(base_url={self.config.base_url!r}, model={self.config.model!r})"

    def sdk(self) -> openai.AsyncOpenAI:
        """An SDK client of the running event loop (made on first use in each loop), taken in turn from
        `concurrency / POOL` of them (at most `MAX_POOLS`): httpcore's connection pool scans every connection
        and every waiting request on each event, so one pool of 64 connections spends more CPU than the
        requests themselves (bench/llm_throughput.py, bench/RESULTS.md)."""
        loop = asyncio.get_running_loop()
        if not self._sdks or loop is not self._loop:
            self._loop = loop
            self._sdks = [openai.AsyncOpenAI(api_key=self._api_key, base_url=self.config.base_url,
                                             timeout=self.config.timeout_s, max_retries=0)
                          for _ in range(min(MAX_POOLS, -(-self.config.concurrency // POOL)))]
        self._turn = (self._turn + 1) % len(self._sdks)
        return self._sdks[self._turn]

    async def aclose(self) -> None:
        for sdk in self._sdks:
            await sdk.close()
        self._loop, self._sdks = None, []

    async def send(self, request: Request) -> dict[str, Any]:
        body = request.body()

        async def call() -> Any:
            if request.kind == "chat":
                return await self.sdk().chat.completions.with_raw_response.create(**body)
            return await self.sdk().completions.with_raw_response.create(**body)

        response = await self._attempt(call)
        text = response.http_response.text
        try:
            raw = json.loads(text)
            check_raw(request.kind, raw)
        except ValueError as error:
            raise ProviderError(f"malformed response body ({error}): {text[:200]!r}", status=200) from None
        return raw

    async def _attempt(self, call: Any) -> Any:
        """`call()`, with the SDK's failures turned into `ProviderError`s."""
        try:
            return await call()
        except openai.APIStatusError as error:
            status, message = error.status_code, _server_message(error)
            retryable = status in RETRIED_STATUSES or status >= 500
            raise ProviderError(f"HTTP {status}: {message}", status, retryable,
                                retry_after_s(error.response.headers)) from None
        except openai.APIConnectionError as error:  # includes APITimeoutError
            cause = error.__cause__
            message = error.message if cause is None else f"{error.message} ({type(cause).__name__}: {cause})"
            raise ProviderError(message) from None

    async def submit_batch(self, requests: dict[str, Request]) -> str:
        """Upload `requests` (by cache key, which becomes each line's custom_id) and start one batch; its id."""
        kinds = {request.kind for request in requests.values()}
        if len(kinds) != 1:
            raise ValueError("one batch holds one kind of request")
        endpoint = ENDPOINTS[kinds.pop()]
        lines = [json.dumps({"custom_id": key, "method": "POST", "url": endpoint, "body": request.body()})
                 for key, request in requests.items()]
        data = ("\n".join(lines) + "\n").encode()
        uploaded = await self._attempt(lambda: self.sdk().files.create(file=("batch.jsonl", data), purpose="batch"))
        batch = await self._attempt(lambda: self.sdk().batches.create(
            input_file_id=uploaded.id, endpoint=endpoint, completion_window="24h"))  # type: ignore[arg-type]
        return str(batch.id)

    async def poll_batch(self, batch_id: str) -> tuple[str, str | None, str | None]:
        """(status, output file id, error file id) of a batch."""
        batch = await self._attempt(lambda: self.sdk().batches.retrieve(batch_id))
        return str(batch.status), batch.output_file_id, batch.error_file_id

    async def batch_lines(self, file_id: str) -> list[dict[str, Any]]:
        """The JSON lines of a batch's output or error file."""
        content = await self._attempt(lambda: self.sdk().files.content(file_id))
        return [json.loads(line) for line in content.text.splitlines() if line.strip()]
