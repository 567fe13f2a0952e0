"""Seeded perturbations of a benchmark prompt, for the paper's stated limitation that phi-1 "is less robust to
stylistic variations or errors in the prompt":

    textbooks eval MODEL --bench humaneval,mbpp --perturb typos,grammar,rename --seed 0 --out DIR
    perturbed = perturb(problem, ["typos"], seed=0)

`perturb(problem, kinds, seed)` returns the problem with its prompt (and, for `rename`, its canonical solution)
changed; each kind's choices come from (seed, task_id, kind) alone, so a seed gives the same prompts on every
machine. Only the docstring of the function the model completes is touched (for MBPP-style prompts, which are
a docstring and a test line, the module's docstring), and only its prose: doctest lines (`>>>`, `...`) and
the output lines after them up to a blank line, lines that look like code (an `=`, `->`, `name(` or
`name[`), text in quotes or brackets, words that are names in the prompt or the canonical solution (and True,
False, None), and words with digits, underscores, inner capitals or escapes are left as they are.

- `typos`: a share (`TYPO_SHARE`) of the prose words of four letters or more get one misspelling each: two
  neighbouring letters swapped, a letter dropped or a letter doubled, never the first letter.
- `grammar`: a share (`GRAMMAR_SHARE`) of the places where an error can go get one: an article (a, an, the)
  dropped before the next word, or a verb's agreement broken (`AGREEMENT`: "returns" -> "return", "is" ->
  "are", ...). A capital "A"/"The" counts as an article only at the start of a line or sentence (elsewhere it is
  often a name, "a path A").
- `rename`: the parameters of the completed function become `<stem><position>` (one seeded stem per problem),
  in the signature, in the docstring (whole words outside quotes) and in the canonical solution, so the
  canonical solution still passes: HumanEval's `check(candidate)` and EvalPlus call positionally. A parameter
  is kept where renaming is not safe: a nested scope or an import, `except ... as` or pattern binds its name,
  a keyword-only parameter, a test that passes it by keyword, or a name that is also an English function word
  ("a", "is", ...) used as a word in the docstring. MBPP-style prompts have no signature: the only name the
  model sees is the function the tests call by name, so `rename` leaves them (and their solutions) as they are.

Applied together, `rename` goes first, then `grammar`, then `typos`. Every perturbed prompt of HumanEval and
MBPP parses with its canonical solution, and the canonical solutions still pass (tests/test_perturb.py).
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import keyword
import random
import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import replace

from textbooks.benchmarks.problem import Problem

KINDS = ("typos", "grammar", "rename")
APPLIED_IN_ORDER = ("rename", "grammar", "typos")
# Shares chosen so that a docstring of ~40 prose words gets ~4 typos, or ~3 grammar errors of ~10 places.
TYPO_SHARE = 0.1
GRAMMAR_SHARE = 0.3
TYPO_MIN_LETTERS = 4
ARTICLES = ("a", "an", "the")
AGREEMENT = {
    "is": "are", "are": "is", "was": "were", "were": "was", "has": "have", "have": "has", "does": "do",
    "do": "does", "returns": "return", "contains": "contain", "takes": "take", "gives": "give",
    "consists": "consist", "represents": "represent", "means": "mean", "appears": "appear", "occurs": "occur",
    "needs": "need",
}
RENAME_STEMS = ("arg", "param", "var", "val", "inp", "x")
# Parameters with these names are not renamed when the word is in the docstring: its uses cannot be told apart.
FUNCTION_WORDS = frozenset({"a", "an", "and", "as", "at", "be", "by", "do", "he", "i", "if", "in", "is", "it",
                            "me", "my", "no", "not", "of", "on", "or", "so", "the", "to", "up", "us", "we"})

Edit = tuple[int, int, str]  # (start, end, replacement) in a text
_CODE_LINE = re.compile(r"=|->|\w\(|\w\[|^(assert|def|import|print)\b")
_QUOTED = re.compile(r'"[^"]*"|`[^`]*`|(?<!\w)\'[^\'\n]*\'(?!\w)')
_BRACKETED = re.compile(r"\[[^\]]*\]|\{[^}]*\}")
_OPENERS = re.compile(r'["`\[{]|(?<!\w)\'')
_PUNCTUATION = ".,;:!?()"
_NEXT_WORD = re.compile(r" +[A-Za-z]")
_VALUES = frozenset({"True", "False", "None"})  # in prose, Python's values: kept (other keywords are words)
_LINE_END = re.compile(r"\r\n|\r|\n")  # what ends a line for ast (str.splitlines also splits at \f, \x1c ...)
# What binds a name without an `ast.Name` (so a rename would miss it), and the fields that hold the name.
_BINDS_BY_TEXT = (ast.ExceptHandler, ast.alias, ast.MatchAs, ast.MatchStar, ast.MatchMapping)
_BINDING_FIELDS = ("name", "asname", "rest")


def perturb(problem: Problem, kinds: Iterable[str], seed: int) -> Problem:
    """`problem` with each of `kinds` (names in `KINDS`) applied, deterministically from (seed, task id, kind)."""
    kinds = set(kinds)
    unknown = sorted(kinds - set(KINDS))
    if unknown:
        raise ValueError(f"unknown perturbation {unknown[0]!r}; choose from {', '.join(KINDS)}")
    for kind in APPLIED_IN_ORDER:
        if kind in kinds:
            problem = _PERTURBERS[kind](problem, _rng(seed, problem.task_id, kind))
    return problem


def _rng(seed: int, task_id: str, kind: str) -> random.Random:
    return random.Random(int(hashlib.sha256(f"{seed}\0{task_id}\0{kind}".encode()).hexdigest()[:16], 16))


def _typos(problem: Problem, rng: random.Random) -> Problem:
    span = _docstring_span(problem.prompt, problem.entry_point)
    if span is None:
        return problem
    words = [(start, end) for start, end in _prose_words(problem, span)
             if end - start >= TYPO_MIN_LETTERS and problem.prompt[start + 1:end].islower()]
    chosen = sorted(rng.sample(words, _share(len(words), TYPO_SHARE))) if words else []
    edits = [(start, end, _misspelled(problem.prompt[start:end], rng)) for start, end in chosen]
    return replace(problem, prompt=_apply(problem.prompt, edits))


def _misspelled(word: str, rng: random.Random) -> str:
    swappable = [i for i in range(1, len(word) - 1) if word[i] != word[i + 1]]
    how = rng.choice(("swap", "drop", "double") if swappable else ("drop", "double"))
    if how == "swap":
        i = rng.choice(swappable)
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    i = rng.randrange(1, len(word))
    return word[:i] + word[i + 1:] if how == "drop" else word[:i] + word[i] + word[i:]


def _grammar(problem: Problem, rng: random.Random) -> Problem:
    span = _docstring_span(problem.prompt, problem.entry_point)
    if span is None:
        return problem
    text = problem.prompt
    words = _prose_words(problem, span)
    places: list[Edit] = []
    for start, end in words:
        word = text[start:end]
        following = _NEXT_WORD.match(text, end)  # an article is dropped only before a word on its line
        if word.lower() in ARTICLES and following and (word.islower() or _starts_sentence(text, start)):
            letter = text[following.end() - 1]
            places.append((start, following.end(), letter.upper() if word[0].isupper() else letter))
        elif word.lower() in AGREEMENT and (word.islower() or word[1:].islower()):
            swapped = AGREEMENT[word.lower()]
            places.append((start, end, swapped.capitalize() if word[0].isupper() else swapped))
    chosen = sorted(rng.sample(places, _share(len(places), GRAMMAR_SHARE))) if places else []
    disjoint = [edit for index, edit in enumerate(chosen) if index == 0 or edit[0] >= chosen[index - 1][1]]
    return replace(problem, prompt=_apply(text, disjoint))


def _starts_sentence(text: str, start: int) -> bool:
    before = text[:start].rstrip(" ")
    return before.endswith(("\n", ".", ":", '"""', "'''"))


