"""The paper's AST match rate tau: how alike two functions' syntax trees are, names and wording aside.

    from textbooks.decontam.trees import function_trees, match_rate

    ours = function_trees(row_text)             # [("make_palindrome", Tree), ...]: every function it defines
    theirs = function_trees(solution)[-1][1]
    match_rate(ours[0][1], theirs)             # 1.0: the same structure; 0.9, 0.83: less and less alike

A function becomes a tree of node types: every identifier (names, attributes, arguments, the function's own
name) is gone, a literal is its type (`Constant:int`), docstrings, type annotations and the load/store context
nodes are dropped, and comments and layout never reach an `ast`. The match rate is
`1 - TED / max(|A|, |B|)`, clipped at 0, where TED is the unit-cost tree edit distance (Zhang and Shasha's
insert, delete and relabel) and |T| a tree's node count: 1.0 when the trees are equal, and the share of nodes an
edit script keeps for trees that differ. The paper gives no formula (its tau is "a match rate" with 1.0 for
identical structure), so this is our reading of it.

TED comes from `edist` (Cython, about 0.24 ms for two HumanEval-sized trees on one core, 2026-12-01) where it
is installed, else from `apted` (pure Python, the same distances, about 160 times slower). `match_bound` is a
cheap upper bound of the match rate (a node only matches for free a node of the same label), so that pairs that
cannot reach a threshold skip the edit distance.
"""

from __future__ import annotations

import ast
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

from textbooks.corpus.units import parse_python

_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)
_DOCUMENTED = (*_FUNCTIONS, ast.ClassDef, ast.Module)
_CONTEXTS = (ast.Load, ast.Store, ast.Del)


@dataclass(frozen=True)
class Tree:
    """A normalised syntax tree in preorder: node i has label `labels[i]` and children `children[i]`."""

    labels: list[str]
    children: list[list[int]]
    counts: Counter = field(compare=False, repr=False)

    @property
    def size(self) -> int:
        return len(self.labels)


def tree_of(node: ast.AST) -> Tree:
    """The normalised tree of `node` (names, literals' values, docstrings and annotations gone)."""
    labels: list[str] = []
    children: list[list[int]] = []

    def visit(current: ast.AST) -> int:
        index = len(labels)
        if isinstance(current, ast.Constant):
            labels.append(f"Constant:{type(current.value).__name__}")
            children.append([])
            return index
        labels.append(type(current).__name__)
        children.append([])
        kids = children[index]
        for name, value in ast.iter_fields(current):
            if name in ("returns", "annotation", "type_comment"):
                continue
            items = value if isinstance(value, list) else [value]
            if name == "body" and isinstance(current, _DOCUMENTED) and items and _is_docstring(items[0]):
                items = items[1:]
            for item in items:
                if isinstance(item, ast.AST) and not isinstance(item, _CONTEXTS):
                    kids.append(visit(item))
        return index

    visit(node)
    return Tree(labels, children, Counter(labels))


def _is_docstring(statement: object) -> bool:
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) \
        and isinstance(statement.value.value, str)


def function_trees(text: str) -> list[tuple[str, Tree]]:
    """`(name, tree)` of every function `text` defines (methods and nested functions too), in source order;
    [] when it does not parse."""
    module = parse_python(text)
    if module is None:
        return []
    try:
        return [(node.name, tree_of(node)) for node in ast.walk(module) if isinstance(node, _FUNCTIONS)]
    except RecursionError:
        return []


def match_bound(first: Tree, second: Tree) -> float:
    """An upper bound of `match_rate`: every node not matched to an equal label costs at least one edit, so
    TED >= max(|A|, |B|) - |labels(A) & labels(B)| (multisets)."""
    shared = sum((first.counts & second.counts).values())
    return shared / max(first.size, second.size)


def match_rate(first: Tree, second: Tree) -> float:
    """`1 - TED / max(|A|, |B|)`, clipped at 0: 1.0 for the same structure."""
    distance = _edit_distance()(first, second)
    return max(0.0, 1.0 - distance / max(first.size, second.size))


def _edit_distance() -> Callable[[Tree, Tree], float]:
    global _DISTANCE
    if _DISTANCE is None:
        try:
            from edist import ted

            def fast(first: Tree, second: Tree) -> float:
                return float(ted.standard_ted(first.labels, first.children, second.labels, second.children))

            _DISTANCE = fast
        except ImportError:  # no wheel for this platform: the pure-Python library gives the same distances
            _DISTANCE = apted_distance
    return _DISTANCE


_DISTANCE: Callable[[Tree, Tree], float] | None = None


def apted_distance(first: Tree, second: Tree) -> float:
    """The unit-cost tree edit distance computed by `apted` (pure Python)."""
    from apted import APTED
    from apted.helpers import Tree as AptedTree

    return float(APTED(_apted_tree(first, AptedTree), _apted_tree(second, AptedTree)).compute_edit_distance())


def _apted_tree(tree: Tree, node_class: type) -> object:
    nodes = [node_class(label) for label in tree.labels]
    for node, kids in zip(nodes, tree.children):
        node.children = [nodes[kid] for kid in kids]
    return nodes[0]
