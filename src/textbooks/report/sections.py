"""The registry of report sections: what each stage's chapter of the report says.

A section is a function from one finished stage (`StageRun`) to a `Section` of blocks, or None when it has
nothing to say about that stage. Register it for one kind of stage, or for every stage::

    from textbooks.report import Paragraph, Section, StageRun, section

    @section("annotate")
    def judge_scores(stage: StageRun) -> Section | None:
        return Section("Judge scores", [Paragraph(f"{stage.stats['counters'].get('judged', 0):,} judged")])

`kind` is the stage that made the dataset (its marker's "stage"), not the step's folder name. Sections run in
the order they were registered: the generic ones first, then those of `load_sections`' modules; a new
stage's sections go in a module under `textbooks/report/` that `load_sections` imports, which keeps
matplotlib out of the stage's own code.
"""

from __future__ import annotations

from typing import Callable

from textbooks.report.blocks import Section
from textbooks.report.stages import StageRun

StageSection = Callable[[StageRun], Section | None]

_REGISTRY: dict[tuple[str | None, str], tuple[str | None, StageSection]] = {}


def section(kind: str | None = None) -> Callable[[StageSection], StageSection]:
    """Register a section for every stage of `kind`, or for every stage when `kind` is None."""

    def register(function: StageSection) -> StageSection:
        # Keyed by name, so importing a module twice (a reload) does not repeat its sections.
        _REGISTRY[(kind, f"{function.__module__}.{function.__qualname__}")] = (kind, function)
        return function

    return register


def load_sections() -> None:
    """Import the modules that register sections (they draw plots, so only when a report is written)."""
    import textbooks.report.generic  # noqa: F401  (first: the generic sections open every chapter)
    import textbooks.report.dedup  # noqa: F401
    import textbooks.report.training  # noqa: F401
    import textbooks.report.evaluation  # noqa: F401


def sections_for(stage: StageRun) -> list[Section]:
    """Every registered section that applies to `stage` and has something to say, in registration order."""
    made = (function(stage) for kind, function in _REGISTRY.values() if kind in (None, stage.kind))
    return [made_section for made_section in made if made_section is not None]
