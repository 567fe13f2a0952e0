"""Cutting exercises out of code: every documented, self-contained function of a module or unit, for
`textbooks mine-exercises` (`textbooks.synth.mine`).

    found = cut_exercises(row_text, min_body_lines=2, max_body_lines=60)
    found.exercises[0].exercise.prompt     # imports it uses + decorators + signature + docstring
    found.skipped                          # {"private": 3, "stub": 1, ...}

A candidate is a top-level function, or a method of a top-level class, that has a docstring, a public name (of
its class too), a body that does something (not only `pass`, `...` or `raise NotImplementedError`) and from
`min_body_lines` to `max_body_lines` lines of code after its docstring (blank and comment-only lines not
counted). Its exercise, as the source has it (line endings made `\\n`):

    function:  context ""                                 prompt  imports + decorators + def + docstring
    method:    context imports + `class C(...):` + its docstring (nothing else of the class)
               prompt  the method's decorators + def + docstring, indented as in the class, so that
               context + prompt + solution parses and defines the class with that one method

and the solution is the rest of the body. The imports are the row's top-level imports (a unit from `ingest`
carries the ones it uses) narrowed to the names the exercise loads; a star import is never carried. It is
self-contained when every global name it loads (in its body, nested scopes, decorators, defaults, annotations
and its class's header; found with `symtable`) is a builtin or bound by those imports; a function may call
itself and a method may name its class. An explicit `global` statement reads or writes module state, which the
exercise does not carry, so it is not self-contained either.
"""

from __future__ import annotations

import ast
import builtins
import re
import symtable
from collections import Counter
from dataclasses import dataclass, field

from textbooks.synth.verify import Exercise

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")  # ast's idea of a line (str.splitlines knows more breaks)
BUILTIN_NAMES = frozenset(dir(builtins))
Function = ast.FunctionDef | ast.AsyncFunctionDef


@dataclass(frozen=True)
class Cut:
    """One candidate: its exercise, its qualified name (`C.method` or `function`), and why it is not
    self-contained ("" when it is), with a detail."""

    exercise: Exercise
    qualified_name: str
    is_method: bool
    problem: str = ""  # "" | "not_self_contained" | "syntax_error"
    detail: str = ""


@dataclass
class Found:
    """What one row gave: its candidates, and how many documented functions were skipped, by why."""

    exercises: list[Cut] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    parsed: bool = True


def lines_of(text: str) -> list[str]:
    """The text's lines as ast numbers them, each ending in `\\n`."""
    return [line.rstrip("\r\n") + "\n" for line in _LINE.findall(text)]


def _docstring_node(node: Function | ast.ClassDef) -> ast.Expr | None:
    first = node.body[0] if node.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return first
    return None


def _is_stub(statement: ast.stmt) -> bool:
    """`pass`, `...` or `raise NotImplementedError` (with or without a message)."""
    if isinstance(statement, ast.Pass):
        return True
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant):
        return statement.value.value is Ellipsis
    if isinstance(statement, ast.Raise) and statement.exc is not None:
        raised = statement.exc.func if isinstance(statement.exc, ast.Call) else statement.exc
        return isinstance(raised, ast.Name) and raised.id == "NotImplementedError"
    return False


def _code_lines(lines: list[str]) -> int:
    return sum(1 for line in lines if line.strip() and not line.lstrip().startswith("#"))


def _shape_problem(function: Function, owner: ast.ClassDef | None, lines: list[str], min_lines: int,
                   max_lines: int) -> str | None:
    """Why a documented function is not a candidate (a `skipped` key), or None."""
    if function.name.startswith("_") or owner is not None and owner.name.startswith("_"):
        return "private"
    docstring = _docstring_node(function)
    rest = function.body[1:]
    if not rest or all(_is_stub(statement) for statement in rest):
        return "stub"
    if rest[0].lineno <= docstring.end_lineno:
        return "layout"  # code on the docstring's line: no line to cut at
    body = _code_lines(lines[docstring.end_lineno:function.end_lineno])
    if body < min_lines:
        return "short_body"
    if body > max_lines:
        return "long_body"
    return None


def _class_context(owner: ast.ClassDef, lines: list[str]) -> str:
    """The class's header (`class C(...):`, decorators left out) and its docstring, as the source has them."""
    docstring = _docstring_node(owner)
    end = docstring.end_lineno if docstring is not None else owner.body[0].lineno - 1
    return "".join(lines[owner.lineno - 1:end])


