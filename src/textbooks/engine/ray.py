"""The Ray engine: the same tasks through Ray Data, on this machine or an existing cluster (`ray_address`).

Each task is one block, mapped with one CPU; the stage writes its shard files itself, so on a cluster the
output folder must be on storage that every node sees (NFS, a mounted bucket). Ray starts a local instance
when no address is given and stops it again in `close`.
"""

from __future__ import annotations

import logging
import pickle
from typing import Any, Callable, Iterator

from textbooks.engine import Engine
from textbooks.errors import UserError


class RayEngine(Engine):
    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise UserError("engine: ray needs Ray Data: pip install 'textbooks[ray]'") from None
        self._ray = ray
        self._address = address
        self._workers = workers
        self._started_here = False

    def _connect(self) -> None:
        """Start or join Ray on first use, so that a run with nothing to do costs no start-up."""
        ray = self._ray
        if ray.is_initialized():
            return
        options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                   "configure_logging": False}
        if self._address:
            options["address"] = self._address
        elif self._workers:
            options["num_cpus"] = self._workers
        try:
            ray.init(**options)
        except ConnectionError as error:
            raise UserError(f"ray_address {self._address!r}: cannot connect to a Ray cluster ({error})") from None
        self._started_here = True
        # Ray Data logs a progress block every few seconds when stdout is not a terminal; keep warnings only.
        logging.getLogger("ray.data").setLevel(logging.WARNING)

    def map(self, fn: Callable[[Any], Any], items: list[Any], desc: str) -> Iterator[Any]:
        if not items:
            return
        self._connect()
        ray = self._ray

        def run(row: dict) -> dict:
            return {"result": pickle.dumps(fn(pickle.loads(row["task"])))}

        rows = [{"task": pickle.dumps(item)} for item in items]
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows))
        # A task pool as wide as the cluster: the default ramps up from one task at a time.
        width = max(1, min(len(rows), int(ray.cluster_resources().get("CPU", 1))))
        mapped = dataset.map(run, num_cpus=1, compute=ray.data.TaskPoolStrategy(size=width))
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
