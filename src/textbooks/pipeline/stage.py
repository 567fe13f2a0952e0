"""Dataset stages: steps from datasets to a dataset, cut into tasks that run on an executor.

A stage cuts its work into tasks (`plan`), turns each task into a `ShardResult` (`map`), and, when it needs a
look at all shards at once (exact or near-duplicate removal), computes one state per task from the map outputs
(`reduce`) and finishes each shard with it (`apply`). A reduce too big for one process hands its work to the
executor as sub-phases of tasks (`textbooks.pipeline.phases`), each recorded in `.work/` like a map task.
`setup(worker)` runs once per worker before its first task (a model loaded once, a client opened once); its
result is `self.state` in `map` and `apply`. `map` may be a coroutine function: the `async` executor runs every
task of the stage on one loop.

`run_stage` does the rest for every stage, inside the runner's contract::

    OUT/.work/map-00003.json            task 3 is mapped (its counts; written after its shards)
    OUT/.work/map-00003.kept.parquet    map outputs, for stages with a reduce step (a side table given as a
                                        list of tables: one row group each, a shuffle's partitions)
    OUT/.work/PHASE-00002.json          task 2 of a sub-phase of reduce is done (`Phases.run`)
    OUT/.work/reduce.pkl                the reduce result, recorded: a resumed run does not compute it again
    OUT/.work/apply-00003.json          task 3 is finished (stages with a reduce step)
    OUT/part-00003.parquet              final shards, each written atomically
    OUT/dropped/part-00003.parquet      the rows removed, with `drop_reason`
    OUT/README.md                       the dataset card (`textbooks.pipeline.card`), written by the runner

A killed run leaves at most the tasks in flight undone; the next run redoes only those and finishes with the
same dataset an uninterrupted run makes. A stage never writes files itself.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc

from textbooks.errors import UserError
from textbooks.pipeline.card import CARD, write_dataset_card
from textbooks.pipeline.executors.base import Worker
from textbooks.pipeline.phases import Phases
from textbooks.pipeline.step import Context, Step
from textbooks.pipeline.work import Work
from textbooks.store import data

DROP_REASON = "drop_reason"
DUPLICATE_OF = "duplicate_of"  # on a dropped duplicate: the id of the row kept in its place


@dataclass
class ShardResult:
    """What one task produced: kept rows, dropped rows (with `drop_reason`), side tables and counters.

    A side table given as a list of tables is written as partitions (`WorkShard.read_partitions`).
    """

    kept: pa.Table | None = None
    dropped: pa.Table | None = None
    side: dict[str, pa.Table | list[pa.Table]] = field(default_factory=dict)
    counters: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class WorkShard:
    """Where the map outputs of one task live, for `reduce` and `apply` to read."""

    index: int
    folder: Path

    def path(self, what: str) -> Path:
        return self.folder / f"map-{self.index:05d}.{what}.parquet"

    def read(self, what: str) -> pa.Table | None:
        path = self.path(what)
        return data.read_shard(path) if path.is_file() else None

    def read_partitions(self, what: str, first: int, end: int | None = None,
                        columns: list[str] | None = None) -> pa.Table:
        """Partitions `first` to `end` (default: `first` alone) of a side table the map gave as a list."""
        path = self.path(what)
        if not path.is_file():
            raise UserError(f"{path}: map output missing; delete the output folder's .work and run the stage "
                            "again")
        return data.read_partitions(path, first, end, columns)


class Stage(Step):
    """Base class of every dataset stage."""

    takes = ("dataset",)
    makes = "dataset"
    input_help = "a dataset folder, Parquet/JSONL file or glob, or hf:NAME"
    outputs = (data.SHARD_GLOB, data.DROPPED, CARD)
    uses_executor = True
    has_reduce: ClassVar[bool] = False
    allow_empty: ClassVar[bool] = False  # an output with no rows is a result (say so), not an error
    state: Any = None  # what `setup` returned, in the worker that runs the task

    def plan(self) -> list[Any]:
        """The tasks, in a fixed order: the same input and settings always give the same list."""
        raise NotImplementedError

    def setup(self, worker: Worker) -> Any:
        """Runs once per worker before its first task; the result is `self.state`."""
        return None

    def map(self, task: Any) -> ShardResult:
        raise NotImplementedError

    def reduce(self, shards: list[WorkShard], phases: Phases) -> list[Any]:
        """One state per task, computed from all map outputs (only when `has_reduce`); heavy work may run as
        `phases` of tasks on the executor."""
        raise NotImplementedError

    def apply(self, shard: WorkShard, state: Any) -> ShardResult:
        """Finish one shard with its state from `reduce` (only when `has_reduce`)."""
        raise NotImplementedError

    def run(self, ctx: Context) -> dict:
        return run_stage(self, ctx)

    def write_card(self, ctx: Context, stats: dict) -> None:
        write_dataset_card(ctx.out, stats, ctx.identity)


def with_drop_reason(table: pa.Table, reason: str | list[str]) -> pa.Table:
    reasons = [reason] * table.num_rows if isinstance(reason, str) else reason
    if DROP_REASON in table.column_names:
        table = table.drop_columns([DROP_REASON])
    return table.append_column(DROP_REASON, pa.array(reasons, pa.string()))


def _text_bytes(table: pa.Table | None) -> int:
    if table is None or table.num_rows == 0 or "text" not in table.column_names:
        return 0
    return int(pc.sum(pc.binary_length(pc.cast(table["text"], pa.binary()))).as_py() or 0)


def _value_counts(column: pa.ChunkedArray) -> tuple[list[str], list[int]]:
    counts = pc.value_counts(column).to_pylist()
    return [item["values"] for item in counts], [item["counts"] for item in counts]


def _write_final(out: Path, index: int, result: ShardResult) -> dict:
    """Write one task's final shards and return its counts for stats.json."""
    kept, dropped = result.kept, result.dropped
    for folder, table in ((out, kept), (out / data.DROPPED, dropped)):
        path = folder / data.shard_name(index)
        if table is not None and table.num_rows:
            data.write_table(table, path)
        else:
            path.unlink(missing_ok=True)
    drops: dict[str, int] = {}
    if dropped is not None and dropped.num_rows:
        for reason, count in zip(*_value_counts(dropped[DROP_REASON])):
            drops[reason] = drops.get(reason, 0) + count
    return {"rows_out": kept.num_rows if kept is not None else 0, "bytes_out": _text_bytes(kept),
            "rows_dropped": dropped.num_rows if dropped is not None else 0, "bytes_dropped": _text_bytes(dropped),
            "drops": drops, "counters": result.counters}


