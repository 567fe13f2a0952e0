"""Linux isolation for sandboxed programs: namespaces, a read-only view of the file system, no privileges.

Called in the sandbox worker and the programs it forks (see `worker.py`), never in the harness:

    enter_worker_namespaces(plan)   # in the launcher, once: new mount, network, IPC and PID namespaces (+ a
                                    # user namespace when not root), every mount read-only; it forks the worker next
    set_up_worker(plan)             # in the worker, PID 1 of that PID namespace: its own /proc, tmpfs scratch
                                    # dir and /dev/shm
    drop_privileges(plan)           # in each program's process: an unprivileged uid (root) or no capabilities
                                    # (user namespace), no_new_privs
    set_limits(limits)              # then its rlimits
    kill_the_namespace()            # in the worker after each program: everything the program started is killed,
    clear_ipc()                     # its System V IPC objects removed
    fresh_scratch(plan)             # and the scratch dir and /dev/shm are empty again

As root the program runs as an unprivileged uid (65534 by default) so that RLIMIT_NPROC applies (the kernel
exempts uid 0 from it) and no file of the host is writable; directories on the interpreter's path that such a
uid could not traverse (a venv under /root, say) are covered by a tmpfs that re-exposes only the needed
entries. Without root, an unprivileged user namespace gives the same mount, network and PID isolation. Where
the kernel refuses (no user namespaces, a seccomp profile that forbids unshare), `probe()` says why and the
sandbox falls back to rlimits, a process group, a scratch dir and a scrubbed environment, with a warning.
"""

from __future__ import annotations

import ctypes
import os
import resource
import signal
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
MS_NOATIME, MS_NODIRATIME, MS_RELATIME, MS_STRICTATIME = 1024, 2048, 1 << 21, 1 << 24
_MOUNT_OPTION_FLAGS = {"nosuid": MS_NOSUID, "nodev": MS_NODEV, "noexec": MS_NOEXEC, "noatime": MS_NOATIME,
                       "nodiratime": MS_NODIRATIME, "relatime": MS_RELATIME}
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP, PR_SET_DUMPABLE = 1, 38, 24, 4
_CAP_VERSION_3 = 0x20080522

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


@dataclass
class Limits:
    """What one program may use. Memory is address space (RLIMIT_AS); CPU seconds default to the wall clock."""

    timeout_s: float = 10.0
    memory_mb: int = 4096  # EvalPlus's default; some MBPP+ reference runs need over 2 GB
    cpu_s: int | None = None
    processes: int = 32
    file_size_mb: int = 16
    open_files: int = 256
    output_kb: int = 1024  # stdout + stderr; more kills the program
    scratch_mb: int = 64  # size of the tmpfs scratch dir (namespaced mode; one size for the whole sandbox)


@dataclass
class Plan:
    """How a worker isolates its programs; made once per worker by `probe`."""

    scratch: str  # the program's working directory (an empty dir on the host; a tmpfs over it when namespaced)
    scratch_mb: int = 64  # the size of that tmpfs
    namespaces: bool = False
    root: bool = False
    uid: int = 65534
    gid: int = 65534
    drop_uid: bool = False  # root: run programs as `uid` (namespaced, or when the interpreter is reachable)
    reachable: list[str] = field(default_factory=list)  # paths the program must be able to read
    why_not: str = ""  # why namespaces are off


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, options: str | None = None) -> None:
    encode = lambda s: None if s is None else os.fsencode(s)  # noqa: E731
    _check(_libc.mount(encode(source), encode(target), encode(fstype), flags, encode(options)), f"mount {target}")


def _mount_points() -> list[tuple[str, set[str]]]:
    points = []
    with open("/proc/self/mountinfo", "rb") as info:
        for line in info:
            fields = line.split()
            point = fields[4].decode().replace("\\040", " ")
            points.append((point, set(fields[5].decode().split(","))))
    return points


def _reachable_for(path: str, uid: int) -> bool:
    """Whether a process of `uid` (no capabilities, no matching groups) can traverse `path`."""
    info = os.stat(path)
    bit = stat.S_IXUSR if info.st_uid == uid else stat.S_IXOTH
    return bool(info.st_mode & bit)


