"""Engines run a function over a list of tasks: `local` (a process pool) or `ray` (Ray Data).

Both call the same stage code on the same tasks, and the stage's outputs go to the same file names, so the
datasets they make are identical. Results come back in completion order.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Literal

from textbooks.errors import UserError

EngineName = Literal["local", "ray"]


class Engine:
    name: str = ""

    def map(self, fn: Callable[[Any], Any], items: list[Any], desc: str) -> Iterator[Any]:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the engine holds (the Ray connection); the local pool lives only inside `map`."""


def make_engine(name: str, workers: int | None = None, ray_address: str | None = None) -> Engine:
    if name == "local":
        from textbooks.engine.local import LocalEngine

        return LocalEngine(workers)
    if name == "ray":
        from textbooks.engine.ray import RayEngine

        return RayEngine(ray_address, workers)
    raise UserError(f"unknown engine {name!r}; expected local or ray")
