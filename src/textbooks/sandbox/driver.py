"""The last trusted code before an untrusted program: runs it and reports, with the run's secret, how far it got.

A program passes only if the driver reaches the line after it, and only the driver knows the secret that
makes that report count: the secret arrives with the request, is never in the program's text, argv or
environment, and the functions the driver reports with are bound before the program can patch them. So an
early `exit(0)`, `os._exit(0)`, a patched `print`, or a test file that stops halfway is never a pass.

In call mode (HumanEval+, MBPP+) the driver calls the program's `entry_point` on each input and sends back the
output as plain data (`values.py`); the harness compares, so the program never sees the expected outputs.
"""

from __future__ import annotations

import builtins
import copy
import os
import sys
import traceback
from typing import Any

from textbooks.sandbox import values

RESULT_FD = 3


def run(code: str, secret: str, entry_point: str | None, inputs: list | None, presence: bool = False,
        digest_large: bool = True) -> None:
    """Run `code` as `__main__` and report through RESULT_FD; never returns. `presence`: report whether each
    output is not None (bools as they are) instead of the output."""
    write, exit_now, deepcopy, dumps = os.write, os._exit, copy.deepcopy, values.dumps
    stdout, stderr = sys.stdout, sys.stderr

    def report(line: str) -> None:
        pending = memoryview(f"{secret} {line}\n".encode())
        while pending:  # a pipe may take a long line in parts
            pending = pending[write(RESULT_FD, pending):]

    def flush() -> None:
        for stream in (stdout, stderr):
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001 - the program may have broken its streams; the verdict stands
                pass

    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    try:
        exec(compile(code, "<program>", "exec"), namespace)
        if entry_point is not None:
            function = namespace[entry_point]
            for arguments in inputs or []:
                try:
                    output = function(*deepcopy(arguments))
                    if presence and type(output) is not bool:
                        output = output is not None
                    report("out " + dumps(output, digest_large))
                except values.Unencodable as error:
                    report(f"err returned {error}")
                except BaseException as error:  # noqa: BLE001 - any failure of one call is that input's verdict
                    report(f"err {type(error).__name__}")
    except BaseException:  # noqa: BLE001 - SystemExit included: exiting early is not passing
        try:
            traceback.print_exc()
        except BaseException:  # noqa: BLE001
            pass
        flush()
        exit_now(1)
    flush()
    report("done")
    exit_now(0)