def _bound_name(alias: ast.alias) -> str:
    """The name an import binds: `import os.path` binds `os`, `import numpy as np` binds `np`."""
    return alias.asname or alias.name.split(".")[0]


def _carried_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """The row's top-level imports, less `from __future__` and star imports (no name says what they bind)."""
    return [node for node in tree.body if isinstance(node, ast.Import) or isinstance(node, ast.ImportFrom)
            and node.module != "__future__" and all(alias.name != "*" for alias in node.names)]


def _imports_for(names: set[str], imports: list[ast.Import | ast.ImportFrom]) -> str:
    """The import statements that bind any of `names`, narrowed to those names, one a line."""
    statements = []
    for node in imports:
        aliases = [alias for alias in node.names if _bound_name(alias) in names]
        if aliases:
            narrowed = ast.Import(names=aliases) if isinstance(node, ast.Import) else \
                ast.ImportFrom(module=node.module, names=aliases, level=node.level)
            statements.append(ast.unparse(narrowed) + "\n")
    return "".join(statements)


def global_loads(snippet: str) -> tuple[set[str], bool]:
    """The global names `snippet` loads (every scope) less what it defines at its top, and whether any scope
    declares a name `global`. Raises SyntaxError."""
    top = symtable.symtable(snippet, "<exercise>", "exec")
    defined = {symbol.get_name() for symbol in top.get_symbols() if symbol.is_assigned()}
    loads: set[str] = set()
    declared, tables = False, [top]
    while tables:
        table = tables.pop()
        for symbol in table.get_symbols():
            if symbol.is_global() and symbol.is_referenced():
                loads.add(symbol.get_name())
            declared |= symbol.is_declared_global()
        tables.extend(table.get_children())
    return loads - defined, declared


def _cut_one(function: Function, owner: ast.ClassDef | None, lines: list[str],
             imports: list[ast.Import | ast.ImportFrom]) -> Cut:
    docstring = _docstring_node(function)
    start = min([function.lineno] + [decorator.lineno for decorator in function.decorator_list])
    header = "".join(lines[start - 1:docstring.end_lineno])
    solution = "".join(lines[docstring.end_lineno:function.end_lineno])
    class_part = _class_context(owner, lines) if owner is not None else ""
    name = f"{owner.name}.{function.name}" if owner is not None else function.name
    problem, detail, names = "", "", set()
    try:
        names, declares_global = global_loads(class_part + header + solution)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as error:
        problem, detail = "syntax_error", f"{type(error).__name__}: {error}"
    else:
        bound = {_bound_name(alias) for node in imports for alias in node.names}
        unbound = sorted(names - bound - BUILTIN_NAMES)
        if unbound:
            problem, detail = "not_self_contained", f"uses {', '.join(unbound[:5])}: not builtins, not imported"
        elif declares_global:
            problem, detail = "not_self_contained", "declares a name global: reads or writes module state"
    imported = _imports_for(names, imports)
    spaced = imported + "\n\n" if imported else ""
    if owner is None:
        exercise = Exercise(spaced + header, solution, "", function.name)
    else:
        exercise = Exercise(header, solution, "", function.name, context=spaced + class_part)
    return Cut(exercise, name, owner is not None, problem, detail)


def _documented(tree: ast.Module) -> list[tuple[Function, ast.ClassDef | None]]:
    """Top-level functions and methods of top-level classes that have a docstring, in source order."""
    found: list[tuple[Function, ast.ClassDef | None]] = []
    for node in tree.body:
        owners = [(node, None)] if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) else \
            [(child, node) for child in node.body if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))] \
            if isinstance(node, ast.ClassDef) else []
        found += [(function, owner) for function, owner in owners if _docstring_node(function) is not None]
    return found


def cut_exercises(text: str, min_body_lines: int = 2, max_body_lines: int = 60) -> Found:
    """The candidates of one row of code (a file, or a function or class unit with its imports)."""
    found = Found()
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        found.parsed = False
        return found
    lines, imports = lines_of(text), _carried_imports(tree)
    for function, owner in _documented(tree):
        problem = _shape_problem(function, owner, lines, min_body_lines, max_body_lines)
        if problem is not None:
            found.skipped[problem] += 1
        else:
            found.exercises.append(_cut_one(function, owner, lines, imports))
    return found