def _call(method: Any, *args: Any) -> Any:
    """A stage method's result, whether it is a plain or a coroutine function (run on a loop of its own)."""
    return asyncio.run(method(*args)) if asyncio.iscoroutinefunction(method) else method(*args)


async def _await(method: Any, *args: Any) -> Any:
    """A stage method's result on the running loop (a plain method runs in a thread, not blocking the loop)."""
    if asyncio.iscoroutinefunction(method):
        return await method(*args)
    return await asyncio.to_thread(method, *args)


def _finish_map(stage: Stage, out: Path, work: Work, index: int, result: ShardResult, started: float) -> int:
    if stage.has_reduce:
        shard = WorkShard(index, work.folder)
        for what, table in (("kept", result.kept), ("dropped", result.dropped), *result.side.items()):
            if isinstance(table, list):
                data.write_partitions(table, shard.path(what))
            elif table is not None:
                data.write_table(table, shard.path(what))
        record: dict = {"counters": result.counters}
    else:
        record = _write_final(out, index, result)
    record["seconds"] = time.perf_counter() - started
    work.record("map", index, record)
    return index


def _finish_apply(out: Path, work: Work, index: int, result: ShardResult, started: float) -> int:
    record = _write_final(out, index, result)
    record["seconds"] = time.perf_counter() - started
    work.record("apply", index, record)
    return index


def map_task(stage: Stage, out: Path, work: Work, item: tuple[int, Any], state: Any) -> int:
    index, task = item
    started = time.perf_counter()
    stage.state = state
    return _finish_map(stage, out, work, index, _call(stage.map, task), started)


async def map_task_async(stage: Stage, out: Path, work: Work, item: tuple[int, Any], state: Any) -> int:
    index, task = item
    started = time.perf_counter()
    stage.state = state
    return _finish_map(stage, out, work, index, await _await(stage.map, task), started)


def apply_task(stage: Stage, out: Path, work: Work, item: tuple[int, Any], state: Any) -> int:
    (index, reduced), started = item, time.perf_counter()
    stage.state = state
    return _finish_apply(out, work, index, _call(stage.apply, WorkShard(index, work.folder), reduced), started)


async def apply_task_async(stage: Stage, out: Path, work: Work, item: tuple[int, Any], state: Any) -> int:
    (index, reduced), started = item, time.perf_counter()
    stage.state = state
    result = await _await(stage.apply, WorkShard(index, work.folder), reduced)
    return _finish_apply(out, work, index, result, started)


