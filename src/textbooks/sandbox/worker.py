"""A sandbox worker: a small long-lived process that forks one isolated child per program.

The harness (`Sandbox`) starts one worker per parallel slot with a scrubbed environment and talks to it over
stdin/stdout (length-prefixed frames). Forking from this small, single-threaded process instead of starting a
new interpreter per program is what keeps the sandbox fast. The process tree is

    launcher ── worker (PID 1 of its own PID namespace; own mount, network (+ user) namespaces) ── the program

The launcher enters the namespaces (the host file system read-only there) and forks the worker, which mounts
its own /proc and a tmpfs scratch dir. For each program the worker forks a child that waits on a pipe for its
request, then sets its rlimits, drops its privileges and runs it. The worker forks that child as soon as it has
answered for the last program, so that the fork overlaps the harness's work instead of adding to each
program's latency. When the program ends (or times out, or prints too much) the worker, as PID 1, kills every
other process in its namespace (daemons and fork bombs included), reaps them, removes any System V IPC object
they left and empties the scratch dir.

Without namespaces the program is a plain child in its own process group, and that group is what is killed.
"""

from __future__ import annotations

import gc
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


def read_frame(stream) -> bytes | None:
    """One length-prefixed frame, or None at the end of the stream."""
    header = stream.read(4)
    if len(header) < 4:
        return None
    (size,) = struct.unpack("<I", header)
    body = stream.read(size)
    return body if len(body) == size else None


def read_message(stream) -> dict | None:
    frame = read_frame(stream)
    return None if frame is None else json.loads(frame)


def frame(body: bytes) -> bytes:
    return struct.pack("<I", len(body)) + body


def write_message(stream, message: dict) -> None:
    stream.write(frame(json.dumps(message).encode()))
    stream.flush()


def _status_code(status: int) -> int:
    """A wait status as a shell would report it: the exit code, or 128 + the signal number."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.WEXITSTATUS(status)


_REQUEST_FD = 4


def _program(plan: isolate.Plan, fds: tuple[int, ...]) -> None:
    """The forked program process: isolates itself, waits for its request, runs it (never returns)."""
    os.setpgid(0, 0)
    for target, fd in enumerate(fds):  # stdin (/dev/null), stdout, stderr, the result pipe, the request pipe
        os.dup2(fd, target)
    os.closerange(len(fds), 1 << 16)
    os.chdir(plan.scratch)
    os.environ.clear()
    os.environ.update(PROGRAM_ENV, HOME=plan.scratch, TMPDIR=plan.scratch)
    sys.dont_write_bytecode = True
    isolate.die_with_parent()
    chunks = []
    while chunk := os.read(_REQUEST_FD, 1 << 20):
        chunks.append(chunk)
    os.close(_REQUEST_FD)
    if not chunks:
        os._exit(0)  # the worker went away before sending a program
    request = json.loads(b"".join(chunks))
    isolate.set_limits(isolate.Limits(**request["limits"]))
    isolate.drop_privileges(plan)  # only now: nothing runs unprivileged between two programs
    isolate.die_with_parent()  # again: a change of uid clears it
    inputs = request.get("inputs")
    driver.run(request["code"], request["secret"], request.get("entry_point"),
               None if inputs is None else [values.decode(arguments) for arguments in inputs],
               request.get("report", "value") == "is-not-none", request.get("digest_large", True),
               request.get("time_limits"), request.get("runs"))


class _Next:
    """The worker's side of a forked program process that waits for its request: its pid and the pipes to it."""

    def __init__(self, plan: isolate.Plan) -> None:
        devnull = os.open(os.devnull, os.O_RDONLY)
        self.out_r, out_w = os.pipe()
        self.err_r, err_w = os.pipe()
        self.result_r, result_w = os.pipe()
        request_r, self.request_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            try:
                _program(plan, (devnull, out_w, err_w, result_w, request_r))
            except BaseException as error:  # noqa: BLE001 - the set-up failed: say so on stderr, exit 70
                os.write(2, f"sandbox set-up failed: {error}\n".encode())
            os._exit(70)
        for fd in (devnull, out_w, err_w, result_w, request_r):
            os.close(fd)
        self.pidfd = os.pidfd_open(self.pid)

    def send(self, body: bytes) -> None:
        """The request, then end of file; a program that died in set-up is reported by its exit status."""
        pending = memoryview(body)
        try:
            while pending:
                pending = pending[os.write(self.request_w, pending):]
        except BrokenPipeError:
            pass
        os.close(self.request_w)

    def close(self) -> None:
        for fd in (self.out_r, self.err_r, self.result_r, self.pidfd):
            os.close(fd)
        try:
            os.close(self.request_w)
        except OSError:
            pass


