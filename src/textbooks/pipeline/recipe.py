"""Recipes: a YAML file that names the steps of a run and their settings, validated on load.

    engine: process          # the default executor of dataset stages: process (local is its older name),
                             # async or ray
    workers: null            # processes of the pool, or Ray tasks at once (default: every core)
    ray_address: null        # ray: an existing cluster (default: start one here)
    stages:
      - stage: ingest        # a step of textbooks.pipeline.table
        name: ingest         # optional: the output folder under the run folder (default: the step)
        input: null          # optional: an earlier step's name or a path (default: the step before)
        executor: async      # optional: this step's executor, or a mapping ({name: ray, num_gpus: 1})
        expect: {rows: 1e6}  # optional: figures for `--dry-run` (textbooks.pipeline.dryrun), never fingerprinted
        source: stdlib       # ... the step's own settings

Everything is checked before any step runs, and each problem is a `UserError` naming the file, the line, the
key and what was expected: an unknown step or key, a wrong type, a missing input, a reference (`@name` inside a
setting) to a step that does not come earlier, and steps in an impossible order (each step declares the kind
of input it takes and the kind it makes: train takes token data, so it cannot follow ingest).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from textbooks.errors import UserError
from textbooks.pipeline.executors.base import ExecutorName, ExecutorSettings
from textbooks.pipeline.refs import find_refs, location_name
from textbooks.pipeline.step import KIND_LABELS, SettingError, Step, StepConfig
from textbooks.pipeline.table import STEPS, step_class
from textbooks.store.data import read_marker

STEP_KEYS = ("stage", "name", "input", "executor", "expect")
RUN_INPUT = "@"  # the input of a step that reads the run folder itself (the report)
ASSUMED_MFU = 0.5  # the paper's A100 run implies about 50% (770 GPU-hours for 51B tokens of phi-1)


class RunSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engine: ExecutorName = Field("process", description="Where dataset stages run by default: a local process "
                                                        "pool, an event loop, or Ray.")
    workers: int | None = Field(None, ge=1, description="Processes of the pool (default: every core).")
    ray_address: str | None = Field(None, description="Address of an existing Ray cluster (default: start one).")
    diversity: bool | list[str] = Field(False, description="Measure the diversity and redundancy of every "
                                                           "dataset the recipe makes (true), or of the steps "
                                                           "named (a list): each one's diversity.json, set side "
                                                           "by side in the report.")
    stages: list[Any] = Field(min_length=1, description="The steps, in order.")


class Expect(BaseModel):
    """A recipe step's `expect:` mapping: what the dry run cannot know from the settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rows: float | None = Field(None, ge=0, description="Rows the step makes (a source: the rows it holds).")
    tokens_per_row: float | None = Field(None, gt=0, description="Mean tokens of a row it makes.")
    kept: float | None = Field(None, ge=0, le=1, description="Share of its input rows the step keeps.")
    gpus: int | None = Field(None, ge=1, description="GPUs the step runs on.")
    tokens_per_s_per_gpu: float | None = Field(None, gt=0, description="Throughput of the step on one GPU.")
    gpu: str | None = Field(None, description="The GPU model (A100, H100...): FLOPs-based GPU-hours when no "
                                              "throughput is known.")
    mfu: float = Field(ASSUMED_MFU, gt=0, le=1, description="Model FLOPs utilisation assumed with `gpu`.")


@dataclass
class RecipeStep:
    kind: str  # a step of the table
    name: str
    config: StepConfig
    input: str | None = None  # `@name`, a path, hf:NAME, `@` (the run folder), or None
    executor: ExecutorSettings | None = None
    makes: str = ""
    expect: Expect = field(default_factory=lambda: Expect())


@dataclass
class Recipe:
    path: Path
    settings: RunSettings
    steps: list[RecipeStep] = field(default_factory=list)