def run_stage(stage: Stage, ctx: Context) -> dict:
    """Plan, map (and reduce, apply) the tasks not recorded as done, then count what the stage made."""
    if ctx.executor is None:  # called without one: the stage's own, else a local process pool
        from textbooks.pipeline.executors import make_executor

        executor = make_executor(stage.executor)
        try:
            return run_stage(stage, replace(ctx, executor=executor))
        finally:
            executor.close()
    executor, work, out, name = ctx.executor, ctx.work, ctx.out, stage.name
    setup = stage.setup if type(stage).setup is not Stage.setup else None
    started = time.perf_counter()
    tasks = stage.plan()
    done = work.done("map", len(tasks))
    if done:
        ctx.say(f"{name}: resuming, {len(done)}/{len(tasks)} shards done earlier")
    pending = [(index, task) for index, task in enumerate(tasks) if index not in done]
    run_map = map_task_async if executor.is_async else map_task
    for _ in executor.map(partial(run_map, stage, out, work), pending, desc=name, setup=setup):
        pass
    resumed = {"map": len(done)}
    phase = "map"
    if stage.has_reduce:
        states = work.load("reduce")
        resumed["reduce"] = states is not None
        if states is None:
            phases = Phases(executor, work, name, ctx.say)
            states = stage.reduce([WorkShard(index, work.folder) for index in range(len(tasks))], phases)
            resumed.update(phases.resumed)
            work.save("reduce", states)
        else:
            ctx.say(f"{name}: the reduce result was recorded earlier; not computing it again")
        applied = work.done("apply", len(tasks))
        resumed["apply"] = len(applied)
        pending_apply = [(index, states[index]) for index in range(len(tasks)) if index not in applied]
        run_apply = apply_task_async if executor.is_async else apply_task
        for _ in executor.map(partial(run_apply, stage, out, work), pending_apply, desc=f"{name} (finish)",
                              setup=setup):
            pass
        phase = "apply"
    stats = _collect_stats(work, phase, len(tasks), time.perf_counter() - started, executor.name)
    stats["done_earlier"] = resumed
    reasons = ", ".join(f"{reason}: {count}" for reason, count in stats["drops"].items()) or "no input rows"
    if stats["rows_out"] == 0 and not stage.allow_empty:
        raise UserError(f"{name}: the stage produced no rows ({reasons}); check its input and settings")
    dropped_stats = {"stage": name, "rows": stats["rows_in"] - stats["rows_out"], "drops": stats["drops"]}
    data.write_json(dropped_stats, out / data.DROPPED / data.STATS)
    data.write_marker(out / data.DROPPED, {"fingerprint": ctx.fingerprint, "of": name, "finished": time.time()})
    if stats["rows_out"] == 0:
        ctx.say(f"{name}: {stats['rows_in']:,} rows in, none kept ({reasons}): an empty dataset -> {out}")
    else:
        ctx.say(f"{name}: {stats['rows_in']:,} rows in, {stats['rows_out']:,} out -> {out}")
    return stats


def _collect_stats(work: Work, phase: str, count: int, seconds: float, executor: str) -> dict:
    totals = {"rows_out": 0, "bytes_out": 0, "rows_dropped": 0, "bytes_dropped": 0}
    drops: dict[str, int] = {}
    counters: dict[str, float] = {}
    task_seconds = 0.0
    records = [work.read(phase, index) for index in range(count)]
    if phase == "apply":
        map_records = [work.read("map", index) for index in range(count)]
        task_seconds += sum(record["seconds"] for record in map_records)
        for record in map_records:
            _add(counters, record.get("counters", {}))
    for record in records:
        for key in totals:
            totals[key] += record[key]
        _add(drops, record["drops"])
        _add(counters, record.get("counters", {}))
        task_seconds += record["seconds"]
    return {
        "rows_in": totals["rows_out"] + totals["rows_dropped"],
        "rows_out": totals["rows_out"],
        "bytes_in": totals["bytes_out"] + totals["bytes_dropped"],
        "bytes_out": totals["bytes_out"],
        "drops": dict(sorted(drops.items(), key=lambda item: -item[1])),
        "seconds": round(seconds, 3),
        "task_seconds": round(task_seconds, 3),
        "shards": count,
        "engine": executor,
        "counters": counters,
    }


def _add(into: dict, values: dict) -> None:
    for key, value in values.items():
        into[key] = into.get(key, 0) + value
