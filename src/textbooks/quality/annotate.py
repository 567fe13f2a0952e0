"""`textbooks annotate`: a judge's educational-value score on a seeded random sample of a dataset.

    textbooks annotate --input runs/x/ingest --sample-size 1000 --out runs/x/annotate          # the rubric
    textbooks annotate --input runs/x/ingest --annotator llm --llm.model gpt-4o --sample-size 100000 ...
    textbooks annotate --input runs/x/ingest --annotator llm --llm.model gpt-4o \\
        --compare.annotator rubric --sample-size 300 --out runs/x/agreement               # two judges, agreement

    - stage: annotate        # in a recipe
      sample_size: 1000
      annotator: llm
      llm: {model: gpt-4o-mini, base_url: http://localhost:8000/v1}

The paper (section 1(a)) had GPT-4 label about 100k samples for the educational value of a snippet to a student
learning basic coding concepts; a classifier learns those labels and scores the rest (`classify`). The sample
is the `sample_size` rows with the smallest hash of (seed, id): the same for every executor and every run, and
a larger sample contains a smaller one. The output is the sample, with the input's columns and `edu_label`
(the score, 0-5; null when the judge's answer could not be read or the request kept failing), `edu_reason`
and `annotator`. Judges: `rubric` (offline, `textbooks.quality.rubric`) and `llm` (any model the one client
reaches, prompt in `textbooks.quality.prompts`; an answer that is not a score is asked again, `reasks` times).
With `compare`, a second judge scores the same rows (`edu_label_compare`), and stats.json reports their
agreement: Spearman's rank correlation and Cohen's kappa at `threshold`: worth knowing before paying for
100k labels.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field
from tqdm.auto import tqdm

from textbooks.errors import EndedEarly
from textbooks.llm import Completion, LLMClient, LLMConfig, LLMError
from textbooks.llm.client import resolve_api_key
from textbooks.llm.config import cached_unless_set
from textbooks.llm.pricing import cost_usd, price_of
from textbooks.llm.types import Messages
from textbooks.pipeline.executors.base import Worker
from textbooks.pipeline.stage import ShardResult, Stage, run_stage
from textbooks.pipeline.step import Context, SettingError, StepConfig
from textbooks.quality import prompts, rubric
from textbooks.quality.agreement import agreement
from textbooks.quality.parse import parse_score
from textbooks.quality.rubric import Label
from textbooks.store import data
from textbooks.store.inputs import Part, plan_parts, read_table

EDU_LABEL, EDU_REASON, ANNOTATOR = "edu_label", "edu_reason", "annotator"
SCALE = (0.0, 5.0)


class Judge(BaseModel):
    """A judge: the offline rubric, or an LLM through the one client."""

    model_config = ConfigDict(extra="forbid")

    annotator: Literal["rubric", "llm"] = Field("rubric", description="rubric (offline rules) or llm (a model "
                                                                      "through the llm settings)")
    llm: LLMConfig | None = Field(None, description="the model the llm annotator asks (model, base_url, ...)")


class AnnotateConfig(StepConfig):
    """Settings of `textbooks annotate` (recipe keys and flags)."""

    sample_size: int = Field(1000, ge=1, description="rows to annotate, a seeded random sample of the input "
                                                     "(the paper labelled about 100k)")
    seed: int = Field(0, ge=0, description="seed of the sample")
    annotator: Literal["rubric", "llm"] = Field("rubric", description="rubric (offline rules, no endpoint) or "
                                                                      "llm (the model in --llm.*)")
    llm: LLMConfig | None = Field(None, description="the model the llm annotator asks (model, base_url, "
                                                    "api_key_env, concurrency, ...)")
    max_chars: int = Field(6000, ge=100, description="characters of a snippet shown to an LLM judge (longer ones "
                                                     "are cut)")
    reasks: int = Field(2, ge=0, description="times an answer that is not a score is asked again before the "
                                             "row is left unscored")
    structured_output: bool = Field(True, description="ask LLM judges for the JSON object by schema "
                                                      "(response_format json_schema), which OpenAI, vLLM, SGLang, "
                                                      "llama.cpp and Ollama enforce; a server that refuses the "
                                                      "field is asked without it for the rest of the step")
    compare: Judge | None = Field(None, description="a second judge for the same rows: their agreement goes to "
                                                    "stats.json")
    threshold: float = Field(3.0, ge=SCALE[0], le=SCALE[1], description="the score from which a snippet counts "
                                                                        "as educational (for Cohen's kappa)")
    retry_failed: bool = Field(False, description="ask again only the requests that failed or were cut short last "
                                                  "time; answered ones come from the LLM cache (llm.cache, on "
                                                  "unless set)")
    dry_run: bool = Field(False, description="only estimate the LLM judges' requests, tokens and cost for this "
                                             "sample (answers already cached are not counted), send nothing")


def _needs_llm(annotator: str, llm: LLMConfig | None, key: str) -> None:
    if annotator == "llm" and llm is None:
        raise SettingError(key, f"annotate: the llm annotator needs a model: set `{key}:` in the recipe "
                                f"(model, base_url) or --{key}.model NAME --{key}.base-url URL; or use the "
                                "rubric annotator, which needs no endpoint")


@dataclass(frozen=True)
class Task:
    part: Part
    chosen: frozenset[str]  # ids of this part's rows in the sample
    rows: int  # rows of the part (all of them count as read)


def sample_key(seed: int, row_id: str) -> int:
    """A row's place in the seeded random order: the sample is the rows with the smallest keys."""
    return int.from_bytes(hashlib.blake2b(f"{seed}\0{row_id}".encode(), digest_size=8).digest(), "big")


