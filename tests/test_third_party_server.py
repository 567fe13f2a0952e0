"""The LLM client and `textbooks annotate` against a third-party OpenAI-compatible server: `transformers serve`
(FastAPI and uvicorn), started here on a tiny randomly initialised model this test saves, so nothing is
downloaded. The protocol works end to end (chat and completions, token counts, samples), and the model's
garbage answers are asked again, then recorded as unparseable."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import dataset_rows
from test_annotate import write_corpus
from test_quality_models import save_tiny_causal_lm

from textbooks.cli import main
from textbooks.llm import LLMClient, LLMConfig
from textbooks.llm.cache import ResponseCache
from textbooks.store import data

CHAT_TEMPLATE = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}assistant:"
STARTUP_S = 240


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """(base URL, model folder) of a running `transformers serve` on loopback."""
    from transformers import AutoTokenizer

    folder = save_tiny_causal_lm(tmp_path_factory.mktemp("served") / "tiny-lm", positions=4096)  # the judge's prompt
    tokenizer = AutoTokenizer.from_pretrained(folder)
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    port = free_port()
    log = folder.parent / "serve.log"
    with log.open("w") as sink:
        server = subprocess.Popen([sys.executable, "-m", "transformers.cli.transformers", "serve", str(folder),
                                   "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"],
                                  stdout=sink, stderr=subprocess.STDOUT, env={**_offline_env()})
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"transformers serve did not come up:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1", folder
    finally:
        server.terminate()
        server.wait(timeout=30)


def _offline_env() -> dict[str, str]:
    import os

    return {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def test_chat_and_completions_through_the_client(served, tmp_path: Path) -> None:
    url, folder = served
    cache = tmp_path / "cache.sqlite"
    client = LLMClient(LLMConfig(model=str(folder), base_url=url, max_tokens=6, cache=True, cache_path=str(cache)))

    chats = client.chat_many([[{"role": "user", "content": "What is a loop?"}],
                              [{"role": "user", "content": "Write a function."}]], progress=False)
    completions = client.complete_many(["def add(a, b):", "def add(a, b):"], samples=[0, 1], temperature=0.8,
                                       progress=False)

    for completion in chats + completions:
        assert isinstance(completion.text, str) and completion.finish_reason == "length"
        assert completion.completion_tokens == 6 and completion.prompt_tokens > 0  # the server's own counts
    assert client.usage.requests == 4 and client.usage.failures == 0
    assert client.usage.completion_tokens == 24
    assert ResponseCache.open(cache).count("ok") == 4  # two samples of one prompt are two requests

    again = LLMClient(LLMConfig(model=str(folder), base_url=url, max_tokens=6, cache=True, cache_path=str(cache)))
    assert [c.text for c in again.chat_many([[{"role": "user", "content": "What is a loop?"}]], progress=False)] \
        == [chats[0].text]
    assert (again.usage.requests, again.usage.cached) == (0, 1)


def test_annotate_asks_garbage_again_then_records_it_unparseable(served, tmp_path: Path, monkeypatch) -> None:
    url, folder = served
    monkeypatch.setenv("TEXTBOOKS_CACHE", str(tmp_path / "cache"))
    corpus = write_corpus(tmp_path / "in", count=6)
    out = tmp_path / "annotate"
    assert main(["annotate", "--input", str(corpus), "--sample-size", "4", "--annotator", "llm",
                 "--llm.model", str(folder), "--llm.base-url", url, "--llm.max-tokens", "8",
                 "--llm.max-retries", "1", "--reasks", "1",
                 "--out", str(out)]) == 0

    rows = dataset_rows(out)
    assert len(rows) == 4
    for row in rows:
        assert row["edu_label"] is None and row["edu_reason"].startswith("no score in 2 answers; the last: ")
        assert row["annotator"] == f"llm:{folder}/edu-v1"
    counters = data.read_stats(out)["counters"]
    assert counters["requests"] == 8 and counters["reasked"] == 4 and counters["unparseable"] == 4
    assert counters["failed_requests"] == 0 and counters["schema_refused"] == 0  # it ignores response_format
    assert counters["completion_tokens"] == 8 * 8