def _expose(paths: list[str], uid: int) -> None:
    """Cover each untraversable directory on the way to `paths` with a tmpfs that re-binds only what is needed.

    Runs inside the private mount namespace; the host's directories are never chmod-ed.
    """
    for _ in range(8):  # each round fixes the outermost blocked directory of every path
        blocked: dict[str, set[str]] = {}
        for path in paths:
            parts = Path(path).parts
            for depth in range(1, len(parts)):
                prefix = str(Path(*parts[:depth]))
                if not _reachable_for(prefix, uid):
                    blocked.setdefault(prefix, set()).add(parts[depth])
                    break
        if not blocked:
            return
        for directory, children in blocked.items():
            held = {child: os.open(os.path.join(directory, child), os.O_PATH) for child in children}
            _mount("tmpfs", directory, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64k")
            for child, fd in held.items():
                target = os.path.join(directory, child)
                if stat.S_ISDIR(os.fstat(fd).st_mode):
                    os.mkdir(target)
                else:
                    open(target, "w").close()
                _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
                os.close(fd)
    raise OSError(f"could not make {paths} reachable for uid {uid}")


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def enter_worker_namespaces(plan: Plan) -> None:
    """Once, in the worker's launcher: new user (non-root), mount, network, IPC and PID namespaces, the host file
    system read-only. The caller forks next: its child, PID 1 of the new PID namespace, is the worker.

    The worker's programs run one at a time in these namespaces and leave nothing behind for the next: the file
    system is read-only but for the scratch dir, which is emptied (`fresh_scratch`); a socket dies with its
    process; every process a program started is killed when it ends (`kill_the_namespace`), and so are its
    System V IPC objects (`clear_ipc`; POSIX message queues are ruled out by RLIMIT_MSGQUEUE = 0).
    """
    outer_uid, outer_gid = os.getuid(), os.getgid()
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | (0 if plan.root else CLONE_NEWUSER)
    _check(_libc.unshare(flags), "unshare")
    if not plan.root:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"{outer_uid} {outer_uid} 1")
        _write("/proc/self/gid_map", f"{outer_gid} {outer_gid} 1")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    if plan.root:
        _expose(plan.reachable + [plan.scratch], plan.uid)
    for point, options in _mount_points():
        if point == "/proc" or point.startswith("/proc/"):
            continue  # the worker mounts its own /proc, read-only
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY
        for name, bit in _MOUNT_OPTION_FLAGS.items():
            if name in options:
                flags |= bit
        try:
            _mount(None, point, None, flags)
        except OSError:
            if point == "/":
                raise


def set_up_worker(plan: Plan) -> None:
    """In the worker (PID 1 of its PID namespace): a /proc that shows only that namespace, a tmpfs scratch dir, a
    tmpfs of its own on /dev/shm (where multiprocessing keeps its semaphores), and no ptrace or /proc access to
    the worker for programs of its uid (non-root mode)."""
    mount_proc()
    for place, mode in _tmpfs_places(plan).items():
        _mount_tmpfs(plan, place, mode)
    _check(_libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(DUMPABLE)")


def mount_proc() -> None:
    """A read-only /proc of the caller's PID namespace; processes of other users hidden where the kernel can."""
    for options in ("hidepid=invisible", "hidepid=2", None):
        try:
            _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, options)
            return
        except OSError:
            continue  # some container runtimes refuse a new procfs; the PID namespace still keeps the host's pids out


SHARED_MEMORY = "/dev/shm"


def _tmpfs_places(plan: Plan) -> dict[str, int]:
    """The programs' writable places, each a tmpfs of the worker's: the scratch dir (owned by the program's uid),
    and /dev/shm (sticky, for everyone) where the host has one."""
    places = {plan.scratch: 0o700}
    if os.path.isdir(SHARED_MEMORY):
        places[SHARED_MEMORY] = 0o1777
    return places


def _mount_tmpfs(plan: Plan, place: str, mode: int) -> None:
    owner = f",uid={plan.uid},gid={plan.gid}" if plan.root and mode == 0o700 else ""
    _mount("tmpfs", place, "tmpfs", MS_NOSUID | MS_NODEV, f"mode={mode:o},size={plan.scratch_mb}m{owner}")


def fresh_scratch(plan: Plan) -> None:
    """After a program: an empty scratch dir and /dev/shm for the next one, a new tmpfs where the last one left
    anything or changed the mode (which takes the same time whatever it left)."""
    for place, mode in _tmpfs_places(plan).items():
        if os.listdir(place) or stat.S_IMODE(os.stat(place).st_mode) != mode:
            _check(_libc.umount2(os.fsencode(place), MNT_DETACH), f"umount {place}")
            _mount_tmpfs(plan, place, mode)


def kill_the_namespace() -> None:
    """In the worker, PID 1 of its PID namespace: SIGKILL to every other process in it (and in any namespace a
    program nested in it). kill(-1) reaches them all, daemons that left the program's process group included,
    and a fork racing with it is undone by the kernel; the caller then reaps until it has no children."""
    if os.getpid() != 1:  # anywhere else kill(-1) would reach every process of this user on the machine
        raise RuntimeError("kill_the_namespace outside a sandbox worker's PID namespace")
    try:
        os.kill(-1, signal.SIGKILL)
    except ProcessLookupError:
        pass


_IPC_REMOVE = {"shm": "shmctl", "sem": "semctl", "msg": "msgctl"}
IPC_RMID = 0


