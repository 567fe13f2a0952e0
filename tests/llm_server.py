"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests, standard library only.

It serves `POST /v1/chat/completions` and `POST /v1/completions` with OpenAI's response shape. A test scripts it:

    server.reply = lambda request: "text"              # or a Reply(text, finish_reason); request is the JSON body
    server.inject(status=429, times=2, retry_after="0.2")  # the next two requests get a 429
    server.inject(delay_s=2.0)                          # the next request answers late (client timeouts)
    server.requests                                     # every request received: Received(path, body, headers)
    server.max_in_flight                                # most requests being handled at once

Token counts in `usage` are whitespace-separated words, so tests can predict them.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass(frozen=True)
class Reply:
    text: str
    finish_reason: str = "stop"


@dataclass(frozen=True)
class Received:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class Fault:
    status: int = 200  # 200 with delay_s: a slow but good reply
    times: int = 1
    retry_after: str | None = None
    message: str = "injected failure"
    delay_s: float = 0.0


def count_words(body: dict[str, Any]) -> int:
    """Prompt tokens as this server counts them: words of the prompt, or of every message's content."""
    if "messages" in body:
        return sum(len(str(message.get("content", "")).split()) for message in body["messages"])
    return len(str(body.get("prompt", "")).split())


def echo(body: dict[str, Any]) -> str:
    """Default reply: the last message's content, or the prompt, prefixed by "echo:"."""
    if "messages" in body:
        return "echo: " + str(body["messages"][-1]["content"])
    return "echo: " + str(body["prompt"])


class FakeLLMServer:
    def __init__(self) -> None:
        self.reply: Callable[[dict[str, Any]], str | Reply] = echo
        self.requests: list[Received] = []
        self.max_in_flight = 0
        self._in_flight = 0
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._http.daemon_threads = True
        self._http.block_on_close = False  # a slow reply the client gave up on must not hold up stop()
        self._thread = threading.Thread(target=self._http.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._http.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> FakeLLMServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)

    def inject(self, status: int = 200, times: int = 1, retry_after: str | None = None,
               message: str = "injected failure", delay_s: float = 0.0) -> None:
        """Queue a fault for the next `times` requests (after any faults already queued)."""
        self._faults.append(Fault(status, times, retry_after, message, delay_s))

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault.times -= 1
            if fault.times <= 0:
                self._faults.popleft()
            return fault

    def _enter(self, received: Received) -> None:
        with self._lock:
            self.requests.append(received)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def respond(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any]]:
        """Status, extra headers and JSON body for one request (runs in the handler thread)."""
        fault = self._next_fault()
        if fault is not None:
            time.sleep(fault.delay_s)
            if fault.status != 200:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                error = {"message": fault.message, "type": "injected", "param": None, "code": None}
                return fault.status, headers, {"error": error}
        reply = self.reply(body)
        reply = reply if isinstance(reply, Reply) else Reply(reply)
        chat = path.endswith("/chat/completions")
        choice: dict[str, Any] = {"index": 0, "finish_reason": reply.finish_reason, "logprobs": None}
        if chat:
            choice["message"] = {"role": "assistant", "content": reply.text}
        else:
            choice["text"] = reply.text
        prompt_tokens, completion_tokens = count_words(body), len(reply.text.split())
        return 200, {}, {
            "id": f"fake-{len(self.requests)}", "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()), "model": body.get("model", "fake"), "choices": [choice],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path not in ("/v1/chat/completions", "/v1/completions"):
                    self._send(404, {}, {"error": {"message": f"no route {self.path}"}})
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                headers = {name.lower(): value for name, value in self.headers.items()}
                server._enter(Received(self.path, body, headers))
                try:
                    self._send(*server.respond(self.path, body))
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and hung up
                finally:
                    server._leave()

            def _send(self, status: int, headers: dict[str, str], payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

        return Handler


@pytest.fixture(name="llm_server")
def llm_server_fixture() -> Iterator[FakeLLMServer]:
    """A started server, stopped after the test; import this into a test module to use `llm_server`."""
    server = FakeLLMServer().start()
    yield server
    server.stop()
