"""The async executor: every task of a step on one asyncio loop in this process, for I/O-bound steps.

All tasks run at once and share what `setup` made (one LLM client, one response-cache connection) and one
`Limiter` (the step's `concurrency` and `requests_per_minute`), so the limits hold for the whole step. The
progress bar counts tasks and shows requests per second. The first task that fails cancels the others.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Coroutine, Sequence
from typing import Any, Callable, Iterator, TypeVar

from tqdm.auto import tqdm

from textbooks.pipeline.executors.base import Executor, Worker

T = TypeVar("T")
R = TypeVar("R")


class AsyncExecutor(Executor):
    name = "async"
    is_async = True

    def map(self, fn: Callable[[Any, Any], Any], items: list[Any], desc: str,
            setup: Callable[[Worker], Any] | None = None) -> Iterator[Any]:
        if not items:
            return
        yield from asyncio.run(self._run(fn, items, desc, setup))

    async def _run(self, fn: Callable[[Any, Any], Any], items: list[Any], desc: str,
                   setup: Callable[[Worker], Any] | None) -> list[Any]:
        limiter = self.limiter()
        state = setup(Worker(limiter)) if setup is not None else None
        if inspect.isawaitable(state):
            state = await state
        started = time.perf_counter()
        bar = tqdm(total=len(items), desc=desc, unit="shard", dynamic_ncols=True, leave=False, disable=None)

        async def one(item: Any) -> Any:
            result = await fn(item, state)
            bar.update()
            bar.set_postfix_str(f"{limiter.requests / max(time.perf_counter() - started, 1e-9):.1f} req/s",
                                refresh=False)
            return result

        try:
            return await gather_or_cancel([one(item) for item in items])
        finally:
            bar.close()
            for held in state.values() if isinstance(state, dict) else [state]:
                if hasattr(held, "aclose"):  # an LLM client's connections, closed on the loop that opened them
                    await held.aclose()


async def gather_or_cancel(coroutines: list[Coroutine[Any, Any, T]]) -> list[T]:
    """The results of `coroutines`, run at once, in order; the first failure cancels the rest and is raised."""
    tasks = [asyncio.ensure_future(coroutine) for coroutine in coroutines]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def map_bounded(fn: Callable[[T], Coroutine[Any, Any, R]], items: Sequence[T], workers: int) -> list[R]:
    """`fn(item)` for every item, at most `workers` at a time, results in input order; the first failure
    cancels the rest and is raised. Unlike `gather_or_cancel` on every item, only `workers` coroutines exist at
    once: 100k prompts are not 100k tasks waiting on one semaphore (their frames, the waits and the garbage
    collector's passes over them cost more CPU than the requests at 64 in flight; bench/llm_throughput.py)."""
    results: list[Any] = [None] * len(items)
    cursor = iter(range(len(items)))

    async def work() -> None:
        for index in cursor:  # shared: each worker takes the next index
            results[index] = await fn(items[index])

    await gather_or_cancel([work() for _ in range(max(1, min(workers, len(items))))])
    return results
