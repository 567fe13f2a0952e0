"""What every executor is: something that runs `fn(item, state)` over a list of items and yields the results.

`setup(worker)`, when given, runs once per worker before its first item (once per step on the `async`
executor) and its result is the `state` every item of that worker gets: a model loaded once, a client opened
once. Results come back in completion order; a step writes its outputs to files named by the item, so the order
does not change what it makes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field

from textbooks.pipeline.executors.limits import Limiter

ExecutorName = Literal["process", "async", "local", "ray"]  # local: the process pool's older name


class ExecutorSettings(BaseModel):
    """Where and how a step's tasks run (a recipe step's `executor:`, or the run's `engine:` and `workers:`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ExecutorName | None = Field(None, description="process: a local process pool; async: one process and "
                                                        "an event loop (I/O-bound steps); ray: Ray Data.")
    workers: int | None = Field(None, ge=1, description="Processes of the pool, or Ray tasks at once (default: "
                                                        "every core).")
    concurrency: int = Field(64, ge=1, description="async: requests in flight for the whole step.")
    requests_per_minute: float | None = Field(None, gt=0, description="async: request rate for the whole step.")
    num_cpus: float | None = Field(None, gt=0, description="ray: CPUs per task (default: the step's, else 1).")
    num_gpus: float | None = Field(None, ge=0, description="ray: GPUs per task (default: the step's, else 0).")
    resources: dict[str, float] | None = Field(None, description="ray: custom resources per task, e.g. "
                                                                 "{special_node: 1} (default: the step's).")
    ray_address: str | None = Field(None, description="ray: an existing cluster (default: start one here).")

    def merged(self, other: ExecutorSettings | None) -> ExecutorSettings:
        """These settings with every field `other` sets (not None) taking precedence."""
        if other is None:
            return self
        return self.model_copy(update={key: value for key, value in other.model_dump().items()
                                       if key in other.model_fields_set and value is not None})


@dataclass
class Worker:
    """What `setup` gets: the step's limiter (shared on the async executor, per worker elsewhere)."""

    limiter: Limiter


class Executor:
    name: str = ""
    is_async: bool = False  # fn must be a coroutine function

    def __init__(self, settings: ExecutorSettings) -> None:
        self.settings = settings

    def limiter(self) -> Limiter:
        return Limiter(self.settings.concurrency, self.settings.requests_per_minute)

    def map(self, fn: Callable[[Any, Any], Any], items: list[Any], desc: str,
            setup: Callable[[Worker], Any] | None = None) -> Iterator[Any]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the executor holds (a Ray connection it started)."""
