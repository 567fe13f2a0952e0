"""`textbooks synth textbooks|exercises` against the loopback OpenAI-compatible server answering canned sections
and exercises, some broken in every way the steps must catch: exactly the good ones are kept, each drop is
counted by reason, a second attempt recovers a failed first one, a killed run resumes without asking an
answered request again, and bad settings are refused."""

from __future__ import annotations

import importlib.util
import json
import os
from collections import Counter
from pathlib import Path

import pytest
from conftest import dataset_rows
from llm_server import FakeLLMServer, kill_after, llm_server_fixture  # noqa: F401  (fixture `llm_server`)

from textbooks.cli import main
from textbooks.llm.cache import ResponseCache
from textbooks.store import data
from textbooks.synth import prompts
from textbooks.synth.sampler import Sampler, Taxonomy
from textbooks.synth.verify import ALLOWED_IMPORTS


def good_exercise(name: str) -> str:
    return f'''Here is the exercise.

```python
def {name}(numbers: list[int]) -> int:
    """Return the sum of the even numbers in `numbers`.

    >>> {name}([1, 2, 3, 4])
    6
    """
    return sum(n for n in numbers if n % 2 == 0)
```

```python
def check(candidate):
    assert candidate([]) == 0
    assert candidate([1, 3]) == 0
    assert candidate([2]) == 2
    assert candidate([1, 2, 3, 4]) == 6
    assert candidate([-2, 5, 8]) == 6
```
'''


EXERCISES = {  # kind of answer: (what it does to a good answer, the drop reason it must get)
    "good": (lambda text: text, None),
    "syntax": (lambda text: text.replace("-> int:", "-> int"), "syntax_error"),
    "wrong": (lambda text: text.replace("n % 2 == 0", "n % 2 == 0 and n > 0"), "failed_tests"),  # its example holds
    "doctest": (lambda text: text.replace("    6\n    \"\"\"", "    7\n    \"\"\""), "failed_doctests"),
    "import": (lambda text: text.replace("    return sum(", "    import os\n    return sum("), "forbidden_import"),
    "no-tests": (lambda text: text.split("```python\ndef check")[0].replace(">>>", "Example:"), "no_tests"),
    "trivial": (lambda text: text.split("```python\ndef check")[0] + "```python\ndef check(candidate):\n"
                "    assert True\n```\n", "trivial_tests"),
    "endless": (lambda text: text.replace("    return sum(", "    while True:\n        pass\n    return sum("),
                "timeout"),
    "fork-bomb": (lambda text: text.replace("    return sum(", "    while True:\n        __import__('os')"
                                                              ".fork()\n    return sum("), "forbidden_import"),
    "second-try": (None, None),  # wrong at the first attempt, good at the second
}
KINDS = list(EXERCISES)


def exercise_reply(index_of: dict[str, int]):
    """The canned answer to an exercise request: the kind is chosen by the row's sampler index."""
    def reply(body: dict) -> str:
        user = body["messages"][-1]["content"]
        index = index_of[user]
        kind, name = KINDS[index % len(KINDS)], user.split("named `")[1].split("`")[0]
        attempt = body.get("seed", 0)  # the client sends seed + sample index: the attempt, from 0
        if kind == "second-try":
            return EXERCISES["wrong" if attempt == 0 else "good"][0](good_exercise(name))
        return EXERCISES[kind][0](good_exercise(name))
    return reply


def requests_by_index(count: int, kind: str, seed: int = 0) -> dict[str, int]:
    """Each row's request text, to its sampler index (how the canned server knows which row asks)."""
    sampler = Sampler(Taxonomy.load(), seed=seed)
    found = {}
    for params in sampler.many(count):
        messages = prompts.textbook_messages(params) if kind == "textbooks" else \
            prompts.exercise_messages(params, sorted(ALLOWED_IMPORTS))
        found[messages[-1]["content"]] = params.index
    return found


def synth(kind: str, server: FakeLLMServer, out: Path, *extra: str) -> int:
    return main(["synth", kind, "--count", str(extra_count(extra)), "--llm.model", "writer", "--llm.base-url",
                 server.url, "--timeout-s", "2", "--sandbox-workers", "2", "--out", str(out),
                 *[arg for arg in extra if not arg.startswith("count=")]])


def extra_count(extra: tuple[str, ...]) -> int:
    return next((int(arg.split("=")[1]) for arg in extra if arg.startswith("count=")), 20)