class RubricJudge:
    name = f"rubric-v{rubric.VERSION}"

    async def label(self, texts: list[str]) -> tuple[list[Label], dict[str, float]]:
        return [rubric.score(text) for text in texts], {}


class LLMJudge:
    """Asks the model for each snippet's score; an unreadable answer is asked again (the conversation with a
    request for the JSON alone), up to `reasks` times."""

    def __init__(self, config: LLMConfig, limiter: Any, max_chars: int, reasks: int,
                 retry_failed: bool = False, structured: bool = True) -> None:
        self.client = LLMClient(config, limiter=limiter)
        self.name = f"llm:{config.model}/{prompts.VERSION}"
        self.max_chars, self.reasks, self.retry_failed = max_chars, reasks, retry_failed
        self.structured = structured  # turned off for the step by the first refusal of response_format
        self._schema_taken = False  # a request by schema has been answered
        self._probe: asyncio.Lock | None = None  # made in the step's loop
        # one bar for every request of the step (all shards): requests/s, tokens/s and spend
        self.bar = tqdm(total=0, desc=f"annotate {config.model}", unit="req", dynamic_ncols=True, disable=None)

    async def _ask(self, conversations: list[Messages], counts: dict[str, float]) -> list[Completion | LLMError]:
        """The replies, by schema while the server takes it. Until one request by schema has been answered, one
        goes alone (the others, of every shard, wait for it), so that a server that refuses the field refuses
        it once; a reply refused for the schema (counted) is asked again without it."""
        if self.structured and not self._schema_taken and conversations:
            self._probe = self._probe or asyncio.Lock()
            async with self._probe:
                if self.structured and not self._schema_taken:
                    first = await self._send(conversations[:1], counts)
                    self._schema_taken = self.structured
                    return first + (await self._send(conversations[1:], counts) if conversations[1:] else [])
        return await self._send(conversations, counts)

    async def _send(self, conversations: list[Messages], counts: dict[str, float]) -> list[Completion | LLMError]:
        schema = {"response_format": prompts.RESPONSE_FORMAT} if self.structured else {}
        replies = await self.client.map_chat(conversations, progress=self.bar, return_exceptions=True,
                                             version=prompts.VERSION,  # a new prompt text: new cache keys
                                             retry_failed=self.retry_failed, **schema)
        refused = [index for index, reply in enumerate(replies) if _refuses_schema(reply)]
        if schema and refused:
            self.structured = False
            counts["schema_refused"] += len(refused)
            again = await self._send([conversations[index] for index in refused], counts)
            for index, reply in zip(refused, again):
                replies[index] = reply
        return replies

    async def aclose(self) -> None:
        self.bar.close()
        await self.client.aclose()

    def _count_usage(self, reply: Completion, counts: dict[str, float]) -> None:
        """Tokens and cost of an answer asked in this run (the server's counts; nothing for a cached one)."""
        if reply.cached:
            counts["cached"] += 1
            return
        counts["prompt_tokens"] += reply.prompt_tokens
        counts["completion_tokens"] += reply.completion_tokens
        config = self.client.config
        counts["cost_usd"] += cost_usd(price_of(config.model, config.prices), reply.prompt_tokens,
                                       reply.completion_tokens) or 0.0

    async def label(self, texts: list[str]) -> tuple[list[Label], dict[str, float]]:
        asked = [prompts.messages(text, self.max_chars) for text in texts]
        labels: list[Label | None] = [None] * len(texts)
        last: dict[int, str] = {}
        pending = list(range(len(texts)))
        counts = {"requests": 0.0, "reasked": 0.0, "failed_requests": 0.0, "unparseable": 0.0, "schema_refused": 0.0,
                  "cached": 0.0, "prompt_tokens": 0.0, "completion_tokens": 0.0, "cost_usd": 0.0}
        for attempt in range(self.reasks + 1):
            replies = await self._ask([asked[i] for i in pending], counts)
            counts["requests"] += len(pending)
            if attempt:
                counts["reasked"] += len(pending)
            still = []
            for reply in replies:
                if isinstance(reply, Completion):
                    self._count_usage(reply, counts)
            for index, reply in zip(pending, replies):
                if isinstance(reply, Exception):
                    counts["failed_requests"] += 1
                    labels[index] = Label(None, f"request failed: {reply}"[:300])
                    continue
                parsed = parse_score(reply.text, *SCALE)
                if parsed is None:
                    last[index] = reply.text
                    asked[index] = prompts.reask(asked[index], reply.text)
                    still.append(index)
                else:
                    labels[index] = Label(*parsed)
            pending = still
            if not pending:
                break
        for index in pending:
            counts["unparseable"] += 1
            labels[index] = Label(None, f"no score in {self.reasks + 1} answers; the last: {last[index][:200]!r}")
        return [label for label in labels if label is not None], counts