class _Output:
    """stdout/stderr of one program: the last few KB kept, the total counted."""

    def __init__(self) -> None:
        self.tail = b""
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.tail = (self.tail + chunk)[-_TAIL:]


def run_one(plan: isolate.Plan, program: _Next, header: dict, body: bytes) -> dict:
    """Run one program to its end, its deadline or its output limit; the record the harness judges."""
    limits = isolate.Limits(**header["limits"])
    started = time.monotonic()
    program.send(body)
    pidfd, out_r, err_r, res_r = program.pidfd, program.out_r, program.err_r, program.result_r
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
    selector.close()
    seconds = time.monotonic() - started
    status = _end(plan, program.pid)
    for fd in (out_r, err_r, res_r):  # what is left in the pipes: every writer is dead now
        os.set_blocking(fd, False)
        try:
            while chunk := os.read(fd, 65536):
                if fd == res_r:
                    result += chunk[: max(0, _RESULT_LIMIT - len(result))]
                else:
                    outputs[fd].add(chunk)
        except BlockingIOError:
            pass
    program.close()
    return {"exit_code": _status_code(status), "reason": reason, "seconds": seconds,
            "stdout": outputs[out_r].tail.decode(errors="replace"),
            "stderr": outputs[err_r].tail.decode(errors="replace"),
            "result": result.decode(errors="replace")}


def _end(plan: isolate.Plan, pid: int) -> int:
    """Kill whatever the program left running (all of it, as PID 1 of the namespace; its process group without
    namespaces), reap, and clear the scratch dir; the program's wait status."""
    if not plan.namespaces:
        try:
            os.killpg(pid, signal.SIGKILL)  # the program is unreaped, so its pid (the group's id) is not reused
        except ProcessLookupError:
            pass
        _, status = os.waitpid(pid, 0)
        _clear(plan.scratch)
        return status
    isolate.kill_the_namespace()
    status = 0
    while True:  # every process of the namespace is this worker's child or was reparented to it
        try:
            child, child_status = os.waitpid(-1, 0)
        except ChildProcessError:
            break
        if child == pid:
            status = child_status
    isolate.clear_ipc()
    isolate.fresh_scratch(plan)
    return status


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


def serve(plan: isolate.Plan, stdin, stdout) -> None:
    """Answer requests (a header frame with the limits, a body frame for the program) until the harness closes."""
    gc.freeze()  # the programs' collections never walk (and so never copy) the worker's own objects
    program = _Next(plan)
    while (header := read_message(stdin)) is not None:
        body = read_frame(stdin)
        if body is None:
            break
        write_message(stdout, run_one(plan, program, header, body))
        program = _Next(plan)  # the next program's set-up, while the harness judges this one
    _end(plan, program.pid)



def main() -> None:
    """Worker entry point: `python -c "...; from textbooks.sandbox.worker import main; main()" SCRATCH MODE MB`."""
    scratch, mode, scratch_mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    plan = isolate.probe(scratch) if mode != "none" else isolate.Plan(scratch=scratch, why_not="turned off")
    plan.scratch_mb = scratch_mb
    if mode == "namespaces" and not plan.namespaces:
        write_message(stdout, {"ready": False, "why_not": plan.why_not})
        return
    if plan.namespaces:
        isolate.enter_worker_namespaces(plan)
        worker = os.fork()
        if worker != 0:  # the launcher: outlive the worker, never touch the pipes
            _, status = os.waitpid(worker, 0)
            os._exit(_status_code(status))
        isolate.die_with_parent()
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # PID 1 then has no handler a program could trigger
        isolate.set_up_worker(plan)
    write_message(stdout, {"ready": True, "namespaces": plan.namespaces, "why_not": plan.why_not,
                           "root": plan.root})
    serve(plan, stdin, stdout)


if __name__ == "__main__":
    main()
