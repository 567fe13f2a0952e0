"""The process executor: a local process pool over tasks, one worker per core by default, with a progress bar.

Workers are started with `spawn`, so a task sees a fresh interpreter whatever the parent holds (threads, Ray,
open files); `setup` runs once in each worker (the pool's initializer), in a pool of its own. Maps without a
setup share one pool, started on first use and kept until `close`: a stage's map, its reduce's phases and its
apply (and the next steps' tasks, while they run on the same executor: a recipe closes it before any other
step, so no idle workers sit through training) pay for starting the workers once. With one worker or one task,
tasks run in this process: no start-up cost for small stages.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Callable, Iterator

from tqdm.auto import tqdm

from textbooks.pipeline.executors.base import Executor, Worker

_STATE: Any = None  # in a pool worker: what `setup` returned


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def _start_worker(setup: Callable[[Worker], Any] | None, worker: Worker) -> None:
    global _STATE
    _STATE = setup(worker) if setup is not None else None


def _call(fn: Callable[[Any, Any], Any], item: Any) -> Any:
    return fn(item, _STATE)


class ProcessExecutor(Executor):
    name = "process"

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        self._shared: ProcessPoolExecutor | None = None  # the pool of maps without a setup


    @property
    def workers(self) -> int:
        return self.settings.workers or available_cores()

    def map(self, fn: Callable[[Any, Any], Any], items: list[Any], desc: str,
            setup: Callable[[Worker], Any] | None = None) -> Iterator[Any]:
        if not items:
            return
        # disable=None: a bar on a terminal, nothing in logs and pipes (the runner prints one line per step).
        bar = tqdm(total=len(items), desc=desc, unit="shard", dynamic_ncols=True, leave=False, disable=None)
        try:
            if self.workers == 1 or len(items) == 1:
                state = setup(Worker(self.limiter())) if setup is not None else None
                for item in items:
                    yield fn(item, state)
                    bar.update()
                return
            yield from self._pool_map(fn, items, setup, bar)
        finally:
            bar.close()

    def _pool(self, workers: int, setup: Callable[[Worker], Any] | None) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start_worker, initargs=(setup, Worker(self.limiter())))

    def _pool_map(self, fn: Callable[[Any, Any], Any], items: list[Any], setup: Callable[[Worker], Any] | None,
                  bar: tqdm) -> Iterator[Any]:
        if setup is not None:
            with self._pool(min(self.workers, len(items)), setup) as pool:
                yield from _run(pool, min(self.workers, len(items)), fn, items, bar)
            return
        if self._shared is None:
            self._shared = self._pool(self.workers, None)
        try:
            yield from _run(self._shared, self.workers, fn, items, bar)
        except BrokenProcessPool:  # a worker died (killed, out of memory): the next map starts a new pool
            self.close()
            raise

    def close(self) -> None:
        if self._shared is not None:
            self._shared.shutdown(cancel_futures=True)
            self._shared = None


def _run(pool: ProcessPoolExecutor, workers: int, fn: Callable[[Any, Any], Any], items: list[Any],
         bar: tqdm) -> Iterator[Any]:
    # Keep a bounded number of tasks in flight so that a failure stops the run soon.
    pending = iter(items)
    running = {pool.submit(_call, fn, item) for _, item in zip(range(2 * workers), pending)}
    try:
        while running:
            done, running = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                result = future.result()
                bar.update()
                yield result
                for item in pending:
                    running.add(pool.submit(_call, fn, item))
                    break
    except BaseException:
        for future in running:
            future.cancel()
        raise
