"""The code of a textbook section: its Python blocks, the outputs the text states for them, and one program that
runs them in order in the sandbox and fails on the first block that does not parse, raises, or prints other
than stated.

    blocks = code_blocks(markdown)           # ```python fences, in order
    problem = static_problem(blocks, allowed)  # "syntax_error", "forbidden_import" or None, before running anything
    program = check_program(blocks)          # run with the sandbox; it passes only if every block did as stated

A stated output is written the way textbooks write it: `# Output: 3` comment lines in the block (each one line of
what the block prints, in order), or a doctest (`>>> expr` followed by the value), or a fenced block right after
the code whose info string is `output`/`text`/`console` or that follows a line ending in "Output:". Outputs are
compared line by line with trailing spaces ignored; a block with no stated output must only run. The blocks share
one namespace, as a reader running them one after another would.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass

from textbooks.synth.verify import forbidden_import

_FENCE = re.compile(r"^```[ \t]*([\w+-]*)[^\n]*\n(.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)
_OUTPUT_COMMENT = re.compile(r"#\s*[Oo]utput\s*:\s?(.*)$")  # on its own line or after the print it states
_OUTPUT_INFO = {"output", "text", "console", "stdout"}
_PYTHON_INFO = {"python", "py", "python3", "pycon"}


@dataclass(frozen=True)
class Block:
    code: str
    stated: str | None  # what the text says the block prints (None: not stated)
    doctest: bool  # the block is a `>>>` session, checked by doctest


def code_blocks(markdown: str) -> list[Block]:
    """The Python blocks of `markdown` in order, each with the output the text states for it."""
    fences = list(_FENCE.finditer(markdown))
    blocks: list[Block] = []
    for index, fence in enumerate(fences):
        info, body = fence.group(1).lower(), fence.group(2)
        is_session = body.lstrip().startswith(">>>")
        if info not in _PYTHON_INFO and not (info == "" and is_session):
            continue
        if is_session:
            blocks.append(Block(body, None, True))
            continue
        stated = _comment_output(body)
        if stated is None and index + 1 < len(fences):
            stated = _following_output(markdown, fence, fences[index + 1])
        blocks.append(Block(body, stated, False))
    return blocks


def _comment_output(code: str) -> str | None:
    lines = [match.group(1).rstrip() for line in code.splitlines() if (match := _OUTPUT_COMMENT.search(line))]
    return "\n".join(lines) if lines else None


def _following_output(markdown: str, fence: re.Match, following: re.Match) -> str | None:
    """The next fence's text, when it is an output block placed right after this one: its info string says
    so (output, text, console, stdout), or a short line ending in "Output:" introduces it."""
    between = markdown[fence.end():following.start()].strip()
    info, text = following.group(1).lower(), following.group(2)
    if len(between) > 80 or info in _PYTHON_INFO or text.lstrip().startswith(">>>"):
        return None
    introduced = between.lower().rstrip("*_ ").endswith("output:")
    return text.rstrip("\n") if info in _OUTPUT_INFO or introduced else None


def static_problem(blocks: list[Block], allowed_imports: frozenset[str] | None) -> tuple[str, str] | None:
    """(reason, detail) for code that must not run: a block that does not parse or imports a module outside
    `allowed_imports` (None: any); None when every block may run."""
    import doctest

    for number, block in enumerate(blocks, 1):
        source = block.code
        if block.doctest:
            source = "\n".join(example.source for example in doctest.DocTestParser().get_examples(block.code))
        try:
            tree = ast.parse(source)
        except SyntaxError as error:
            return "syntax_error", f"block {number}: {error.msg} (line {error.lineno})"
        if allowed_imports is not None:
            module = forbidden_import([tree], allowed_imports)
            if module is not None:
                return "forbidden_import", f"block {number}: imports {module}"
    return None


_RUNNER = '''
import contextlib as _contextlib, doctest as _doctest, io as _io, json as _json
_namespace = {"__name__": "__main__"}
for _number, (_code, _stated, _session) in enumerate(_json.loads(%s), 1):
    if _session:
        _test = _doctest.DocTestParser().get_doctest(_code, _namespace, "block %%d" %% _number, None, 0)
        _runner = _doctest.DocTestRunner(optionflags=_doctest.ELLIPSIS | _doctest.NORMALIZE_WHITESPACE)
        _report = _io.StringIO()
        _runner.run(_test, out=_report.write, clear_globs=False)
        if _runner.failures:
            raise AssertionError("wrong_output: block %%d: %%s" %% (_number, _report.getvalue()[-600:]))
        continue
    _printed = _io.StringIO()
    with _contextlib.redirect_stdout(_printed):
        exec(compile(_code, "<block %%d>" %% _number, "exec"), _namespace)
    if _stated is not None:
        _got = [line.rstrip() for line in _printed.getvalue().rstrip("\\n").splitlines()]
        _want = [line.rstrip() for line in _stated.rstrip("\\n").splitlines()]
        if _got != _want:
            raise AssertionError("wrong_output: block %%d states %%r but prints %%r" %% (_number, _want[:5], _got[:5]))
'''


def check_program(blocks: list[Block]) -> str:
    """A program that runs `blocks` in order in one namespace and raises on the first that fails or prints
    other than its stated output (the exception's text starts with "wrong_output" for the latter)."""
    payload = json.dumps([[block.code, block.stated, block.doctest] for block in blocks])
    return _RUNNER % repr(payload)
