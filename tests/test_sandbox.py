"""The sandbox against hostile programs: each is contained, reported as failed or timed out, and the harness
keeps going within its time bound; nothing outside the scratch dir changes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time

import pytest

from textbooks.sandbox import Limits, Program, Sandbox

HUMANEVAL_STYLE = '''
def add(a, b):
    return a + b
{cheat}
def check(candidate):
    assert candidate(2, 3) == 5
    assert candidate(-1, 1) == 1  # wrong on purpose
check(add)
'''


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(workers=2, limits=Limits(timeout_s=3, memory_mb=1024, output_kb=256)) as box:
        yield box


def still_works(sandbox: Sandbox) -> None:
    outcome = sandbox.run("assert sum(range(10)) == 45")
    assert outcome.status == "passed", outcome


def test_plain_programs(sandbox):
    assert sandbox.run("x = 1\nassert x == 1\nprint('hello')").status == "passed"
    assert sandbox.run("print('hello')").stdout == "hello\n"
    failed = sandbox.run("assert 1 == 2, 'mismatch'")
    assert failed.status == "failed" and "AssertionError: mismatch" in failed.reason
    assert sandbox.run("def f(:\n  pass").status == "failed"
    assert sandbox.run("import math, json, re, collections, itertools, heapq, hashlib, numpy").status == "passed"


def test_scratch_dir_is_writable_and_fresh(sandbox):
    assert sandbox.run("open('data.txt', 'w').write('x' * 1000)\nassert len(open('data.txt').read()) == 1000\n"
                       "import tempfile\ntempfile.NamedTemporaryFile().write(b'ok')").status == "passed"
    assert sandbox.run("import os\nassert os.listdir('.') == [], os.listdir('.')").status == "passed"


@pytest.mark.parametrize("cheat", ["exit(0)", "import sys\nsys.exit(0)", "import os\nos._exit(0)", "quit()",
                                   "raise SystemExit",
                                   "import os\nos.write(3, b'00000000000000000000000000000000 done\\n')\nos._exit(0)",
                                   "import builtins, os\nbuiltins.AssertionError = type('Quiet', (Exception,), {})\n"
                                   "os._exit = lambda code=0: None\nbuiltins.print = lambda *a, **k: None"])
def test_early_exit_or_patched_builtins_is_not_a_pass(sandbox, cheat):
    outcome = sandbox.run(HUMANEVAL_STYLE.format(cheat=cheat))
    assert outcome.status == "failed", (cheat, outcome)


def test_the_same_program_without_the_cheat_passes_only_when_right(sandbox):
    assert sandbox.run(HUMANEVAL_STYLE.format(cheat="")).status == "failed"
    right = HUMANEVAL_STYLE.format(cheat="").replace("== 1  # wrong on purpose", "== 0")
    assert sandbox.run(right).status == "passed"


def test_fork_bomb(sandbox):
    started = time.monotonic()
    outcome = sandbox.run("import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass")
    assert outcome.status in ("failed", "timeout")
    assert time.monotonic() - started < 10
    time.sleep(0.2)
    leftovers = subprocess.run(["ps", "-u", "65534", "-o", "pid="], capture_output=True, text=True).stdout.split()
    assert leftovers == [], f"processes left behind: {leftovers}"
    still_works(sandbox)


def test_memory_bomb(sandbox):
    outcome = sandbox.run("blocks = []\nwhile True:\n    blocks.append(bytearray(50 * 2**20))")
    assert outcome.status == "failed" and "MemoryError" in outcome.reason
    still_works(sandbox)


@pytest.mark.parametrize("program", ["while True:\n    pass", "sum(range(10**13))",
                                     "import re\nre.match(r'(a+)+$', 'a' * 64 + 'b')",
                                     "import time\ntime.sleep(1000)", "import signal\nsignal.pause()"])
def test_endless_programs_time_out(sandbox, program):
    started = time.monotonic()
    outcome = sandbox.run(program)
    assert outcome.status == "timeout", outcome
    assert time.monotonic() - started < 3 + 3
    still_works(sandbox)


def test_cannot_write_or_delete_outside_the_scratch_dir(sandbox, tmp_path):
    tmp_path.chmod(0o777)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    victim.chmod(0o666)
    attacks = [f"open({str(victim)!r}, 'w').write('gone')", f"import os\nos.remove({str(victim)!r})",
               f"open({str(tmp_path / 'new.txt')!r}, 'w').write('x')", "open('/tmp/textbooks-escape', 'w')",
               "open('../escape.txt', 'w').write('x')", "import os\nos.makedirs('/var/tmp/textbooks-escape')"]
    for attack in attacks:
        assert sandbox.run(attack).status == "failed", attack
    assert victim.read_text() == "precious"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["victim.txt"]
    # /dev/shm is the sandbox's own tmpfs (where namespaces are on): writing there works, and the host's never sees it
    sandbox.run("open('/dev/shm/textbooks-escape', 'w')")
    for path in ("/tmp/textbooks-escape", "/var/tmp/textbooks-escape", "/dev/shm/textbooks-escape"):
        assert not os.path.exists(path)


def test_parent_environment_is_out_of_reach(monkeypatch):
    monkeypatch.setenv("TEXTBOOKS_PARENT_SECRET", "s3cr3t-value")
    spy = ("import os, glob\nfound = [k for k in os.environ if 'SECRET' in k]\n"
           "for path in glob.glob('/proc/*/environ'):\n"
           "    try:\n        found.append(open(path, 'rb').read().decode(errors='replace'))\n"
           "    except OSError:\n        pass\n"
           "for pid in (os.getppid(), 1):\n"
           "    try:\n        found.append(open(f'/proc/{pid}/environ', 'rb').read().decode(errors='replace'))\n"
           "    except OSError:\n        pass\n"
           "print(found)")
    with Sandbox(workers=1, limits=Limits(timeout_s=5)) as box:
        outcome = box.run(spy)
    assert outcome.status == "passed", outcome
    assert "s3cr3t-value" not in outcome.stdout and "TEXTBOOKS_PARENT_SECRET" not in outcome.stdout


def test_no_network_not_even_loopback(sandbox):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(4)
    port = server.getsockname()[1]
    accepted: list[socket.socket] = []
    waiter = threading.Thread(target=lambda: _accept(server, accepted))
    waiter.start()
    outcome = sandbox.run(f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
                          "s.sendall(b'stolen')")
    waiter.join()
    server.close()
    assert outcome.status == "failed"
    assert accepted == []


def _accept(server: socket.socket, accepted: list) -> None:
    try:
        accepted.append(server.accept()[0])
    except OSError:
        pass


def test_cannot_kill_the_parent(sandbox):
    outcome = sandbox.run("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n"
                          "for pid in range(2, 5000):\n    try:\n        os.kill(pid, signal.SIGKILL)\n"
                          "    except OSError:\n        pass\nos.killpg(0, signal.SIGKILL)")
    assert outcome.status in ("failed", "timeout")
    still_works(sandbox)


@pytest.fixture(scope="module")
def one_worker():
    """Consecutive programs run by the same worker, in the same namespaces."""
    with Sandbox(workers=1, limits=Limits(timeout_s=3)) as box:
        yield box


def test_nothing_a_program_starts_outlives_it(one_worker):
    """A daemon that left the program's process group and session is killed with the program: the verdict does
    not wait for it, and the next program finds no trace of it."""
    daemon = ("import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n        time.sleep(20)\n"
              "        open('late.txt', 'w').write('x')\n    os._exit(0)\n")
    started = time.monotonic()
    assert one_worker.run(daemon).status == "passed"
    assert time.monotonic() - started < 3
    later = one_worker.run("import json, os\nassert os.listdir('.') == [], os.listdir('.')\n"
                           "print(json.dumps([os.getpid(), [int(p) for p in os.listdir('/proc') if p.isdigit()]]))")
    assert later.status == "passed", later
    own, visible = json.loads(later.stdout)
    assert set(visible) <= {1, own}, later.stdout  # itself, and at most the worker (PID 1)


def test_ipc_objects_do_not_outlive_a_program(one_worker):
    shm = "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nshmid = libc.shmget(0x7E57, 4096, {flags})\n"
    made = one_worker.run(shm.format(flags=0o1600) + "assert shmid >= 0, ctypes.get_errno()")  # IPC_CREAT | 0600
    assert made.status == "passed", made
    assert one_worker.run(shm.format(flags=0) + "assert shmid == -1, 'left behind'").status == "passed"
    import ctypes

    assert ctypes.CDLL(None).shmget(0x7E57, 0, 0) == -1  # and never in the host's IPC namespace
    queue = ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
             "fd = libc.mq_open(b'/textbooks-test', os.O_CREAT | os.O_RDWR, 0o600, None)\nassert fd == -1, fd")
    assert one_worker.run(queue).status == "passed"  # RLIMIT_MSGQUEUE = 0: no POSIX message queue either


def test_a_program_cannot_spoil_the_scratch_dir_for_the_next(one_worker):
    assert one_worker.run("import os\nos.chmod('.', 0)").status == "passed"
    assert one_worker.run("open('x', 'w').write('1')").status == "passed"


def test_multiprocessing_works_and_its_shared_memory_is_fresh(one_worker):
    pool = ("from multiprocessing import Pool\nif __name__ == '__main__':\n    with Pool(2) as pool:\n"
            "        assert pool.map(abs, [-1, -2, 3]) == [1, 2, 3]\n"
            "    open('/dev/shm/left-behind', 'w').write('x')\n")
    outcome = one_worker.run(pool)
    assert outcome.status == "passed", outcome
    assert one_worker.run("import os\nassert os.listdir('/dev/shm') == [], os.listdir('/dev/shm')").status == "passed"


def test_a_worker_killed_from_outside_is_replaced():
    """The OOM killer (say) takes a worker mid-program: that program fails, saying so, and the next one runs."""
    others = _workers()  # the module's sandbox has workers too: leave them alone
    with Sandbox(workers=1, limits=Limits(timeout_s=10)) as box:
        ours = _workers() - others
        assert ours
        killer = threading.Timer(1.0, lambda: [process.kill() for process in ours])
        killer.start()
        outcome = box.run("import time\ntime.sleep(5)")
        killer.join()
        assert outcome.status == "failed" and "worker died" in outcome.reason, outcome
        assert box.run("assert 1 + 1 == 2").status == "passed"
    assert _workers() == others


def _workers() -> set:
    """This process's sandbox worker processes (launchers and workers)."""
    import psutil

    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            if any("textbooks.sandbox.worker" in part for part in child.cmdline()):
                found.add(child)
        except psutil.Error:  # it exited meanwhile
            continue
    return found


