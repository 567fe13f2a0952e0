"""textbooks.llm under faults and limits against a real loopback server: every request ends answered or
recorded as failed, the concurrency, request and token rates hold as the server counts them, and the API key
is in no file a run writes."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from llm_server import FakeLLMServer, llm_server_fixture  # noqa: F401  (fixture `llm_server`)

from textbooks.llm import Completion, LLMClient, LLMConfig, LLMError
from textbooks.llm.cache import ResponseCache
from textbooks.pipeline.executors.limits import Limiter


def make_client(server: FakeLLMServer, **settings) -> LLMClient:
    settings = {"model": "fake-model", "base_url": server.url, "retry_base_s": 0.01, **settings}
    return LLMClient(LLMConfig(**settings))


def test_every_request_ends_answered_or_recorded_failed(llm_server: FakeLLMServer, tmp_path: Path) -> None:
    llm_server.latency_s = 0.005
    llm_server.inject(status=429, times=3, retry_after="0.1", message="slow down")
    llm_server.inject(status=500, times=3)
    llm_server.inject(malformed=True, times=2)
    llm_server.inject(delay_s=2.0)  # answered after the client has given up
    llm_server.inject(status=400, message="content policy")
    client = make_client(llm_server, concurrency=8, timeout_s=1.0, cache=True,
                         cache_path=str(tmp_path / "cache.sqlite"))
    prompts = [f"question {i}" for i in range(40)]

    results = client.run(client.map_complete(prompts, progress=False, return_exceptions=True))

    failed = [result for result in results if isinstance(result, LLMError)]
    assert len(failed) == 1 and "HTTP 400, not retried" in str(failed[0])
    assert all(result.text == f"echo: {prompt}" for prompt, result in zip(prompts, results)
               if isinstance(result, Completion))
    assert client.usage.retries == 3 + 3 + 2 + 1
    assert (client.usage.requests, client.usage.failures) == (39, 1)
    assert len(llm_server.requests) == 40 + client.usage.retries  # every extra request is a counted retry
    cache = ResponseCache.open(tmp_path / "cache.sqlite")
    assert (cache.count("ok"), cache.count("failed")) == (39, 1)
    assert llm_server.max_in_flight <= 8


def test_the_step_limiter_bounds_requests_in_flight(llm_server: FakeLLMServer) -> None:
    llm_server.latency_s = 0.05
    limiter = Limiter(concurrency=5)
    client = LLMClient(LLMConfig(model="m", base_url=llm_server.url, concurrency=100), limiter=limiter)

    client.complete_many([str(i) for i in range(30)], progress=False)

    assert llm_server.max_in_flight == limiter.most_in_flight == 5


JITTER_S = 0.25  # the most the delay from admission to arrival is allowed to vary


def test_requests_per_minute_hold_in_every_window(llm_server: FakeLLMServer) -> None:
    client = make_client(llm_server, requests_per_minute=1200, concurrency=64)  # 20 a second, 20 at once
    started = time.monotonic()
    client.complete_many([str(i) for i in range(50)], progress=False)

    # a bucket of one second's worth admits at most 20 + 20 * t in any t seconds. Arrivals there lag admissions
    # here by a varying delay (new connections on a loaded machine), which can squeeze the admissions of a
    # window up to JITTER_S longer into one window: so the bound of t + JITTER_S is checked on windows of t
    assert time.monotonic() - started >= 1.4  # 30 requests past the first second's worth, at 20/s
    assert llm_server.most_in_window(1.0 - JITTER_S) <= 20 + 20 * 1.0
    assert llm_server.most_in_window(0.5 - JITTER_S) <= 20 + 20 * 0.5


def test_tokens_per_minute_hold_in_every_window(llm_server: FakeLLMServer) -> None:
    # each request counts 40 tokens (40 characters / 4 + max_tokens 30): 24000/min is 10 requests a second
    client = make_client(llm_server, tokens_per_minute=24_000, max_tokens=30, concurrency=64)
    started = time.monotonic()
    client.complete_many(["x" * 40] * 25, samples=list(range(25)), progress=False)

    assert time.monotonic() - started >= 1.4
    assert llm_server.most_in_window(1.0 - JITTER_S) <= 10 + 10 * 1.0


SECRET = "sk-test-0123456789abcdefSECRET"


def test_the_api_key_is_in_no_file_the_run_writes(llm_server: FakeLLMServer, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_KEY", SECRET)
    llm_server.inject(status=401, message=f"invalid key {SECRET}")  # a server that echoes the key back
    llm_server.inject(status=503, times=2, message=f"down for {SECRET}")
    client = make_client(llm_server, api_key_env="MY_KEY", cache=True, cache_path=str(tmp_path / "c.sqlite"),
                         concurrency=1, max_retries=1)
    results = client.run(client.map_chat([[{"role": "user", "content": str(i)}] for i in range(4)],
                                         progress=False, return_exceptions=True))

    assert llm_server.requests[0].headers["authorization"] == f"Bearer {SECRET}"  # the key was used
    assert [isinstance(result, LLMError) for result in results] == [True, True, False, False]
    (tmp_path / "stats.json").write_text(json.dumps({"usage": vars(client.usage), "errors": [
        str(result) for result in results], "client": repr(client), "config": client.config.model_dump(),
        "provider": repr(client.provider)}))
    for text in (repr(client), repr(client.config), repr(client.provider), *map(str, results)):
        assert SECRET not in text
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert {path.name for path in written} >= {"c.sqlite", "stats.json"}
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path
    assert "[API key]" in str(results[0])
