"""`textbooks mine-exercises`: exercises cut from the documented, self-contained functions of a dataset, each
verified by execution (offline: no LLM).

    textbooks ingest --source stdlib --units function class --out runs/x/ingest
    textbooks mine-exercises --input runs/x/ingest --out runs/x/mined

    - stage: mine-exercises      # in a recipe
      max_body_lines: 40

Rows may be whole files or function and class units (`ingest --units function class`, which carry the imports
they use). Every documented top-level function and method of a top-level class becomes a candidate
(`textbooks.synth.cut`: which, and how it is cut into context, prompt and solution); one that loads a global
its row does not import is dropped (`not_self_contained`). The others run in the sandbox
(`textbooks.synth.verify`, with `require_tests` off and any import allowed unless `allowed_imports` says
otherwise): the definition must execute with only its imports (else `does_not_define`), and an exercise with
docstring examples must pass them with its own body (else `failed_doctests`) and fail them with a body that
returns None or its first argument (else `trivial_tests`). A row is an exercise in HumanEval form: `prompt`,
`solution`, `tests` ("": mined functions have none), `entry_point`, `context`, and `text` = context + prompt +
solution (the training text; with `form: textbook` a textbook section made of them instead,
`textbooks.synth.textbook_form`); dropped candidates go to `dropped/` with `drop_reason` and `drop_detail`.

The sandbox is opened once per worker of the step (`setup`). Mining the standard library (Python 3.11, 4,887
function and class units, 3,461 candidates, 1,352 exercises; 2 shared cores, 2026-12-01) took 16.0-16.2 s on
the process pool of 2 workers with a sandbox of 2 workers in each (the default, `sandbox_workers`), 16.7-17.8 s
with a sandbox of 1 worker in each, and 17.0-19.7 s on the `async` executor (one process) with one sandbox of 2
workers (17.9 s with 3): the process pool also spreads the parsing, and 2 programs per pool worker keep the
cores busy while it parses. Most of the time is the programs: the median runs in 10 ms, but importing what an
exercise imports (distutils, tkinter) takes up to 0.35 s, and `doctest` (with unittest and pdb) 20 ms.
"""

from __future__ import annotations

import atexit
import hashlib
import multiprocessing.util
import time
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from textbooks.errors import UserError
from textbooks.pipeline.executors.base import Worker
from textbooks.pipeline.stage import ShardResult, Stage, run_stage, with_drop_reason
from textbooks.pipeline.step import Context, SettingError, StepConfig
from textbooks.sandbox import Limits, Sandbox
from textbooks.store import data
from textbooks.store.inputs import Part, plan_parts, read_table
from textbooks.synth.cut import Cut, cut_exercises
from textbooks.synth.textbook_form import textbook_section
from textbooks.synth.verify import Verdict, Verifier

COLUMNS = ("id", "text", "source", "prompt", "solution", "tests", "entry_point", "context", "qualified_name",
           "doctests", "has_tests", "origin_id")
DROP_DETAIL = "drop_detail"
SKIPPED = ("private", "stub", "layout", "short_body", "long_body")


class MineConfig(StepConfig):
    """Settings of `textbooks mine-exercises` (recipe keys and flags)."""

    min_body_lines: int = Field(2, ge=1, description="Fewest lines of code after the docstring (blank and comment "
                                                     "lines not counted).")
    max_body_lines: int = Field(60, ge=1, description="Most lines of code after the docstring.")
    allowed_imports: list[str] | None = Field(None, description="Top-level modules an exercise may import (e.g. "
                                                                "math re collections); default: any.")
    timeout_s: float = Field(10.0, gt=0, description="Seconds each sandbox program may run.")
    sandbox_workers: int = Field(2, ge=1, description="Sandbox workers in each of the step's workers (programs "
                                                      "that run at once in each).")
    form: Literal["exercise", "textbook"] = Field(
        "exercise", description="What `text` holds: exercise (context + prompt + solution, for finetuning) or "
                                "textbook (a section: the docstring's prose, the code, its examples; the offline "
                                "stand-in for synthetic textbooks, textbooks.synth.textbook_form).")


def exercise_id(origin_id: str, qualified_name: str, occurrence: int) -> str:
    """Stable: the source row's id and the qualified name (and which definition of that name, after the first)."""
    key = f"{origin_id}\0{qualified_name}" + (f"\0{occurrence}" if occurrence else "")
    return "mined:" + hashlib.blake2b(key.encode(), digest_size=10).hexdigest()


def _close_at_exit(sandbox: Sandbox) -> None:
    """Close the sandbox when this process ends: at a pool worker's exit (multiprocessing runs its finalizers,
    not atexit's) or the interpreter's."""
    multiprocessing.util.Finalize(sandbox, sandbox.close, exitpriority=10)
    atexit.register(sandbox.close)


