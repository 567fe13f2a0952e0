"""Recipes: a YAML file that names the stages of a run and their settings, validated on load.

    engine: local            # or ray
    workers: null            # local engine: processes (default: every core)
    ray_address: null        # ray engine: an existing cluster (default: start one here)
    stages:
      - stage: ingest        # a registered stage, or `report`
        name: ingest         # optional: the output folder under the run folder (default: the stage)
        input: null          # optional: an earlier stage's name or a path (default: the previous stage)
        source: stdlib       # ... the stage's own settings

Any problem (unknown stage or key, wrong type, missing input) is a `UserError` naming the file, the line,
the key and what was expected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from textbooks.errors import UserError
from textbooks.inputs import HF_PREFIX
from textbooks.jobs import Job, load_jobs
from textbooks.stage import Stage, StageConfig, load_stages

STEP_KEYS = ("stage", "name", "input")


class ReportConfig(StageConfig):
    title: str = Field("textbooks run", description="Title of the report page.")


class RunSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    engine: Literal["local", "ray"] = Field("local", description="Where stages run: a local process pool or Ray.")
    workers: int | None = Field(None, ge=1, description="Processes for the local engine (default: every core).")
    ray_address: str | None = Field(None, description="Address of an existing Ray cluster (default: start one).")
    stages: list[Any] = Field(min_length=1, description="The steps, in order.")


@dataclass
class Step:
    kind: str  # a registered stage name, or "report"
    name: str
    config: StageConfig
    input: str | None = None  # a path, hf:NAME, or None (ingest, report)


@dataclass
class Recipe:
    path: Path
    settings: RunSettings
    steps: list[Step] = field(default_factory=list)


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
            lines.append(f"{where}: {label(key)}: {problem['msg']} (got {problem.get('input')!r})")
    return "\n".join(lines)


def load_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such recipe file")
    text = path.read_text(encoding="utf-8")
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
    return recipe


def step_kinds() -> dict[str, type[Stage] | type[Job]]:
    """Every kind of recipe step but `report`: dataset stages and jobs."""
    return {**load_stages(), **load_jobs()}


def _load_step(path: Path, root: yaml.Node, index: int, entry: Any, earlier: list[Step]) -> Step:
    registry = step_kinds()
    known = sorted([*registry, "report"])
    line = _line_of(root, ("stages", index))
    where = f"{path}:{line}: stages[{index}]"
    if not isinstance(entry, dict) or "stage" not in entry:
        raise UserError(f"{where}: each step is a mapping with a `stage` key (one of: {', '.join(known)})")
    kind = entry["stage"]
    if kind not in known:
        raise UserError(f"{where}: unknown stage {kind!r}; expected one of: {', '.join(known)}")
    config_cls = ReportConfig if kind == "report" else registry[kind].Config
    settings = {key: value for key, value in entry.items() if key not in STEP_KEYS}
    try:
        config = config_cls.model_validate(settings)
    except ValidationError as error:
        key = error.errors()[0]["loc"]
        key_line = _line_of(root, ("stages", index, *key))
        where = f"{path}:{key_line or line}: stages[{index}] ({kind})"
        raise UserError(format_validation_error(error, where, {**config_cls.model_fields, **dict.fromkeys(STEP_KEYS)}))\
            from None
    name = str(entry.get("name") or kind)
    if any(step.name == name for step in earlier):
        raise UserError(f"{where}: a step named {name!r} comes earlier; give this one a different `name`")
    takes_input = kind != "report" and _takes_input(registry[kind], config)
    step_input = _resolve_input(where, kind, entry.get("input"), earlier, takes_input)
    return Step(kind, name, config, step_input)


def _takes_input(kind: type[Stage] | type[Job], config: StageConfig) -> bool:
    return kind.needs_input(config) if issubclass(kind, Job) else kind.takes_input


def _resolve_input(where: str, kind: str, value: Any, earlier: list[Step], takes_input: bool) -> str | None:
    if not takes_input:
        if value is not None:
            raise UserError(f"{where}: stage {kind} takes no `input`")
        return None
    if value is None:
        datasets = [step for step in earlier if step.kind != "report"]
        if not datasets:
            raise UserError(f"{where}: stage {kind} needs an `input` (an earlier stage's name, a path or hf:NAME)")
        return f"@{datasets[-1].name}"
    if not isinstance(value, str):
        raise UserError(f"{where}: key 'input': expected a stage name, a path or hf:NAME (got {value!r})")
    if any(step.name == value for step in earlier):
        return f"@{value}"
    if value.startswith((HF_PREFIX, "openai:")) or any(ch in value for ch in "*?[") or Path(value).exists():
        return value
    raise UserError(f"{where}: key 'input': {value!r} is neither an earlier stage nor an existing path")
