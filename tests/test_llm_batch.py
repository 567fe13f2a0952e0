"""The batch API path of textbooks.llm (`batch: true`) against the loopback server's /v1/files and /v1/batches:
answers land in the cache, a rerun sends nothing, and a run killed while polling resumes the same batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from llm_server import FakeLLMServer, llm_server_fixture  # noqa: F401  (fixture `llm_server`)

from textbooks.llm import LLMClient, LLMConfig


def batch_client(server: FakeLLMServer, path: Path) -> LLMClient:
    return LLMClient(LLMConfig(model="m", base_url=server.url, cache=True, cache_path=str(path), batch=True,
                               batch_poll_s=0.02))


def test_a_batch_is_uploaded_polled_and_cached(llm_server: FakeLLMServer, tmp_path: Path) -> None:
    llm_server.batch_polls = 3
    conversations = [[{"role": "user", "content": f"q {i}"}] for i in range(6)]

    replies = batch_client(llm_server, tmp_path / "c.sqlite").chat_many(conversations, progress=False)

    assert [reply.text for reply in replies] == [f"echo: q {i}" for i in range(6)]
    assert len(llm_server.batches) == 1 and len(llm_server.requests) == 6
    calls = [received.path for received in llm_server.batch_requests]
    assert calls[:2] == ["POST /v1/files", "POST /v1/batches"]
    assert calls[2:5] == ["GET /v1/batches/batch-0"] * 3  # polled until done
    assert calls[5:] == ["GET /v1/files/file-1/content"]
    again = batch_client(llm_server, tmp_path / "c.sqlite")
    assert [reply.cached for reply in again.chat_many(conversations, progress=False)] == [True] * 6
    assert len(llm_server.batches) == 1 and again.usage.requests == 0


RUN = textwrap.dedent("""
    import sys
    from textbooks.llm import LLMClient, LLMConfig
    client = LLMClient(LLMConfig(model="m", base_url=sys.argv[1], cache=True, cache_path=sys.argv[2], batch=True,
                                 batch_poll_s=0.02))
    client.complete_many([f"p {i}" for i in range(5)], progress=False)
""")


def test_a_run_killed_while_polling_resumes_its_batch(llm_server: FakeLLMServer, tmp_path: Path) -> None:
    llm_server.batch_polls = 10**9  # never done while the first run lives
    path = tmp_path / "c.sqlite"
    run = subprocess.Popen([sys.executable, "-c", RUN, llm_server.url, str(path)], env=dict(os.environ),
                           stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while sum("/v1/batches/" in r.path for r in llm_server.batch_requests) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert run.returncode == -signal.SIGKILL, run.stderr.read().decode()
    assert len(llm_server.batches) == 1

    llm_server.batch_polls = 1
    replies = batch_client(llm_server, path).complete_many([f"p {i}" for i in range(5)], progress=False)

    assert [reply.text for reply in replies] == [f"echo: p {i}" for i in range(5)]
    assert len(llm_server.batches) == 1  # polled the stored batch id, not resubmitted
    assert len(llm_server.requests) == 5
