"""Reading a generated exercise out of a model's answer: HumanEval form, cut by the syntax tree.

    exercise = parse_exercise(answer, "count_vowels")   # an Exercise, or (reason, detail) when there is none

The model writes the whole function (signature, docstring, body) and a `check(candidate)` test function, in
fenced Python blocks. The prompt is everything up to the end of the function's docstring (imports and helper
definitions above it included), the solution the rest of its body (and any helper defined after it); other
top-level statements (prints, `if __name__` blocks) are left out. Tests are the `check` function, or, if the
model wrote plain asserts instead, those.
"""

from __future__ import annotations

import ast
import re

from textbooks.synth.verify import Exercise

_FENCE = re.compile(r"```[ \t]*(?:python|py|python3)?[^\n]*\n(.*?)```", re.DOTALL)


def _blocks(answer: str) -> list[str]:
    blocks = _FENCE.findall(answer)
    return blocks if blocks else [answer]  # no fences: the answer may be bare code


def _parsed(code: str) -> ast.Module | None:
    try:
        return ast.parse(code)
    except SyntaxError:
        return None


def _syntax_error(code: str) -> str:
    try:
        ast.parse(code)
    except SyntaxError as error:
        return f"{error.msg} (line {error.lineno})"
    return ""


def _lines(code: str, node: ast.stmt) -> str:
    start = min([node.lineno] + [decorator.lineno for decorator in getattr(node, "decorator_list", [])])
    return "\n".join(code.splitlines()[start - 1:node.end_lineno]) + "\n"


def parse_exercise(answer: str, name: str) -> Exercise | tuple[str, str]:
    """The exercise in `answer` for the function `name` (or the first documented function other than `check`
    when the model renamed it); (reason, detail) when there is none: syntax_error when a block does not parse,
    else unparseable."""
    function = tests = None
    broken = ""
    for code in _blocks(answer):
        tree = _parsed(code)
        if tree is None:
            broken = broken or _syntax_error(code)
            continue
        defs = [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
        if tests is None:
            check = next((node for node in defs if node.name == "check"), None)
            asserts = [node for node in tree.body if isinstance(node, ast.Assert)]
            if check is not None:
                tests = _lines(code, check)
            elif asserts and not any(node.name != "check" and ast.get_docstring(node) for node in defs):
                tests = "".join(_lines(code, node) for node in asserts)
        if function is None:
            documented = [node for node in defs if node.name != "check" and ast.get_docstring(node)]
            chosen = next((node for node in documented if node.name == name), documented[0] if documented else None)
            if chosen is not None:
                function = (code, tree, chosen)
    if function is None:
        return ("syntax_error", broken) if broken else ("unparseable", "no documented function in the answer")
    code, tree, chosen = function
    lines = code.splitlines()
    docstring = chosen.body[0]
    before = [node for node in tree.body if node.end_lineno <= chosen.lineno and
              isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Assign))
              and getattr(node, "name", "") != "check"]
    prompt = "".join(_lines(code, node) for node in before)
    prompt += ("\n" if before else "") + "\n".join(lines[_lines_start(chosen) - 1:docstring.end_lineno]) + "\n"
    body = "\n".join(lines[docstring.end_lineno:chosen.end_lineno]).rstrip() + "\n"
    after = [node for node in tree.body if node.lineno > chosen.end_lineno and
             isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name != "check"]
    solution = body + "".join("\n\n" + _lines(code, node) for node in after)
    if not body.strip():
        return "unparseable", "the function has no body after its docstring"
    return Exercise(prompt=prompt, solution=solution, tests=tests or "", entry_point=chosen.name)


def _lines_start(node: ast.stmt) -> int:
    return min([node.lineno] + [decorator.lineno for decorator in getattr(node, "decorator_list", [])])
