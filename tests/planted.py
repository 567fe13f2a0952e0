"""A corpus with planted near-duplicates, from real code: top-level functions of the Python standard library.

`distinct_functions` picks functions that are truly different from each other (no pair shares half of its
5-grams even with every name replaced by one placeholder), and the perturbations make the copies that a
near-duplicate remover must catch: locals renamed consistently, lines re-wrapped inside brackets, comments
changed, added or removed. Each works on `tokenize` tokens and positions, so everything else in the source,
layout included, stays as written. `tests/test_dedup.py` measures precision and recall on such a corpus, and
`bench/dedup.py` makes the near-duplicates of its 50,000 documents with `variant`.

`word_corpus` is the other kind: prose of a few words (`normalize: text`), many of whose rows share LSH buckets
without being near-duplicates, with mutated and exact copies, empty rows and short ones; the sharded and the
in-memory reduce must agree on it.
"""

from __future__ import annotations

import ast
import io
import json
import keyword
import random
import sysconfig
import tokenize
from pathlib import Path
from typing import Iterator

SKIPPED_PARTS = {"test", "tests", "idle_test", "lib2to3", "encodings"}
WORDS = ["note", "keep", "this", "in", "sync", "with", "the", "caller", "see", "docs", "fast", "path", "why"]


def stdlib_modules(skipped: set[str] = SKIPPED_PARTS) -> Iterator[tuple[str, ast.Module]]:
    """Source and syntax tree of each module of this interpreter's standard library, in path order.

    Folders named in `skipped` are left out, and so is `site-packages` (installed packages, not stdlib).
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.rglob("*.py")):
        if ({"site-packages"} | skipped) & set(path.relative_to(root).parts):
            continue
        try:
            source = path.read_text(encoding="utf-8")
            yield source, ast.parse(source)
        except (SyntaxError, UnicodeDecodeError, ValueError):
            continue


def stdlib_functions(min_lines: int = 8, max_lines: int = 60, limit: int | None = None) -> list[str]:
    """Source of top-level functions (ASCII, parsing on their own) of the standard library."""
    found: list[str] = []
    for source, tree in stdlib_modules():
        lines = source.splitlines(keepends=True)
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and not node.decorator_list:
                text = "".join(lines[node.lineno - 1:node.end_lineno])
                if min_lines <= text.count("\n") <= max_lines and text.isascii():
                    found.append(text)
        if limit and len(found) >= limit:
            break
    return found


def structure(text: str, ngram: int = 5) -> set[tuple[str, ...]]:
    """5-grams of the token stream with every name as one placeholder: similar code looks similar here."""
    tokens = []
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
                          tokenize.ENDMARKER):
            continue
        is_name = token.type == tokenize.NAME and not keyword.iskeyword(token.string)
        tokens.append("NAME" if is_name else token.string)
    return {tuple(tokens[i:i + ngram]) for i in range(max(1, len(tokens) - ngram + 1))}


def distinct_functions(candidates: list[str], count: int, max_similarity: float = 0.5) -> list[str]:
    """Up to `count` candidates, in order, no two of which share `max_similarity` of their structure."""
    chosen: list[tuple[str, set]] = []
    for text in candidates:
        shape = structure(text)
        if all(len(shape & other) < max_similarity * len(shape | other) for _, other in chosen
               if min(len(shape), len(other)) >= max_similarity * max(len(shape), len(other))):
            chosen.append((text, shape))
            if len(chosen) == count:
                break
    return [text for text, _ in chosen]


def _tokens(text: str) -> list[tokenize.TokenInfo]:
    return list(tokenize.generate_tokens(io.StringIO(text).readline))


def _edit(text: str, edits: list[tuple[tuple[int, int], tuple[int, int], str]]) -> str:
    """Replace each (start, end) span of `text` (tokenize rows and columns) by its string."""
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    result, position = [], 0
    for start, end, replacement in sorted(edits):
        begin = starts[start[0] - 1] + start[1]
        result += [text[position:begin], replacement]
        position = starts[end[0] - 1] + end[1]
    return "".join(result) + text[position:]


def rename_locals(text: str, rng: random.Random) -> str:
    """Rename the parameters and local variables of every function in `text` consistently (ASCII text only).

    Attributes, keyword arguments, globals and class attributes keep their names.
    """
    tree = ast.parse(text)
    functions = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
    scopes = [node for node in ast.walk(tree) if isinstance(node, functions)]
    inside = [node for scope in scopes for node in ast.walk(scope)]
    bound = {node.arg for node in inside if isinstance(node, ast.arg)}
    bound |= {node.id for node in inside if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
    bound -= {name for node in inside if isinstance(node, (ast.Global, ast.Nonlocal)) for name in node.names}
    new_names = {name: f"{rng.choice(WORDS)}_{index}" for index, name in enumerate(sorted(bound))}
    places = {(node.lineno, node.col_offset) for node in ast.walk(tree)
              if isinstance(node, ast.arg) or isinstance(node, ast.Name) and node.id in new_names}
    edits = [(token.start, token.end, new_names[token.string]) for token in _tokens(text)
             if token.type == tokenize.NAME and token.start in places and token.string in new_names]
    return _edit(text, edits)


def rewrap(text: str, rng: random.Random) -> str:
    """Split argument lists after commas, and join lines that were wrapped inside brackets."""
    edits, depth, tokens = [], 0, _tokens(text)
    for previous, token, following in zip(tokens, tokens[1:], tokens[2:]):
        if token.type == tokenize.OP and token.string in "([{":
            depth += 1
        elif token.type == tokenize.OP and token.string in ")]}":
            depth -= 1
        elif depth and token.string == "," and following.type not in (tokenize.NL, tokenize.COMMENT) \
                and rng.random() < 0.6:
            edits.append((token.end, following.start, "\n" + " " * (token.start[1] + 4)))
        elif depth and token.type == tokenize.NL and previous.type != tokenize.COMMENT:
            edits.append((token.start, following.start, " "))
    return _edit(text, edits)


def recomment(text: str, rng: random.Random) -> str:
    """Drop or reword existing comments and add new ones at the ends of some lines."""
    edits = []
    for token in _tokens(text):
        if token.type == tokenize.COMMENT:
            words = " ".join(rng.sample(WORDS, 3))
            edits.append((token.start, token.end, rng.choice(["", f"# {words}"])))
        elif token.type == tokenize.NEWLINE and rng.random() < 0.3:
            edits.append((token.start, token.start, f"  # {' '.join(rng.sample(WORDS, 4))}"))
    return _edit(text, edits)


PERTURBATIONS = {"rename": rename_locals, "rewrap": rewrap, "comments": recomment}


def variant(text: str, rng: random.Random) -> str | None:
    """A near-duplicate of `text` by one to three perturbations; None when unchanged or no longer Python."""
    kinds = rng.sample(sorted(PERTURBATIONS), rng.randint(1, 3))
    changed = text
    try:
        for kind in kinds:
            changed = PERTURBATIONS[kind](changed, rng)
        ast.parse(changed)
    except (SyntaxError, tokenize.TokenError):
        return None
    return changed if changed != text else None


def word_corpus(folder: Path, rows: int, parts: int, seed: int, vocabulary: int = 30) -> Path:
    """JSONL parts of `rows` texts of random words: copies with words changed, exact copies (with layout added),
    empty and one-word texts, and fresh texts; with a small `vocabulary` most bucket neighbours are not similar."""
    rng = random.Random(seed)
    words = [f"w{index}" for index in range(vocabulary)]
    texts: list[str] = []
    for _ in range(rows):
        roll = rng.random()
        if texts and roll < 0.3:
            changed = rng.choice(texts).split()
            for _ in range(rng.randint(0, 4) if changed else 0):
                changed[rng.randrange(len(changed))] = rng.choice(words)
            texts.append(" ".join(changed))
        elif texts and roll < 0.4:
            texts.append(rng.choice(texts) + rng.choice(["", "\n\n\n", "  "]))
        elif roll < 0.45:
            texts.append(rng.choice(["", "  ", words[1]]))
        else:
            texts.append(" ".join(rng.choice(words) for _ in range(rng.randint(1, 40))))
    folder.mkdir(parents=True, exist_ok=True)
    for part in range(parts):
        lines = [json.dumps({"id": f"{part}-{row}", "text": text}) for row, text in enumerate(texts[part::parts])]
        (folder / f"part-{part}.jsonl").write_text("".join(line + "\n" for line in lines))
    return folder
