"""The response cache of textbooks.llm against a real loopback server: what hits and what misses, re-parsing
without requests, recorded failures, distinct samples, and a run killed with SIGKILL that resumes without
resending one answered request."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest
from llm_server import FakeLLMServer, Reply, llm_server_fixture  # noqa: F401  (fixture `llm_server`)

from textbooks.llm import LLMClient, LLMConfig, LLMError
from textbooks.llm.cache import ResponseCache, default_cache_path


def cached_client(server: FakeLLMServer, path: Path, **settings) -> LLMClient:
    settings = {"model": "fake-model", "base_url": server.url, "retry_base_s": 0.01, "cache": True,
                "cache_path": str(path), **settings}
    return LLMClient(LLMConfig(**settings))


def test_same_settings_hit_and_any_change_misses(llm_server: FakeLLMServer, tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    first = cached_client(llm_server, path)
    assert first.complete_many(["a b", "c"], progress=False)[0].text == "echo: a b"
    assert len(llm_server.requests) == 2

    again = cached_client(llm_server, path)  # a new client, as a rerun makes
    replies = again.complete_many(["a b", "c"], progress=False)
    assert [reply.text for reply in replies] == ["echo: a b", "echo: c"]
    assert all(reply.cached for reply in replies) and len(llm_server.requests) == 2
    assert (again.usage.requests, again.usage.cached) == (0, 2)

    changed = [
        lambda client: client.complete("a b c"),                     # prompt
        lambda client: client.complete("a b", version="v2"),         # template version
        lambda client: client.complete("a b", temperature=0.5),      # temperature
        lambda client: client.complete("a b", sample=1),             # sample index
        lambda client: client.complete("a b", max_tokens=7),         # any other parameter
        lambda client: client.complete("a b", model="other-model"),  # model
        lambda client: client.chat([{"role": "user", "content": "a b"}]),  # chat, not completions
    ]
    for number, ask in enumerate(changed, start=1):
        reply = again.run(ask(again))
        assert not reply.cached and len(llm_server.requests) == 2 + number
    assert default_cache_path().name == "responses.sqlite"


def test_a_changed_parser_reparses_the_cached_raw_text(llm_server: FakeLLMServer, tmp_path: Path) -> None:
    llm_server.reply = lambda body: f"Grade: {len(body['prompt'])}/10"
    path, prompts = tmp_path / "cache.sqlite", ["x", "xyz"]

    first = cached_client(llm_server, path).complete_many(prompts, progress=False, parse=lambda text: text[-4:])
    second = cached_client(llm_server, path).complete_many(
        prompts, progress=False, parse=lambda text: int(text.split()[1].split("/")[0]))

    assert [reply.parsed for reply in first] == ["1/10", "3/10"]
    assert [reply.parsed for reply in second] == [1, 3]
    assert len(llm_server.requests) == 2


def test_failures_and_truncations_are_recorded_and_reasked_on_request(llm_server: FakeLLMServer,
                                                                      tmp_path: Path) -> None:
    llm_server.reply = lambda body: Reply("cut", "length") if body["prompt"] == "long" else "fine"
    llm_server.inject(status=400, message="content policy")
    path = tmp_path / "cache.sqlite"
    client = cached_client(llm_server, path, concurrency=1)

    results = client.run(client.map_complete(["bad", "long", "ok"], progress=False, return_exceptions=True))
    assert isinstance(results[0], LLMError) and "content policy" in str(results[0])
    assert [results[1].finish_reason, results[2].text] == ["length", "fine"]
    assert ResponseCache.open(path).count("failed") == 1 and ResponseCache.open(path).count("ok") == 2

    rerun = cached_client(llm_server, path, concurrency=1)
    again = rerun.run(rerun.map_complete(["bad", "long", "ok"], progress=False, return_exceptions=True))
    assert isinstance(again[0], LLMError) and "retry_failed=True" in str(again[0])
    assert len(llm_server.requests) == 3  # the recorded failure is not asked again
    with pytest.raises(LLMError, match="content policy"):
        rerun.complete_many(["bad"], progress=False)

    retried = rerun.run(rerun.map_complete(["bad", "long", "ok"], progress=False, retry_failed=True))
    assert [reply.text for reply in retried] == ["fine", "cut", "fine"]
    assert sorted(request.body["prompt"] for request in llm_server.requests[3:]) == ["bad", "long"]


def test_samples_are_distinct_requests_with_their_own_seeds(llm_server: FakeLLMServer, tmp_path: Path) -> None:
    llm_server.reply = lambda body: f"sample with seed {body.get('seed')}"
    path = tmp_path / "cache.sqlite"
    client = cached_client(llm_server, path, seed=100)

    replies = client.complete_many(["p"] * 3, progress=False, samples=[0, 1, 2], temperature=0.8)
    assert [reply.text for reply in replies] == ["sample with seed 100", "sample with seed 101",
                                                 "sample with seed 102"]
    greedy = client.complete_many(["p"], progress=False)  # temperature 0: no seed sent
    assert greedy[0].text == "sample with seed None" and "seed" not in llm_server.requests[-1].body

    rerun = cached_client(llm_server, path, seed=100)
    assert rerun.complete_many(["p"] * 3, progress=False, samples=[0, 1, 2], temperature=0.8) == [
        reply.__class__(reply.text, reply.finish_reason, reply.prompt_tokens, reply.completion_tokens, None, True)
        for reply in replies]
    assert len(llm_server.requests) == 4 and ResponseCache.open(path).count() == 4


def committed(path: Path) -> list[tuple[str, str]]:
    """(status, raw) of every row another connection (another process's, as a rerun's) reads in `path`."""
    with contextlib.closing(sqlite3.connect(path)) as db:  # a connection's own `with` does not close it
        return db.execute("SELECT status, raw FROM responses ORDER BY raw").fetchall()


def test_answers_are_committed_by_the_end_of_the_map_and_read_while_pending(llm_server: FakeLLMServer,
                                                                            tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    client = cached_client(llm_server, path, concurrency=8)
    replies = client.complete_many([f"p{index}" for index in range(20)] + ["p3"], progress=False)
    assert replies[-1].text == "echo: p3" and len(llm_server.requests) == 20  # asked twice in one map: sent once
    rows = committed(path)
    assert len(rows) == 20 and all(status == "ok" for status, _ in rows)

    cache = ResponseCache.open(path)
    request = client.request("complete", "pending")

    async def put_then_get() -> tuple[int, str | None]:
        cache.put_ok("k", "p", request, {"choices": [{"text": "t"}]}, "stop")
        row = cache.get("k")  # this turn: pending, read as it is
        return len(committed(path)), row.finish_reason if row else None

    assert asyncio.run(put_then_get()) == (20, "stop")
    cache.flush()
    assert len(committed(path)) == 21


PENDING_AT_EXIT = textwrap.dedent("""
    import asyncio, sys
    from textbooks.llm.cache import ResponseCache
    from textbooks.llm.types import Request
    cache = ResponseCache.open(sys.argv[1])

    async def main():
        asyncio.get_running_loop().stop()  # this turn is the loop's last: the next, which would commit, never runs
        cache.put_ok("k", "p", Request("complete", "m", prompt="x"), {"choices": [{"text": "kept"}]}, "stop")
        assert cache._pending

    asyncio.new_event_loop().run_until_complete(main())
    assert cache._pending
