"""The `report` step: report.html and report.md about every finished step of a run folder.

    textbooks report runs/demo        # or a `report` step at the end of a recipe

Its folder is RUN/report_files (the PNGs of the Markdown, its stats.json and marker); the pages go next to
it, in the run folder. Its fingerprint is its title and the markers of the steps it reports on, so it is
written again exactly when one of them was made again.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from textbooks.pipeline.identity import step_identity
from textbooks.pipeline.runner import run_step
from textbooks.pipeline.step import Context, Say, Step, StepConfig
from textbooks.report.stages import find_stages
from textbooks.report.write import FILES, PAGE, render_report


class ReportConfig(StepConfig):
    title: str = Field("textbooks run", description="Title of the report page.")


class ReportStep(Step):
    name = "report"
    Config = ReportConfig
    version = 2  # 2: settings folded, each step's figures in the overview, completions, no absolute path
    takes = ("run",)
    makes = "report"
    input_help = "a run folder that `textbooks run` wrote"
    outputs = ("*.png",)
    folder = FILES
    cli_input = "RUN_DIR"
    cli_out = None
    config: ReportConfig

    def identity(self) -> Any:
        return {stage.name: step_identity(stage.marker) for stage in find_stages(Path(str(self.input)))}

    def product(self, out: Path) -> Path:
        return Path(str(self.input)) / PAGE

    def run(self, ctx: Context) -> dict:
        stages = find_stages(Path(str(self.input)))
        page = render_report(Path(str(self.input)), stages, self.config.title)
        ctx.say(f"report: {page}")
        return {"stages": [stage.name for stage in stages]}


def write_report(run_dir: Path, title: str = "textbooks run", say: Say = print) -> Path:
    """Write RUN_DIR/report.html and RUN_DIR/report.md unless they describe its finished steps already."""
    run_step(ReportStep(ReportConfig(title=title), str(run_dir)), Path(run_dir) / FILES, say=say)
    return Path(run_dir) / PAGE
