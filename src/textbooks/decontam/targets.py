"""Benchmark problems as decontamination targets: the text rows are compared with, and the function they define.

    targets = load_targets(["humaneval", "mbpp"])      # 164 + 500, from $TEXTBOOKS_BENCHMARKS or a download
    targets[0].document      # prompt + canonical solution: what n-grams and embeddings compare
    targets[0].tree          # the entry point's normalised syntax tree (`trees.py`), for the AST match rate

A target's `document` is the problem's prompt followed by its canonical solution: the whole function with its
docstring for HumanEval, the task description (MBPP's prompt docstring, with its first test) and the reference
program for MBPP. The AST side is the entry point's own definition in that document (helpers left out).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from textbooks.benchmarks import BENCHMARKS, Problem, load_benchmark
from textbooks.corpus.units import parse_python
from textbooks.decontam.trees import Tree, tree_of
from textbooks.errors import UserError


@dataclass(frozen=True)
class Target:
    bench: str
    problem: Problem
    document: str
    tree: Tree | None  # None: the document does not parse or does not define the entry point
    positional: tuple[int, int] | None  # (required, total) positional parameters of the entry point

    @property
    def key(self) -> str:
        """`humaneval:HumanEval/0`: unique over benchmarks that share task ids (HumanEval and HumanEval+)."""
        return f"{self.bench}:{self.problem.task_id}"


def load_targets(benches: list[str], benchmarks_dir: str | Path | None = None) -> list[Target]:
    unknown = [name for name in benches if name not in BENCHMARKS]
    if unknown:
        raise UserError(f"decontaminate: unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}")
    return [make_target(name, problem) for name in benches for problem in load_benchmark(name, benchmarks_dir)]


def make_target(bench: str, problem: Problem) -> Target:
    document = problem.prompt + problem.canonical_solution
    definition = entry_definition(document, problem.entry_point)
    if definition is None:
        return Target(bench, problem, document, None, None)
    return Target(bench, problem, document, tree_of(definition), positional_range(definition))


def entry_definition(text: str, name: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    """The last top-level definition of function `name` in `text`."""
    module = parse_python(text)
    if module is None:
        return None
    found = [node for node in module.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
             and node.name == name]
    return found[-1] if found else None


def positional_range(definition: ast.FunctionDef | ast.AsyncFunctionDef) -> tuple[int, int]:
    """(required, total) positional parameters; total is large for `*args`."""
    arguments = definition.args
    total = len(arguments.posonlyargs) + len(arguments.args)
    required = total - len(arguments.defaults)
    return required, (1 << 16) if arguments.vararg is not None else total


def accepts(candidate: tuple[int, int], target: tuple[int, int]) -> bool:
    """Whether a function with `candidate`'s (required, total) positional parameters can be called with some
    number of positional arguments that the target takes."""
    return candidate[0] <= target[1] and candidate[1] >= target[0]