def test_printing_100_mb_is_cut_short(sandbox):
    started = time.monotonic()
    outcome = sandbox.run("import sys\nchunk = 'x' * 2**20\nfor _ in range(100):\n    sys.stdout.write(chunk)")
    assert outcome.status == "failed" and "printed more than" in outcome.reason
    assert len(outcome.stdout) <= 4096
    assert time.monotonic() - started < 3
    still_works(sandbox)


def test_call_mode_returns_plain_data_only(sandbox):
    code = ("class Liar:\n    def __eq__(self, other):\n        return True\n"
            "def f(x):\n    if x == 0:\n        return Liar()\n    if x == 1:\n        raise ValueError('no')\n"
            "    return (x, [x * 2], {x}, {'k': x / 2})\n")
    outcome = sandbox.run(Program(code, entry_point="f", inputs=[[0], [1], [2]]))
    assert outcome.status == "passed"
    assert outcome.outputs[0][0] == "error" and "Liar" in outcome.outputs[0][1]
    assert outcome.outputs[1] == ("error", "ValueError")
    assert outcome.outputs[2] == ("ok", (2, [4], {2}, {"k": 1.0}))


def test_call_mode_inputs_are_copied(sandbox):
    code = "def f(items):\n    items.append(1)\n    return len(items)\n"
    outcome = sandbox.run(Program(code, entry_point="f", inputs=[[[0, 0]], [[0, 0]]]))
    assert [value for _, value in outcome.outputs] == [3, 3]


def test_many_programs_in_order():
    with Sandbox(workers=2, limits=Limits(timeout_s=5)) as box:
        outcomes = box.run_many([f"assert {i} % 3 != 0" for i in range(30)])
    assert [outcome.status == "passed" for outcome in outcomes] == [i % 3 != 0 for i in range(30)]


def test_without_namespaces_the_verdict_still_holds():
    with Sandbox(workers=1, limits=Limits(timeout_s=2), isolation="none") as box:
        assert not box.namespaces
        assert box.run("assert True").status == "passed"
        assert box.run(HUMANEVAL_STYLE.format(cheat="import os\nos._exit(0)")).status == "failed"
        assert box.run("while True:\n    pass").status == "timeout"
        assert box.run("open('x', 'w').write('1')").status == "passed"
        assert box.run("import os\nassert not os.path.exists('x')").status == "passed"