def _line_of(root: yaml.Node | None, location: tuple[Any, ...]) -> int | None:
    """1-based line of the YAML node at `location` (keys and list indices), or of its nearest parent."""
    node, line = root, None
    for key in location:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((value for name, value in node.value if name.value == key), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            node = None
    return node.start_mark.line + 1 if node is not None else line


def format_validation_error(error: ValidationError, where: str, fields: dict[str, Any] | None = None,
                            flags: bool = False) -> str:
    """One line per problem: the key (or CLI flag), what is wrong, and what is expected."""
    def label(key: str) -> str:
        return f"flag '--{key.replace('_', '-')}'" if flags else f"key '{key}'"

    lines = []
    for problem in error.errors():
        key = ".".join(str(part) for part in problem["loc"]) or "(top level)"
        if problem["type"] == "extra_forbidden":
            allowed = ", ".join(sorted(fields)) if fields else "see the documentation"
            lines.append(f"{where}: unknown key '{key}'; expected one of: {allowed}")
        elif problem["type"] == "missing":
            lines.append(f"{where}: missing {label(key)}")
        else:
            message = problem["msg"].removeprefix("Value error, ")
            lines.append(f"{where}: {label(key)}: {message} (got {problem.get('input')!r})")
    return "\n".join(lines)


def load_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such recipe file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start}); save it as UTF-8") from None
    try:
        raw = yaml.safe_load(text)
        root = yaml.compose(text)
    except yaml.YAMLError as error:
        raise UserError(f"{path}: not valid YAML ({error})") from None
    if not isinstance(raw, dict):
        raise UserError(f"{path}: a recipe is a mapping with a `stages` list; see recipes/demo.yaml")
    try:
        settings = RunSettings.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]["loc"]
        line = _line_of(root, tuple(first))
        where = f"{path}:{line}" if line else str(path)
        raise UserError(format_validation_error(error, where, RunSettings.model_fields)) from None
    recipe = Recipe(path, settings)
    for index, entry in enumerate(settings.stages):
        recipe.steps.append(_load_step(path, root, index, entry, recipe.steps))
    if isinstance(settings.diversity, list):
        names = [step.name for step in recipe.steps]
        unknown = [name for name in settings.diversity if name not in names]
        if unknown:
            raise UserError(f"{path}: diversity names {', '.join(map(repr, unknown))}, which is no step of this "
                            f"recipe; name steps among: {', '.join(names)} (or write `diversity: true`)")
    return recipe


def _load_step(path: Path, root: yaml.Node, index: int, entry: Any, earlier: list[RecipeStep]) -> RecipeStep:
    known = sorted(STEPS)
    line = _line_of(root, ("stages", index))
    where = f"{path}:{line}: stages[{index}]"
    if not isinstance(entry, dict) or "stage" not in entry:
        raise UserError(f"{where}: each step is a mapping with a `stage` key (one of: {', '.join(known)})")
    kind = entry["stage"]
    if kind not in STEPS:
        raise UserError(f"{where}: unknown stage {kind!r}; expected one of: {', '.join(known)}")
    cls = step_class(kind)
    settings = {key: value for key, value in entry.items() if key not in STEP_KEYS}
    try:
        config = cls.Config.model_validate(settings)
    except ValidationError as error:
        key = error.errors()[0]["loc"]
        key_line = _line_of(root, ("stages", index, *key))
        where = f"{path}:{key_line or line}: stages[{index}] ({kind})"
        raise UserError(format_validation_error(error, where, {**cls.Config.model_fields,
                                                               **dict.fromkeys(STEP_KEYS)})) from None
    try:
        cls.check(config)
    except SettingError as error:
        key_line = _line_of(root, ("stages", index, error.key))
        raise UserError(f"{path}:{key_line or line}: stages[{index}] ({kind}): key '{error.key}': {error}") from None
    name = str(entry.get("name") or kind)
    if any(step.name == name for step in earlier):
        raise UserError(f"{where}: a step named {name!r} comes earlier; give this one a different `name`")
    step_input = _resolve_input(where, cls, config, entry.get("input"), earlier)
    _check_refs(path, root, index, kind, config, earlier)
    executor = _executor(path, root, index, kind, entry.get("executor"))
    if executor is not None and not cls.uses_executor:
        raise UserError(f"{where} ({kind}): key 'executor': {kind} runs in the recipe's own process; only "
                        "dataset stages take an executor")
    return RecipeStep(kind, name, config, step_input, executor, cls.makes,
                      _expect(path, root, index, kind, entry.get("expect")))