def _refuses_schema(reply: Completion | LLMError) -> bool:
    """Whether a server refused a request for its response_format (HTTP 400/422 naming the field)."""
    text = str(reply).lower()  # a refusal recorded in the cache by an earlier run has no status, but its text
    return isinstance(reply, LLMError) and (reply.status in (400, 422) or "http 400" in text or "http 422" in text) \
        and ("response_format" in text or "json_schema" in text)


def _estimate_line(judge: Judge | AnnotateConfig, texts: list[str], max_chars: int, reasks: int,
                   structured: bool) -> str:
    if judge.annotator == "rubric" or judge.llm is None:
        return f"rubric: {len(texts):,} rows, no requests"
    schema = {"response_format": prompts.RESPONSE_FORMAT} if structured else {}
    asked = [prompts.messages(text, max_chars) for text in texts]
    estimate = LLMClient(cached_unless_set(judge.llm)).estimate_chat(asked, version=prompts.VERSION, **schema)
    cost = "no price for this model (set llm.prices)" if estimate.cost_usd is None else \
        f"at most ${estimate.cost_usd:,.2f}"
    return (f"{judge.llm.model}: {estimate.requests:,} requests ({estimate.cached:,} more answered in the cache), "
            f"about {estimate.prompt_tokens:,} prompt tokens and at most {estimate.max_output_tokens:,} output "
            f"tokens, {cost}; an answer that is not a score is asked again, up to {reasks} more times")


def _judge(judge: Judge | AnnotateConfig, config: AnnotateConfig, worker: Worker) -> RubricJudge | LLMJudge:
    if judge.annotator == "rubric":
        return RubricJudge()
    assert judge.llm is not None  # checked in `check`
    return LLMJudge(cached_unless_set(judge.llm), worker.limiter, config.max_chars, config.reasks,
                    config.retry_failed, config.structured_output)


