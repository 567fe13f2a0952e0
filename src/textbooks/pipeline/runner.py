"""The one runner: every step, alone or in a recipe, runs through `run_step`, which owns

- references: `@step` in the input and in every reference setting, resolved to that step's folder;
- the fingerprint (`textbooks.pipeline.identity`): settings, the step's version, the content identity of the
  input and of everything the settings refer to;
- skip when the folder is finished with the same fingerprint ("done earlier"); resume from `.work/` when it
  is unfinished with the same fingerprint; start over (say so, remove what the step made) when it differs.
  Two exceptions, both refusals that touch nothing: `resume=True` (the command line's `--resume`) insists on
  continuing, and a precious step (a training run) is not discarded outside a recipe;
- `stats.json` (with the step's settings and its input), the step's card (`Step.write_card`), and the
  `_SUCCESS` marker written last, by rank 0 alone under torchrun.

`run_recipe` runs a recipe's steps in order into `RUN/<step name>`, each through `run_step`, and keeps a copy
of the recipe as `RUN/recipe.yaml`.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from textbooks.errors import UserError
from textbooks.pipeline.executors import make_executor
from textbooks.pipeline.executors.base import Executor, ExecutorSettings
from textbooks.pipeline.identity import changes, content_identity, digest, fingerprint_parts
from textbooks.pipeline.refs import DatasetRef, Ref, find_refs, location_name, replace_refs
from textbooks.pipeline.step import KIND_LABELS, Context, Say, Step
from textbooks.pipeline.work import FOLDER as WORK
from textbooks.pipeline.work import Work
from textbooks.store import data
from textbooks.store.atomic import remove_temporaries

if TYPE_CHECKING:
    from textbooks.pipeline.recipe import Recipe


RECIPE_COPY = "recipe.yaml"


@dataclass
class StepOutcome:
    name: str
    out: Path
    status: str  # "done earlier" | "finished"
    stats: dict


def is_main_process() -> bool:
    """Rank 0 under torchrun, or a process not started by it."""
    return int(os.environ.get("RANK", "0")) == 0


def resolved(step: Step, run_folder: Path | None) -> Step:
    """A copy of `step` with `@name` in its input and its reference settings replaced by folders."""
    where = step.name
    config = replace_refs(step.config, lambda ref: ref.resolve(run_folder, where))
    step_input = Ref(step.input).resolve(run_folder, where) if step.input else None
    return type(step)(config, str(step_input) if step_input is not None else None)


def check_finished(path: str | Path, step_name: str) -> None:
    """Refuse a step folder whose step has not finished (its `.work/` is there, or it has stats but no marker):
    what it holds is partial, and the files inside `.work/` are records, not data."""
    folder = Path(path)
    if not folder.is_dir() or data.is_complete(folder):
        return
    stamp = Work(folder, step_name).stamp()
    if stamp is None and not (folder / data.STATS).is_file():
        return
    maker = ((stamp or {}).get("parts") or {}).get("step") or (data.read_stats(folder) or {}).get("stage")
    by = f"`textbooks {maker}` stopped before its end" if maker else "its step stopped before its end"
    raise UserError(f"{step_name}: {folder} is not finished ({by}, no {data.MARKER}); run the step that makes it "
                    "again to finish it")


def check_input_kind(step: Step) -> None:
    """Refuse an unfinished step folder as input or reference, and a finished one of another kind than the step
    takes (a token folder given to dedup)."""
    for _, ref in find_refs(step.config):  # a model may be read from a run still training: its checkpoints
        if isinstance(ref, DatasetRef) and not str(ref).startswith("hf:"):
            check_finished(ref, step.name)
    if step.input and {"dataset", "tokens"} & set(step.takes) and not str(step.input).startswith("hf:"):
        check_finished(step.input, step.name)
    if not step.input or not step.takes or "run" in step.takes:
        return
    marker = data.read_marker(Path(step.input)) if Path(step.input).is_dir() else None
    kind = (marker or {}).get("kind")
    if kind and kind not in step.takes:
        takes = " or ".join(KIND_LABELS[name] for name in step.takes)
        raise UserError(f"{step.name}: {step.input} holds {KIND_LABELS.get(kind, kind)} (made by "
                        f"{marker.get('stage')}); {step.name} takes {takes}")


def fingerprint(step: Step, target: Step) -> tuple[str, dict]:
    """The digest and parts of `step` (settings as written) reading what `target` (resolved) points at."""
    settings = {key: value for key, value in step.config.model_dump(mode="json").items()
                if key not in step.unfingerprinted}
    refs = {location_name(location): content_identity(ref) for location, ref in find_refs(target.config)}
    parts = fingerprint_parts(step.name, step.version, settings, target.identity(), refs)
    return digest(parts), parts


def clear(out: Path, step: Step) -> None:
    """Remove what an earlier run of this step wrote (its declared outputs), leaving other files alone."""
    for name in (data.MARKER, data.STATS):
        (out / name).unlink(missing_ok=True)
    for pattern in step.outputs:
        for path in out.glob(pattern):
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
    shutil.rmtree(out / WORK, ignore_errors=True)


def run_step(step: Step, out: Path, *, say: Say = print, executor: Executor | None = None,
             run_folder: Path | None = None, resume: bool = False) -> StepOutcome:
    """Run `step` into `out` unless it is finished there with the same fingerprint (see the module docstring).

    `run_folder` is the recipe's run folder (`@name` references resolve in it; None outside a recipe);
    `resume` is the command line's `--resume`.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{step.name}: {out} is a file; the output must be a folder (give another --out)")
    type(step).check(step.config)
    target = resolved(step, run_folder)
    check_input_kind(target)
    fingerprint_digest, parts = fingerprint(step, target)
    main = is_main_process()
    work = Work(out, step.name)
    marker = data.read_marker(out)
    if marker and marker.get("fingerprint") == fingerprint_digest:
        if main:
            work.remove()  # left by a run killed between its marker and the clean-up
        say(f"{step.name}: done earlier ({target.product(out)}), nothing to do")
        return StepOutcome(step.name, out, "done earlier", data.read_stats(out))
    stamp = work.stamp()
    resuming = stamp is not None and stamp.get("fingerprint") == fingerprint_digest
    earlier = marker if marker else (stamp if not resuming else None)
    if earlier is not None:
        _start_over(step, out, earlier, parts, "made" if marker else "started", say, main, resume, run_folder)
    if main:
        remove_temporaries(out)  # what a killed write left: never kept, never mistaken for a result
        if not resuming:
            work.begin(fingerprint_digest, parts)
    started = time.perf_counter()
    ctx = Context(out=out, say=say, settings=step.config, work=work, resuming=resuming, resume_requested=resume,
                  fingerprint=fingerprint_digest, identity=parts, executor=executor, main=main)
    stats = target.run(ctx)
    if main:
        stats = {"stage": step.name, "kind": step.makes, "version": step.version, **stats}
        stats.setdefault("seconds", round(time.perf_counter() - started, 3))
        stats["config"] = step.config.model_dump(mode="json")
        if target.input:  # what it read, resolved: cards follow it back to the steps before
            stats.setdefault("input", str(target.input))
        data.write_json(stats, out / data.STATS)
        target.write_card(ctx, stats)
        data.write_marker(out, {"fingerprint": fingerprint_digest, "stage": step.name, "kind": step.makes,
                                "version": step.version, "finished": time.time(), "parts": parts})
        work.remove()
    return StepOutcome(step.name, out, "finished", stats)


