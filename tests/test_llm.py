"""textbooks.llm against a real OpenAI-compatible HTTP server on 127.0.0.1, through the real SDK."""

from __future__ import annotations

import asyncio
import time
from email.utils import formatdate

import pytest
from llm_server import FakeLLMServer, Reply, llm_server_fixture  # noqa: F401  (fixture `llm_server`)

from textbooks.errors import UserError
from textbooks.llm import LLMClient, LLMConfig, LLMError, is_loopback_url
from textbooks.llm.config import LOCAL_API_KEY
from textbooks.llm.retry import backoff_delay, retry_after_s


def make_client(server: FakeLLMServer, **settings) -> LLMClient:
    settings = {"model": "fake-model", "base_url": server.url, "retry_base_s": 0.01, **settings}
    return LLMClient(LLMConfig(**settings))


def test_chat_round_trip(llm_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_LLM_KEY", "secret-123")
    client = make_client(llm_server, api_key_env="MY_LLM_KEY", temperature=0.7, max_tokens=50)
    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "say hi there"}]

    completion = client.run(client.chat(messages))

    assert completion.text == "echo: say hi there"
    assert completion.finish_reason == "stop"
    assert (completion.prompt_tokens, completion.completion_tokens) == (6, 4)
    [received] = llm_server.requests
    assert received.path == "/v1/chat/completions"
    assert received.body["model"] == "fake-model"
    assert received.body["messages"] == messages
    assert (received.body["temperature"], received.body["max_tokens"]) == (0.7, 50)
    assert received.headers["authorization"] == "Bearer secret-123"


def test_complete_round_trip_with_stop_and_overrides(llm_server: FakeLLMServer) -> None:
    llm_server.reply = lambda body: Reply("    return a + b\n", finish_reason="length")
    client = make_client(llm_server)

    completion = client.run(client.complete("def add(a, b):\n", stop=["\ndef"], max_tokens=7, model="other"))

    assert completion.text == "    return a + b\n"
    assert completion.finish_reason == "length"
    [received] = llm_server.requests
    assert received.path == "/v1/completions"
    assert received.body["prompt"] == "def add(a, b):\n"
    assert received.body["stop"] == ["\ndef"]
    assert (received.body["max_tokens"], received.body["model"]) == (7, "other")