class MineExercisesStage(Stage):
    name = "mine-exercises"
    Config = MineConfig
    config: MineConfig
    unfingerprinted = frozenset({"sandbox_workers"})

    @classmethod
    def check(cls, config: MineConfig) -> None:
        if config.min_body_lines > config.max_body_lines:
            raise SettingError("min_body_lines", f"{cls.name}: min_body_lines ({config.min_body_lines}) is above "
                                                 f"max_body_lines ({config.max_body_lines}); no function fits")

    def plan(self) -> list[Part]:
        parts = plan_parts(self.input)
        for part in parts:
            if part.kind in ("shard", "parquet"):
                names = pq.read_schema(part.path).names
                if "text" not in names:
                    raise UserError(f"{self.name}: {part.path} has no column 'text' (it has {', '.join(names)}); "
                                    "it mines Python code from a `text` column: whole files, or function and class "
                                    "units from `textbooks ingest --units function class`")
        return parts

    def setup(self, worker: Worker) -> Sandbox:
        sandbox = Sandbox(workers=self.config.sandbox_workers, limits=Limits(timeout_s=self.config.timeout_s))
        _close_at_exit(sandbox)
        return sandbox

    def _verifier(self) -> Verifier:
        allowed = self.config.allowed_imports
        return Verifier(self.state, allowed_imports=None if allowed is None else frozenset(allowed),
                        require_tests=False, check_trivial=True)

    def map(self, task: Part) -> ShardResult:
        table = read_table(task)
        rows = table.select([name for name in ("id", "text", "source") if name in table.column_names]).to_pylist()
        counters: dict[str, float] = {"rows": len(rows), "unparsed_rows": 0, "candidates": 0}
        counters.update({f"skipped_{why}": 0 for why in SKIPPED})
        cuts: list[tuple[dict, Cut, str]] = []
        for row in rows:
            found = cut_exercises(row["text"] or "", self.config.min_body_lines, self.config.max_body_lines)
            counters["unparsed_rows"] += not found.parsed
            for why, count in found.skipped.items():
                counters[f"skipped_{why}"] += count
            seen: dict[str, int] = {}
            for cut in found.exercises:
                occurrence = seen.get(cut.qualified_name, 0)
                seen[cut.qualified_name] = occurrence + 1
                cuts.append((row, cut, exercise_id(str(row["id"]), cut.qualified_name, occurrence)))
        counters["candidates"] = len(cuts)
        started = time.perf_counter()
        runnable = [index for index, (_, cut, _) in enumerate(cuts) if not cut.problem]
        verdicts = self._verifier().verify_many([cuts[index][1].exercise for index in runnable])
        counters["sandbox_seconds"] = time.perf_counter() - started
        by_index = dict(zip(runnable, verdicts))
        return self._result(cuts, by_index, counters)

    def _result(self, cuts: list[tuple[dict, Cut, str]], verdicts: dict[int, Verdict],
                counters: dict[str, float]) -> ShardResult:
        kept, dropped, reasons, details = [], [], [], []
        for index, (row, cut, row_id) in enumerate(cuts):
            verdict = verdicts.get(index)
            record = _record(row, cut, row_id, verdict.doctests if verdict is not None else 0, self.config.form)
            if verdict is not None and verdict.ok:
                kept.append(record)
                counters["with_doctests"] = counters.get("with_doctests", 0) + record["has_tests"]
                counters["methods" if cut.is_method else "functions"] = \
                    counters.get("methods" if cut.is_method else "functions", 0) + 1
                continue
            reason = cut.problem or verdict.reason
            dropped.append(record)
            reasons.append(reason)
            details.append(cut.detail or verdict.detail)
            counters[reason] = counters.get(reason, 0) + 1
        counters["kept"] = len(kept)
        dropped_table = with_drop_reason(_table(dropped), reasons)
        dropped_table = dropped_table.append_column(DROP_DETAIL, pa.array(details, pa.string()))
        return ShardResult(kept=_table(kept), dropped=dropped_table, counters=counters)

    def run(self, ctx: Context) -> dict:
        try:
            stats = run_stage(self, ctx)
        finally:
            if isinstance(self.state, Sandbox):  # tasks that ran in this process (one worker or one task)
                self.state.close()
                self.state = None
        exercises = _exercise_counts(ctx.out)
        stats["exercises"] = exercises
        rows = int(stats["counters"].get("rows", 0))
        ctx.say(f"{self.name}: {exercises['kept']:,} exercises from {rows:,} rows ({exercises['with_doctests']:,} "
                "with doctests, passed with their own body and failed with `return None` and with the first "
                "argument returned)")
        return stats


def _record(row: dict, cut: Cut, row_id: str, doctests: int, form: str) -> dict:
    exercise = cut.exercise
    text = exercise.context + exercise.prompt + exercise.solution
    if form == "textbook":
        text = textbook_section(exercise.context, exercise.prompt, exercise.solution, exercise.entry_point,
                                cut.qualified_name)
    return {"id": row_id, "text": text, "source": row.get("source"),
            "prompt": exercise.prompt, "solution": exercise.solution, "tests": exercise.tests,
            "entry_point": exercise.entry_point, "context": exercise.context, "qualified_name": cut.qualified_name,
            "doctests": doctests, "has_tests": doctests > 0, "origin_id": str(row["id"])}


SCHEMA = pa.schema([(name, pa.int32() if name == "doctests" else pa.bool_() if name == "has_tests" else pa.string())
                    for name in COLUMNS])


def _table(records: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(records, schema=SCHEMA)


def _exercise_counts(out: Path) -> dict[str, int]:
    """Kept exercises, those with doctests, methods and functions, from the output dataset."""
    paths = data.shard_paths(out)
    if not paths:
        return {"kept": 0, "with_doctests": 0, "methods": 0, "functions": 0}
    table = pa.concat_tables([data.read_shard(path, ["has_tests", "qualified_name"]) for path in paths])
    methods = int(pc.sum(pc.match_substring(table["qualified_name"], ".")).as_py() or 0)
    return {"kept": table.num_rows, "with_doctests": int(pc.sum(table["has_tests"]).as_py() or 0),
            "methods": methods, "functions": table.num_rows - methods}


__all__ = ["COLUMNS", "MineConfig", "MineExercisesStage", "exercise_id"]
