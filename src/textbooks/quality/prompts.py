"""The judge's prompt: the educational value of a snippet for a student learning basic coding concepts.

The wording is this project's own; the idea is the paper's (section 1(a): GPT-4 asked to determine a
snippet's educational value for a student whose goal is to learn basic coding concepts), scored on an additive
0-5 scale as FineWeb-Edu and Stack-Edu do. `VERSION` changes whenever the text does, so that cached answers
to an older prompt are never taken for answers to this one.
"""

from __future__ import annotations

VERSION = "edu-v1"

SYSTEM = ("You are an experienced programming teacher. You judge how much a student who is learning basic "
          "coding concepts would learn from reading a piece of code.")

INSTRUCTIONS = """Score the code below from 0 to 5 by adding one point for each statement that holds:

- It is valid code that does something a learner could follow (not just configuration, data or imports).
- It deals with a concept a learner meets early: loops, conditions, functions, data structures, recursion,
  string or list handling, simple algorithms.
- It is readable on its own: clear names, and comments or a docstring that explain what and why.
- It is self-contained: it does not depend on much code that is not shown.
- It would work as an example in a textbook or a lesson: focused, correct and worth studying.

Answer with one JSON object and nothing else: {{"score": <0-5>, "reason": "<one sentence>"}}

Code:
```python
{code}
```"""

REASK = ("Your answer could not be read as a score. Reply with only the JSON object "
         '{"score": <a whole number from 0 to 5>, "reason": "<one sentence>"}.')


# The answer's shape as a JSON schema, sent as `response_format` where structured output is on: OpenAI, vLLM,
# SGLang, llama.cpp and Ollama then decode only such an object; servers without it ignore the field.
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "educational_value", "strict": True, "schema": {
    "type": "object", "additionalProperties": False, "required": ["score", "reason"],
    "properties": {"score": {"type": "integer", "minimum": 0, "maximum": 5}, "reason": {"type": "string"}}}}}


def messages(code: str, max_chars: int) -> list[dict[str, str]]:
    """The chat messages that ask for one snippet's score (the code cut to `max_chars`)."""
    shown = code if len(code) <= max_chars else code[:max_chars] + "\n# ... (cut)"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": INSTRUCTIONS.format(code=shown)}]


def reask(asked: list[dict[str, str]], answer: str) -> list[dict[str, str]]:
    """The conversation again, with the unreadable answer and a request for the JSON object alone."""
    return asked + [{"role": "assistant", "content": answer}, {"role": "user", "content": REASK}]
