"""LLM grading of solutions to a fresh problem set (paper section 4, following TinyStories).

The paper has a separate team write 50 new problems in HumanEval format and asks GPT-4 to grade each
candidate against the reference solution: the judge first writes a short verbal evaluation, then gives a grade
from 0 to 10, and the score is reported in percent. The paper does not publish its grading prompt;
`JUDGE_PROMPT` is ours, written to that description.

    client = LLMClient(LLMConfig(model="gpt-4o"))
    results = grade_sync(client, problems, completions)   # problems: HumanEval-style dicts
    print(summarize(results).score_percent)

A problem is a mapping with HumanEval's keys `prompt` (signature and docstring) and `canonical_solution` (the
body that continues it); a completion is the candidate's continuation of the same prompt. The judge sees the
prompt, then `prompt + canonical_solution` and `prompt + completion` as whole programs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from textbooks.errors import UserError
from textbooks.llm import LLMClient, LLMError

JUDGE_PROMPT = """\
You are grading a student's solution to a Python programming problem. You are given the problem, a reference \
solution written by the problem's author, and the student's solution. The student's solution does not have to \
look like the reference: any correct approach deserves full marks. Judge whether it shows understanding of the \
problem and does what the problem asks, including its edge cases.

## Problem
```python
{prompt}
```

## Reference solution
```python
{reference}
```

## Student solution
```python
{candidate}
```

First write a short evaluation (a few sentences): what the student's solution does, where it differs from \
what the problem asks, and which inputs it would get wrong. Then give a grade from 0 (no understanding of the \
problem, or no attempt) to 10 (fully correct). End your answer with a line of exactly this form:
Grade: N/10
"""

# "Grade: 7/10", "**Grade:** 7", "grade = 7 out of 10", "Grade: **7**/10"; the number may be signed or decimal
# so that "-1" and "7.5" are seen (and refused) rather than read as "1" and "7".
GRADE_PATTERN = re.compile(
    r"\bgrade\b\W{0,4}?(?:[:=]|\bis\b)?[\s*_]*(-?\d+(?:\.\d+)?)(?:[\s*_]*(?:/|\bout of\b)\s*(\d+))?",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class GradeResult:
    evaluation: str  # the judge's whole answer ("" when the request failed)
    grade: int | None  # 0..10, None when no grade could be read or the request failed
    error: str | None = None  # why the request failed


@dataclass(frozen=True)
class GradeSummary:
    problems: int
    graded: int
    ungradable: int  # no readable grade, or the request failed; these count as 0 in the score
    failed_requests: int
    score_percent: float  # mean grade over all problems, times 10


def parse_grade(text: str) -> int | None:
    """The last `Grade: N` in `text` as an int in 0..10; None when there is none, or it is out of range,
    fractional, or out of a total other than 10."""
    matches = list(GRADE_PATTERN.finditer(text))
    if not matches:
        return None
    number, total = matches[-1].groups()
    if total is not None and int(total) != 10:
        return None
    value = float(number)
    if not value.is_integer() or not 0 <= value <= 10:
        return None
    return int(value)


def judge_messages(problem: Mapping[str, str], completion: str) -> list[dict[str, str]]:
    """The chat request that asks the judge to grade one completion of one problem."""
    prompt = problem["prompt"]
    content = JUDGE_PROMPT.format(prompt=prompt.rstrip(), reference=(prompt + problem["canonical_solution"]).rstrip(),
                                  candidate=(prompt + completion).rstrip())
    return [{"role": "user", "content": content}]


def _check_inputs(problems: Sequence[Mapping[str, str]], completions: Sequence[str]) -> None:
    if len(problems) != len(completions):
        raise UserError(f"grading needs one completion per problem: got {len(problems)} problems "
                        f"and {len(completions)} completions")
    for index, problem in enumerate(problems):
        missing = [key for key in ("prompt", "canonical_solution") if key not in problem]
        if missing:
            name = problem.get("task_id", f"problem {index}")
            raise UserError(f"{name} has no {' or '.join(missing)}: a graded problem needs HumanEval's "
                            f"`prompt` and `canonical_solution`")


async def grade(client: LLMClient, problems: Sequence[Mapping[str, str]], completions: Sequence[str],
                progress: bool = True) -> list[GradeResult]:
    """Grade each completion against its problem's reference with the client's model as judge; in input
    order. A failed request gives a result with `error` set instead of stopping the others."""
    _check_inputs(problems, completions)
    requests = [judge_messages(problem, completion) for problem, completion in zip(problems, completions)]
    replies = await client.map_chat(requests, progress=progress, return_exceptions=True)
    return [GradeResult("", None, str(reply)) if isinstance(reply, LLMError)
            else GradeResult(reply.text, parse_grade(reply.text)) for reply in replies]


def grade_sync(client: LLMClient, problems: Sequence[Mapping[str, str]], completions: Sequence[str],
               progress: bool = True) -> list[GradeResult]:
    """`grade` for callers outside asyncio."""
    return client.run(grade(client, problems, completions, progress))


def summarize(results: Sequence[GradeResult]) -> GradeSummary:
    """The paper's score: mean grade × 10 in percent over all problems, an ungradable one counting as 0."""
    grades = [result.grade for result in results if result.grade is not None]
    return GradeSummary(
        problems=len(results),
        graded=len(grades),
        ungradable=len(results) - len(grades),
        failed_requests=sum(result.error is not None for result in results),
        score_percent=10 * sum(grades) / len(results) if results else 0.0,
    )
