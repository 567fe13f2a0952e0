"""The `openai:` completer against a real OpenAI-compatible HTTP server on 127.0.0.1, through textbooks.llm:
what the server receives, how replies become completions (stops, greedy repeats, chat code blocks), input order
under concurrency, and the server's refusals as UserErrors."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from llm_server import FakeLLMServer, Reply, llm_server_fixture  # noqa: F401  (fixture `llm_server`)

from textbooks.errors import UserError
from textbooks.evaluate.generate import (
    API_STOP_LIMIT,
    STOP_SEQUENCES,
    CompleterOptions,
    EndpointCompleter,
    completion_from_reply,
    make_completer,
)

PROMPT = 'def one():\n    """One."""\n'


def endpoint(server: FakeLLMServer, **options) -> EndpointCompleter:
    completer = make_completer("openai:tiny-code", CompleterOptions(base_url=server.url, progress=False, **options))
    assert isinstance(completer, EndpointCompleter)
    return completer


def test_completions_request_and_stops(llm_server: FakeLLMServer) -> None:
    # "\nprint" is the fifth stop: the server is not sent it, yet the completion is cut there
    llm_server.reply = lambda body: Reply("    return 1\nprint(one())\n\ndef other():\n", finish_reason="length")

    completions = endpoint(llm_server).complete([PROMPT], n=1, temperature=0.0, top_p=0.9, max_new_tokens=64)

    assert completions == [["    return 1"]]
    [received] = llm_server.requests
    assert received.path == "/v1/completions"
    assert received.body["model"] == "tiny-code"
    assert received.body["prompt"] == PROMPT
    assert (received.body["max_tokens"], received.body["temperature"], received.body["top_p"]) == (64, 0.0, 0.9)
    assert received.body["stop"] == STOP_SEQUENCES[:API_STOP_LIMIT]


def test_no_stops_sends_none(llm_server: FakeLLMServer) -> None:
    llm_server.reply = lambda body: "    return 1\n\ndef other():\n"

    assert endpoint(llm_server, stops=("",)).complete([PROMPT]) == [["    return 1\n\ndef other():\n"]]
    assert "stop" not in llm_server.requests[0].body


def test_greedy_asks_once_per_prompt(llm_server: FakeLLMServer) -> None:
    llm_server.reply = lambda body: f"    return {len(body['prompt'])}\n"
    prompts = [PROMPT, "def two():\n"]

    completions = endpoint(llm_server).complete(prompts, n=3, temperature=0.0)

    assert completions == [[f"    return {len(PROMPT)}\n"] * 3, ["    return 11\n"] * 3]
    assert sorted(request.body["prompt"] for request in llm_server.requests) == sorted(prompts)


def test_sampling_asks_n_times_per_prompt(llm_server: FakeLLMServer) -> None:
    counter, lock = itertools.count(), threading.Lock()

    def reply(body: dict) -> str:
        with lock:
            number = next(counter)
        return f"    return {body['prompt'][4:7]!r}, {number}\n"

    llm_server.reply = reply
    prompts = [PROMPT, "def two():\n"]

    completions = endpoint(llm_server).complete(prompts, n=3, temperature=0.8)

    assert len(llm_server.requests) == 6
    assert all(request.body["temperature"] == 0.8 for request in llm_server.requests)
    for completions_of_prompt, name in zip(completions, ["one", "two"]):
        assert len(completions_of_prompt) == len(set(completions_of_prompt)) == 3
        assert all(completion.startswith(f"    return {name!r}, ") for completion in completions_of_prompt)


def test_order_is_kept_under_concurrency(llm_server: FakeLLMServer) -> None:
    arrivals = itertools.count()
    second_arrived = threading.Event()

    def reply(body: dict) -> str:
        if next(arrivals) == 0:  # held until another request arrives, which a one-at-a-time client never sends
            second_arrived.wait(timeout=10)
        else:
            second_arrived.set()
        number = int(body["prompt"].split("_")[1].split("(")[0])
        time.sleep(0.002 * (number % 5))  # later requests often finish first
        return f"    return {number * number}\n"

    llm_server.reply = reply
    prompts = [f"def f_{number}():\n" for number in range(16)]

    completions = endpoint(llm_server, concurrency=4).complete(prompts, n=2, temperature=0.5)

    assert completions == [[f"    return {number * number}\n"] * 2 for number in range(16)]
    assert 1 < llm_server.max_in_flight <= 4


def test_chat_reply_becomes_the_body(llm_server: FakeLLMServer) -> None:
    llm_server.reply = lambda body: ('Here it is:\n\n```python\ndef one():\n    """One."""\n    return 1\n```\n'
                                     "It returns one.")

    completions = endpoint(llm_server, endpoint="chat").complete([PROMPT], max_new_tokens=100)

    assert completions == [["    return 1\n"]]
    [received] = llm_server.requests
    assert received.path == "/v1/chat/completions"
    [message] = received.body["messages"]
    assert message["role"] == "user" and f"```python\n{PROMPT}```" in message["content"]
    assert "stop" not in received.body and received.body["max_tokens"] == 100


HELPER_PROMPT = 'def helper(x):\n    return x\n\n\ndef target(\n    a: int,\n    b: int,\n) -> int:\n    """Sum."""\n'
HELPER_REPLY = ('```python\ndef helper(x):\n    return x\n\ndef target(\n    a: int,\n    b: int,\n) -> int:\n'
                '    """Sum\n    of two."""\n\n    return a + b\n```')


@pytest.mark.parametrize(("prompt", "reply", "completion"), [
    (PROMPT, "```python\ndef one():\n    return 1\n```", "    return 1\n"),  # signature, no docstring
    (PROMPT, "```py\n    return 1\n```", "    return 1\n"),  # the body alone
    (PROMPT, "def one():\n    '''One.'''\n    return 1\n", "    return 1\n"),  # no code block: the whole reply
    (PROMPT, "```python\nimport os\n\n\ndef one() -> int:  # done\n    return 1\n```", "    return 1\n"),
    (HELPER_PROMPT, HELPER_REPLY, "\n    return a + b\n"),  # the last def, a multi-line signature and docstring
    ('"""Add two numbers.\nassert add(1, 2) == 3\n"""\n', "```python\ndef add(a, b):\n    return a + b\n```",
     "def add(a, b):\n    return a + b\n"),  # MBPP: the prompt has no def, the function is the completion
    (PROMPT, "```text\nnot code\n```\n```Python\ndef one():\n    return 1\n```", "    return 1\n"),
])
def test_completion_from_reply(prompt: str, reply: str, completion: str) -> None:
    assert completion_from_reply(prompt, reply) == completion


def test_bad_request_is_a_user_error_with_the_server_message(llm_server: FakeLLMServer) -> None:
    llm_server.inject(status=400, message="This model's maximum context length is 2048 tokens")

    with pytest.raises(UserError, match=r"HTTP 400.*maximum context length is 2048 tokens"):
        endpoint(llm_server).complete([PROMPT, "def two():\n"])
    assert len(llm_server.requests) <= 2  # not retried


def test_settings_a_user_can_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ACME_KEY", raising=False)
    with pytest.raises(UserError, match="openai:tiny-code: no API key.*ACME_KEY"):
        make_completer("openai:tiny-code", CompleterOptions(base_url="https://api.acme.example/v1",
                                                            api_key_env="ACME_KEY"))
    with pytest.raises(UserError, match="endpoint must be 'completions' or 'chat'"):
        make_completer("openai:tiny-code", CompleterOptions(base_url="http://127.0.0.1:1/v1", endpoint="edit"))
    with pytest.raises(UserError, match="concurrency must be at least 1"):
        make_completer("openai:tiny-code", CompleterOptions(base_url="http://127.0.0.1:1/v1", concurrency=0))