""")


def test_a_row_pending_when_the_process_ends_is_committed(tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    subprocess.run([sys.executable, "-c", PENDING_AT_EXIT, str(path)], check=True, timeout=60)
    assert committed(path) == [("ok", '{"choices": [{"text": "kept"}]}')]


RUN = textwrap.dedent("""
    import sys
    from textbooks.llm import LLMClient, LLMConfig
    url, path, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    client = LLMClient(LLMConfig(model="m", base_url=url, cache=True, cache_path=path, concurrency=4))
    replies = client.complete_many([f"prompt {i}" for i in range(count)], progress=False)
    assert [reply.text for reply in replies] == [f"echo: prompt {i}" for i in range(count)]
    print(client.usage.requests, client.usage.cached)
""")


def test_a_killed_run_resumes_without_resending_answered_requests(llm_server: FakeLLMServer,
                                                                  tmp_path: Path) -> None:
    llm_server.latency_s = 0.02
    path, count = tmp_path / "cache.sqlite", 80
    command = [sys.executable, "-c", RUN, llm_server.url, str(path), str(count)]
    run = subprocess.Popen(command, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(llm_server.requests) < 30 and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.005)
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert run.returncode == -signal.SIGKILL, run.stderr.read().decode()
    first_run = len(llm_server.requests)
    assert 30 <= first_run < count

    answered = ResponseCache.open(path).count("ok")
    assert 20 <= answered <= first_run  # at most the 4 in flight were lost

    done = subprocess.run(command, env=dict(os.environ), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(count - answered), str(answered)]
    asked = Counter(request.body["prompt"] for request in llm_server.requests)
    resent = [prompt for prompt, times in asked.items() if times > 1]
    assert len(resent) == first_run - answered  # only those in flight at the kill were asked twice
    assert set(asked) == {f"prompt {i}" for i in range(count)} and max(asked.values()) <= 2