class AnnotateStage(Stage):
    name = "annotate"
    Config = AnnotateConfig
    executor = "async"  # I/O-bound with an LLM judge: one loop, one concurrency and rate limit for the step
    unfingerprinted = frozenset({"dry_run"})
    config: AnnotateConfig

    @classmethod
    def check(cls, config: AnnotateConfig) -> None:
        _needs_llm(config.annotator, config.llm, "llm")
        if config.compare is not None:
            _needs_llm(config.compare.annotator, config.compare.llm, "compare.llm")

    def plan(self) -> list[Task]:
        for judge in (self.config, self.config.compare):
            if judge is not None and judge.annotator == "llm" and judge.llm is not None \
                    and judge.llm.provider == "openai":
                resolve_api_key(judge.llm)  # a remote endpoint without a key: refused before any work
        parts = plan_parts(self.input)
        ids = [read_table(part, ["id"])["id"].to_pylist() for part in parts]
        keys = sorted((sample_key(self.config.seed, str(row_id)), str(row_id)) for part in ids for row_id in part)
        chosen = {row_id for _, row_id in keys[: self.config.sample_size]}
        return [Task(part, frozenset(str(row_id) for row_id in part_ids if str(row_id) in chosen), len(part_ids))
                for part, part_ids in zip(parts, ids)]

    def _estimate(self) -> str:
        """The dry run's report: what each judge would send for the sample."""
        texts: list[str] = []
        for task in self.plan():
            if task.chosen:
                table = read_table(task.part, ["id", "text"])
                texts += [text or "" for row_id, text in zip(table["id"].to_pylist(), table["text"].to_pylist())
                          if str(row_id) in task.chosen]
        judges = [self.config] + ([self.config.compare] if self.config.compare is not None else [])
        lines = [_estimate_line(judge, texts, self.config.max_chars, self.config.reasks,
                                self.config.structured_output) for judge in judges]
        return f"{self.name} --dry-run: {len(texts):,} sampled rows; nothing sent\n" + "\n".join(
            f"  {line}" for line in lines)

    def setup(self, worker: Worker) -> dict[str, RubricJudge | LLMJudge]:
        judges = {"": _judge(self.config, self.config, worker)}
        if self.config.compare is not None:
            judges["_compare"] = _judge(self.config.compare, self.config, worker)
        return judges

    async def map(self, task: Task) -> ShardResult:
        table = read_table(task.part)
        if not task.chosen:
            return ShardResult(kept=table.slice(0, 0), counters={"rows_read": task.rows})
        mask = pa.array([str(row_id) in task.chosen for row_id in table["id"].to_pylist()])
        sample = table.filter(mask)
        texts = [text or "" for text in sample["text"].to_pylist()]
        judged = await asyncio.gather(*(judge.label(texts) for judge in self.state.values()))
        counters: dict[str, float] = {"rows_read": task.rows}
        for suffix, (judge, (labels, counts)) in zip(self.state, zip(self.state.values(), judged)):
            sample = (sample.append_column(EDU_LABEL + suffix, pa.array([label.score for label in labels],
                                                                        pa.float64()))
                      .append_column(EDU_REASON + suffix, pa.array([label.reason for label in labels], pa.string()))
                      .append_column(ANNOTATOR + suffix, pa.array([judge.name] * len(labels), pa.string())))
            for name, value in counts.items():
                counters[name + suffix] = counters.get(name + suffix, 0) + value
            counters["unscored" + suffix] = sum(label.score is None for label in labels)
        return ShardResult(kept=sample, counters=counters)

    def run(self, ctx: Context) -> dict:
        if self.config.dry_run:
            raise EndedEarly(self._estimate())
        stats = run_stage(self, ctx)
        columns = [EDU_LABEL] + ([EDU_LABEL + "_compare"] if self.config.compare else [])
        table = pa.concat_tables([data.read_shard(path, columns) for path in data.shard_paths(ctx.out)])
        scores = [value for value in table[EDU_LABEL].to_pylist() if value is not None]
        values, counts = np.unique(scores, return_counts=True)
        stats["labels"] = {f"{value:g}": int(count) for value, count in zip(values.tolist(), counts.tolist())}
        stats["mean_label"] = float(np.mean(scores)) if scores else None
        ctx.say(f"{self.name}: {len(scores):,} of {table.num_rows:,} sampled rows scored, mean "
                f"{stats['mean_label'] if stats['mean_label'] is not None else math.nan:.2f} on 0-5")
        counters = stats.get("counters", {})
        for suffix, judge in (("", self.config), ("_compare", self.config.compare)):
            if judge is not None and judge.annotator == "llm" and judge.llm is not None:
                ctx.say(f"{self.name}: {judge.llm.model}: {counters.get('requests' + suffix, 0):,.0f} requests "
                        f"({counters.get('cached' + suffix, 0):,.0f} answered from the cache), "
                        f"{counters.get('prompt_tokens' + suffix, 0):,.0f} prompt and "
                        f"{counters.get('completion_tokens' + suffix, 0):,.0f} output tokens, "
                        f"${counters.get('cost_usd' + suffix, 0):,.4f}")
        if self.config.compare is not None:
            found = agreement(table[EDU_LABEL].to_pylist(), table[EDU_LABEL + "_compare"].to_pylist(),
                              self.config.threshold)
            stats["agreement"] = found
            ctx.say(f"{self.name}: agreement of the two judges on {found['rows']:,} rows: Spearman "
                    f"{found['spearman']:.3f}, Cohen's kappa {found['kappa']:.3f} at {self.config.threshold:g}")
        return stats


__all__ = ["ANNOTATOR", "EDU_LABEL", "EDU_REASON", "AnnotateConfig", "AnnotateStage", "sample_key"]