def test_exercises_keep_exactly_the_good_ones_and_count_every_drop(tmp_path, llm_server) -> None:
    llm_server.reply = exercise_reply(requests_by_index(20, "exercises"))
    out = tmp_path / "exercises"
    assert synth("exercises", llm_server, out, "--rows-per-task", "7") == 0

    rows = dataset_rows(out)
    kept = [row for row in rows if row["_part"] == "kept"]
    assert sorted(KINDS[row["sample_index"] % 10] for row in kept) == ["good", "good", "second-try", "second-try"]
    for row in kept:
        assert row["text"] == row["prompt"] + row["solution"] and row["entry_point"] == row["function_name"]
        assert row["prompt"].rstrip().endswith('"""') and "def check(candidate)" in row["tests"]
        assert row["doctests"] == 1 and row["model"] == "writer"
        first = KINDS[row["sample_index"] % 10] == "good"
        assert (row["attempt"], row["pass_rate"], row["attempts_made"]) == ((1, 1.0, 1) if first else (2, 0.5, 2))
    dropped = Counter(row["drop_reason"] for row in rows if row["_part"] == "dropped")
    expected = Counter()
    for kind, (_, reason) in EXERCISES.items():
        if reason:
            expected[reason] += 2 * 3  # two rows of each kind, three attempts each
    expected["failed_tests"] += 2  # the second-try rows' first attempts
    assert dropped == expected

    stats = data.read_stats(out)
    rate = stats["error_rate"]
    assert (rate["attempts"], rate["failed"]) == (2 + 18 + 18 + 16, 18 + 16 + 16)
    assert rate["by_attempt"]["1"] == {"attempts": 20, "failed": 18, "error_rate": 0.9}
    assert rate["by_attempt"]["2"]["failed"] == 16 and rate["by_attempt"]["3"]["attempts"] == 16
    assert rate["by_model"]["writer"]["attempts"] == 54
    assert stats["problems"] == {"asked": 20, "solved": 4, "solutions": 4}
    assert stats["coverage"]["topics"]["distinct"] >= 3 and stats["coverage"]["names"]["distinct"] == 4
    assert len(llm_server.requests) == 54


TEXTBOOK_GOOD = """# Counting with loops

A loop repeats a block of code.

```python
total = 0
for step in range(4):
    total += step
print(total)
# Output: 6
```

The name keeps its value in the next example:

```python
print(total * 2)  # Output: 12
```

>>> in a session:

```python
>>> total + 1
7
```
"""

TEXTBOOKS = {
    "good": (TEXTBOOK_GOOD, None),
    "wrong-output": (TEXTBOOK_GOOD.replace("# Output: 6", "# Output: 7"), "wrong_output"),
    "wrong-session": (TEXTBOOK_GOOD.replace(">>> total + 1\n7", ">>> total + 1\n8"), "wrong_output"),
    "syntax": (TEXTBOOK_GOOD.replace("for step in range(4):", "for step in range(4)"), "syntax_error"),
    "no-code": ("# Loops\n\nA loop repeats a block of code, as many times as you ask.\n", "no_code"),
    "raises": (TEXTBOOK_GOOD.replace("print(total * 2)", "print(total / 0)"), "failed_run"),
    "endless": (TEXTBOOK_GOOD.replace("print(total * 2)", "while True:\n    pass"), "timeout"),
    "import": (TEXTBOOK_GOOD.replace("total = 0", "import subprocess\ntotal = 0"), "forbidden_import"),
}
TEXTBOOK_KINDS = list(TEXTBOOKS)


def test_textbooks_run_their_code_and_keep_the_sections_that_print_what_they_state(tmp_path, llm_server) -> None:
    index_of = requests_by_index(16, "textbooks")
    llm_server.reply = lambda body: TEXTBOOKS[TEXTBOOK_KINDS[index_of[body["messages"][-1]["content"]] % 8]][0]
    out = tmp_path / "textbooks"
    assert synth("textbooks", llm_server, out, "count=16", "--attempts", "1") == 0

    rows = dataset_rows(out)
    kept = [row for row in rows if row["_part"] == "kept"]
    assert sorted(row["sample_index"] for row in kept) == [0, 8]
    assert all(row["code_ok"] and row["code_blocks"] == 3 and row["text"] == TEXTBOOK_GOOD for row in kept)
    dropped = Counter(row["drop_reason"] for row in rows if row["_part"] == "dropped")
    assert dropped == Counter({reason: 2 for _, reason in TEXTBOOKS.values() if reason} | {"wrong_output": 4})
    assert data.read_stats(out)["error_rate"]["error_rate"] == pytest.approx(14 / 16)

    flagged = tmp_path / "flagged"
    assert synth("textbooks", llm_server, flagged, "count=16", "--attempts", "1", "--on-failure", "flag") == 0
    rows = dataset_rows(flagged)
    assert sum(row["_part"] == "kept" for row in rows) == 16  # every section kept, the failed ones flagged
    assert sum(not row["code_ok"] for row in rows) == 14
    assert {row["error"].split(":")[0] for row in rows if not row["code_ok"]} == \
        {reason for _, reason in TEXTBOOKS.values() if reason}


