"""The run report: `write_report(RUN_DIR)` writes report.html (self-contained) and report.md.

    textbooks report runs/demo        # or a `report` step at the end of a recipe

The report has an overview (a table of the steps, each with its own figures, and a funnel of rows through
the dataset stages) and one chapter per finished step, built from registered sections: every step gets a
summary with its settings folded away, a dataset stage its drop reasons with a few dropped rows each and its
document lengths, an evaluation a few passing and failing completions per benchmark; a step adds its own with
`@section("its name")` (see `sections.py`). The report names no folder of the machine that wrote it: paths are
relative to the run folder (`fmt.path`). Modules: `stages` finds the steps, `read` samples datasets, `plots`
draws, `overview` makes the table of steps, `generic`, `dedup`, `training` and `evaluation` hold the sections,
`render` writes HTML and Markdown, `write` puts the files in place.
"""

from textbooks.report.blocks import Figure, Paragraph, Preformatted, Section, Subheading, Table
from textbooks.report.sections import section
from textbooks.report.stages import StageRun
from textbooks.report.step import write_report

__all__ = ["Figure", "Paragraph", "Preformatted", "Section", "StageRun", "Subheading", "Table", "section",
           "write_report"]
