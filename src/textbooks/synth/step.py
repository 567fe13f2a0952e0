"""`textbooks synth textbooks|exercises`: the paper's synthetic data from any LLM, diverse by construction and
correct by execution.

    textbooks synth textbooks --count 1000 --llm.model gpt-4o-mini --out runs/x/textbooks
    textbooks synth exercises --count 5000 --attempts 3 --llm.base-url http://localhost:8000/v1 \\
        --llm.model Qwen/Qwen2.5-Coder-7B-Instruct --out runs/x/exercises

Row i is asked with the sampler's parameters for index i (`textbooks.synth.sampler`: topic, audience, level,
style, constraint words, function name; a seed snippet from `snippets` when given), recorded in its columns, so
a dataset can be rebuilt and its coverage measured. Textbook sections: every ```python block runs in the sandbox,
in order, and must print what the text states (`textbook_code.py`); exercises (HumanEval form, `answers.py`):
verified by `textbooks.synth.verify` (parses, allowed imports, its tests and docstring examples pass, the tests
are not trivial). A failed attempt is asked again with the next sample index (a new request, a new seed), up to
`attempts` times; exercises keep up to `solutions` correct ones and the share of attempts that passed
(`pass_rate`, a difficulty label). Every failed attempt goes to `dropped/` with its reason, so `stats.json` and
the report give the error rate per model, per topic and per attempt: the number the paper could not give.

Answers are kept in the LLM response cache (on unless `llm.cache: false`): a killed run resumes without asking
an answered request again. An endpoint that answers none of the first requests stops the step with its error.
"""

from __future__ import annotations

from dataclasses import dataclass

from textbooks.errors import EndedEarly
from textbooks.llm import LLMClient
from textbooks.llm.client import resolve_api_key
from textbooks.llm.config import cached_unless_set
from textbooks.pipeline.executors.base import Worker
from textbooks.pipeline.stage import ShardResult, Stage, run_stage
from textbooks.pipeline.step import Context, SettingError
from textbooks.synth import records
from textbooks.synth.asking import SynthState
from textbooks.synth.config import SynthConfig, make_sampler, messages, version
from textbooks.synth.exercises import write_exercises
from textbooks.synth.sampler import Taxonomy
from textbooks.synth.textbooks import write_textbooks


@dataclass(frozen=True)
class Task:
    start: int
    stop: int


class SynthStage(Stage):
    name = "synth"
    Config = SynthConfig
    takes = ()  # it writes from the sampler; `snippets` is a reference in its settings
    executor = "async"  # LLM requests on one loop under one limit; the sandbox runs in threads beside it
    unfingerprinted = frozenset({"dry_run"})
    allow_empty = True  # every attempt failed: a result (the error rate is 1), said so in the summary
    config: SynthConfig

    @classmethod
    def check(cls, config: SynthConfig) -> None:
        if config.llm is None:
            raise SettingError("llm", "synth needs a model: set `llm:` in the recipe (model, base_url) or "
                                      "--llm.model NAME --llm.base-url URL")
        make_sampler(config)  # a taxonomy that does not load, an unknown audience: refused before any work

    def plan(self) -> list[Task]:
        assert self.config.llm is not None
        if self.config.llm.provider == "openai":
            resolve_api_key(self.config.llm)  # a remote endpoint without a key: refused before any work
        step = self.config.rows_per_task
        return [Task(start, min(start + step, self.config.count)) for start in range(0, self.config.count, step)]

    def setup(self, worker: Worker) -> SynthState:
        return SynthState(self.config, worker)

    async def map(self, task: Task) -> ShardResult:
        state: SynthState = self.state
        params = state.sampler.many(task.stop - task.start, start=task.start)
        snippets = [state.snippets.pick(self.config.seed, item.index) if state.snippets else None
                    for item in params]
        if self.config.kind == "textbooks":
            return await write_textbooks(self.config, state, params, snippets)
        return await write_exercises(self.config, state, params, snippets)

    def run(self, ctx: Context) -> dict:
        if self.config.dry_run:
            raise EndedEarly(self._estimate())
        stats = run_stage(self, ctx)
        stats.update(records.summary(ctx.out, self.config.kind, Taxonomy.load(self.config.taxonomy)))
        ctx.say(records.summary_line(self.name, self.config.kind, stats))
        return stats

    def _estimate(self) -> str:
        assert self.config.llm is not None
        sampler = make_sampler(self.config)
        params = sampler.many(self.config.count)
        conversations = [messages(self.config, item, None) for item in params]
        client = LLMClient(cached_unless_set(self.config.llm))
        estimate = client.estimate_chat(conversations, version=version(self.config),
                                        temperature=self.config.temperature)
        cost = "no price for this model (set llm.prices)" if estimate.cost_usd is None else \
            f"at most ${estimate.cost_usd:,.2f}"
        return (f"synth --dry-run: {self.config.count:,} {self.config.kind}; first attempt: {estimate.requests:,} "
                f"requests ({estimate.cached:,} more answered in the cache), about {estimate.prompt_tokens:,} "
                f"prompt tokens and at most {estimate.max_output_tokens:,} output tokens, {cost}; a failed attempt "
                f"is asked again, up to {self.config.attempts} attempts a row; nothing sent")


__all__ = ["SynthConfig", "SynthStage"]
