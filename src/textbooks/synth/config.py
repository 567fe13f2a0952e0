"""The settings of `textbooks synth`, and what they make: the sampler and the request for one row."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from textbooks.llm import LLMConfig
from textbooks.pipeline.refs import DatasetInput, PathInput
from textbooks.pipeline.step import StepConfig
from textbooks.synth import prompts
from textbooks.synth.sampler import Params, Sampler, Taxonomy
from textbooks.synth.verify import ALLOWED_IMPORTS


class SynthConfig(StepConfig):
    """Settings of `textbooks synth` (recipe keys and flags)."""

    kind: Literal["textbooks", "exercises"] = Field(description="textbooks (sections of prose with runnable "
                                                                "examples) or exercises (HumanEval-form functions "
                                                                "with tests)")
    count: int = Field(100, ge=1, description="rows to write: sampler indices 0 .. count-1")
    seed: int = Field(0, ge=0, description="seed of the sampler (topics, audiences, names...)")
    taxonomy: PathInput | None = Field(None, description="a topic tree YAML file (default: the built-in one)")
    audiences: list[str] | None = Field(None, description="audiences to sample from (default: all)")
    levels: list[str] | None = Field(None, description="levels to sample from (default: all)")
    styles: list[str] | None = Field(None, description="textbook styles to sample from (default: all)")
    words_per_sample: int = Field(2, ge=0, description="random constraint words per request")
    snippets: DatasetInput | None = Field(None, description="a dataset whose rows seed the requests (e.g. "
                                                            "'@filter'): row i gets a seeded random snippet")
    snippet_chars: int = Field(1500, ge=100, description="characters of a seed snippet shown to the model")
    llm: LLMConfig | None = Field(None, description="the generator (model, base_url, api_key_env, concurrency...)")
    temperature: float = Field(1.0, ge=0, description="sampling temperature of the generator (diversity; each "
                                                      "attempt is a new sample with its own seed)")
    attempts: int = Field(3, ge=1, description="most requests per row: a failed attempt is asked again")
    solutions: int = Field(1, ge=1, description="exercises: correct solutions to keep per problem (asking stops "
                                                "there or at `attempts`)")
    on_failure: Literal["drop", "flag"] = Field("drop", description="textbooks whose code still fails after the "
                                                                    "last attempt: drop them, or keep them with "
                                                                    "code_ok false")
    allowed_imports: list[str] | None = Field(sorted(ALLOWED_IMPORTS), description="modules generated code may "
                                                                                    "import (null: any)")
    timeout_s: float = Field(5.0, gt=0, description="seconds one generated program may run in the sandbox")
    sandbox_workers: int | None = Field(None, ge=1, description="programs run at once (default: the CPU count, "
                                                                "at most 8)")
    rows_per_task: int = Field(50, ge=1, description="rows per task (a task is what a killed run redoes)")
    dry_run: bool = Field(False, description="only estimate the first attempt's requests, tokens and cost; send "
                                             "nothing")


def make_sampler(config: SynthConfig) -> Sampler:
    return Sampler(Taxonomy.load(config.taxonomy), seed=config.seed, audiences=config.audiences,
                   levels=config.levels, styles=config.styles, words_per_sample=config.words_per_sample)


def version(config: SynthConfig) -> str:
    return prompts.TEXTBOOK_VERSION if config.kind == "textbooks" else prompts.EXERCISE_VERSION


def messages(config: SynthConfig, params: Params, snippet: str | None) -> list[dict[str, str]]:
    if config.kind == "textbooks":
        return prompts.textbook_messages(params, snippet, config.snippet_chars)
    return prompts.exercise_messages(params, config.allowed_imports, snippet, config.snippet_chars)