def test_a_killed_synth_resumes_without_asking_an_answered_request_again(tmp_path, llm_server) -> None:
    llm_server.latency_s = 0.03
    llm_server.reply = lambda body: good_exercise(body["messages"][-1]["content"].split("named `")[1].split("`")[0])
    args = ["synth", "exercises", "--count", "40", "--llm.model", "writer", "--llm.base-url", llm_server.url,
            "--llm.concurrency", "2", "--sandbox-workers", "1", "--out", str(tmp_path / "out")]
    first_run = kill_after(llm_server, args, 15)
    answered = ResponseCache.open(Path(os.environ["TEXTBOOKS_CACHE"]) / "llm" / "responses.sqlite").count("ok")
    assert 10 <= answered <= first_run < 40

    assert main(args) == 0
    asked = Counter(request.body["messages"][-1]["content"] for request in llm_server.requests)
    assert len(asked) == 40 and sum(times == 2 for times in asked.values()) == first_run - answered
    assert len(dataset_rows(tmp_path / "out")) == 40


def test_seed_snippets_and_several_solutions_per_problem(tmp_path, llm_server) -> None:
    snippets = [f"def helper_{index}(x):\n    return x * {index}\n" for index in range(5)]
    corpus = tmp_path / "snippets.jsonl"
    corpus.write_text("".join(json.dumps({"id": f"s{index}", "text": text}) + "\n"
                              for index, text in enumerate(snippets)))
    llm_server.reply = lambda body: good_exercise(body["messages"][-1]["content"].split("named `")[1].split("`")[0])
    out = tmp_path / "out"
    assert synth("exercises", llm_server, out, "count=6", "--snippets", str(corpus), "--solutions", "2") == 0

    shown = [next(text for text in snippets if text in request.body["messages"][-1]["content"])
             for request in llm_server.requests]  # every request carries one of the snippets
    assert len(set(shown)) > 1  # drawn per row, not one for all
    rows = dataset_rows(out)
    assert len(rows) == 12 and all(row["_part"] == "kept" for row in rows)  # two solutions for each of 6
    assert all((row["pass_rate"], row["attempts_made"]) == (1.0, 2) for row in rows)
    assert sorted(Counter(row["sample_index"] for row in rows).values()) == [2] * 6
    again = tmp_path / "again"
    llm_server.requests.clear()
    assert synth("exercises", llm_server, again, "count=6", "--snippets", str(corpus), "--solutions", "2",
                 "--no-llm.cache") == 0
    assert sorted(shown) == sorted(next(text for text in snippets if text in request.body["messages"][-1]["content"])
                                   for request in llm_server.requests)  # the same draw again from the same seed


def refused(capsys, *argv: str) -> str:
    code = main(list(argv))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    return err[0]


def test_bad_settings_are_refused_and_nothing_is_done(tmp_path, llm_server, capsys) -> None:
    out = tmp_path / "out"
    base = ["synth", "exercises", "--llm.model", "writer", "--llm.base-url", llm_server.url, "--out", str(out)]
    broken = tmp_path / "topics.yaml"
    broken.write_text("Loops: [while, for\n")
    assert "topics.yaml" in refused(capsys, *base, "--taxonomy", str(broken))
    line = refused(capsys, *base, "--audiences", "astronauts")
    assert "astronauts" in line and "beginner" in line
    assert "attempts" in refused(capsys, *base, "--attempts", "0")
    assert "needs a model" in refused(capsys, "synth", "textbooks", "--out", str(out))
    llm_server.inject(status=401, times=1000, message="invalid API key")
    line = refused(capsys, *base, "--count", "5")
    assert "answered none of the 5 requests" in line and "invalid API key" in line and "llm.base_url" in line
    assert not (out / data.MARKER).exists()


def test_vllm_provider_without_vllm_is_refused_with_what_to_install(tmp_path, capsys) -> None:
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here: test_textbooks_from_vllms_offline_engine covers the provider")
    line = refused(capsys, "synth", "textbooks", "--count", "2", "--llm.provider", "vllm", "--llm.model",
                   "Qwen/Qwen2.5-Coder-0.5B-Instruct", "--out", str(tmp_path / "out"))
    assert "provider vllm needs vLLM installed" in line and "vllm serve" in line


@pytest.mark.gpu
def test_textbooks_from_vllms_offline_engine(tmp_path) -> None:
    """synth with `llm.provider: vllm` (the engine in this process) asks every row once and records each answer
    in the response cache, whatever a small model writes."""
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed (pip install vllm on a machine with a GPU)")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("vLLM's engine needs a CUDA device; there is none here")
    model = os.environ.get("TEXTBOOKS_VLLM_MODEL", "Qwen/Qwen2.5-Coder-0.5B-Instruct")
    out = tmp_path / "out"
    assert main(["synth", "textbooks", "--count", "4", "--attempts", "1", "--llm.provider", "vllm",
                 "--llm.model", model, "--llm.max-tokens", "256", "--out", str(out)]) == 0
    stats = json.loads((out / "stats.json").read_text())
    assert stats["rows_out"] + stats["rows_dropped"] == 4  # each row answered: kept, or dropped with its reason
