"""A sandbox worker: a small long-lived process that forks one isolated child per program.

The harness (`Sandbox`) starts one worker per parallel slot with a scrubbed environment and talks to it over
stdin/stdout (length-prefixed JSON). Forking from this small, single-threaded process instead of starting a
new interpreter per program is what keeps the sandbox fast; the process tree per program is

    worker (mount, network, user ns) ── outer child (new mount + PID ns, tmpfs scratch) ── PID 1 (reaps)
        ── the program (no privileges)

The worker enters its namespaces once and makes the host file system read-only there; the outer child gets
fresh mount and PID namespaces per program. The whole tree dies with the outer child: PID 1 has a parent-death SIGKILL, and when PID 1 dies the
kernel kills everything in its PID namespace, daemons and fork bombs included.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import struct
import sys
import time

from textbooks.sandbox import driver, isolate, values

_TAIL = 4096
_RESULT_LIMIT = 256 << 20  # bytes of reported outputs kept per program
PROGRAM_ENV = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8",
               "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def read_message(stream) -> dict | None:
    header = stream.read(4)
    if len(header) < 4:
        return None
    (size,) = struct.unpack("<I", header)
    return json.loads(stream.read(size))


def write_message(stream, message: dict) -> None:
    body = json.dumps(message).encode()
    stream.write(struct.pack("<I", len(body)) + body)
    stream.flush()


def _status_code(status: int) -> int:
    """A wait status as a shell would report it: the exit code, or 128 + the signal number."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


def _program(plan: isolate.Plan, limits: isolate.Limits, request: dict) -> None:
    """In the program's own process: last set-up, then the driver (never returns)."""
    os.chdir(plan.scratch)
    os.environ.clear()
    os.environ.update(PROGRAM_ENV, HOME=plan.scratch, TMPDIR=plan.scratch)
    sys.dont_write_bytecode = True
    isolate.set_limits(limits)
    isolate.drop_privileges(plan)
    isolate.die_with_parent()
    inputs = request.get("inputs")
    driver.run(request["code"], request["secret"], request.get("entry_point"),
               None if inputs is None else [values.decode(arguments) for arguments in inputs],
               request.get("report", "value") == "is-not-none", request.get("digest_large", True))


def _reap_until(child: int) -> int:
    """Wait for `child`, reaping any orphan that PID 1 inherits meanwhile; its status code."""
    while True:
        pid, status = os.wait()
        if pid == child:
            return _status_code(status)


def _outer_child(plan: isolate.Plan, limits: isolate.Limits, request: dict, fds: tuple[int, int, int, int]) -> None:
    """The forked child: wire stdio and the result pipe, isolate, run the program; exits with its status."""
    os.setpgid(0, 0)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    os.closerange(4, 1 << 16)
    if not plan.namespaces:
        _program(plan, limits, request)
    isolate.enter_program_namespaces(plan, limits)
    init = os.fork()
    if init == 0:
        isolate.die_with_parent()
        isolate.mount_proc()
        program = os.fork()
        if program == 0:
            _program(plan, limits, request)
        os._exit(_reap_until(program))
    os._exit(_reap_until(init))


class _Output:
    """stdout/stderr of one program: the last few KB kept, the total counted."""

    def __init__(self) -> None:
        self.tail = b""
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.tail = (self.tail + chunk)[-_TAIL:]


def run_one(plan: isolate.Plan, request: dict) -> dict:
    """Run one program to its end, its deadline or its output limit; the record the harness judges."""
    limits = isolate.Limits(**request["limits"])
    devnull = os.open(os.devnull, os.O_RDONLY)
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    res_r, res_w = os.pipe()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            _outer_child(plan, limits, request, (devnull, out_w, err_w, res_w))
        except BaseException as error:  # noqa: BLE001 - the set-up failed: say so on stderr, exit 70
            os.write(2, f"sandbox set-up failed: {error}\n".encode())
        os._exit(70)
    for fd in (devnull, out_w, err_w, res_w):
        os.close(fd)
    pidfd = os.pidfd_open(pid)
    outputs = {out_r: _Output(), err_r: _Output()}
    result = bytearray()
    selector = selectors.DefaultSelector()
    for fd in (out_r, err_r, res_r, pidfd):
        selector.register(fd, selectors.EVENT_READ)
    deadline = started + limits.timeout_s
    reason, exited = "", False
    while not exited:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            reason = "timeout"
            break
        for key, _ in selector.select(remaining):
            if key.fd == pidfd:
                exited = True
                continue
            chunk = os.read(key.fd, 65536)
            if not chunk:
                selector.unregister(key.fd)
            elif key.fd == res_r:
                result += chunk[: max(0, _RESULT_LIMIT - len(result))]
            else:
                outputs[key.fd].add(chunk)
        if sum(output.total for output in outputs.values()) > limits.output_kb * 1024:
            reason = f"printed more than {limits.output_kb} KB"
            break
    if reason:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _, status = os.waitpid(pid, 0)
    seconds = time.monotonic() - started
    for fd in (out_r, err_r, res_r):  # what is left in the pipes; never wait on a writer that escaped
        os.set_blocking(fd, False)
        try:
            while chunk := os.read(fd, 65536):
                if fd == res_r:
                    result += chunk[: max(0, _RESULT_LIMIT - len(result))]
                else:
                    outputs[fd].add(chunk)
        except BlockingIOError:
            pass
        os.close(fd)
    selector.close()
    os.close(pidfd)
    if not plan.namespaces:
        _clear(plan.scratch)
    return {"exit_code": _status_code(status), "reason": reason, "seconds": seconds,
            "stdout": outputs[out_r].tail.decode(errors="replace"),
            "stderr": outputs[err_r].tail.decode(errors="replace"),
            "result": result.decode(errors="replace")}


def _clear(folder: str) -> None:
    """Empty the scratch dir between programs (only without namespaces, where it is a real folder)."""
    import shutil

    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            try:
                os.unlink(entry.path)
            except OSError:
                pass


def main() -> None:
    """Worker entry point: `python -c "...; from textbooks.sandbox.worker import main; main()" SCRATCH MODE`."""
    scratch, mode = sys.argv[1], sys.argv[2]
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    plan = isolate.probe(scratch) if mode != "none" else isolate.Plan(scratch=scratch, why_not="turned off")
    if mode == "namespaces" and not plan.namespaces:
        write_message(stdout, {"ready": False, "why_not": plan.why_not})
        return
    if plan.namespaces:
        isolate.enter_worker_namespaces(plan)
    write_message(stdout, {"ready": True, "namespaces": plan.namespaces, "why_not": plan.why_not,
                           "root": plan.root})
    while (request := read_message(stdin)) is not None:
        write_message(stdout, run_one(plan, request))


if __name__ == "__main__":
    main()
