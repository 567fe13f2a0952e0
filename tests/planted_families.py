"""A dataset of planted families of variations, from real code: distinct standard-library functions, each
copied into a known number of variants.

A variant takes two to five of: locals, parameters and the function's name renamed; lines re-wrapped inside
brackets, blank lines added or removed, indentation of 2 or 8 spaces or tabs; comments and the docstring
changed, added or removed; literals changed (same type); two adjacent independent assignments swapped. Each
edit works on `tokenize` tokens or `ast` positions so that everything else stays as written, and an edit whose
result no longer parses is left out. `tests/test_diversity_families.py` checks that `find_families` recovers
the families.
"""

from __future__ import annotations

import ast
import math
import random
import tokenize
from typing import Callable

from planted import WORDS, _edit, _tokens, distinct_functions, recomment, rename_locals, rewrap, stdlib_functions

_SIDE_EFFECTS = (ast.Call, ast.Await, ast.Yield, ast.YieldFrom, ast.NamedExpr, ast.Lambda)


def planted_families(candidates: list[str] | None = None, count: int = 200, largest: int = 50, seed: int = 0
                     ) -> tuple[list[str], list[int]]:
    """Rows (shuffled) and each row's family: `count` distinct functions of `candidates` (default: 900 of the
    standard library's), each with a log-uniform number of variants between 1 and `largest` (about 12 on
    average). No row is an unchanged original."""
    rng = random.Random(seed)
    candidates = list(candidates or stdlib_functions(limit=900))
    rng.shuffle(candidates)
    rows = []
    for family, text in enumerate(distinct_code(candidates, count)):
        size = min(largest, int(math.exp(rng.uniform(0, math.log(largest + 1)))))
        rows += [(variant_of(text, rng), family) for _ in range(size)]
    rng.shuffle(rows)
    return [text for text, _ in rows], [family for _, family in rows]


def distinct_code(candidates: list[str], count: int, min_statements: int = 4) -> list[str]:
    """Up to `count` candidates with at least `min_statements` statements besides the docstring, distinct (as
    `distinct_functions` sees it) once docstrings and literal values are gone.

    A variant may change its docstring and literals, so two functions that differ only there are one family,
    and a function that is mostly docstring has too little code left to tell its variants from others.
    """
    by_code: dict[str, str] = {}
    for text in candidates:
        tree = ast.parse(text)
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and _has_docstring(node):
                node.body = node.body[1:] or [ast.Pass()]
            elif isinstance(node, ast.Constant):
                node.value = type(node.value).__name__
        if sum(isinstance(node, ast.stmt) for node in ast.walk(tree)) > min_statements:  # the def is one
            by_code.setdefault(ast.unparse(tree), text)
    return [by_code[code] for code in distinct_functions(list(by_code), count)]


def _has_docstring(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> bool:
    first = node.body[0]
    return isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str)


def variant_of(text: str, rng: random.Random) -> str:
    """`text` with two to five of the perturbations, applied in a fixed order (those that parse)."""
    chosen = set(rng.sample(sorted(PERTURBATIONS), rng.randint(2, 5)))
    return apply_parsing(text, [perturb for name, perturb in PERTURBATIONS.items() if name in chosen], rng)


def apply_parsing(text: str, perturbations: list[Callable[[str, random.Random], str]], rng: random.Random) -> str:
    """`text` with each perturbation applied in turn, leaving out one whose result does not parse."""
    for perturb in perturbations:
        try:
            candidate = perturb(text, rng)
            ast.parse(candidate)
        except (SyntaxError, tokenize.TokenError):
            continue
        text = candidate
    return text


def rename(text: str, rng: random.Random) -> str:
    """Locals and parameters renamed consistently, and the (first top-level) function's name too."""
    text = rename_locals(text, rng)
    tree = ast.parse(text)
    function = next((node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))), None)
    if function is None:
        return text
    name, new_name = function.name, f"{rng.choice(WORDS)}_{function.name}"
    places = {(node.lineno, node.col_offset) for node in ast.walk(tree) if isinstance(node, ast.Name)
              and node.id == name}
    tokens = _tokens(text)
    edits = [(token.start, token.end, new_name) for previous, token in zip(tokens, tokens[1:])
             if token.string == name and (token.start in places
                                          or (previous.string == "def" and token.start[0] == function.lineno))]
    return _edit(text, edits)


