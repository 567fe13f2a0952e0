"""The table of report sections: what each step's chapter of the report says.

A section is a function from one finished step (`StageRun`) to a `Section` of blocks (or a list of them), or
None when it has nothing to say about that step. `SECTIONS` lists the built-in ones, each for one kind of step
(the step that made the folder, from its marker, not the folder's name) or for every step (None), by
`module:function`, so that matplotlib is imported only when a report is written and no module of the report
imports this one. Sections run in table order: the generic ones first. Code outside the package adds its own
with `section`:

    from textbooks.report import Paragraph, Section, StageRun, section

    @section("annotate")
    def judge_scores(stage: StageRun) -> Section | None:
        return Section("Judge scores", [Paragraph(f"{stage.stats['counters'].get('judged', 0):,} judged")])
"""

from __future__ import annotations

import importlib
from typing import Callable

from textbooks.report.blocks import Section
from textbooks.report.stages import StageRun

StageSection = Callable[[StageRun], Section | list[Section] | None]

SECTIONS: list[tuple[str | None, str | StageSection]] = [
    (None, "textbooks.report.generic:summary"),
    (None, "textbooks.report.generic:drop_reasons"),
    (None, "textbooks.report.generic:document_lengths"),
    ("dedup", "textbooks.report.dedup:near_duplicate_clusters"),
    ("annotate", "textbooks.report.quality:judge_scores"),
    ("classify", "textbooks.report.quality:classifier_measures"),
    ("synth", "textbooks.report.synth:generated"),
    ("mine-exercises", "textbooks.report.synth:mined"),
    ("decontaminate", "textbooks.report.decontam:section"),
    ("tokenize", "textbooks.report.training:token_data"),
    ("train", "textbooks.report.training:loss_curves"),
    ("export-hf", "textbooks.report.training:exported"),
    ("eval", "textbooks.report.evaluation:scores"),
    ("compare", "textbooks.report.comparison:section"),
    (None, "textbooks.report.diversity:section"),
]


def section(kind: str | None = None) -> Callable[[StageSection], StageSection]:
    """Add a section for every step of `kind`, or for every step when `kind` is None, after the built-in ones."""

    def register(function: StageSection) -> StageSection:
        # Keyed by name, so importing a module twice (a reload) does not repeat its sections.
        SECTIONS[:] = [(known, target) for known, target in SECTIONS
                       if not callable(target) or _name(target) != _name(function)]
        SECTIONS.append((kind, function))
        return function

    return register


def _name(function: StageSection) -> str:
    return f"{function.__module__}.{function.__qualname__}"


def _load(target: str | StageSection) -> StageSection:
    if callable(target):
        return target
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def sections_for(stage: StageRun) -> list[Section]:
    """Every section that applies to `stage` and has something to say, in table order."""
    made = (_load(target)(stage) for kind, target in SECTIONS if kind in (None, stage.kind))
    return [one for sections in made if sections is not None
            for one in (sections if isinstance(sections, list) else [sections])]
