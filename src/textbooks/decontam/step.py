"""`textbooks decontaminate`: find the rows of a dataset that resemble benchmark problems, report them, prune them.

    textbooks decontaminate runs/x/dedup --bench humaneval,mbpp --out runs/x/decontaminate
    textbooks decontaminate runs/x/synth --embeddings runs/x/embed --tau 0.95,0.9,0.85,0.8 --out runs/x/clean

The paper's section 5, with one measure it lacked. Each part of the dataset is compared with every benchmark
problem by n-gram overlap (`ngrams.py`, 13-grams of code tokens) and by the L2 distance of normalised embeddings
(`neighbours.py`; the given embed output, with the benchmark problems embedded by the same embedder, or else
feature hashing made on the fly); a problem's `neighbours` nearest rows and every row sharing an n-gram with it
are its candidates. On the candidates (the reduce step, all parts at once), the AST match rate tau
(`trees.py`) and the execution match (`execution.py`: the row's functions run against the problem's own tests)
are computed. Rows that a measure flags (`findings.py`) go to `dropped/` with `drop_reason` (the measure),
`contaminated_by` (the problem) and `match_score`; the rest is the output. `decontamination.json` holds the
table 3 counts (similar and non-similar problems at each tau, the task ids that `textbooks eval
--decontamination` splits scores by) and every problem's closest rows; `matches.parquet` every scored pair.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field, field_validator

from textbooks.benchmarks import BENCHMARKS, BenchmarkNames
from textbooks.decontam import findings
from textbooks.decontam.candidates import CANDIDATE_SCHEMA, CANDIDATES, Matcher, candidates, selected
from textbooks.decontam.neighbours import StructureVectors
from textbooks.decontam.ngrams import NgramIndex
from textbooks.decontam.targets import Target, load_targets
from textbooks.dedup.tokens import code_token_views
from textbooks.errors import UserError
from textbooks.pipeline.executors.base import Worker
from textbooks.pipeline.phases import Phases
from textbooks.pipeline.refs import DatasetInput
from textbooks.pipeline.stage import DROP_REASON, ShardResult, Stage, WorkShard, run_stage, with_drop_reason
from textbooks.pipeline.step import Context, SettingError, StepConfig
from textbooks.store import data
from textbooks.store.inputs import Part, plan_parts, read_table

SUMMARY = "decontamination.json"
MATCHES = "matches.parquet"
CONTAMINATED_BY = "contaminated_by"
MATCH_SCORE = "match_score"


def _comma_list(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class DecontaminateConfig(StepConfig):
    bench: BenchmarkNames = Field(default_factory=lambda: ["humaneval", "mbpp"],
                             description=f"benchmarks, comma-separated or listed: {', '.join(BENCHMARKS)}")
    ngram: int = Field(13, ge=1, description="tokens per n-gram (the paper: 13)")
    ngram_share: float = Field(0.5, gt=0, le=1, description="prune a row holding at least this share of a "
                                                            "problem's n-grams")
    embeddings: DatasetInput | None = Field(None, description="embeddings of the input (textbooks embed); the "
                                                              "problems are embedded by the same embedder. "
                                                              "Default: feature hashing, made here")
    neighbours: int = Field(10, ge=1, description="nearest rows per problem by embedding distance: the "
                                                  "candidates of the AST and execution checks")
    distance: float | None = Field(None, ge=0, le=2, description="also prune rows within this L2 distance of a "
                                                                 "problem's normalised embedding (the paper "
                                                                 "fixed one, not given)")
    tau: list[float] = Field(default_factory=lambda: [0.95, 0.9, 0.85, 0.8],
                             description="AST match rates at which similar problems are counted (table 3)")
    prune_tau: float | None = Field(None, gt=0, le=1, description="prune rows whose AST match rate reaches "
                                                                  "this (default: the highest tau)")
    execution: bool = Field(True, description="run candidate rows' functions against the problems' tests")
    confirm_plus: bool = Field(True, description="run each execution match on the problem's EvalPlus inputs too "
                                                 "(HumanEval+, MBPP+, where their files are here)")
    timeout_s: float = Field(5.0, gt=0, description="seconds per execution-match program")
    sandbox_workers: int | None = Field(None, ge=1, description="sandbox programs at once (default: every core, at "
                                                                "most 8)")
    benchmarks_dir: str | None = Field(None, description="folder with the benchmark files (default "
                                                         "$TEXTBOOKS_BENCHMARKS, else download)")
    skip_missing: bool = Field(False, description="leave out, with a message, benchmarks whose files are not in "
                                                  "that folder (no download); with none left every row is kept")

    @field_validator("tau", mode="before")
    @classmethod
    def _tau_list(cls, value: Any) -> Any:
        return _comma_list(value)

    @field_validator("tau")
    @classmethod
    def _rates(cls, value: list[float]) -> list[float]:
        outside = [tau for tau in value if not 0 < tau <= 1]
        if outside:
            raise ValueError(f"tau {outside[0]:g} is outside (0, 1]: a match rate of 1 is the same structure")
        if not value:
            raise ValueError("give at least one tau")
        return sorted(set(value), reverse=True)

    def settings(self) -> findings.Settings:
        return findings.Settings(tuple(self.tau), self.prune_tau or max(self.tau), self.ngram, self.ngram_share,
                                 self.distance, self.execution, self.confirm_plus,
                                 self.benchmarks_dir)


@dataclass(frozen=True)
class Slice:
    index: int
    part: Part


@dataclass(frozen=True)
class Findings:
    summary: dict
    matches: pa.Table


@dataclass(frozen=True)
class ShardDrops:
    part: Part
    drops: dict[int, tuple[str, str, float]]  # position -> (measure, problem key, score)
    findings: Findings  # the same object in every shard's state (pickled once)


class DecontaminateStage(Stage):
    name = "decontaminate"
    Config = DecontaminateConfig
    config: DecontaminateConfig
    has_reduce = True
    allow_empty = True  # a dataset that is all benchmark problems is pruned to nothing: a result
    cli_input = "DATASET"
    outputs = (*Stage.outputs, SUMMARY, MATCHES)
    unfingerprinted = frozenset({"sandbox_workers"})
    state: Callable[[], Matcher]
    found: Findings | None = None

    @classmethod
    def check(cls, config: DecontaminateConfig) -> None:
        if config.prune_tau is not None and config.prune_tau < min(config.tau):
            raise SettingError("prune_tau", f"{config.prune_tau:g} is below every tau counted "
                                            f"({', '.join(f'{tau:g}' for tau in config.tau)}); add it to tau")

    def benches(self) -> list[str]:
        """The benchmarks compared with: all of `bench`, or with `skip_missing` those whose files are here."""
        if not self.config.skip_missing:
            return self.config.bench
        from textbooks.benchmarks.files import local_path

        return [name for name in self.config.bench if local_path(name, self.config.benchmarks_dir) is not None]

    def _targets(self) -> list[Target]:
        return load_targets(self.benches(), self.config.benchmarks_dir)

    def plan(self) -> list[Slice]:
        parts = plan_parts(self.input)
        if self.config.embeddings is not None:
            _check_embeddings(self.config.embeddings, parts)
        return [Slice(index, part) for index, part in enumerate(parts)]

    def setup(self, worker: Worker) -> Callable[[], Matcher]:
        """The matcher, made on the worker's first map task (the finishing tasks need none)."""
        return functools.cache(self._matcher)

    def _matcher(self) -> Matcher:
        documents = [target.document for target in self._targets()]
        embedder = _embedder(self.config.embeddings)
        structure = StructureVectors()
        return Matcher(NgramIndex(documents, self.config.ngram), embedder.embed(documents),
                       None if self.config.embeddings is not None else embedder, structure,
                       structure.of([code_token_views(document)[1] for document in documents]))

    def map(self, task: Slice) -> ShardResult:
        if not self.benches():
            return ShardResult(side={CANDIDATES: CANDIDATE_SCHEMA.empty_table()})
        matcher = self.state()
        table = read_table(task.part, ["id", "text"])
        ids = pc.cast(table["id"], "string").to_pylist()
        texts = [text or "" for text in table["text"].to_pylist()]
        if matcher.embedder is None:
            from textbooks.quality.vectors import lookup

            rows = lookup(self.config.embeddings, ids, self.name, shard_index=task.index)
        else:
            rows = matcher.embedder.embed(texts)
        if rows.shape[1] != matcher.vectors.shape[1]:
            raise UserError(f"decontaminate: the embeddings have {rows.shape[1]} dimensions, the problems' "
                            f"{matcher.vectors.shape[1]}; give the embed output of this dataset")
        pairs = candidates(matcher, texts, rows, self.config)
        pairs = pairs.append_column("id", pa.array([ids[position] for position in pairs["position"].to_pylist()],
                                                   pa.string()))
        return ShardResult(side={CANDIDATES: pairs}, counters={"candidate_pairs": pairs.num_rows})

    def reduce(self, shards: list[WorkShard], phases: Phases) -> list[ShardDrops]:
        from textbooks.sandbox import Limits, Sandbox

        targets, slices = self._targets(), self.plan()
        pairs = selected(shards, self.config)
        texts = _texts(pairs, slices)
        sizes = NgramIndex([target.document for target in targets], self.config.ngram).sizes
        settings = self.config.settings()
        if settings.execution:
            limits = Limits(timeout_s=self.config.timeout_s)
            with Sandbox(workers=self.config.sandbox_workers, limits=limits) as sandbox:
                scored = findings.score_pairs(pairs, texts, targets, settings, sandbox,
                                              progress=f"{self.name} execution")
        else:
            scored = findings.score_pairs(pairs, texts, targets, settings, None)
        drops = findings.choose_drops(scored, sizes, targets, settings)
        summary = findings.summarize(scored, sizes, targets, settings, drops, texts)
        self.found = Findings(summary, _with_problems(scored, targets, sizes))
        by_shard: list[dict[int, tuple[str, str, float]]] = [{} for _ in slices]
        for (shard, position), drop in drops.items():
            by_shard[shard][position] = drop
        return [ShardDrops(piece.part, by_shard[piece.index], self.found) for piece in slices]

    def apply(self, shard: WorkShard, state: ShardDrops) -> ShardResult:
        table = read_table(state.part)
        positions = sorted(state.drops)
        mask = np.zeros(table.num_rows, dtype=bool)
        mask[positions] = True
        earlier = [name for name in (DROP_REASON, CONTAMINATED_BY, MATCH_SCORE) if name in table.column_names]
        table = table.drop_columns(earlier)
        dropped = table.filter(pa.array(mask))
        dropped = with_drop_reason(dropped, [f"contaminated:{state.drops[p][0]}" for p in positions])
        dropped = (dropped.append_column(CONTAMINATED_BY, pa.array([state.drops[p][1] for p in positions], pa.string()))
                   .append_column(MATCH_SCORE, pa.array([state.drops[p][2] for p in positions], pa.float64())))
        return ShardResult(kept=table.filter(pa.array(~mask)), dropped=dropped)

    def run(self, ctx: Context) -> dict:
        from textbooks.benchmarks.files import ENV_VAR, FILES

        here = self.benches()
        skipped = [name for name in self.config.bench if name not in here]
        for name in sorted(skipped):
            ctx.say(f"{self.name}: {name}: skipped, {FILES.get(name, name)} is not in "
                    f"{self.config.benchmarks_dir or f'${ENV_VAR}'}")
        if not here:
            ctx.say(f"{self.name}: no benchmark files here: every row is kept as it is")
        stats = run_stage(self, ctx)
        found = self.found or ctx.work.load("reduce")[0].findings
        if ctx.main:
            data.write_json({**found.summary, "skipped": skipped}, ctx.out / SUMMARY)
            pq.write_table(found.matches, ctx.out / MATCHES)
        for line in summary_lines(found.summary):
            ctx.say(f"{self.name}: {line}")
        return {**stats, "decontamination": {key: value for key, value in found.summary.items()
                                             if key not in ("closest", "examples")}}


