"""The last trusted code before an untrusted program: runs it and reports, with the run's secret, how far it got.

A program passes only if the driver reaches the line after it, and only the driver knows the secret that
makes that report count: the secret arrives with the request, is never in the program's text, argv or
environment, and the functions the driver reports with are bound before the program can patch them. So an
early `exit(0)`, `os._exit(0)`, a patched `print`, or a test file that stops halfway is never a pass.

In call mode (HumanEval+, MBPP+) the driver calls the program's `entry_point` on each input and sends back the
output as plain data (`values.py`) with the seconds the call took: the call alone, not copying its input nor
encoding its output. The harness compares, so the program never sees the expected outputs. With time limits
(EvalPlus's: one per input, and one per run of consecutive inputs, for the base inputs and for the plus
inputs) SIGALRM interrupts a call at the least of its own limit and what its run has left; a call that ends
there or later, the alarm caught by the program or not, is reported late, and no later input is called.
"""

from __future__ import annotations

import builtins
import copy
import os
import signal
import sys
import time
import traceback
from typing import Any

from textbooks.sandbox import values

RESULT_FD = 3


class _TimeLimit(BaseException):
    """Raised in a call by the driver's SIGALRM handler (a BaseException, so `except Exception` lets it through)."""


def run(code: str, secret: str, entry_point: str | None, inputs: list | None, presence: bool = False,
        digest_large: bool = True, time_limits: list[float] | None = None,
        runs: list[tuple[int, float]] | None = None) -> None:
    """Run `code` as `__main__` and report through RESULT_FD; never returns. `presence`: report whether each
    output is not None (bools as they are) instead of the output. `time_limits`: the seconds each call may take;
    `runs`: (count, seconds) for consecutive groups of the inputs, whose calls together may take `seconds`."""
    write, exit_now, deepcopy, dumps = os.write, os._exit, copy.deepcopy, values.dumps
    clock, set_timer, real_timer = time.perf_counter, signal.setitimer, signal.ITIMER_REAL
    on_signal, alarm = signal.signal, signal.SIGALRM
    stdout, stderr = sys.stdout, sys.stderr
    armed = [False]

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

    def on_alarm(signum: int, frame: Any) -> None:
        if armed[0]:
            raise _TimeLimit

    def call(function: Any, arguments: list, limit: float | None) -> tuple[str | None, Any, float]:
        """(None, output, seconds), (the name of what it raised, None, seconds) or ("late", None, seconds)."""
        started = clock()
        try:
            try:
                if limit is not None:
                    armed[0] = True
                    set_timer(real_timer, max(limit, 1e-6))
                output = function(*arguments)
            finally:  # disarmed first: an alarm due now is ignored, and one raised in here is caught below
                armed[0] = False
                seconds = clock() - started
                if limit is not None:
                    set_timer(real_timer, 0)
        except _TimeLimit:
            return "late", None, clock() - started
        except BaseException as error:  # noqa: BLE001 - any failure of one call is that input's verdict
            return type(error).__name__, None, seconds
        return ("late" if limit is not None and seconds >= limit else None), output, seconds

    def call_each(function: Any, given: list) -> None:
        position = 0
        for size, bound in runs or [(len(given), None)]:
            left = bound
            for index in range(position, position + size):
                own = time_limits[index] if time_limits is not None else None
                limit = left if own is None else own if left is None else min(own, left)
                failure, output, seconds = call(function, deepcopy(given[index]), limit)
                if failure == "late":
                    report(f"late {seconds!r}")
                    return
                if left is not None:
                    left -= seconds
                if failure is not None:
                    report(f"err {seconds!r} {failure}")
                    continue
                try:
                    if presence and type(output) is not bool:
                        output = output is not None
                    report(f"out {seconds!r} {dumps(output, digest_large)}")
                except values.Unencodable as error:
                    report(f"err {seconds!r} returned {error}")
                except BaseException as error:  # noqa: BLE001 - e.g. too deep to encode
                    report(f"err {seconds!r} {type(error).__name__}")
            position += size

    namespace: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins}
    try:
        # dont_inherit: this module's `from __future__ import annotations` must not make the program's lazy
        exec(compile(code, "<program>", "exec", dont_inherit=True), namespace)
        if entry_point is not None:
            if time_limits is not None or runs is not None:
                on_signal(alarm, on_alarm)
            call_each(namespace[entry_point], inputs or [])
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