def test_loopback_server_needs_no_key(llm_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    client = make_client(llm_server)
    client.run(client.chat([{"role": "user", "content": "hi"}]))
    assert llm_server.requests[0].headers["authorization"] == f"Bearer {LOCAL_API_KEY}"


def test_missing_key_for_remote_server_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACME_KEY", raising=False)
    with pytest.raises(UserError, match="set the environment variable ACME_KEY"):
        LLMClient(LLMConfig(model="m", base_url="https://api.acme.example/v1", api_key_env="ACME_KEY"))


def test_base_url_defaults_to_environment_then_openai(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:8000/v1")
    assert LLMConfig(model="m").base_url == "http://localhost:8000/v1"
    monkeypatch.delenv("OPENAI_BASE_URL")
    assert LLMConfig(model="m", base_url=None).base_url == "https://api.openai.com/v1"


@pytest.mark.parametrize(("url", "local"), [
    ("http://localhost:8000/v1", True), ("http://127.0.0.1:1/v1", True), ("http://127.8.9.1/v1", True),
    ("http://[::1]:8080/v1", True), ("https://api.openai.com/v1", False), ("http://10.0.0.5:8000/v1", False),
    ("http://localhost.evil.com/v1", False),
])
def test_is_loopback_url(url: str, local: bool) -> None:
    assert is_loopback_url(url) is local


def test_map_keeps_input_order(llm_server: FakeLLMServer) -> None:
    def reply(body: dict) -> str:
        number = int(body["prompt"])
        time.sleep(0.002 * (number % 5))  # later requests often finish first
        return str(number * number)

    llm_server.reply = reply
    client = make_client(llm_server, concurrency=6)

    completions = client.complete_many([str(number) for number in range(30)], progress=True)

    assert [completion.text for completion in completions] == [str(number * number) for number in range(30)]


def test_concurrency_limit_is_honoured(llm_server: FakeLLMServer) -> None:
    def slow_echo(body: dict) -> str:
        time.sleep(0.1)
        return "ok"

    llm_server.reply = slow_echo
    client = make_client(llm_server, concurrency=3)

    completions = client.chat_many([[{"role": "user", "content": f"q{i}"}] for i in range(20)], progress=False)

    assert len(completions) == 20 and len(llm_server.requests) == 20
    assert llm_server.max_in_flight == 3


def test_retries_after_429_honour_retry_after(llm_server: FakeLLMServer) -> None:
    llm_server.inject(status=429, times=2, retry_after="0.25", message="slow down")
    client = make_client(llm_server, retry_base_s=0.001)

    started = time.monotonic()
    completion = client.run(client.chat([{"role": "user", "content": "hello"}]))

    assert completion.text == "echo: hello"
    assert time.monotonic() - started >= 0.5  # two waits of Retry-After, not two 1 ms back-offs
    assert len(llm_server.requests) == 3
    assert (client.usage.requests, client.usage.retries, client.usage.failures) == (1, 2, 0)


def test_retries_after_500_and_timeout(llm_server: FakeLLMServer) -> None:
    llm_server.inject(status=500, times=2)
    llm_server.inject(delay_s=2.0)  # answered after the client has given up
    client = make_client(llm_server, timeout_s=0.3)

    completion = client.run(client.complete("x"))

    assert completion.text == "echo: x"
    assert len(llm_server.requests) == 4
    assert client.usage.retries == 3


def test_bad_request_fails_at_once_with_the_server_message(llm_server: FakeLLMServer) -> None:
    llm_server.inject(status=400, message="This model's maximum context length is 2048 tokens")
    client = make_client(llm_server)

    with pytest.raises(LLMError, match=r"HTTP 400, not retried.*maximum context length is 2048") as caught:
        client.run(client.chat([{"role": "user", "content": "a very long prompt"}]))

    assert caught.value.status == 400
    assert isinstance(caught.value, UserError)
    assert len(llm_server.requests) == 1
    assert (client.usage.retries, client.usage.failures) == (0, 1)


def test_exhausted_retries_raise_a_clear_error(llm_server: FakeLLMServer) -> None:
    llm_server.inject(status=503, times=10, message="overloaded")
    client = make_client(llm_server, max_retries=2)

    with pytest.raises(LLMError, match=r"failed 3 attempts; last: HTTP 503: overloaded") as caught:
        client.run(client.chat([{"role": "user", "content": "hi"}]))

    assert caught.value.status == 503
    assert len(llm_server.requests) == 3
    assert (client.usage.requests, client.usage.retries, client.usage.failures) == (0, 2, 1)


def test_unreachable_server_is_retried_then_reported() -> None:
    server = FakeLLMServer().start()
    url = server.url
    server.stop()  # nothing listens on the port any more
    client = LLMClient(LLMConfig(model="m", base_url=url, max_retries=1, retry_base_s=0.01))

    with pytest.raises(LLMError, match="failed 2 attempts; last: Connection error") as caught:
        client.run(client.chat([{"role": "user", "content": "hi"}]))
    assert caught.value.status is None


def test_a_long_map_keeps_only_concurrency_tasks_alive(llm_server: FakeLLMServer) -> None:
    llm_server.latency_s = 0.02  # longer than starting 4 requests takes
    client = make_client(llm_server, concurrency=4)
    alive: list[int] = []

    async def main() -> list:
        async def watch() -> None:
            while True:
                alive.append(len(asyncio.all_tasks()))
                await asyncio.sleep(0.001)

        watcher = asyncio.ensure_future(watch())
        try:
            return await client.map_complete([f"p{i}" for i in range(100)], progress=False)
        finally:
            watcher.cancel()

    completions = client.run(main())

    assert [c.text for c in completions] == [f"echo: p{i}" for i in range(100)]
    assert len(llm_server.requests) == 100 and llm_server.max_in_flight == 4
    # the run, the watcher, four workers and the HTTP library's own few: never one per prompt (100)
    assert max(alive) <= 10, max(alive)


def test_cookies_a_server_sets_are_sent_back_and_none_are_made_up(llm_server: FakeLLMServer) -> None:
    client = LLMClient(LLMConfig(model="m", base_url=llm_server.url))

    async def two() -> None:  # one event loop: one SDK client, one jar
        await client.complete("first")
        await client.complete("second")

    client.run(two())
    assert [request.headers.get("cookie") for request in llm_server.requests] == [None, None]

    llm_server.set_cookie = "route=replica-2; Path=/"  # a sticky-session load balancer
    client.run(two())
    assert [request.headers.get("cookie") for request in llm_server.requests[2:]] == [None, "route=replica-2"]


def test_map_with_return_exceptions_keeps_the_rest(llm_server: FakeLLMServer) -> None:
    llm_server.reply = lambda body: "fine"
    llm_server.inject(status=404, message="no such model")
    client = make_client(llm_server, concurrency=1)

    results = client.run(client.map_chat([[{"role": "user", "content": str(i)}] for i in range(4)],
                                         progress=False, return_exceptions=True))

    assert isinstance(results[0], LLMError) and "no such model" in str(results[0])
    assert [result.text for result in results[1:]] == ["fine"] * 3


def test_map_without_return_exceptions_raises(llm_server: FakeLLMServer) -> None:
    llm_server.inject(status=401, message="invalid api key")
    client = make_client(llm_server, concurrency=1)

    with pytest.raises(LLMError, match="HTTP 401.*invalid api key"):
        client.chat_many([[{"role": "user", "content": str(i)}] for i in range(4)], progress=False)


def test_usage_totals_add_up_across_calls_and_event_loops(llm_server: FakeLLMServer) -> None:
    client = make_client(llm_server)
    prompts = ["one", "two words", "now three words", "and now four words"]

    first = client.complete_many(prompts, progress=False)
    second = client.chat_many([[{"role": "user", "content": prompt}] for prompt in prompts], progress=False)

    async def inside_asyncio() -> list:
        return [await client.chat([{"role": "user", "content": "five"}]), await client.complete("six")]

    third = asyncio.run(inside_asyncio())
    completions = first + second + third
    assert client.usage.requests == len(completions) == 10
    assert client.usage.prompt_tokens == sum(c.prompt_tokens for c in completions) == 2 * (1 + 2 + 3 + 4) + 2
    assert client.usage.completion_tokens == sum(c.completion_tokens for c in completions) == 2 * (2 + 3 + 4 + 5) + 4
    assert (client.usage.retries, client.usage.failures) == (0, 0)


def test_retry_after_header_forms() -> None:
    assert retry_after_s({"retry-after": "3"}) == 3.0
    assert retry_after_s({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert 8 <= retry_after_s({"retry-after": formatdate(time.time() + 10, usegmt=True)}) <= 10
    assert retry_after_s({"retry-after": "soon"}) is None
    assert retry_after_s({}) is None


def test_backoff_doubles_with_jitter_and_a_cap() -> None:
    for attempt in range(4):
        delays = [backoff_delay(attempt, 1.0, 5.0) for _ in range(200)]
        expected = min(5.0, 2.0**attempt)
        assert expected / 2 <= min(delays) and max(delays) <= expected
        assert len(set(delays)) > 1  # jittered