def _start_over(step: Step, out: Path, earlier: dict, parts: dict, made: str, say: Say, main: bool,
                resume: bool, run_folder: Path | None) -> None:
    """Say what changed and remove what the step made, unless the caller or the step forbids it."""
    changed = "; ".join(changes(earlier.get("parts"), parts))
    if resume:
        raise UserError(f"{step.name} --resume: {out} was {made} with other settings or inputs ({changed}); resume "
                        "with the same settings and inputs, or choose another --out")
    if step.precious and run_folder is None:
        raise UserError(f"{step.name}: {out} holds {KIND_LABELS[step.makes]} {made} with other settings or inputs "
                        f"({changed}); to discard it, delete {out} or choose another --out; to continue it, pass "
                        "--resume with the settings it was made with")
    say(f"{step.name}: settings or input changed since {out} was {made} ({changed}); starting over")
    if main:
        clear(out, step)


def run_recipe(recipe: Recipe, out: Path, engine_name: str | None = None,
               say: Say = print, until: str | None = None) -> list[StepOutcome]:
    """Run every step of `recipe` in order into `out/<step name>` (the report into `out/report_files`), or
    the steps up to and including `until`."""
    from textbooks.pipeline.table import step_class

    names = [entry.name for entry in recipe.steps]
    if until is not None and until not in names:
        raise UserError(f"--until {until}: no step of {recipe.path} has that name; its steps: {', '.join(names)}")
    steps = recipe.steps[:names.index(until) + 1] if until is not None else recipe.steps
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    data.write_bytes(Path(recipe.path).read_bytes(), out / RECIPE_COPY)  # what made the run, for its cards
    settings = recipe.settings
    run_default = ExecutorSettings(name=engine_name or settings.engine, workers=settings.workers,
                                   ray_address=settings.ray_address)
    executors: dict[str, Executor] = {}
    outcomes: list[StepOutcome] = []
    try:
        for entry in steps:
            cls = step_class(entry.kind)
            step = cls(entry.config, entry.input)
            executor, key = None, None
            if cls.uses_executor:
                chosen = step_executor(cls, run_default, entry.executor, engine_name)
                key = chosen.model_dump_json()
                executor = executors.get(key) or executors.setdefault(key, make_executor(chosen))
            for other, held in executors.items():
                if other != key:  # idle pool workers or a local Ray are not kept through training and the like
                    held.close()
            folder = out / (cls.folder or entry.name)
            outcomes.append(run_step(step, folder, say=say, executor=executor, run_folder=out))
            if cls.makes == "dataset" and (settings.diversity is True or (
                    isinstance(settings.diversity, list) and entry.name in settings.diversity)):
                from textbooks.diversity.step import measure_step

                measure_step(folder, say)
    finally:
        for executor in executors.values():
            executor.close()
    return outcomes


def step_executor(cls: type[Step], run_default: ExecutorSettings, step_settings: ExecutorSettings | None,
                  forced: str | None = None) -> ExecutorSettings:
    """A step's executor settings: the run's, then what the step class declares, then the recipe step's own;
    `forced` (the command line's `--engine` on `textbooks run`) wins over the run's and the class's."""
    declared: dict[str, Any] = {key: value for key, value in cls.resources.items()
                                if key in ("num_cpus", "num_gpus", "resources")}
    if cls.executor and not forced:
        declared["name"] = cls.executor
    return run_default.merged(ExecutorSettings(**declared)).merged(step_settings)
