"""Documents to token streams that ignore what a near-duplicate usually changes.

`code` mode reads Python the way its author meant it: comments are gone, white space and line wrapping do not
exist (it is a token stream), and the names a function binds locally (parameters, assignment, `for`, `with`,
`except` and comprehension targets) become placeholders numbered by first appearance, so a copy with its
variables consistently renamed has the same tokens. Function and class names, attributes, keyword arguments
(`f(size=size)` keeps `size=`), globals, builtins, keywords and literals stay as written, except that in a
string only its words count: a re-flowed docstring or other quotes are layout too.

Which names are local comes from CPython's own symbol table, read off the code objects `compile` builds (no
code runs): about half the cost of walking an `ast` tree, and parsing is most of a document's cost. A fragment
that parses but does not compile (`return` outside a function) is read as a function body: every name it
binds is local. Text that does not parse at all becomes plain word and punctuation tokens, so prose works.

`text` mode is lower-cased word tokens.
"""

from __future__ import annotations

import ast
import re
import types
import warnings

from textbooks.corpus.units import parse_python

# One alternative per Python token class. Names come first (most tokens are names) and take a string right
# after them along (`f"..."`, `rb'...'`: a prefix is part of its string); strings come before comments so that
# a `#` inside one is not misread, and each string pattern is unrolled, so no input makes it backtrack. A
# comment is matched, then dropped, so that its words never count. A backslash continuation is layout.
_TRIPLE_DOUBLE = r'''"""[^"\\]*(?:(?:\\[\s\S]|"(?!""))[^"\\]*)*"""'''
_TRIPLE_SINGLE = r"""'''[^'\\]*(?:(?:\\[\s\S]|'(?!''))[^'\\]*)*'''"""
_QUOTED = r""""[^"\\\n]*(?:\\[\s\S][^"\\\n]*)*"|'[^'\\\n]*(?:\\[\s\S][^'\\\n]*)*'"""
_STRING = f"{_TRIPLE_DOUBLE}|{_TRIPLE_SINGLE}|{_QUOTED}"
_CODE_TOKEN = re.compile(
    rf"[^\W\d]\w*(?:{_STRING})?|\d[\w.]*|{_STRING}"
    r"|\#[^\n]*|\*\*=?|//=?|->|:=|\.\.\.|[<>!=]=|<<=?|>>=?|[-+*/%@&|^~<>]=?|[^\s\\]"
)
_PLAIN_TOKEN = re.compile(r"\w+|[^\w\s]")
_WORD = re.compile(r"\w+")
_STRING_MARK = "\x01"  # like the local names' "\x00<number>", no real token starts with it
_STRING_PREFIXES = "rRbBuUfF"
_QUOTES = "'\""
_BRACKETS = frozenset("()[]{}")


def text_tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def code_tokens(text: str) -> tuple[list[str], bool]:
    """The canonical token stream of `text`, and whether it parsed as Python (else: plain tokens)."""
    names = local_names(text)
    if names is None:
        return _PLAIN_TOKEN.findall(text), False
    return _canonical([token for token in _CODE_TOKEN.findall(text) if token[0] != "#"], names), True


def written_tokens(text: str) -> list[str]:
    """Code tokens with names as written: comments and string layout gone, nothing compiled (prose works too)."""
    return _canonical([token for token in _CODE_TOKEN.findall(text) if token[0] != "#"], set())


def code_token_views(text: str) -> tuple[list[str], list[str]]:
    """`written_tokens(text)` and `code_tokens(text)[0]` (local names numbered), from one pass of the tokenizer."""
    tokens = [token for token in _CODE_TOKEN.findall(text) if token[0] != "#"]
    names = local_names(text)
    if names is None:
        return _canonical(tokens, set()), _PLAIN_TOKEN.findall(text)
    return _canonical(list(tokens), set()), _canonical(tokens, names)


def _canonical(tokens: list[str], names: set[str]) -> list[str]:
    """`tokens` with local names numbered and string literals reduced to their words (in place)."""
    canonical: dict[str, str] = {}
    in_call: list[bool] = []  # per open bracket: a call's arguments, where `name=` is a keyword, not a local
    last = len(tokens) - 1
    for index, token in enumerate(tokens):
        if token in names:
            attribute = index > 0 and tokens[index - 1] == "."
            keyword = in_call and in_call[-1] and index < last and tokens[index + 1] == "="
            if not (attribute or keyword):
                tokens[index] = canonical.get(token) or canonical.setdefault(token, f"\x00{len(canonical)}")
        elif token in _BRACKETS:
            if token == "(":
                in_call.append(index < 2 or tokens[index - 2] != "def")
            elif token in "[{":
                in_call.append(False)
            elif in_call:
                in_call.pop()
        elif token[-1] in _QUOTES:
            tokens[index] = _STRING_MARK + " ".join(token.lstrip(_STRING_PREFIXES).strip(_QUOTES).split())
    return tokens


def local_names(text: str) -> set[str] | None:
    """Names bound inside the functions, lambdas and comprehensions of `text`; None when it is not Python."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # invalid escapes and the like are not our business
            code = compile(text, "<document>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return _ast_local_names(text)
    names: set[str] = set()
    pending = [code]
    while pending:
        current = pending.pop()
        names.update(current.co_varnames)
        names.update(current.co_cellvars)
        pending.extend(const for const in current.co_consts if isinstance(const, types.CodeType))
    return {name for name in names if not name.startswith(".")}


def _ast_local_names(text: str) -> set[str] | None:
    """Every name a fragment binds, for text that parses but does not compile (a function body on its own)."""
    tree = parse_python(text)
    if tree is None:
        return None
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
    return names