def reindent(text: str, rng: random.Random) -> str:
    """Each 4 columns of indentation as 2 or 8 spaces or a tab (lines inside a string stay as they are)."""
    if "\t" in text:
        return text
    unit = rng.choice(["  ", "        ", "\t"])
    tokens = _tokens(text)
    inside_strings = {row for token in tokens for row in range(token.start[0] + 1, token.end[0] + 1)}
    lines = text.splitlines(keepends=True)
    for row in {token.start[0] for token in tokens} - inside_strings:
        if row <= len(lines):
            line = lines[row - 1]
            width = len(line) - len(line.lstrip(" "))
            lines[row - 1] = unit * (width // 4) + " " * (width % 4) + line[width:]
    return "".join(lines)


def blank_lines(text: str, rng: random.Random) -> str:
    """Remove some blank lines between statements and add others."""
    tokens = _tokens(text)
    lines = text.splitlines(keepends=True)
    edits = []
    for token in tokens[:-2]:
        row = token.start[0]
        if token.type == tokenize.NEWLINE and row < len(lines) and rng.random() < 0.2:
            edits.append(((row + 1, 0), (row + 1, 0), "\n"))
        elif token.type == tokenize.NL and token.start[1] == 0 and not lines[row - 1].strip() \
                and rng.random() < 0.6:
            edits.append(((row, 0), (row + 1, 0), ""))
    return _edit(text, edits)


def redocument(text: str, rng: random.Random) -> str:
    """The function's docstring reworded or removed, or a docstring added where there is none."""
    function = ast.parse(text).body[0]
    if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return text
    lines = text.splitlines(keepends=True)
    first = function.body[0]
    indent = lines[first.lineno - 1][:first.col_offset]
    if indent.strip():
        return text  # the body starts on the `def` line
    docstring = f'{indent}"""{" ".join(rng.sample(WORDS, rng.randint(3, 6))).capitalize()}."""\n'
    if not _has_docstring(function):
        return "".join(lines[:first.lineno - 1] + [docstring] + lines[first.lineno - 1:])
    if lines[first.end_lineno - 1][first.end_col_offset:].strip():
        return text  # something follows the docstring on its last line
    replacement = [] if len(function.body) > 1 and rng.random() < 0.5 else [docstring]
    return "".join(lines[:first.lineno - 1] + replacement + lines[first.end_lineno:])


def change_literals(text: str, rng: random.Random) -> str:
    """One to three numbers or strings (not docstrings, not inside f-strings) changed to others of their type."""
    tree = ast.parse(text)
    skipped = {id(node) for joined in ast.walk(tree) if isinstance(joined, ast.JoinedStr)
               for node in ast.walk(joined)}
    skipped |= {id(node.body[0].value) for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef,
                ast.AsyncFunctionDef, ast.ClassDef)) and isinstance(node.body[0], ast.Expr)}
    literals = [node for node in ast.walk(tree) if isinstance(node, ast.Constant) and id(node) not in skipped
                and type(node.value) in (int, float, str, bytes)]
    edits = [((node.lineno, node.col_offset), (node.end_lineno, node.end_col_offset), repr(_other(node.value, rng)))
             for node in rng.sample(literals, min(len(literals), rng.randint(1, 3)))]
    return _edit(text, edits)


def _other(value: int | float | str | bytes, rng: random.Random) -> int | float | str | bytes:
    if isinstance(value, (str, bytes)):
        words = " ".join(rng.sample(WORDS, 2))
        return words if isinstance(value, str) else words.encode()
    return value + rng.randint(1, 9)


def reorder(text: str, rng: random.Random) -> str:
    """Two adjacent assignments, each on lines of its own, that neither read nor write what the other writes,
    swapped (when the function has such a pair)."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    pairs = [(first, second) for body in _bodies(tree) for first, second in zip(body, body[1:])
             if second.lineno == first.end_lineno + 1 and _own_lines(first, lines) and _own_lines(second, lines)
             and _independent(first, second)]
    if not pairs or not text.endswith("\n"):
        return text
    first, second = rng.choice(pairs)
    return "".join(lines[:first.lineno - 1] + lines[second.lineno - 1:second.end_lineno]
                   + lines[first.lineno - 1:first.end_lineno] + lines[second.end_lineno:])


def _bodies(tree: ast.AST) -> list[list[ast.stmt]]:
    """Every list of statements of the tree (bodies, else and finally blocks)."""
    fields = (getattr(node, field, None) for node in ast.walk(tree) for field in ("body", "orelse", "finalbody"))
    return [body for body in fields if isinstance(body, list)]


def _own_lines(statement: ast.stmt, lines: list[str]) -> bool:
    before = lines[statement.lineno - 1][:statement.col_offset]
    after = lines[statement.end_lineno - 1][statement.end_col_offset:].strip()
    return not before.strip() and (not after or after.startswith("#"))


def _independent(first: ast.stmt, second: ast.stmt) -> bool:
    """Both plain assignments to names, without calls, and neither touches a name the other assigns."""
    reads_1, writes_1 = _names(first)
    reads_2, writes_2 = _names(second)
    if reads_1 is None or reads_2 is None:
        return False
    return not writes_1 & (reads_2 | writes_2) and not writes_2 & reads_1


def _names(statement: ast.stmt) -> tuple[set[str] | None, set[str]]:
    """Names an assignment reads and writes; None for what it reads when it is not one we may move."""
    if not isinstance(statement, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
        return None, set()
    targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
    target_nodes = [node for target in targets for node in ast.walk(target)]
    if any(not isinstance(node, (ast.Name, ast.Tuple, ast.List, ast.Store, ast.Load)) for node in target_nodes) \
            or any(isinstance(node, _SIDE_EFFECTS) for node in ast.walk(statement)):
        return None, set()
    names = [node for node in ast.walk(statement) if isinstance(node, ast.Name)]
    reads = {node.id for node in names if isinstance(node.ctx, ast.Load)}
    writes = {node.id for node in names if isinstance(node.ctx, ast.Store)}
    return (reads | writes if isinstance(statement, ast.AugAssign) else reads), writes


# In the order they are applied: edits by syntax tree first, then edits of layout.
PERTURBATIONS: dict[str, Callable[[str, random.Random], str]] = {
    "reorder": reorder, "literals": change_literals, "docstring": redocument, "rename": rename,
    "comments": recomment, "rewrap": rewrap, "blank_lines": blank_lines, "reindent": reindent,
}
