"""The local engine: a process pool over tasks, one worker per core by default, with a progress bar.

Workers are started with `spawn`, so a task sees a fresh interpreter whatever the parent holds (threads,
Ray, open files). With one worker or one task, tasks run in this process: no start-up cost for small stages.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Any, Callable, Iterator

from tqdm.auto import tqdm

from textbooks.engine import Engine


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


class LocalEngine(Engine):
    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = workers or available_cores()

    def map(self, fn: Callable[[Any], Any], items: list[Any], desc: str) -> Iterator[Any]:
        if not items:
            return
        # disable=None: a bar on a terminal, nothing in logs and pipes (the runner prints one line per stage).
        bar = tqdm(total=len(items), desc=desc, unit="shard", dynamic_ncols=True, leave=False, disable=None)
        try:
            if self.workers == 1 or len(items) == 1:
                for item in items:
                    yield fn(item)
                    bar.update()
                return
            yield from self._pool_map(fn, items, bar)
        finally:
            bar.close()

    def _pool_map(self, fn: Callable[[Any], Any], items: list[Any], bar: tqdm) -> Iterator[Any]:
        context = multiprocessing.get_context("spawn")
        workers = min(self.workers, len(items))
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            # Keep a bounded number of tasks in flight so that a failure stops the run soon.
            pending = iter(items)
            running = {pool.submit(fn, item) for _, item in zip(range(2 * workers), pending)}
            try:
                while running:
                    done, running = wait(running, return_when=FIRST_COMPLETED)
                    for future in done:
                        result = future.result()
                        bar.update()
                        yield result
                        for item in pending:
                            running.add(pool.submit(fn, item))
                            break
            except BaseException:
                for future in running:
                    future.cancel()
                raise
