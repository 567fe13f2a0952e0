"""Sub-phases of a stage's reduce: its heavy work as tasks on the stage's executor, each recorded when done.

    def reduce(self, shards, phases):
        groups = phases.run("groups", self.group, buckets)   # group(bucket) -> a small dict, in a worker
        ...

A reduce that needs every row at once (near-duplicate clusters) can cut that work into tasks the way `map`
cuts a stage: `phases.run(PHASE, fn, items)` runs `fn(item)` for every item not yet recorded, on the executor
that ran the map, and returns what each call returned (a small JSON-serialisable dict) in item order. A task
writes whatever it makes under the step's `.work/` folder (`Work.path`) itself, atomically, before it returns;
then its record `OUT/.work/PHASE-00003.json` is written. A killed run redoes only the tasks without a record,
as it does for `map` and `apply`, and the test hook can kill it after any of them (`STEP:PHASE:COUNT`).
Each `run` waits for all its tasks, so a later phase may read everything an earlier one wrote.

On the process executor a phase of one task (or a pool of one worker) runs in this process, as `map` does.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable

from textbooks.pipeline.executors.base import Executor
from textbooks.pipeline.step import Say
from textbooks.pipeline.work import Work

RESERVED = frozenset({"map", "reduce", "apply"})  # the runner's own phases


@dataclass
class Phases:
    executor: Executor
    work: Work
    step: str
    say: Say
    resumed: dict[str, int] = field(default_factory=dict)  # per phase run: its tasks recorded by an earlier run

    def run(self, phase: str, fn: Callable[[Any], dict], items: list[Any]) -> list[dict]:
        """`fn(item)` for every item (on the executor), each task's result recorded; the results in item order."""
        if phase in RESERVED or not phase.isidentifier():
            raise ValueError(f"phase {phase!r}: a reduce phase needs a name of its own (not {sorted(RESERVED)})")
        done = self.work.done(phase, len(items))
        self.resumed[phase] = len(done)
        if done:
            self.say(f"{self.step}: {phase} resuming, {len(done)}/{len(items)} tasks done earlier")
        pending = [(index, item) for index, item in enumerate(items) if index not in done]
        task = phase_task_async if self.executor.is_async else phase_task
        for _ in self.executor.map(partial(task, fn, self.work, phase), pending, desc=f"{self.step} ({phase})"):
            pass
        return [self.work.read(phase, index)["result"] for index in range(len(items))]


def phase_task(fn: Callable[[Any], dict], work: Work, phase: str, item: tuple[int, Any], state: Any) -> int:
    (index, payload), started = item, time.perf_counter()
    result = fn(payload)
    work.record(phase, index, {"result": result, "seconds": time.perf_counter() - started})
    return index


async def phase_task_async(fn: Callable[[Any], dict], work: Work, phase: str, item: tuple[int, Any],
                           state: Any) -> int:
    """The same on the async executor: `fn` runs in a thread, not blocking the loop."""
    (index, payload), started = item, time.perf_counter()
    result = await asyncio.to_thread(fn, payload)
    work.record(phase, index, {"result": result, "seconds": time.perf_counter() - started})
    return index
