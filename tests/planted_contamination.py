"""Benchmark solutions planted in the standard library, in the ways contamination arrives.

Each planted problem (HumanEval and MBPP) gets up to five rows: the solution verbatim (HumanEval: prompt and
canonical solution; MBPP: its reference code), with its locals, parameters and function renamed, with the
description in its docstring reworded (MBPP's code has none: one is added), reformatted (re-wrapped, re-indented,
blank lines moved), and, for the problems in `REWRITES`, rewritten by hand in another style that still passes the
problem's tests (the same signature and docstring, the body in another style: a loop as a comprehension, a
library call for a hand-written algorithm). `tests/test_decontaminate.py` checks what each measure finds.
"""

from __future__ import annotations

import ast
import random

from planted import WORDS, _edit, _tokens, rename_locals, rewrap
from planted_families import apply_parsing, blank_lines, reindent

# Hand rewrites in another style: the same signature and docstring, another body (a loop as a comprehension or a
# library call, a comprehension as a loop). HumanEval: the body after the prompt; MBPP: the whole program. Each
# must pass its problem's tests (the test checks).
REWRITES = {
    "HumanEval/0": """\
    return any(abs(first - second) < threshold
               for index, first in enumerate(numbers) for second in numbers[index + 1:])
""",
    "HumanEval/3": """\
    running = 0
    return any((running := running + op) < 0 for op in operations)
""",
    "HumanEval/4": """\
    centre = sum(numbers) / len(numbers)
    total = 0.0
    for number in numbers:
        total += abs(number - centre)
    return total / len(numbers)
""",
    "HumanEval/12": """\
    return max(strings, key=len) if strings else None
""",
    "HumanEval/24": """\
    return next(candidate for candidate in range(n - 1, 0, -1) if n % candidate == 0)
""",
    "HumanEval/29": """\
    kept = []
    for string in strings:
        if string.startswith(prefix):
            kept.append(string)
    return kept
""",
    "HumanEval/35": """\
    return max(l)
""",
    "HumanEval/42": """\
    return list(map(lambda e: e + 1, l))
""",
    "HumanEval/48": """\
    return all(text[i] == text[-1 - i] for i in range(len(text) // 2))
""",
    "HumanEval/52": """\
    return all(e < t for e in l)
""",
    "Mbpp/11": """\
def remove_Occ(s, ch):
    first = s.find(ch)
    if first == -1:
        return s
    s = s[:first] + s[first + 1:]
    last = s.rfind(ch)
    return s if last == -1 else s[:last] + s[last + 1:]
""",
    "Mbpp/12": """\
def sort_matrix(M):
    return sorted(M, key=lambda row: sum(row))
""",
    "Mbpp/18": """\
def remove_dirty_chars(string, second_string):
    banned = set(second_string)
    return "".join(char for char in string if char not in banned)
""",
    "Mbpp/19": """\
def test_duplicate(arraynums):
    seen = set()
    for num in arraynums:
        if num in seen:
            return True
        seen.add(num)
    return False
""",
}


def solution_text(problem) -> str:
    """What a contaminated dataset would hold: HumanEval's prompt and solution, MBPP's reference program."""
    if problem.task_id.startswith("Mbpp/"):
        return problem.canonical_solution.replace("\r\n", "\n")
    return problem.prompt + problem.canonical_solution


def rename_entry(text: str, entry: str, rng: random.Random) -> str:
    """Locals and parameters renamed (`planted.rename_locals`), and the entry function and its calls too."""
    text = rename_locals(text, rng)
    tree = ast.parse(text)
    new_name = f"{rng.choice(WORDS)}_{entry}_{rng.randint(0, 99)}"
    places = {(node.lineno, node.col_offset) for node in ast.walk(tree) if isinstance(node, ast.Name)
              and node.id == entry}
    definitions = {node.lineno for node in ast.walk(tree) if isinstance(node, ast.FunctionDef) and node.name == entry}
    tokens = _tokens(text)
    edits = [(token.start, token.end, new_name) for previous, token in zip(tokens, tokens[1:])
             if token.string == entry and (token.start in places
                                           or (previous.string == "def" and token.start[0] in definitions))]
    return _edit(text, edits)


def reword_docstring(text: str, entry: str, rng: random.Random) -> str:
    """The entry function's docstring with its description (first paragraph) reworded, examples kept; a
    docstring added where there is none."""
    tree = ast.parse(text)
    function = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == entry)
    lines = text.splitlines(keepends=True)
    first = function.body[0]
    indent = lines[first.lineno - 1][:first.col_offset]  # tabs stay tabs
    words = " ".join(rng.sample(WORDS, 6)).capitalize()
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        rest = first.value.value.split("\n\n", 1)
        body = f"{words}.\n\n{rest[1]}" if len(rest) > 1 else f"{words}."
        docstring = f'{indent}"""{body.rstrip()}\n{indent}"""\n'
        return "".join(lines[:first.lineno - 1] + [docstring] + lines[first.end_lineno:])
    return "".join(lines[:first.lineno - 1] + [f'{indent}"""{words}."""\n'] + lines[first.lineno - 1:])


def reformat(text: str, rng: random.Random) -> str:
    """Re-wrapped, re-indented and with blank lines moved; the code itself as it was."""
    return apply_parsing(text, [rewrap, reindent, blank_lines], rng)


def planted_rows(problems: list, seed: int = 0) -> list[tuple[str, str, str]]:
    """`(task_id, kind, text)` for each planted row of `problems` (kinds: verbatim, renamed, reworded,
    reformatted, rewritten)."""
    rng = random.Random(seed)
    rows = []
    for problem in problems:
        original = solution_text(problem)
        variants = {"verbatim": original,
                    "renamed": rename_entry(original, problem.entry_point, rng),
                    "reworded": reword_docstring(original, problem.entry_point, rng),
                    "reformatted": reformat(original, rng)}
        if problem.task_id in REWRITES:
            rewrite = REWRITES[problem.task_id]
            variants["rewritten"] = rewrite if problem.task_id.startswith("Mbpp/") else problem.prompt + rewrite
        for kind, text in variants.items():
            ast.parse(text)
            rows.append((problem.task_id, kind, text))
    return rows


def chosen_problems(humaneval: list, mbpp: list, count: int = 20, seed: int = 0) -> list:
    """The problems of `REWRITES`, then others drawn with `seed`, up to `count` of each benchmark."""
    rng = random.Random(seed)
    chosen = []
    for problems in (humaneval, mbpp):
        first = [problem for problem in problems if problem.task_id in REWRITES]
        others = [problem for problem in problems if problem.task_id not in REWRITES]
        chosen += first + rng.sample(others, count - len(first))
    return chosen