def clear_ipc() -> None:
    """In the worker, after a program: remove any System V shared memory, semaphore set or message queue it left
    in the worker's IPC namespace (listed in /proc/sysvipc; nearly always empty, so this is a few reads)."""
    for kind, remove in _IPC_REMOVE.items():
        try:
            with open(f"/proc/sysvipc/{kind}") as listing:
                ids = [int(line.split()[1]) for line in listing.readlines()[1:] if line.strip()]
        except OSError:
            continue
        for ipc_id in ids:
            getattr(_libc, remove)(ipc_id, *((0, IPC_RMID) if kind == "sem" else (IPC_RMID,)), None)


def set_limits(limits: Limits) -> None:
    """rlimits for the program's process (inherited by anything it forks)."""
    cpu = limits.cpu_s if limits.cpu_s is not None else int(limits.timeout_s) + 1
    mb = 1024 * 1024
    for name, value in ((resource.RLIMIT_AS, limits.memory_mb * mb), (resource.RLIMIT_CPU, cpu),
                        (resource.RLIMIT_NPROC, limits.processes), (resource.RLIMIT_FSIZE, limits.file_size_mb * mb),
                        (resource.RLIMIT_NOFILE, limits.open_files), (resource.RLIMIT_CORE, 0),
                        (resource.RLIMIT_MSGQUEUE, 0)):
        resource.setrlimit(name, (value, value))


def drop_privileges(plan: Plan) -> None:
    """No way back: an unprivileged uid (as root) or an empty capability set (user namespace)."""
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(NO_NEW_PRIVS)")
    if plan.drop_uid:
        os.setgroups([])
        os.setresgid(plan.gid, plan.gid, plan.gid)
        os.setresuid(plan.uid, plan.uid, plan.uid)
    elif plan.namespaces:
        for cap in range(64):
            if _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                break
        header = (ctypes.c_uint32 * 2)(_CAP_VERSION_3, 0)
        empty = (ctypes.c_uint32 * 6)()
        _check(_libc.capset(header, empty), "capset")
    _check(_libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "prctl(DUMPABLE)")


def die_with_parent() -> None:
    """SIGKILL when the parent process exits (set after any uid change, which clears it)."""
    _check(_libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0), "prctl(PDEATHSIG)")


def interpreter_paths() -> list[str]:
    """What a program needs to read: the interpreter, its standard library and site-packages."""
    paths = {os.path.dirname(os.path.realpath(sys.executable)), sys.prefix, sys.base_prefix, sys.exec_prefix}
    paths.update(entry for entry in sys.path if entry and os.path.isdir(entry))
    return sorted(os.path.realpath(path) for path in paths)


def probe(scratch: str, uid: int = 65534) -> Plan:
    """Try the namespaced set-up once in throw-away children; the plan says whether to use it and why not."""
    plan = Plan(scratch=scratch, root=os.getuid() == 0, uid=uid, gid=uid, reachable=interpreter_paths())
    plan.drop_uid = plan.root  # what the probe's program tries
    if not sys.platform.startswith("linux"):
        plan.why_not = f"namespaces need Linux (this is {sys.platform})"
        return plan
    read, write = os.pipe()

    def launcher() -> None:
        enter_worker_namespaces(plan)
        worker = os.fork()
        if worker == 0:
            _in_child(write, the_worker)
        _wait_ok(worker, "the worker")
        os.write(write, b"ok")

    def the_worker() -> None:
        set_up_worker(plan)
        program = os.fork()
        if program == 0:
            _in_child(write, the_program)
        _wait_ok(program, "the sandboxed program")
        kill_the_namespace()
        clear_ipc()
        fresh_scratch(plan)

    def the_program() -> None:
        drop_privileges(plan)
        set_limits(Limits())
        open(os.path.join(scratch, "probe"), "w").close()  # the working directory is writable
        import encodings.idna  # noqa: F401  (the standard library is readable)

    pid = os.fork()
    if pid == 0:
        _in_child(write, launcher)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        answer = pipe.read().decode(errors="replace")
    os.waitpid(pid, 0)
    plan.namespaces = answer == "ok"
    plan.why_not = "" if plan.namespaces else answer or "the probe child died"
    plan.drop_uid = plan.root and (plan.namespaces or all(
        _reachable_for(prefix, uid) for path in plan.reachable + [scratch] for prefix in _prefixes(path)))
    if plan.drop_uid and not plan.namespaces:
        os.chown(scratch, uid, uid)
    return plan


def _in_child(report_fd: int, step) -> None:
    """In a probe child: run `step`, exit 0; on any failure write why to `report_fd` and exit 1."""
    try:
        step()
    except _ChildFailed:  # the child said why
        os._exit(1)
    except BaseException as error:  # noqa: BLE001 - report any failure to the parent
        os.write(report_fd, (str(error) or type(error).__name__).encode()[:500])
        os._exit(1)
    os._exit(0)


class _ChildFailed(Exception):
    pass


def _wait_ok(pid: int, what: str) -> None:
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise _ChildFailed(f"{what} failed (wait status {status})")


def _prefixes(path: str) -> list[str]:
    parts = Path(path).parts
    return [str(Path(*parts[:depth])) for depth in range(1, len(parts) + 1)]
