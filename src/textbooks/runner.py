"""Running one stage into its output folder: skip when done, resume when killed, write the dataset.

Layout while a stage runs (`OUT/.work/` is removed once the stage is finished)::

    OUT/.work/fingerprint.json          the settings and input the work belongs to
    OUT/.work/map-00003.json            task 3 is mapped (its counters; written after its shards)
    OUT/.work/map-00003.kept.parquet    map outputs, for stages with a reduce step
    OUT/.work/apply-00003.json          task 3 is finished (stages with a reduce step)
    OUT/part-00003.parquet              final shards, each written atomically
    OUT/dropped/part-00003.parquet

A killed run leaves at most the tasks in flight undone; the next run with the same settings and input redoes
only those, and finishes with the same dataset an uninterrupted run makes. Different settings or input start
the stage over.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pyarrow as pa
import pyarrow.compute as pc

from textbooks import data
from textbooks.engine import Engine
from textbooks.errors import UserError
from textbooks.stage import DROP_REASON, ShardResult, Stage, WorkShard

if TYPE_CHECKING:
    from textbooks.recipe import Recipe

WORK = ".work"
FORMAT_VERSION = 1


@dataclass
class StageOutcome:
    name: str
    out: Path
    status: str  # "done earlier" | "finished"
    stats: dict


def stage_fingerprint(stage: Stage) -> str:
    content = {"format": FORMAT_VERSION, "stage": stage.name, "config": stage.config.model_dump(mode="json"),
               "input": stage.fingerprint()}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _text_bytes(table: pa.Table | None) -> int:
    if table is None or table.num_rows == 0 or "text" not in table.column_names:
        return 0
    return int(pc.sum(pc.binary_length(pc.cast(table["text"], pa.binary()))).as_py() or 0)


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


def _value_counts(column: pa.ChunkedArray) -> tuple[list[str], list[int]]:
    counts = pc.value_counts(column).to_pylist()
    return [item["values"] for item in counts], [item["counts"] for item in counts]


def run_map_task(stage: Stage, out: Path, item: tuple[int, Any]) -> int:
    index, task = item
    started = time.perf_counter()
    result = stage.map(task)
    work = out / WORK
    if stage.has_reduce:
        shard = WorkShard(index, work)
        for what, table in (("kept", result.kept), ("dropped", result.dropped), *result.side.items()):
            if table is not None:
                data.write_table(table, shard.path(what))
        record = {"counters": result.counters}
    else:
        record = _write_final(out, index, result)
    record["seconds"] = time.perf_counter() - started
    data.write_json(record, work / f"map-{index:05d}.json")
    return index


def run_apply_task(stage: Stage, out: Path, item: tuple[int, Any]) -> int:
    index, state = item
    started = time.perf_counter()
    work = out / WORK
    result = stage.apply(WorkShard(index, work), state)
    record = _write_final(out, index, result)
    record["seconds"] = time.perf_counter() - started
    data.write_json(record, work / f"apply-{index:05d}.json")
    return index


def _done(work: Path, phase: str, count: int) -> set[int]:
    return {index for index in range(count) if (work / f"{phase}-{index:05d}.json").is_file()}


def _prepare(out: Path, fingerprint: str, say: Callable[[str], None], name: str) -> Path:
    work = out / WORK
    record = work / "fingerprint.json"
    if record.is_file():
        if data.read_json(record).get("fingerprint") == fingerprint:
            return work
        say(f"{name}: settings or input changed since the unfinished run in {out}; starting over")
    if out.exists():
        _clear(out)
    data.write_json({"fingerprint": fingerprint}, record)
    return work


def _clear(out: Path) -> None:
    """Remove what an earlier run of this stage wrote, leaving unrelated files alone."""
    (out / data.MARKER).unlink(missing_ok=True)
    for folder in (out, out / data.DROPPED):
        for path in folder.glob(data.SHARD_GLOB):
            path.unlink()
        for name in (data.STATS, data.MARKER):
            (folder / name).unlink(missing_ok=True)
    shutil.rmtree(out / WORK, ignore_errors=True)


def run_stage(stage: Stage, out: Path, engine: Engine, say: Callable[[str], None] = print) -> StageOutcome:
    """Run `stage` into `out` unless it is finished there already with the same settings and input."""
    out = Path(out)
    fingerprint = stage_fingerprint(stage)
    marker = data.read_marker(out)
    if marker and marker.get("fingerprint") == fingerprint:
        shutil.rmtree(out / WORK, ignore_errors=True)  # left by a run killed between marker and clean-up
        say(f"{stage.name}: done earlier ({out}), nothing to do")
        return StageOutcome(stage.name, out, "done earlier", data.read_stats(out))
    if marker:
        say(f"{stage.name}: settings or input changed since {out} was made; running again")
        _clear(out)
    started = time.perf_counter()
    tasks = stage.plan()
    work = _prepare(out, fingerprint, say, stage.name)
    done = _done(work, "map", len(tasks))
    if done:
        say(f"{stage.name}: resuming, {len(done)}/{len(tasks)} shards done earlier")
    pending = [(index, task) for index, task in enumerate(tasks) if index not in done]
    for _ in engine.map(partial(run_map_task, stage, out), pending, desc=f"{stage.name}"):
        pass
    phase = "map"
    if stage.has_reduce:
        shards = [WorkShard(index, work) for index in range(len(tasks))]
        states = stage.reduce(shards)
        applied = _done(work, "apply", len(tasks))
        pending_apply = [(index, states[index]) for index in range(len(tasks)) if index not in applied]
        for _ in engine.map(partial(run_apply_task, stage, out), pending_apply, desc=f"{stage.name} (finish)"):
            pass
        phase = "apply"
    stats = _collect_stats(stage, work, phase, len(tasks), time.perf_counter() - started, engine.name)
    if stats["rows_out"] == 0:
        reasons = ", ".join(f"{reason}: {count}" for reason, count in stats["drops"].items()) or "no input rows"
        raise UserError(f"{stage.name}: the stage produced no rows ({reasons}); check its input and settings")
    dropped_stats = {"stage": stage.name, "rows": stats["rows_in"] - stats["rows_out"], "drops": stats["drops"]}
    data.write_json(dropped_stats, out / data.DROPPED / data.STATS)
    data.write_marker(out / data.DROPPED, {"fingerprint": fingerprint, "of": stage.name})
    data.write_json(stats, out / data.STATS)
    data.write_marker(out, {"fingerprint": fingerprint, "stage": stage.name, "finished": time.time()})
    shutil.rmtree(work, ignore_errors=True)
    say(f"{stage.name}: {stats['rows_in']:,} rows in, {stats['rows_out']:,} out -> {out}")
    return StageOutcome(stage.name, out, "finished", stats)


def _collect_stats(stage: Stage, work: Path, phase: str, count: int, seconds: float, engine: str) -> dict:
    totals = {"rows_out": 0, "bytes_out": 0, "rows_dropped": 0, "bytes_dropped": 0}
    drops: dict[str, int] = {}
    counters: dict[str, float] = {}
    task_seconds = 0.0
    records = [data.read_json(work / f"{phase}-{index:05d}.json") for index in range(count)]
    if phase == "apply":
        map_records = [data.read_json(work / f"map-{index:05d}.json") for index in range(count)]
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
        "stage": stage.name,
        "rows_in": totals["rows_out"] + totals["rows_dropped"],
        "rows_out": totals["rows_out"],
        "bytes_in": totals["bytes_out"] + totals["bytes_dropped"],
        "bytes_out": totals["bytes_out"],
        "drops": dict(sorted(drops.items(), key=lambda item: -item[1])),
        "seconds": round(seconds, 3),
        "task_seconds": round(task_seconds, 3),
        "shards": count,
        "engine": engine,
        "counters": counters,
        "config": stage.config.model_dump(mode="json"),
    }


def _add(into: dict, values: dict) -> None:
    for key, value in values.items():
        into[key] = into.get(key, 0) + value


def run_recipe(recipe: Recipe, out: Path, engine_name: str | None = None,
               say: Callable[[str], None] = print) -> list[StageOutcome]:
    """Run every step of `recipe` in order into `out/<step name>`; the report step writes `out/report.html`.

    Dataset stages share one engine; jobs (tokenize, train, export-hf) run in this process and own their folder.
    """
    from textbooks.engine import make_engine
    from textbooks.jobs import JOBS, run_job
    from textbooks.recipe import step_kinds
    from textbooks.report import write_report

    registry = step_kinds()
    settings = recipe.settings
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    outcomes: list[StageOutcome] = []
    engine: Engine | None = None
    try:
        for step in recipe.steps:
            if step.kind == "report":
                write_report(out, title=step.config.title, say=say)
                continue
            step_input = str(out / step.input[1:]) if step.input and step.input.startswith("@") else step.input
            if step.kind in JOBS:
                job = JOBS[step.kind](step.config, step_input, run_folder=out)
                job.resume = True  # a recipe re-run continues a killed job where it can
                stats = run_job(job, out / step.name, say)
                outcomes.append(StageOutcome(step.name, out / step.name, "finished", stats))
                continue
            stage = registry[step.kind](step.config, step_input)
            if engine is None:
                engine = make_engine(engine_name or settings.engine, settings.workers, settings.ray_address)
            outcomes.append(run_stage(stage, out / step.name, engine, say))
    finally:
        if engine is not None:
            engine.close()
    return outcomes
