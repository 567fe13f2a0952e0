"""Cutting a Python module into units: its top-level functions and classes, each made readable on its own.

A unit is the definition's original lines (decorators, docstring and comments included, plus the comment
block written right above it), after the module's import statements that the unit uses, narrowed to the
names it uses: `from typing import Any, Iterator` becomes `from typing import Any` in a unit that only uses
`Any`. Star imports and `from __future__` imports are left out: no name says whether a unit needs them.
"""

from __future__ import annotations

import ast
import re
import warnings
from dataclasses import dataclass
from typing import Iterable

_LINE_WITH_BREAK = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")

Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
KIND_OF_NODE: dict[type, str] = {ast.FunctionDef: "function", ast.AsyncFunctionDef: "function",
                                 ast.ClassDef: "class"}


@dataclass(frozen=True)
class Unit:
    kind: str  # "function" | "class"
    name: str
    code: str  # the definition's own lines, which the row filters judge
    imports: str  # the import statements it uses, one per line; "" when none

    @property
    def text(self) -> str:
        return f"{self.imports}\n\n\n{self.code}" if self.imports else self.code


def parse_python(text: str) -> ast.Module | None:
    """The module's syntax tree, or None when `text` is not Python 3 that this interpreter can parse."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for odd escapes is about the code, not for us
            return ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):  # ValueError: NUL bytes
        return None


def extract_units(text: str, tree: ast.Module, kinds: Iterable[str]) -> list[Unit]:
    """The top-level functions and/or classes of a module (`kinds`), in source order."""
    wanted = set(kinds)
    lines = _LINE_WITH_BREAK.findall(text)
    imports = [node for node in tree.body if _is_plain_import(node)]
    units = []
    previous_end = 0
    for node in tree.body:
        kind = KIND_OF_NODE.get(type(node))
        if kind in wanted:
            start = _first_line(node, lines, previous_end)
            code = "".join(lines[start - 1:node.end_lineno])
            units.append(Unit(kind, node.name, code, _used_imports(imports, _names_used(node))))
        previous_end = node.end_lineno or previous_end
    return units


def _first_line(node: Definition, lines: list[str], previous_end: int) -> int:
    """1-based first line of a definition: its first decorator, or the comment block just above it."""
    start = min([node.lineno] + [decorator.lineno for decorator in node.decorator_list])
    while start - 1 > previous_end and lines[start - 2].startswith("#"):
        start -= 1
    return start


def _is_plain_import(node: ast.stmt) -> bool:
    return isinstance(node, ast.Import) or isinstance(node, ast.ImportFrom) and node.module != "__future__"


def _names_used(node: ast.AST) -> set[str]:
    return {child.id for child in ast.walk(node) if isinstance(child, ast.Name)}


def _bound_name(alias: ast.alias) -> str:
    """The name an import binds: `import os.path` binds `os`, `import numpy as np` binds `np`."""
    return alias.asname or alias.name.split(".")[0]


def _used_imports(imports: list[ast.Import | ast.ImportFrom], used: set[str]) -> str:
    statements = []
    for node in imports:
        aliases = [alias for alias in node.names if alias.name != "*" and _bound_name(alias) in used]
        if not aliases:
            continue
        if isinstance(node, ast.Import):
            narrowed: ast.stmt = ast.Import(names=aliases)
        else:
            narrowed = ast.ImportFrom(module=node.module, names=aliases, level=node.level)
        statements.append(ast.unparse(narrowed))
    return "\n".join(statements)