def _kind_error(where: str, cls: type[Step], what: str, made: str, maker: str) -> UserError:
    takes = " or ".join(KIND_LABELS[name] for name in cls.takes)
    return UserError(f"{where}: {cls.name} takes {takes}, but {what} is {KIND_LABELS.get(made, made)} (made by "
                     f"{maker}); put a step that makes {takes} before it, or set `input:`")


def _resolve_input(where: str, cls: type[Step], config: StepConfig, value: Any,
                   earlier: list[RecipeStep]) -> str | None:
    if cls.takes == ("run",):
        if value is not None:
            raise UserError(f"{where}: {cls.name} reads the whole run folder and takes no `input`")
        return RUN_INPUT
    if not cls.needs_input(config):
        if value is not None:
            raise UserError(f"{where}: stage {cls.name} takes no `input`")
        return None
    makers = [step for step in earlier if step.makes != "report"]
    if value is None:
        if not makers:
            raise UserError(f"{where}: stage {cls.name} needs an `input` (an earlier stage's name, a path or "
                            "hf:NAME)")
        previous = makers[-1]
        if previous.makes not in cls.takes:
            raise _kind_error(where, cls, f"the step before it, {previous.name},", previous.makes, previous.kind)
        return f"@{previous.name}"
    if not isinstance(value, str):
        raise UserError(f"{where}: key 'input': expected a stage name, a path or hf:NAME (got {value!r})")
    named = next((step for step in earlier if step.name == value), None)
    if named is not None:
        if named.makes not in cls.takes:
            raise _kind_error(where, cls, f"its input {value}", named.makes, named.kind)
        return f"@{value}"
    if value.startswith(("hf:", "openai:")) or any(ch in value for ch in "*?["):
        return value
    if Path(value).exists():
        marker = read_marker(Path(value)) if Path(value).is_dir() else None
        if marker and marker.get("kind") and marker["kind"] not in cls.takes:
            raise _kind_error(where, cls, f"its input {value}", marker["kind"], str(marker.get("stage")))
        return value
    raise UserError(f"{where}: key 'input': {value!r} is neither an earlier stage nor an existing path")


def _check_refs(path: Path, root: yaml.Node, index: int, kind: str, config: StepConfig,
                earlier: list[RecipeStep]) -> None:
    """Every `@name` reference inside the settings names an earlier step that makes what it accepts."""
    for location, ref in find_refs(config):
        name = ref.step
        if name is None:
            continue
        line = _line_of(root, ("stages", index, *location))
        where = f"{path}:{line}: stages[{index}] ({kind}): key '{location_name(location)}'"
        named = next((step for step in earlier if step.name == name), None)
        if named is None:
            names = ", ".join(step.name for step in earlier) or "none"
            raise UserError(f"{where}: {str(ref)!r} names no earlier step (the steps before it: {names}); a "
                            "step can only use what the steps before it made")
        if ref.kinds and named.makes not in ref.kinds:
            wanted = " or ".join(KIND_LABELS[name] for name in ref.kinds)
            raise UserError(f"{where}: {str(ref)!r} is {KIND_LABELS.get(named.makes, named.makes)} (made by "
                            f"{named.kind}); this setting takes {wanted}")


def _expect(path: Path, root: yaml.Node, index: int, kind: str, value: Any) -> Expect:
    try:
        return Expect.model_validate(value or {})
    except ValidationError as error:
        line = _line_of(root, ("stages", index, "expect"))
        where = f"{path}:{line}: stages[{index}] ({kind}): expect"
        raise UserError(format_validation_error(error, where, Expect.model_fields)) from None


def _executor(path: Path, root: yaml.Node, index: int, kind: str, value: Any) -> ExecutorSettings | None:
    if value is None:
        return None
    try:
        return ExecutorSettings.model_validate({"name": value} if isinstance(value, str) else value)
    except ValidationError as error:
        line = _line_of(root, ("stages", index, "executor"))
        where = f"{path}:{line}: stages[{index}] ({kind}): executor"
        raise UserError(format_validation_error(error, where, ExecutorSettings.model_fields)) from None

