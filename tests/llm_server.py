"""A real OpenAI-compatible HTTP server on 127.0.0.1 for tests, standard library only.

It serves `POST /v1/chat/completions` and `POST /v1/completions` with OpenAI's response shape, and OpenAI's batch
API (`POST /v1/files`, `POST /v1/batches`, `GET /v1/batches/{id}`, `GET /v1/files/{id}/content`). A test scripts it:

    server.reply = lambda request: "text"              # or a Reply(text, finish_reason); request is the JSON body
    server.latency_s = 0.05                             # every completion answers after this long
    server.refused_fields = {"response_format"}         # requests with such a field get an HTTP 400
    server.inject(status=429, times=2, retry_after="0.2")  # the next two requests get a 429
    server.inject(delay_s=2.0)                          # the next request answers late (client timeouts)
    server.inject(malformed=True)                       # the next request gets a 200 whose body is not JSON
    server.requests                                     # every completion request: Received(path, body, headers, at)
    server.max_in_flight                                # most completion requests being handled at once
    server.most_in_window(1.0)                          # most requests that arrived within any 1 s
    server.batch_polls = 2                              # a batch is completed at its second retrieve
    server.batch_requests                               # every batch API call: Received(...)

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
    at: float = 0.0  # time.monotonic() on arrival


@dataclass
class Fault:
    status: int = 200  # 200 with delay_s: a slow but good reply
    times: int = 1
    retry_after: str | None = None
    message: str = "injected failure"
    delay_s: float = 0.0
    malformed: bool = False


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


class _Listener(ThreadingHTTPServer):
    request_queue_size = 1024  # as real servers listen (uvicorn: 2048); the default 5 drops concurrent connects


class FakeLLMServer:
    def __init__(self, keep_alive: bool = False) -> None:
        self.keep_alive = keep_alive  # HTTP/1.1 connections kept open, as real servers do (the bench uses it)
        self.reply: Callable[[dict[str, Any]], str | Reply] = echo
        self.requests: list[Received] = []
        self.max_in_flight = 0
        self.latency_s = 0.0
        self.refused_fields: set[str] = set()  # request fields answered with HTTP 400, as strict servers do
        self.set_cookie: str | None = None  # a Set-Cookie header on every answer, as load balancers send
        self.batch_polls = 1
        self.batch_requests: list[Received] = []
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self._in_flight = 0
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._http = _Listener(("127.0.0.1", 0), self._handler_class())
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
               message: str = "injected failure", delay_s: float = 0.0, malformed: bool = False) -> None:
        """Queue a fault for the next `times` requests (after any faults already queued)."""
        self._faults.append(Fault(status, times, retry_after, message, delay_s, malformed))

    def most_in_window(self, seconds: float) -> int:
        """The most completion requests that arrived within any `seconds`-long window [t, t + seconds)."""
        times = sorted(received.at for received in self.requests)
        most, first = 0, 0
        for last, at in enumerate(times):
            while at - times[first] >= seconds:
                first += 1
            most = max(most, last - first + 1)
        return most

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

    def respond(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, str], dict[str, Any] | bytes]:
        """Status, extra headers and JSON body (or raw bytes) for one request (runs in the handler thread)."""
        fault = self._next_fault()
        time.sleep(self.latency_s)
        refused = sorted(self.refused_fields & set(body))
        if refused:
            error = {"message": f"Unrecognized request argument supplied: {refused[0]}", "type":
                     "invalid_request_error", "param": refused[0], "code": None}
            return 400, {}, {"error": error}
        if fault is not None:
            time.sleep(fault.delay_s)
            if fault.malformed:
                return 200, {}, b'{"id": "cut-off", "choices": [{"ind'
            if fault.status != 200:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                error = {"message": fault.message, "type": "injected", "param": None, "code": None}
                return fault.status, headers, {"error": error}
        return 200, {"Set-Cookie": self.set_cookie} if self.set_cookie else {}, self.answer(path, body)

    def answer(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """The completion response to `body` (a chat or completions request)."""
        reply = self.reply(body)
        reply = reply if isinstance(reply, Reply) else Reply(reply)
        chat = path.endswith("/chat/completions")
        choice: dict[str, Any] = {"index": 0, "finish_reason": reply.finish_reason, "logprobs": None}
        if chat:
            choice["message"] = {"role": "assistant", "content": reply.text}
        else:
            choice["text"] = reply.text
        prompt_tokens, completion_tokens = count_words(body), len(reply.text.split())
        return {
            "id": f"fake-{len(self.requests)}", "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()), "model": body.get("model", "fake"), "choices": [choice],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        }

    def batch_call(self, method: str, path: str, headers: dict[str, str], data: bytes) -> tuple[int, Any]:
        """The batch API: upload a file, create a batch (answered at once, completed after `batch_polls`
        retrieves), retrieve it, read a file. Status and JSON body (or bytes for file content)."""
        with self._lock:
            self.batch_requests.append(Received(f"{method} {path}", {}, headers, time.monotonic()))
            if method == "POST" and path == "/v1/files":
                file_id = f"file-{len(self.files)}"
                self.files[file_id] = _multipart_file(headers.get("content-type", ""), data)
                return 200, {"id": file_id, "object": "file", "bytes": len(self.files[file_id]),
                             "created_at": int(time.time()), "filename": "batch.jsonl", "purpose": "batch"}
            if method == "POST" and path == "/v1/batches":
                body = json.loads(data)
                batch_id = f"batch-{len(self.batches)}"
                self.batches[batch_id] = {"input": body["input_file_id"], "endpoint": body["endpoint"], "polls": 0,
                                          "output": None}
                return 200, self._batch_json(batch_id)
            if method == "GET" and path.startswith("/v1/batches/"):
                batch_id = path.rsplit("/", 1)[1]
                if batch_id not in self.batches:
                    return 404, {"error": {"message": f"no batch {batch_id}"}}
                batch = self.batches[batch_id]
                batch["polls"] += 1
                if batch["polls"] >= self.batch_polls and batch["output"] is None:
                    batch["output"] = self._run_batch(batch["input"])
                return 200, self._batch_json(batch_id)
            if method == "GET" and path.startswith("/v1/files/") and path.endswith("/content"):
                file_id = path.split("/")[3]
                return (200, self.files[file_id]) if file_id in self.files else (404, {"error": {"message": "no"}})
        return 404, {"error": {"message": f"no route {method} {path}"}}

    def _run_batch(self, input_file: str) -> str:
        lines = []
        for line in self.files[input_file].decode().splitlines():
            request = json.loads(line)
            self.requests.append(Received(request["url"], request["body"], {}, time.monotonic()))
            lines.append(json.dumps({"id": f"line-{len(lines)}", "custom_id": request["custom_id"], "error": None,
                                     "response": {"status_code": 200, "request_id": "r",
                                                  "body": self.answer(request["url"], request["body"])}}))
        file_id = f"file-{len(self.files)}"
        self.files[file_id] = ("\n".join(lines) + "\n").encode()
        return file_id

    def _batch_json(self, batch_id: str) -> dict[str, Any]:
        batch = self.batches[batch_id]
        done = batch["output"] is not None
        return {"id": batch_id, "object": "batch", "endpoint": batch["endpoint"], "input_file_id": batch["input"],
                "completion_window": "24h", "status": "completed" if done else "in_progress",
                "output_file_id": batch["output"], "error_file_id": None, "created_at": int(time.time())}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if server.keep_alive else "HTTP/1.0"
            def do_GET(self) -> None:
                headers = {name.lower(): value for name, value in self.headers.items()}
                status, payload = server.batch_call("GET", self.path, headers, b"")
                self._send(status, {}, payload)

            def do_POST(self) -> None:
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {name.lower(): value for name, value in self.headers.items()}
                if self.path in ("/v1/files", "/v1/batches"):
                    status, payload = server.batch_call("POST", self.path, headers, data)
                    self._send(status, {}, payload)
                    return
                if self.path not in ("/v1/chat/completions", "/v1/completions"):
                    self._send(404, {}, {"error": {"message": f"no route {self.path}"}})
                    return
                body = json.loads(data)
                server._enter(Received(self.path, body, headers, time.monotonic()))
                try:
                    response = server.respond(self.path, body)
                finally:
                    server._leave()  # before the reply is written: the client may send its next one at once
                try:
                    self._send(*response)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and hung up

            def _send(self, status: int, headers: dict[str, str], payload: dict[str, Any] | bytes) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                # head and body in one write, as real servers send them: two small writes wait on Nagle's
                # algorithm and the client's delayed ACK (up to 40 ms a reply)
                self._headers_buffer.extend([b"\r\n", data])
                self.wfile.write(b"".join(self._headers_buffer))
                self._headers_buffer = []

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep test output quiet

        return Handler


def _multipart_file(content_type: str, data: bytes) -> bytes:
    """The content of the part named `file` of a multipart/form-data body."""
    boundary = content_type.split("boundary=", 1)[1].strip('"').encode()
    for part in data.split(b"--" + boundary):
        head, _, content = part.partition(b"\r\n\r\n")
        if b'name="file"' in head:
            return content.removesuffix(b"\r\n")
    raise ValueError("no file part in the upload")


def kill_after(server: FakeLLMServer, argv: list[str], requests: int, timeout_s: float = 120) -> int:
    """Run `textbooks ARGV` in a child process, SIGKILL it once `server` has had `requests` requests, and return
    how many it had by then (a killed run, for resume tests)."""
    import os
    import signal
    import subprocess
    import sys

    command = [sys.executable, "-c", "import sys; from textbooks.cli import main; sys.exit(main(sys.argv[1:]))"]
    run = subprocess.Popen([*command, *argv], env=dict(os.environ), stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout_s
    while len(server.requests) < requests and time.monotonic() < deadline and run.poll() is None:
        time.sleep(0.005)
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert run.returncode == -signal.SIGKILL, run.stderr.read().decode()  # type: ignore[union-attr]
    return len(server.requests)


@pytest.fixture(name="llm_server")
def llm_server_fixture(tmp_path_factory: pytest.TempPathFactory,
                       monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeLLMServer]:
    """A started server, stopped after the test; import this into a test module to use `llm_server`. The test
    gets a cache folder of its own (steps that ask a model keep their answers there), so no test reads
    another's answers."""
    monkeypatch.setenv("TEXTBOOKS_CACHE", str(tmp_path_factory.mktemp("cache")))
    server = FakeLLMServer().start()
    yield server
    server.stop()