def _check_embeddings(folder: str, parts: list[Part]) -> None:
    """Refuse embeddings that cannot be of this dataset (another row count), before any work is done."""
    from textbooks.quality.vectors import read_meta

    meta = read_meta(folder, "decontaminate")
    rows = sum(pq.read_metadata(part.path).num_rows if part.path.endswith(".parquet")
               else read_table(part, ["id"]).num_rows for part in parts)
    if meta.get("rows") is not None and int(meta["rows"]) != rows:
        raise UserError(f"decontaminate: {folder} holds embeddings of {meta['rows']:,} rows, the input has "
                        f"{rows:,}; give the embed output of this dataset (embed --input {parts[0].path})")


def _embedder(embeddings: str | None) -> Any:
    """The embedder that made `embeddings` (to embed the problems alike), or feature hashing."""
    from textbooks.quality.config import EmbedConfig
    from textbooks.quality.embedders import make_embedder
    from textbooks.quality.vectors import read_meta

    if embeddings is None:
        return make_embedder(EmbedConfig())
    meta = read_meta(embeddings, "decontaminate")
    hashing = meta["embedder"] == "hashing"
    config = EmbedConfig(embedder=meta["embedder"], model=None if hashing else meta.get("model"),
                         dimension=meta["dimension"] if hashing else None,
                         **({} if hashing or not meta.get("max_tokens") else {"max_tokens": meta["max_tokens"]}))
    return make_embedder(config)


