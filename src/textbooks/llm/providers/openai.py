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

import httpx
import openai

from textbooks.llm.config import LLMConfig
from textbooks.llm.providers.base import Provider
from textbooks.llm.retry import retry_after_s
from textbooks.llm.types import ProviderError, Request, check_raw

RETRIED_STATUSES = frozenset({408, 429})  # and every 5xx
ENDPOINTS = {"chat": "/v1/chat/completions", "complete": "/v1/completions"}
PATHS = {"chat": "/chat/completions", "complete": "/completions"}  # under base_url


def _server_message(error: openai.APIStatusError) -> str:
    body = error.body  # the SDK has already unwrapped {"error": {...}}
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(body) if body else error.message


def _connection_message(error: openai.APIConnectionError) -> str:
    """"Request timed out" or "Connection error", with the first cause: named from that cause, as the aiohttp
    transport maps a refused connection to httpx's ConnectTimeout, which the SDK reports as a timeout."""
    root: BaseException = error
    while root.__cause__ is not None:
        root = root.__cause__
    if root is error:
        return error.message
    head = "Request timed out" if isinstance(root, (TimeoutError, httpx.TimeoutException)) else "Connection error"
    return f"{head} ({type(root).__name__}: {root})"


class _Cookies(httpx.Cookies):
    """httpx's cookie jar, skipping responses that set no cookie: httpx reads every response into the standard
    library's cookie jar through a copy of the request's headers and an email message of the response's, a
    tenth of the client's CPU per request (bench/llm_throughput.py), to find no Set-Cookie header. A server
    that sets cookies still has them kept and sent back."""

    def extract_cookies(self, response: httpx.Response) -> None:
        if "set-cookie" in response.headers or "set-cookie2" in response.headers:
            super().extract_cookies(response)


class _AioHttpClient(openai.DefaultAioHttpClient):
    """The SDK's aiohttp client with the jar above."""

    def __init__(self, **options: Any) -> None:
        self._jar = _Cookies()
        super().__init__(**options)

    @property
    def cookies(self) -> httpx.Cookies:
        return self._jar

    @cookies.setter
    def cookies(self, cookies: Any) -> None:
        self._jar = _Cookies(cookies)


class OpenAIProvider(Provider):
    name = "openai"
    has_batch_api = True

    def __init__(self, config: LLMConfig, api_key: str) -> None:
        self.config = config
        self._api_key = api_key  # held here only; never in a message, row or repr
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sdk: openai.AsyncOpenAI | None = None

    @property
    def identity(self) -> str:
        return f"{self.name}@{self.config.base_url.rstrip('/')}"

    def __repr__(self) -> str:
        return f"OpenAIProvider(base_url={self.config.base_url!r}, model={self.config.model!r})"

    def sdk(self) -> openai.AsyncOpenAI:
        """The SDK client of the running event loop (made on first use in each loop), on the SDK's aiohttp
        transport (`openai[aiohttp]`): httpx's connection pool scans every connection and every waiting request
        on each event, which at 64 in flight costs more CPU than the requests themselves; aiohttp's does not
        (bench/llm_throughput.py, bench/RESULTS.md)."""
        loop = asyncio.get_running_loop()
        if self._sdk is None or loop is not self._loop:
            self._loop = loop
            self._sdk = openai.AsyncOpenAI(api_key=self._api_key, base_url=self.config.base_url,
                                           timeout=self.config.timeout_s, max_retries=0,
                                           http_client=_AioHttpClient(
                                               timeout=self.config.timeout_s,
                                               limits=httpx.Limits(max_connections=self.config.concurrency)))
        return self._sdk

    async def aclose(self) -> None:
        if self._sdk is not None:
            await self._sdk.close()
        self._loop, self._sdk = None, None

    async def send(self, request: Request) -> dict[str, Any]:
        body = request.body()

        path = PATHS[request.kind]
        # the SDK's documented way to post a body as is (`client.post(path, cast_to=httpx.Response)`): its auth,
        # headers, timeout and error types, without re-validating a body we built (a third of its CPU per
        # request), and with the extra fields local servers take passing through untouched
        response = await self._attempt(lambda: self.sdk().post(path, body=body, cast_to=httpx.Response))
        content = response.content  # JSON is UTF-8: bytes to json.loads, without httpx's charset detection
        try:
            raw = json.loads(content)
            check_raw(request.kind, raw)
        except ValueError as error:  # UnicodeDecodeError too
            raise ProviderError(f"malformed response body ({error}): {content[:200]!r}", status=200) from None
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
            raise ProviderError(_connection_message(error)) from None

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
