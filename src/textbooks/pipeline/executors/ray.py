"""The Ray executor: the same tasks through Ray Data, on this machine or an existing cluster (`ray_address`).

Each task is one block. Without `setup` the blocks go to a pool of Ray tasks; with it to a pool of actors, each
of which runs `setup` once (a model loaded once per worker) and then takes task after task. A task asks for the
step's `num_cpus`, `num_gpus` and custom `resources`, so Ray places it only on nodes that have them. The step
writes its shard files itself, so on a cluster the output folder must be on storage that every node sees (NFS,
a mounted bucket). Ray starts a local instance when no address is given and stops it again in `close`.
"""

from __future__ import annotations

import logging
import math
import pickle
from typing import Any, Callable, Iterator

from textbooks.errors import UserError
from textbooks.pipeline.executors.base import Executor, Worker
from textbooks.pipeline.executors.limits import Limiter


class _Actor:
    """A Ray Data actor: runs `setup` once, then the step's function on every task it is given."""

    def __init__(self, fn: bytes, setup: bytes, limits: tuple[int, float | None]) -> None:
        self.fn = pickle.loads(fn)
        made = pickle.loads(setup)
        self.state = made(Worker(Limiter(*limits))) if made is not None else None

    def __call__(self, row: dict) -> dict:
        return {"result": pickle.dumps(self.fn(pickle.loads(row["task"]), self.state))}


class RayExecutor(Executor):
    name = "ray"

    def __init__(self, settings: Any) -> None:
        super().__init__(settings)
        try:
            import ray
        except ImportError:
            raise UserError("executor ray needs Ray Data: pip install 'textbooks[ray]'") from None
        self._ray = ray
        self._started_here = False

    def _connect(self) -> None:
        """Start or join Ray on first use, so that a run with nothing to do costs no start-up."""
        ray = self._ray
        if ray.is_initialized():
            return
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if self.settings.ray_address:
            options["address"] = self.settings.ray_address
        elif self.settings.workers:
            options["num_cpus"] = self.settings.workers
        try:
            ray.init(**options)
        except ConnectionError as error:
            raise UserError(f"ray_address {self.settings.ray_address!r}: cannot connect to a Ray cluster "
                            f"({error})") from None
        self._started_here = True
        # Ray Data logs a progress block every few seconds when stdout is not a terminal; keep warnings only.
        # Its logging is configured when `ray.data` is first imported, which would undo a level set before.
        import ray.data

        logging.getLogger("ray.data").setLevel(logging.WARNING)

    def _width(self, count: int) -> int:
        """Tasks (or actors) at once: as many as the cluster holds of what each asks for, at most `count`."""
        total = self._ray.cluster_resources()
        needs = {"CPU": self.settings.num_cpus or 1, "GPU": self.settings.num_gpus or 0,
                 **(self.settings.resources or {})}
        fits = [math.floor(total.get(name, 0) / amount) for name, amount in needs.items() if amount]
        width = min(fits) if fits else count
        if width < 1:
            missing = [name for name, amount in needs.items() if amount and total.get(name, 0) < amount]
            raise UserError(f"executor ray: no node of the cluster has {', '.join(missing)} for one task "
                            f"(it has {dict(sorted(total.items()))}); add such a node or lower the step's needs")
        return max(1, min(count, width, self.settings.workers or width))

    def map(self, fn: Callable[[Any, Any], Any], items: list[Any], desc: str,
            setup: Callable[[Worker], Any] | None = None) -> Iterator[Any]:
        if not items:
            return
        self._connect()
        ray = self._ray
        rows = [{"task": pickle.dumps(item)} for item in items]
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
        width = self._width(len(rows))
        placement = {"num_cpus": self.settings.num_cpus or 1, "num_gpus": self.settings.num_gpus or 0}
        if self.settings.resources:
            placement["resources"] = dict(self.settings.resources)
        if setup is None:
            def run(row: dict) -> dict:
                return {"result": pickle.dumps(fn(pickle.loads(row["task"]), None))}

            mapped = dataset.map(run, compute=ray.data.TaskPoolStrategy(size=width), **placement)
        else:
            limits = (self.settings.concurrency, self.settings.requests_per_minute)
            mapped = dataset.map(_Actor, fn_constructor_args=(pickle.dumps(fn), pickle.dumps(setup), limits),
                                 compute=ray.data.ActorPoolStrategy(size=width), **placement)
        try:
            for row in mapped.iter_rows():
                yield pickle.loads(row["result"])
        except ray.exceptions.RayTaskError as error:
            cause = error.as_instanceof_cause()
            if isinstance(cause, UserError) or "UserError" in str(error):
                raise UserError(_user_message(error)) from None
            raise

    def close(self) -> None:
        if self._started_here and self._ray.is_initialized():
            self._ray.shutdown()


def _user_message(error: Exception) -> str:
    text = str(error)
    marker = "UserError: "
    return text[text.rfind(marker) + len(marker):].strip().splitlines()[0] if marker in text else text