def _rename(problem: Problem, rng: random.Random) -> Problem:
    source = problem.prompt + problem.canonical_solution
    tree, prompt_tree = _parse(source), _parse(problem.prompt)
    if tree is None or prompt_tree is None:
        return problem
    heads = [node.lineno for node in prompt_tree.body
             if isinstance(node, ast.FunctionDef) and node.name == problem.entry_point]
    function = next((node for node in tree.body if isinstance(node, ast.FunctionDef)
                     and node.name == problem.entry_point and heads and node.lineno == heads[-1]), None)
    if function is None:  # MBPP-style: no signature in the prompt
        return problem
    span = _docstring_span(problem.prompt, problem.entry_point)
    docstring = problem.prompt[span[0]:span[1]] if span else ""
    taken = _names(tree) | _names(_parse(problem.test)) | set(dir(builtins)) | set(keyword.kwlist)
    taken |= set(re.findall(r"\w+", docstring))
    stem = rng.choice(RENAME_STEMS)
    parameters = function.args.posonlyargs + function.args.args
    parameters += [arg for arg in (function.args.vararg, function.args.kwarg) if arg is not None]
    edits: list[Edit] = []
    for position, parameter in enumerate(parameters):
        old = parameter.arg
        if not _safe_to_rename(old, function, problem, docstring):
            continue
        new = f"{stem}{position}"
        while new in taken:
            new += "_"
        taken.add(new)
        found = _code_edits(source, function, parameter, old, new, problem.entry_point)
        if found is None:
            continue
        edits += found
        if span:
            edits += [(span[0] + start, span[0] + end, new) for start, end in _mentions(docstring, old)]
    cut = len(problem.prompt)
    prompt = _apply(problem.prompt, [edit for edit in edits if edit[0] < cut])
    solution = _apply(problem.canonical_solution, [(start - cut, end - cut, new) for start, end, new in edits
                                                   if start >= cut])
    return replace(problem, prompt=prompt, canonical_solution=solution)


