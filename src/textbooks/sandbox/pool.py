"""The harness side of the sandbox: a pool of worker processes, the programs sent to them and their verdicts.

Import it as `textbooks.sandbox` (see that package's docstring); the workers never import this module, which
keeps them small and their forks cheap.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import secrets
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal

from tqdm import tqdm

from textbooks.errors import UserError
from textbooks.sandbox import values, worker
from textbooks.sandbox.isolate import Limits

log = logging.getLogger(__name__)
Status = Literal["passed", "failed", "timeout"]
Isolation = Literal["auto", "namespaces", "none"]
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])
_BOOT = ("import sys; sys.path.insert(0, {path!r}); from textbooks.sandbox.worker import main; main()")
_warned: set[str] = set()
_START_TIMEOUT_S = 120.0  # a worker's start: an interpreter, its imports and the namespace probe (well under 1 s)


@dataclass
class Program:
    """Code to run. With `entry_point` and `inputs`, the driver also calls `entry_point(*args)` per input."""

    code: str
    entry_point: str | None = None
    inputs: list[list[Any]] | None = None
    timeout_s: float | None = None  # overrides the sandbox's limit for this program
    # "is-not-none": report `output is not None` (bools as they are) instead of the value, for functions that
    # return objects that are not plain data by design (MBPP+'s `re.Match` tasks)
    report: Literal["value", "is-not-none"] = "value"
    digest_large: bool = True  # large outputs travel as `values.Digest`s: only for exact comparisons
    # seconds each call may take, and (count, seconds) for runs of consecutive inputs whose calls together may
    # take that long (EvalPlus's limits); a call past either is reported as a "timeout" output, the last one
    time_limits: list[float] | None = None
    runs: list[tuple[int, float]] | None = None


@dataclass
class Outcome:
    """What happened to one program."""

    status: Status
    reason: str  # why it failed or timed out ("" when passed)
    seconds: float
    exit_code: int | None
    stdout: str = ""  # the last 4 KB
    stderr: str = ""
    # call mode: ("ok", value), ("error", name) or ("timeout", ""), and the seconds each of those calls took
    outputs: list[tuple[str, Any]] = field(default_factory=list)
    call_seconds: list[float] = field(default_factory=list)


class Sandbox:
    """A pool of sandbox workers; thread-safe `run` and ordered, parallel `run_many`."""

    def __init__(self, workers: int | None = None, limits: Limits | None = None, isolation: Isolation = "auto",
                 uid: int = 65534) -> None:
        if not sys.platform.startswith("linux"):
            raise UserError(f"the sandbox needs Linux (this is {sys.platform}); run evaluation on a Linux machine "
                            "or in a Linux container")
        self.limits = limits or Limits()
        self.isolation = isolation
        self.workers = max(1, workers or min(8, os.cpu_count() or 1))
        self._root = tempfile.mkdtemp(prefix="textbooks-sandbox-")
        os.chmod(self._root, 0o755)
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self.namespaces = False
        for index in range(self.workers):  # all start at once, then each is waited for
            scratch = os.path.join(self._root, f"w{index}")
            os.mkdir(scratch, 0o755)
            self._all.append(_Worker(scratch, isolation, self.limits.scratch_mb))
        try:
            for started in self._all:
                started.greet()
                self._idle.put(started)
        except BaseException:
            self.close()
            raise
        self.namespaces = self._all[0].namespaces
        why_not = self._all[0].why_not
        if not self.namespaces and isolation == "auto" and why_not not in _warned:
            _warned.add(why_not)
            log.warning("sandbox: no namespace isolation here (%s); programs still run under rlimits, in their own "
                        "process group and scratch dir, with a scrubbed environment, but can reach the network and "
                        "write where this user can", why_not)

    def run(self, program: Program | str) -> Outcome:
        if isinstance(program, str):
            program = Program(program)
        slot = self._idle.get()
        try:
            return slot.run(program, self.limits)
        finally:
            self._idle.put(slot)

    def run_many(self, programs: Iterable[Program | str], progress: bool | str = False) -> list[Outcome]:
        """Every program's outcome, in order; `progress` shows a bar (a string names it)."""
        programs = list(programs)
        outcomes: list[Outcome | None] = [None] * len(programs)
        bar = tqdm(total=len(programs), desc=progress if isinstance(progress, str) else "sandbox",
                   disable=None if progress else True, unit="program")
        lock = threading.Lock()
        next_index = iter(range(len(programs)))

        def work() -> None:
            while True:
                with lock:
                    index = next(next_index, None)
                if index is None:
                    return
                outcomes[index] = self.run(programs[index])
                bar.update(1)

        threads = [threading.Thread(target=work, daemon=True) for _ in range(min(self.workers, len(programs)))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        bar.close()
        missing = [index for index, outcome in enumerate(outcomes) if outcome is None]
        if missing:
            raise RuntimeError(f"sandbox: programs {missing[:5]} got no outcome (see the error above)")
        return outcomes  # type: ignore[return-value]

    def close(self) -> None:
        for slot in self._all:
            slot.stop()
        shutil.rmtree(self._root, ignore_errors=True)

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _Worker:
    """One worker process and the pipe to it; restarted when it dies or hangs."""

    def __init__(self, scratch: str, isolation: Isolation, scratch_mb: int) -> None:
        """Starts the worker's process; `greet` waits until it is ready."""
        self.scratch, self.isolation, self.scratch_mb = scratch, isolation, scratch_mb
        self.process: subprocess.Popen | None = None
        self.namespaces, self.why_not = False, ""
        self._launch()

    def _launch(self) -> None:
        env = dict(worker.PROGRAM_ENV, HOME=self.scratch, TMPDIR=self.scratch)
        self.process = subprocess.Popen(
            [sys.executable, "-I", "-c", _BOOT.format(path=_PACKAGE_PARENT), self.scratch, self.isolation,
             str(self.scratch_mb)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, start_new_session=True, cwd=self.scratch)

    def greet(self) -> None:
        """Wait for the worker's first message: ready, with or without namespaces, or the reason it cannot be."""
        try:
            hello = self._read(_START_TIMEOUT_S)
        except TimeoutError:
            hello = None
        if hello is None or not hello.get("ready"):
            self.stop()
            why = (hello or {}).get("why_not", "the worker exited at start")
            raise UserError(f"sandbox: namespace isolation was asked for but is not available here: {why}")
        self.namespaces, self.why_not = hello["namespaces"], hello["why_not"]

    def run(self, program: Program, limits: Limits) -> Outcome:
        secret = secrets.token_hex(16)
        timeout = program.timeout_s if program.timeout_s is not None else limits.timeout_s
        run_limits = dict(asdict(limits), timeout_s=timeout)
        body = {"code": program.code, "secret": secret, "entry_point": program.entry_point, "report": program.report,
                "digest_large": program.digest_large, "limits": run_limits, "time_limits": program.time_limits,
                "runs": program.runs,
                "inputs": None if program.inputs is None else [values.encode(args) for args in program.inputs]}
        try:  # the header is for the worker, the body for the program's process
            self.process.stdin.write(worker.frame(json.dumps({"limits": run_limits}).encode())
                                     + worker.frame(json.dumps(body).encode()))
            self.process.stdin.flush()
            record = self._read(timeout + 30)
        except (BrokenPipeError, OSError, TimeoutError) as error:
            self.stop(wait_s=0)
            self._launch()
            self.greet()
            return Outcome("failed", f"the sandbox worker died ({error}); restarted", 0.0, None)
        return _judge(record, secret)

    def _read(self, timeout: float) -> dict:
        """The worker's next message (a length-prefixed frame), read from its pipe in this thread; TimeoutError
        when it has not come within `timeout` seconds or the worker closed the pipe."""
        deadline = time.monotonic() + timeout
        (size,) = struct.unpack("<I", self._read_exactly(4, deadline))
        return json.loads(self._read_exactly(size, deadline))

    def _read_exactly(self, size: int, deadline: float) -> bytearray:
        fd, data = self.process.stdout.fileno(), bytearray()
        while len(data) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError("no answer")
            chunk = os.read(fd, min(size - len(data), 1 << 20))
            if not chunk:
                raise TimeoutError("no answer: the worker closed its pipe")
            data += chunk
        return data

    def stop(self, wait_s: float = 5.0) -> None:
        """End the worker: at the end of its input it kills what it started and exits (so that its CPU time reaches
        this process's rusage); killed, with its whole session, if it has not within `wait_s` seconds."""
        if self.process is None:
            return
        try:
            self.process.stdin.close()
            self.process.wait(timeout=wait_s)
        except (OSError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait()
        try:
            self.process.stdout.close()
        except OSError:
            pass
        self.process = None


def _judge(record: dict, secret: str) -> Outcome:
    """The verdict: only lines that carry the secret count, and "done" only when the program exited 0."""
    done, outputs, call_seconds = False, [], []
    for line in record["result"].splitlines():
        key, _, body = line.partition(" ")
        if key != secret:
            continue
        kind, _, rest = body.partition(" ")
        if kind == "done":
            done = True
            continue
        seconds, _, payload = rest.partition(" ")
        try:
            seconds = float(seconds)
        except ValueError:  # cut off at the report size limit
            break
        if kind == "out":
            try:
                outputs.append(("ok", values.loads(payload)))
            except ValueError:  # cut off at the report size limit
                outputs.append(("error", "an output too large to report"))
        else:
            outputs.append(("error", payload) if kind == "err" else ("timeout", ""))
        call_seconds.append(seconds)
    exit_code = record["exit_code"]
    if record["reason"] == "timeout":
        status, reason = "timeout", f"killed after {record['seconds']:.1f} s"
    elif record["reason"]:
        status, reason = "failed", record["reason"]
    elif done and exit_code == 0:
        status, reason = "passed", ""
    else:
        status, reason = "failed", _failure(exit_code, record["stderr"])
    return Outcome(status, reason, record["seconds"], exit_code, record["stdout"], record["stderr"], outputs,
                   call_seconds)


def _failure(exit_code: int, stderr: str) -> str:
    last = next((line for line in reversed(stderr.strip().splitlines()) if line.strip()), "")
    if exit_code > 128:
        name = signal.Signals(exit_code - 128).name if exit_code - 128 in signal.valid_signals() else exit_code - 128
        return f"killed by {name}" + (f": {last}" if last else "")
    if exit_code == 0:
        return "exited before the end of the program"
    return last or f"exit code {exit_code}"


__all__ = ["Limits", "Outcome", "Program", "Sandbox"]
