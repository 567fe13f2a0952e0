"""A mined exercise rewritten as a textbook section, the offline stand-in for a synthetic textbook.

    textbooks mine-exercises --input runs/x/ingest --form textbook --out runs/x/textbook-sections

The paper's textbooks (section 2.2) are prose that explains a concept, then code that shows it, then more prose.
Without an LLM the closest text to hand is a documented function: its docstring is the explanation, its body
the worked code, its doctests the example. `textbook_section` lays those out in that order::

    ## Merge sorted lists

    Merge two sorted lists into one sorted list.        <- the docstring's prose (examples taken out)

    ```python
    def merge_sorted(a, b):                             <- the function without its docstring
        ...
    ```

    For example:                                        <- the docstring's examples, when it has any

    ```python
    >>> merge_sorted([1, 3], [2])
    [1, 2, 3]
    ```

No word is added that the code's author did not write, besides the heading (from the function's name) and the
two connecting phrases, so the section is as correct as the verified function it comes from; it is not an
LLM's textbook, and a report that uses it says so.
"""

from __future__ import annotations

import ast
import inspect
import re

EXAMPLE = re.compile(r"^\s*(>>>|\.\.\.)")


def title(name: str) -> str:
    """`merge_sorted_lists` / `HTTPServer.serve_forever` -> `Merge sorted lists` / `HTTPServer: Serve forever`
    (a class's name is kept as written)."""
    def words(part: str) -> str:
        if not part.islower() and "_" not in part.strip("_"):
            return part
        spaced = part.replace("_", " ").strip()
        return spaced[:1].upper() + spaced[1:] if spaced else part

    parts = [words(part) for part in name.split(".") if part]
    return ": ".join(parts) or name


def split_docstring(docstring: str) -> tuple[str, str]:
    """(prose, examples): the docstring's lines outside and inside its `>>>` examples (an example's expected
    output is the lines after it up to a blank line)."""
    prose: list[str] = []
    examples: list[str] = []
    in_example = False
    for line in inspect.cleandoc(docstring).splitlines():
        if EXAMPLE.match(line):
            in_example = True
        elif not line.strip():
            in_example = False
        (examples if in_example else prose).append(line.strip() if in_example else line)
    return "\n".join(prose).strip(), "\n".join(examples).strip()


def without_docstring(source: str, name: str) -> str:
    """`source` with the docstring of its function `name` (the last definition of it) removed."""
    tree = ast.parse(source)
    found = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
             and node.name == name]
    if not found or not found[-1].body or not isinstance(found[-1].body[0], ast.Expr):
        return source
    docstring = found[-1].body[0]
    lines = source.splitlines(keepends=True)
    kept = lines[:docstring.lineno - 1] + lines[docstring.end_lineno:]
    return "".join(kept)


def textbook_section(context: str, prompt: str, solution: str, entry_point: str, qualified_name: str) -> str:
    """The exercise (context + prompt + solution, whose function `entry_point` has a docstring) as a section."""
    code = context + prompt + solution
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return code
    function = next((node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                     and node.name == entry_point), None)
    docstring = ast.get_docstring(function) if function is not None else None
    if not docstring:
        return code
    prose, examples = split_docstring(docstring)
    parts = [f"## {title(qualified_name)}", prose, f"```python\n{without_docstring(code, entry_point).strip()}\n```"]
    if examples:
        parts += ["For example:", f"```python\n{examples}\n```"]
    return "\n\n".join(part for part in parts if part) + "\n"