def _safe_to_rename(old: str, function: ast.FunctionDef, problem: Problem, docstring: str) -> bool:
    """Whether every use of parameter `old` can be found and renamed (see the module docstring)."""
    if old.lower() in FUNCTION_WORDS and re.search(rf"(?<![\w.']){re.escape(old)}(?!\w)", docstring, re.I):
        return False
    tests = _parse(problem.test)
    if tests is not None and any(isinstance(node, ast.keyword) and node.arg == old for node in ast.walk(tests)):
        return False
    for node in ast.walk(function):
        if node is function:
            continue
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == old:
            return False
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) \
                and old in {arg.arg for arg in ast.walk(node.args) if isinstance(arg, ast.arg)}:
            return False
        if isinstance(node, ast.comprehension) and old in {name.id for name in ast.walk(node.target)
                                                           if isinstance(name, ast.Name)}:
            return False
        if isinstance(node, (ast.Global, ast.Nonlocal)) and old in node.names:
            return False
        if isinstance(node, _BINDS_BY_TEXT) and old in {getattr(node, field, None) for field in _BINDING_FIELDS}:
            return False
    return old not in {arg.arg for arg in function.args.kwonlyargs}


def _code_edits(source: str, function: ast.FunctionDef, parameter: ast.arg, old: str, new: str,
                entry_point: str) -> list[Edit] | None:
    """Where `old` is the parameter in the function's code (its signature, its names, recursive calls' keywords);
    None when a position does not hold the name (safer to keep it)."""
    starts = _line_starts(source)
    spots = [(parameter.lineno, parameter.col_offset)]
    for node in ast.walk(function):
        if isinstance(node, ast.Name) and node.id == old:
            spots.append((node.lineno, node.col_offset))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == entry_point:
            spots += [(kw.lineno, kw.col_offset) for kw in node.keywords if kw.arg == old]
    edits = []
    for line, column in spots:
        start = _offset(source, starts, line, column)
        if source[start:start + len(old)] != old:
            return None
        edits.append((start, start + len(old), new))
    return edits


def _mentions(docstring: str, name: str) -> list[tuple[int, int]]:
    """Whole-word uses of `name` in the docstring outside quotes."""
    found = []
    for start, line in _lines(docstring):
        masked = _masks(line, _QUOTED)
        for match in re.finditer(rf"(?<![\w.'\\]){re.escape(name)}(?!\w)", line):
            if not any(low <= match.start() < high for low, high in masked):
                found.append((start + match.start(), start + match.end()))
    return found


