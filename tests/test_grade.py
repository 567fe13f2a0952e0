"""LLM grading of the fresh problem set: grade parsing, and grading end to end against a loopback judge."""

from __future__ import annotations

import re

import pytest
from llm_server import FakeLLMServer, llm_server_fixture  # noqa: F401  (fixture `llm_server`)

from textbooks.errors import UserError
from textbooks.evaluate.grade import GradeResult, grade, grade_sync, judge_messages, parse_grade, summarize
from textbooks.llm import LLMClient, LLMConfig


@pytest.mark.parametrize(("text", "expected"), [
    ("Looks right.\nGrade: 9/10", 9),
    ("Grade: 10/10", 10),
    ("Grade: 0/10", 0),
    ("**Grade:** 7", 7),
    ("**Grade**: 7/10", 7),
    ("Grade: **6**/10", 6),
    ("GRADE: 8 / 10.", 8),
    ("Final grade = 5 out of 10", 5),
    ("The grade is 4.", 4),
    ("grade:\n3/10", 3),
    ("Grade: 8.0/10", 8),
    ("My first thought was Grade: 3/10, but on reflection the edge cases are handled.\nGrade: 8/10", 8),
    ("Grade: 11/10", None),
    ("Grade: -1/10", None),
    ("Grade: 7.5/10", None),
    ("Grade: 8/100", None),
    ("Grade: N/10", None),
    ("It upgrades the list in place. 7/10 of the cases pass.", None),
    ("I cannot judge this.", None),
    ("", None),
])
def test_parse_grade(text: str, expected: int | None) -> None:
    assert parse_grade(text) == expected


PROBLEMS = [
    {"task_id": f"New/{index}", "prompt": f"def f{index}(x):\n    \"\"\"Return x plus {index}.\"\"\"\n",
     "canonical_solution": f"    return x + {index}\n"}
    for index in range(5)
]


def deterministic_judge(body: dict) -> str:
    """Grades as a careful judge would, from the request alone: 9 for the reference, 2 otherwise,
    and an answer with no grade when the candidate asks for one."""
    content = body["messages"][-1]["content"]
    reference = re.search(r"## Reference solution\n```python\n(.*?)\n```", content, re.DOTALL).group(1)
    candidate = re.search(r"## Student solution\n```python\n(.*?)\n```", content, re.DOTALL).group(1)
    if "confuse the judge" in candidate:
        return "I am not sure what to make of this."
    if candidate == reference:
        return "Looks right: it adds the number the docstring asks for.\nGrade: 9/10"
    return "Wrong: it returns the wrong value.\nGrade: 2/10"


def make_client(server: FakeLLMServer, **settings) -> LLMClient:
    return LLMClient(LLMConfig(model="judge", base_url=server.url, retry_base_s=0.01, **settings))


def test_grade_end_to_end(llm_server: FakeLLMServer) -> None:
    llm_server.reply = deterministic_judge
    completions = ["    return x + 0\n", "    return x + 1\n", "    return x - 2\n", "    return x + 3\n",
                   "    return 0  # confuse the judge\n"]

    results = grade_sync(make_client(llm_server, concurrency=2), PROBLEMS, completions, progress=False)

    assert [result.grade for result in results] == [9, 9, 2, 9, None]
    assert results[2].evaluation.startswith("Wrong")
    assert all(result.error is None for result in results)
    summary = summarize(results)
    assert (summary.problems, summary.graded, summary.ungradable, summary.failed_requests) == (5, 4, 1, 0)
    assert summary.score_percent == pytest.approx(10 * (9 + 9 + 2 + 9 + 0) / 5)  # 58%
    assert len(llm_server.requests) == 5
    first_request = llm_server.requests[0].body
    assert first_request["model"] == "judge" and first_request["temperature"] == 0.0
    assert "Grade: N/10" in first_request["messages"][0]["content"]


def test_failed_request_is_recorded_not_raised(llm_server: FakeLLMServer) -> None:
    llm_server.reply = deterministic_judge
    llm_server.inject(status=400, message="content policy")
    client = make_client(llm_server, concurrency=1)

    results = client.run(grade(client, PROBLEMS[:2], ["    return x + 0\n", "    return x + 1\n"], progress=False))

    assert results[0].grade is None and "content policy" in results[0].error
    assert results[1] == GradeResult("Looks right: it adds the number the docstring asks for.\nGrade: 9/10", 9)
    summary = summarize(results)
    assert (summary.ungradable, summary.failed_requests, summary.score_percent) == (1, 1, 45.0)


def test_judge_sees_problem_reference_and_candidate_programs() -> None:
    [message] = judge_messages(PROBLEMS[1], "    return x * 1\n")
    content = message["content"]
    assert "## Problem\n```python\ndef f1(x):" in content
    assert "```python\ndef f1(x):\n    \"\"\"Return x plus 1.\"\"\"\n    return x + 1\n```" in content
    assert "    return x * 1\n```" in content


def test_bad_inputs_are_user_errors() -> None:
    client = LLMClient(LLMConfig(model="judge", base_url="http://127.0.0.1:9/v1"))
    with pytest.raises(UserError, match="2 problems and 1 completions"):
        grade_sync(client, PROBLEMS[:2], ["x"])
    with pytest.raises(UserError, match="New/0 has no canonical_solution"):
        grade_sync(client, [{"task_id": "New/0", "prompt": "def f(): ..."}], ["x"])


def test_summary_of_nothing_is_zero() -> None:
    assert summarize([]).score_percent == 0.0
