"""The step contract: every recipe step (dataset stages, tokenize, train, export-hf, eval, report, ...) is a `Step`.

A step has a name, a typed `Config` (its fields are recipe keys and CLI flags), a `version` (raise it when the
same settings would now make something different) and declared kinds: what its input may be (`takes`) and what
it makes (`makes`). It does its work in `run(ctx)` into `ctx.out` and returns the stats to record; a step whose
output is shared (datasets, exported models) also writes a card (`write_card`). Everything else is the runner's
(`textbooks.pipeline.runner`): references resolved, the fingerprint, skip when done, start over when settings
or inputs changed, `.work/` records (`ctx.work`), `stats.json`, the `_SUCCESS` marker.

Dataset stages are steps too (`textbooks.pipeline.stage.Stage`: plan / map / reduce / apply on an executor).
A new step is a subclass of one of the two, registered in `textbooks.pipeline.table`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

from textbooks.errors import UserError
from textbooks.pipeline.identity import content_identity

if TYPE_CHECKING:
    from textbooks.pipeline.executors.base import Executor
    from textbooks.pipeline.work import Work

Say = Callable[[str], None]
# What a step reads and makes. "run" is a run folder (the report reads every finished step in it).
Kind = Literal["dataset", "tokens", "model", "evaluation", "report", "run"]
KIND_LABELS: dict[str, str] = {"dataset": "a dataset", "tokens": "token data", "model": "a model",
                               "evaluation": "an evaluation", "report": "a report", "run": "a run folder"}


class SettingError(UserError):
    """A setting that is well typed but wrong (an unknown preset); `key` names it, for the recipe's line."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key = key


class StepConfig(BaseModel):
    """Settings of one step; unknown keys are refused so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class Context:
    """What the runner hands a step's `run`."""

    out: Path  # the folder the step owns
    say: Say
    settings: StepConfig  # the settings as written (references not resolved), for labels in messages
    work: Work  # OUT/.work: records of unfinished work, stamped with this run's fingerprint
    resuming: bool  # the records in `work` belong to this fingerprint: continue them
    resume_requested: bool  # the caller insisted on continuing (`--resume`)
    fingerprint: str  # the digest the marker will carry
    identity: dict  # the fingerprint's parts: settings, input and reference identities
    executor: Executor | None  # where a stage's tasks run (dataset stages)
    main: bool  # rank 0 under torchrun (or the only process): the one that writes records and files


class Step:
    """Base class of every recipe step."""

    name: ClassVar[str]
    Config: ClassVar[type[StepConfig]]
    version: ClassVar[int] = 1
    takes: ClassVar[tuple[Kind, ...]] = ()  # kinds its `input` may be; () = it reads no input
    makes: ClassVar[Kind]
    input_help: ClassVar[str] = "the input folder"
    # Files and folders of its output folder, removed when it starts over (with stats.json, _SUCCESS, .work).
    outputs: ClassVar[tuple[str, ...]] = ()
    # Its output took long to make (a training run): outside a recipe, a change of settings is refused
    # rather than discarding it.
    precious: ClassVar[bool] = False
    # Settings that change how a step runs but not what it makes; left out of the fingerprint.
    unfingerprinted: ClassVar[frozenset[str]] = frozenset()
    folder: ClassVar[str | None] = None  # its folder's name in a run folder (default: the step's name)
    uses_executor: ClassVar[bool] = False  # dataset stages: its tasks run on an executor
    executor: ClassVar[str | None] = None  # the executor it declares (default: the recipe's engine)
    resources: ClassVar[dict[str, Any]] = {}  # what each task needs on Ray: num_cpus, num_gpus, resources
    # How the command line takes the input and the output folder: a flag, a positional name, or None
    # (no input; for the output: `input / folder`).
    cli_input: ClassVar[str | None] = "--input"
    cli_out: ClassVar[str | None] = "--out"

    def __init__(self, config: StepConfig, input: str | None = None) -> None:
        self.config = config
        self.input = input
        if self.needs_input(config) and not input:
            raise UserError(f"{self.name}: needs an input (--input PATH, or `input:` in a recipe): "
                            f"{self.input_help}")

    @classmethod
    def needs_input(cls, config: StepConfig) -> bool:
        """Whether this step, with these settings, reads an input (a recipe then defaults it to the step before)."""
        return bool(cls.takes)

    @classmethod
    def check(cls, config: StepConfig) -> None:
        """Refuse settings that are well typed but cannot work (raise `SettingError`), in milliseconds and
        without reading any input: a recipe calls it when it loads, the runner before the step starts."""

    def identity(self) -> Any:
        """What identifies the content this step reads besides its settings' references (the runner adds
        those): by default the content identity of `input`."""
        return content_identity(self.input) if self.input else None

    def product(self, out: Path) -> Path:
        """What the step's messages name as its result."""
        return out

    def run(self, ctx: Context) -> dict:
        """Do the work into `ctx.out` and return the stats to record (JSON-serialisable)."""
        raise NotImplementedError

    def write_card(self, ctx: Context, stats: dict) -> None:
        """Describe the output for people and the Hugging Face Hub (`OUT/README.md`: a dataset or model card)
        from the recorded stats; the runner calls it after stats.json and before the marker. By default none."""
