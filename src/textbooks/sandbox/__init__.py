"""Running untrusted Python: model completions, generated exercises, benchmark tests.

    with Sandbox(workers=4, limits=Limits(timeout_s=5)) as sandbox:
        outcomes = sandbox.run_many([Program(prompt + completion + test + "check(f)")])
        outcomes[0].status            # "passed" | "failed" | "timeout"

Each program runs in its own process under rlimits (address space, CPU seconds, processes, file size, open
files, no message queues), with a wall-clock kill, a fresh scratch directory as its working directory, a
scrubbed environment, and, where the OS allows, in the mount, network, IPC and PID namespaces of its worker,
which runs one program at a time: the host's file system is read-only, there is no network (not even loopback
to the host), the program cannot see or signal any process outside its sandbox, and when it ends everything it
started is killed (the worker is PID 1 of the namespace), its IPC objects are removed and its scratch dir and
/dev/shm (the worker's own tmpfs) are emptied. As root it also runs as an unprivileged uid. Where namespaces
are not available the sandbox says why once (a warning) and keeps the other protections, killing the
program's process group.

A pass cannot be faked: it needs the driver (`driver.py`) to report the run's secret after the program's last
statement. `Program(code, entry_point=..., inputs=[...])` instead calls the function on each input and returns
the outputs as plain data for the harness to compare (HumanEval+, MBPP+).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

# The pool (`pool.py`: threads, subprocess, tqdm, logging) is imported on first use, not with the package: the
# sandbox workers import `textbooks.sandbox.worker`, and every module they hold makes each fork slower.
_POOL_NAMES = {"Outcome", "Program", "Sandbox"}

if TYPE_CHECKING:
    from textbooks.sandbox.pool import Outcome, Program, Sandbox


def __getattr__(name: str) -> Any:
    if name in _POOL_NAMES:
        from textbooks.sandbox import pool

        return getattr(pool, name)
    if name == "Limits":
        from textbooks.sandbox.isolate import Limits

        return Limits
    raise AttributeError(f"module 'textbooks.sandbox' has no attribute {name!r}")


__all__ = ["Limits", "Outcome", "Program", "Sandbox", "values"]
