"""References inside settings: a setting typed as a reference names another step's output or a path.

    class TokenizeConfig(StepConfig):
        tokenizer: TokenizerInput = "train"          # "@tokenize/tokenizer", a folder, a hub name
        mixture: list[MixtureSource] | None = None   # each with `input: DatasetInput`

In a recipe `@name` (or `@name/sub/path`) is the folder of the earlier step `name`; `hf:@name` too. The runner
resolves every reference (`resolve`), fingerprints what it points at, and a recipe checks each one when it
loads (the step exists, comes earlier, and makes a kind the reference accepts). Outside a recipe a reference
is a path or a name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Callable, ClassVar, Iterator

from pydantic import AfterValidator, BaseModel

from textbooks.errors import UserError

PREFIXES = ("hf:",)  # a scheme that may stand before `@name` (train's `init: hf:@export-hf`)


class Ref(str):
    """A reference setting's value; subclasses say which kinds of step output it accepts (none: any)."""

    kinds: ClassVar[tuple[str, ...]] = ()

    def _split(self) -> tuple[str, str]:
        for prefix in PREFIXES:
            if self.startswith(prefix):
                return prefix, self[len(prefix):]
        return "", str(self)

    @property
    def step(self) -> str | None:
        """The step a `@name/...` reference names, else None."""
        _, target = self._split()
        return target[1:].split("/", 1)[0] if target.startswith("@") else None

    def resolve(self, run_folder: Path | None, where: str) -> Ref:
        """This reference with `@name` replaced by that step's folder in `run_folder`."""
        prefix, target = self._split()
        if not target.startswith("@"):
            return self
        if run_folder is None:
            raise UserError(f"{where}: {str(self)!r} names a recipe step; outside a recipe give a path")
        name, _, rest = target[1:].partition("/")
        return type(self)(prefix + str(Path(run_folder) / name / rest if rest else Path(run_folder) / name))


class DatasetRef(Ref):
    kinds = ("dataset",)


class ModelRef(Ref):
    kinds = ("model",)


class TokenizerRef(Ref):
    kinds = ("tokens", "model")  # `@tokenize/tokenizer`, or a model folder's tokenizer


class EvaluationRef(Ref):
    kinds = ("evaluation",)  # `@eval`; outside a recipe also a run folder that holds eval steps


class PathRef(Ref):
    """A file or folder of any kind (a samples file, a source folder)."""


def _as(cls: type[Ref]) -> Callable[[str], Ref]:
    return lambda value: cls(value)


DatasetInput = Annotated[str, AfterValidator(_as(DatasetRef))]
ModelInput = Annotated[str, AfterValidator(_as(ModelRef))]
TokenizerInput = Annotated[str, AfterValidator(_as(TokenizerRef))]
PathInput = Annotated[str, AfterValidator(_as(PathRef))]
EvaluationInput = Annotated[str, AfterValidator(_as(EvaluationRef))]


def find_refs(value: Any, location: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], Ref]]:
    """Every reference inside a validated config, with its location (field names and list indices)."""
    if isinstance(value, Ref):
        yield location, value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from find_refs(getattr(value, name), (*location, name))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            yield from find_refs(item, (*location, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from find_refs(item, (*location, key))


def replace_refs(value: Any, replace: Callable[[Ref], Ref]) -> Any:
    """A copy of `value` with every reference replaced by `replace(ref)` (configs are frozen: copied)."""
    if isinstance(value, Ref):
        return replace(value)
    if isinstance(value, BaseModel):
        updates = {name: replace_refs(getattr(value, name), replace) for name in type(value).model_fields}
        return value.model_copy(update=updates)
    if isinstance(value, list):
        return [replace_refs(item, replace) for item in value]
    if isinstance(value, tuple):
        return tuple(replace_refs(item, replace) for item in value)
    if isinstance(value, dict):
        return {key: replace_refs(item, replace) for key, item in value.items()}
    return value


def location_name(location: tuple[Any, ...]) -> str:
    """`("mixture", 0, "input")` -> `mixture.0.input`, as settings are named in messages and fingerprints."""
    return ".".join(str(part) for part in location)
