"""What the synth steps ask a model: a textbook section, or an exercise in HumanEval form with its tests.

The wording is this project's own; the recipe is the paper's (sections 1(b)-(c)): textbook prose that explains a
concept with small runnable examples, and function exercises given as a signature and a docstring, diverse
because every request is constrained by a sampled topic, audience, level, style, constraint words and function
name (`textbooks.synth.sampler`). `*_VERSION` changes whenever a text does, so that cached answers to an older
prompt are never taken for answers to this one.
"""

from __future__ import annotations

from textbooks.synth.sampler import AUDIENCES, Params

TEXTBOOK_VERSION = "textbook-v1"
EXERCISE_VERSION = "exercise-v1"

SYSTEM = "You are an expert Python teacher who writes clear, correct textbooks and exercises."

TEXTBOOK = """Write one section of a Python textbook.

Topic: {topic}
Reader: {audience} ({level} level)
Style: {style}
The examples must involve: {words}
{snippet}
Explain the concept in clear prose, and interleave two to four small, self-contained Python examples in ```python
blocks that a reader can run one after another. After each print call in an example, state what it prints in a
comment on the next line, `# Output: <the printed text>`. Use only the standard library. Do not ask the reader
questions you do not answer. Start with a Markdown heading."""

SNIPPET = """Draw on this code from a real project where it helps (do not copy it whole):
```python
{code}
```
"""

EXERCISE = """Write one Python exercise for {audience} ({level} level), difficulty: {difficulty}.

Topic: {topic}
The function must be named `{name}`. Its story or data may involve: {words}
{snippet}
Answer with exactly two ```python blocks and nothing else:
1. The function `{name}` with type hints and a docstring that states the task precisely and gives one or two
   examples in doctest form (`>>> {name}(...)` followed by the result), then its correct implementation.
2. Its tests: `def check(candidate):` with at least five `assert` statements that call `candidate(...)`,
   including edge cases, that a wrong implementation would fail.
Use only these modules, if any: {modules}."""


def _words(params: Params) -> str:
    return ", ".join(params.words) if params.words else "anything you like"


def _snippet(snippet: str | None, max_chars: int) -> str:
    if not snippet:
        return ""
    return SNIPPET.format(code=snippet if len(snippet) <= max_chars else snippet[:max_chars] + "\n# ...")


def textbook_messages(params: Params, snippet: str | None = None, max_chars: int = 2000) -> list[dict[str, str]]:
    user = TEXTBOOK.format(topic=params.topic, audience=AUDIENCES[params.audience], level=params.level,
                           style=params.style, words=_words(params), snippet=_snippet(snippet, max_chars))
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def exercise_messages(params: Params, modules: list[str] | None, snippet: str | None = None,
                      max_chars: int = 2000) -> list[dict[str, str]]:
    user = EXERCISE.format(topic=params.topic, audience=AUDIENCES[params.audience], level=params.level,
                           difficulty=params.difficulty, name=params.function_name, words=_words(params),
                           snippet=_snippet(snippet, max_chars),
                           modules=", ".join(sorted(modules)) if modules else "any standard-library module")
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