def _prose_words(problem: Problem, span: tuple[int, int]) -> list[tuple[int, int]]:
    """Spans (in the prompt) of the docstring's prose words that may be changed (see the module docstring)."""
    code = _parse(problem.prompt + problem.canonical_solution) or _parse(problem.prompt)
    protected = _names(code) | _VALUES
    body = problem.prompt[span[0]:span[1]]
    words: list[tuple[int, int]] = []
    after_doctest = False
    for start, line in _lines(body):
        stripped = line.strip()
        if stripped.startswith((">>>", "...")):
            after_doctest = True
            continue
        if after_doctest and stripped:
            continue
        after_doctest = False
        if _CODE_LINE.search(stripped):
            continue
        masked = _masks(line, _QUOTED, _BRACKETED)
        opener = next((match.start() for match in _OPENERS.finditer(line)
                       if not any(low <= match.start() < high for low, high in masked)), None)
        if opener is not None:  # a quote or bracket that does not close on this line: the rest is not prose
            masked.append((opener, len(line)))
        for chunk in re.finditer(r"\S+", line):
            if any(low < chunk.end() and chunk.start() < high for low, high in masked):
                continue
            core = chunk.group().strip(_PUNCTUATION)
            if core.isascii() and core.isalpha() and core not in protected:
                offset = chunk.start() + chunk.group().index(core)
                words.append((span[0] + start + offset, span[0] + start + offset + len(core)))
    return words


def _docstring_span(prompt: str, entry_point: str) -> tuple[int, int] | None:
    """Where the text between the quotes of the completed function's docstring is (its first string statement,
    HumanEval/115 imports before it), or the module's for prompts without that function; None if none."""
    tree = _parse(prompt)
    if tree is None:
        return None
    functions = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == entry_point]
    body = functions[-1].body if functions else tree.body
    literal = next((node.value for node in body if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                    and isinstance(node.value.value, str)), None)
    if literal is None:
        return None
    starts = _line_starts(prompt)
    start = _offset(prompt, starts, literal.lineno, literal.col_offset)
    end = _offset(prompt, starts, literal.end_lineno, literal.end_col_offset)
    opening = re.match(r"[rRuU]?(\"\"\"|'''|\"|')", prompt[start:end])
    if opening is None or not prompt[start:end].endswith(opening.group(1)) or end - start < 2 * len(opening.group(1)):
        return None
    inner = (start + opening.end(), end - len(opening.group(1)))
    if opening.group(1) in prompt[inner[0]:inner[1]]:  # implicitly joined literals: leave them
        return None
    return inner


def _names(tree: ast.AST | None) -> set[str]:
    """Every identifier in `tree`: names, parameters, definitions, attributes, keywords, imports."""
    if tree is None:
        return set()
    found: set[str] = set()
    for node in ast.walk(tree):
        for field in ("id", "arg", "name", "attr", "asname"):
            value = getattr(node, field, None)
            if isinstance(value, str):
                found.update(value.split("."))
    return found


def _parse(source: str) -> ast.Module | None:
    with warnings.catch_warnings():  # MBPP's regex tasks hold escapes like '\w' that Python warns about
        warnings.simplefilter("ignore", (DeprecationWarning, SyntaxWarning))
        try:
            return ast.parse(source)
        except SyntaxError:
            return None


def _lines(text: str) -> list[tuple[int, str]]:
    """(offset, line without its end) for each line of `text`."""
    starts = _line_starts(text)
    return [(start, _LINE_END.sub("", text[start:end])) for start, end in zip(starts, starts[1:] + [len(text)])
            if start < len(text)]


def _masks(line: str, *patterns: re.Pattern) -> list[tuple[int, int]]:
    return [match.span() for pattern in patterns for match in pattern.finditer(line)]


def _line_starts(source: str) -> list[int]:
    return [0] + [match.end() for match in _LINE_END.finditer(source)]


def _offset(source: str, starts: Sequence[int], line: int, column_bytes: int) -> int:
    """The character offset of ast's (1-based line, UTF-8 byte column)."""
    begin = starts[line - 1]
    text = source[begin:starts[line] if line < len(starts) else len(source)]
    return begin + len(text.encode("utf-8")[:column_bytes].decode("utf-8", errors="ignore"))


def _share(count: int, share: float) -> int:
    return min(count, max(1, round(share * count)))


def _apply(text: str, edits: Sequence[Edit]) -> str:
    """`text` with non-overlapping `edits` made."""
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


_PERTURBERS = {"typos": _typos, "grammar": _grammar, "rename": _rename}
