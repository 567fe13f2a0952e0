"""Executors run a step's tasks: `process` (a local process pool), `async` (one event loop in this process, for
I/O-bound steps) or `ray` (Ray Data, on this machine or a cluster). A recipe's `engine:` sets the default, a
step may declare its own (`Step.executor`) and a recipe step may override it (`executor:`). Every executor calls
the same stage code on the same tasks, and the outputs go to the same file names, so the datasets they make are
identical. See `base.py` for the interface.
"""

from __future__ import annotations

from textbooks.errors import UserError
from textbooks.pipeline.executors.base import Executor, ExecutorSettings


def make_executor(settings: ExecutorSettings | str | None = None, workers: int | None = None,
                  ray_address: str | None = None) -> Executor:
    """The executor `settings` name (default: process); `make_executor("local", 2)` for short."""
    if settings is None or isinstance(settings, str):
        settings = ExecutorSettings(name=settings, workers=workers, ray_address=ray_address)
    name = settings.name or "process"
    if name in ("process", "local"):
        from textbooks.pipeline.executors.process import ProcessExecutor

        executor: Executor = ProcessExecutor(settings)
    elif name == "async":
        from textbooks.pipeline.executors.aio import AsyncExecutor

        executor = AsyncExecutor(settings)
    elif name == "ray":
        from textbooks.pipeline.executors.ray import RayExecutor

        executor = RayExecutor(settings)
    else:
        raise UserError(f"unknown executor {name!r}; expected process, async or ray")
    executor.name = name  # as chosen: `local` stays `local` in stats.json
    return executor