def _texts(pairs: pa.Table, slices: list[Slice]) -> dict[tuple[int, int], str]:
    """The text of every row in `pairs`, read again from its part (only those rows are held)."""
    texts: dict[tuple[int, int], str] = {}
    wanted: dict[int, set[int]] = {}
    for shard, position in zip(pairs["shard"].to_pylist(), pairs["position"].to_pylist()):
        wanted.setdefault(shard, set()).add(position)
    for shard, positions in wanted.items():
        ordered = sorted(positions)
        column = read_table(slices[shard].part, ["text"])["text"].take(pa.array(ordered, pa.int64()))
        texts.update({(shard, position): text or "" for position, text in zip(ordered, column.to_pylist())})
    return texts


def _with_problems(scored: pa.Table, targets: list[Target], sizes: np.ndarray) -> pa.Table:
    """The scored pairs for `matches.parquet`: with each problem's benchmark, task id and n-gram share."""
    index = scored["target"].to_numpy()
    return (scored.append_column("bench", pa.array([targets[i].bench for i in index], pa.string()))
            .append_column("task_id", pa.array([targets[i].problem.task_id for i in index], pa.string()))
            .append_column("ngram_share", pa.array(findings.ngram_share(scored, sizes), pa.float64())))


def summary_lines(summary: dict) -> list[str]:
    """One line per benchmark (similar problems at each tau, n-gram and execution matches) and the pruning."""
    lines = []
    for bench, found in summary["benchmarks"].items():
        similar = ", ".join(f"tau {tau}: {counts['similar']}" for tau, counts in found["similar"].items())
        lines.append(f"{bench}: {found['problems']} problems; similar at {similar}; sharing a "
                     f"{summary['settings']['ngram']}-gram: {found['ngram']['problems_sharing']}; "
                     f"passed by a row: {found['execution']['problems_passed']}")
    pruned = summary["pruned"]
    by = ", ".join(f"{measure} {count}" for measure, count in pruned["by_measure"].items()) or "none"
    lines.append(f"pruned {pruned['rows']:,} rows ({by})")
    return lines


__all__ = ["DecontaminateConfig", "DecontaminateStage", "MATCHES", "SUMMARY"]
