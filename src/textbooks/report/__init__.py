"""The run report: `write_report(RUN_DIR)` writes report.html (self-contained) and report.md.

    textbooks report runs/demo        # or a `report` step at the end of a recipe

The report has an overview (a table of the stages and a funnel of rows through them) and one chapter per
finished stage, built from registered sections: every stage gets a summary, its drop reasons with a few
dropped rows each, and its document lengths; a stage adds its own with `@section("its name")`
(see `sections.py`). Modules: `stages` finds the datasets, `read` samples them, `plots` draws, `generic` and
`dedup` hold the sections, `render` writes HTML and Markdown, `write` puts the files in place.
"""

from textbooks.report.blocks import Figure, Paragraph, Preformatted, Section, Subheading, Table
from textbooks.report.sections import section
from textbooks.report.stages import StageRun
from textbooks.report.step import write_report

__all__ = ["Figure", "Paragraph", "Preformatted", "Section", "StageRun", "Subheading", "Table", "section",
           "write_report"]
