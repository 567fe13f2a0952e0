"""The table of steps: the one place a step is registered. Recipes, the runner and the CLI look steps up here.

Each entry names the step, the class that implements it (`module:Class`, imported only when the step is
used, so `textbooks --help` imports none of them) and a one-line summary for the command list. To add a step:
write its class (a `Step`, or a dataset `Stage`) in its own module and add one line here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from textbooks.errors import UserError

if TYPE_CHECKING:
    from textbooks.pipeline.step import Step


@dataclass(frozen=True)
class Entry:
    name: str
    target: str  # "package.module:Class"
    summary: str


ENTRIES = (
    Entry("ingest", "textbooks.corpus.ingest:IngestStage",
          "read raw code (stdlib, a folder, JSONL/Parquet, a Hugging Face dataset) into files, functions or "
          "classes; clean and exactly deduplicate it"),
    Entry("annotate", "textbooks.quality.annotate:AnnotateStage",
          "score the educational value of a seeded random sample of a dataset with an LLM judge or the offline "
          "rubric (the labels a classifier learns)"),
    Entry("embed", "textbooks.quality.embed:EmbedStage",
          "embed every row of a dataset (feature hashing, a causal LM's mean hidden state, sentence-transformers)"),
    Entry("classify", "textbooks.quality.classify:ClassifyStage",
          "fit a classifier on judged rows' embeddings (a random forest, as the paper) and add edu_score to every row"),
    Entry("filter", "textbooks.quality.filter:FilterStage",
          "keep the rows whose score passes a threshold, or the top fraction of them, without scoring again"),
    Entry("synth", "textbooks.synth.step:SynthStage",
          "write synthetic textbook sections or HumanEval-form exercises with any LLM, diverse by sampled topics, "
          "audiences and names, kept only when their code runs as stated"),
    Entry("dedup", "textbooks.dedup.stage:DedupStage",
          "remove near-duplicates (MinHash LSH on token shingles), keeping the first row of each cluster"),
    Entry("mine-exercises", "textbooks.synth.mine:MineExercisesStage",
          "cut exercises (signature + docstring -> body) from a dataset's documented, self-contained functions, "
          "verified by execution"),
    Entry("diversity", "textbooks.diversity.step:DiversityStage",
          "measure how many variations of each row a dataset holds (families), its redundancy and spread; adds "
          "family_id"),
    Entry("decontaminate", "textbooks.decontam.step:DecontaminateStage",
          "find rows resembling HumanEval/MBPP problems (n-grams, embedding distance, AST match rate, execution "
          "against the problems' tests), report them as the paper's table 3 and prune them"),
    Entry("tokenize", "textbooks.tokens.pack:TokenizeStep",
          "turn a dataset or a weighted mixture of datasets into token files (train.bin, val.bin) for training"),
    Entry("train", "textbooks.train.step:TrainStep",
          "pretrain or finetune a phi model (or finetune any transformers causal LM) on token data"),
    Entry("export-hf", "textbooks.model.step:ExportStep",
          "write a model or training run as a folder transformers.PhiForCausalLM.from_pretrained loads"),
    Entry("eval", "textbooks.evaluate.step:EvalStep",
          "evaluate a model (or a samples file) on HumanEval, MBPP, EvalPlus and the fresh problems"),
    Entry("compare", "textbooks.evaluate.side_by_side:CompareStep",
          "set evaluations (eval steps, run folders, seeds of one arm) side by side with bootstrap intervals over "
          "problems and paired differences, as a table and a bar chart"),
    Entry("report", "textbooks.report.step:ReportStep",
          "write report.html and report.md for a run folder"),
)


def _index(entries: tuple[Entry, ...]) -> dict[str, Entry]:
    table: dict[str, Entry] = {}
    for entry in entries:
        if entry.name in table:
            raise ValueError(f"two steps are named {entry.name!r} in the step table ({table[entry.name].target} "
                             f"and {entry.target}); give one another name")
        table[entry.name] = entry
    return table


STEPS = _index(ENTRIES)


def step_class(name: str) -> type[Step]:
    """The class of step `name`, imported now."""
    from textbooks.pipeline.step import Step

    entry = STEPS.get(name)
    if entry is None:
        raise UserError(f"unknown step {name!r}; expected one of: {', '.join(STEPS)}")
    module, _, attribute = entry.target.partition(":")
    cls = getattr(importlib.import_module(module), attribute)
    if not (isinstance(cls, type) and issubclass(cls, Step)) or cls.name != name:
        raise TypeError(f"step table entry {name!r}: {entry.target} is not a Step named {name!r}")
    return cls
