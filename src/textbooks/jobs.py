"""Jobs: recipe steps whose output is not a Parquet dataset (token shards, a trained model, an HF export).

A job has the same outside as a stage (a pydantic `Config` whose fields are recipe keys and CLI flags, an
optional input, a folder it owns) but does its own work inside `run`, where it decides how to resume: the
tokenizer redoes only unfinished input shards, the trainer continues from its last checkpoint. `run_job` owns
the part every job shares: skip when the folder is finished with the same settings and input, write
`stats.json`, then the `_SUCCESS` marker last.

Adding a job: subclass `Job`, give it a `Config` and register it with `@register_job`; add its module to
`load_jobs`.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable, ClassVar

from textbooks import data
from textbooks.errors import UserError
from textbooks.stage import StageConfig

Say = Callable[[str], None]


class Job:
    """Base class of every job step."""

    name: ClassVar[str]
    Config: ClassVar[type[StageConfig]]
    summary: ClassVar[str] = ""
    takes_input: ClassVar[bool] = True
    input_help: ClassVar[str] = "the input folder"
    own_command: ClassVar[bool] = True  # False: the CLI has a hand-written command for it (export-hf)
    # Settings that change how a job runs but not what it makes; left out of the fingerprint.
    unfingerprinted: ClassVar[frozenset[str]] = frozenset()
    resume: bool = False  # the CLI's --resume; a recipe run always resumes what it can

    def __init__(self, config: StageConfig, input: str | None = None, run_folder: Path | None = None) -> None:
        self.config = config
        self.input = input
        self.run_folder = run_folder  # resolves "@step" references inside settings (None outside a recipe)
        if self.needs_input(config) and not input:
            raise UserError(f"{self.name}: needs an input (--input PATH, or `input:` in a recipe)")

    @classmethod
    def needs_input(cls, config: StageConfig) -> bool:
        """Whether this job, with these settings, reads an input (a recipe then defaults it to the previous step)."""
        return cls.takes_input

    def resolve(self, reference: str) -> str:
        """A setting's path: `@name` is the folder of an earlier step of the same run."""
        if reference.startswith("@"):
            if self.run_folder is None:
                raise UserError(f"{self.name}: {reference!r} names a recipe step; outside a recipe give a path")
            return str(self.run_folder / reference[1:])
        return reference

    def fingerprint(self) -> Any:
        """What identifies the input's content (settings are added by `run_job`)."""
        return input_fingerprint(self.input) if self.input else None

    def run(self, out: Path, say: Say) -> dict:
        """Do the work into `out` and return the stats to record (JSON-serialisable)."""
        raise NotImplementedError


JOBS: dict[str, type[Job]] = {}


def register_job(cls: type[Job]) -> type[Job]:
    JOBS[cls.name] = cls
    return cls


def load_jobs() -> dict[str, type[Job]]:
    """Import the modules that register jobs, and return the registry."""
    import textbooks.evaluate.job  # noqa: F401
    import textbooks.model.jobs  # noqa: F401
    import textbooks.pack  # noqa: F401
    import textbooks.train.job  # noqa: F401

    return JOBS


def input_fingerprint(path: str) -> Any:
    """A finished folder's marker fingerprint; else names, sizes and modification times of its files."""
    folder = Path(path)
    marker = data.read_marker(folder) if folder.is_dir() else None
    if marker and "fingerprint" in marker:
        return marker["fingerprint"]
    if folder.is_file():
        return [folder.name, folder.stat().st_size, folder.stat().st_mtime_ns]
    if folder.is_dir():
        return [[str(item.relative_to(folder)), item.stat().st_size, item.stat().st_mtime_ns]
                for item in sorted(folder.rglob("*")) if item.is_file()]
    return path  # not a local path (a hub name): its name identifies it


def job_fingerprint(job: Job) -> str:
    settings = {key: value for key, value in job.config.model_dump(mode="json").items()
                if key not in job.unfingerprinted}
    content = {"job": job.name, "config": settings, "input": job.fingerprint()}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_job(job: Job, out: Path, say: Say = print) -> dict:
    """Run `job` into `out` unless it finished there already with the same settings and input."""
    out = Path(out)
    fingerprint = job_fingerprint(job)
    marker = data.read_marker(out)
    if marker and marker.get("fingerprint") == fingerprint:
        say(f"{job.name}: done earlier ({out}), nothing to do")
        return data.read_stats(out)
    if marker:
        say(f"{job.name}: settings or input changed since {out} was made; running again")
        (out / data.MARKER).unlink(missing_ok=True)
    started = time.perf_counter()
    stats = {"stage": job.name, **job.run(out, say)}
    stats.setdefault("seconds", round(time.perf_counter() - started, 3))
    stats["config"] = job.config.model_dump(mode="json")
    data.write_json(stats, out / data.STATS)
    data.write_marker(out, {"fingerprint": fingerprint, "stage": job.name, "finished": time.time()})
    return stats
