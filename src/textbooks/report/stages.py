"""The stages of a run folder: each immediate subfolder that is a finished dataset, in the order they finished."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from textbooks.errors import UserError
from textbooks.report import fmt
from textbooks.store import data


@dataclass(frozen=True)
class StageRun:
    """One finished dataset of a run, as the report sees it.

    `name` is the folder (the recipe step's name); `kind` is the stage that made it, from the marker, and
    picks the stage-specific sections, so a recipe may name a step `dedup_strict` and still get the dedup
    section.
    """

    name: str
    kind: str
    path: Path
    marker: dict
    stats: dict

    @property
    def dropped(self) -> Path:
        return self.path / data.DROPPED

    @property
    def run_dir(self) -> Path:
        return self.path.parent

    def shown(self, path: object) -> str:
        """A path this step recorded, as the report prints it: relative to the run folder (`fmt.path`)."""
        return fmt.path(str(path), self.run_dir)


def find_stages(run_dir: Path) -> list[StageRun]:
    """Every finished dataset directly under `run_dir`, ordered by the time its marker says it finished."""
    if not Path(run_dir).is_dir():
        raise UserError(f"{run_dir}: no such run folder")
    if data.is_complete(run_dir):
        raise UserError(f"{run_dir}: this is a dataset, not a run folder; pass the run folder that holds it")
    stages = []
    for folder in sorted(path for path in Path(run_dir).iterdir() if path.is_dir()):
        marker = data.read_marker(folder)
        # not finished, the dropped rows of another dataset, or a report (of this run)
        if marker is None or "of" in marker or marker.get("kind") == "report":
            continue
        stats = data.read_stats(folder)
        kind = str(marker.get("stage") or stats.get("stage") or folder.name)
        stages.append(StageRun(folder.name, kind, folder, marker, stats))
    if not stages:
        raise UserError(f"{run_dir}: no finished stage in this folder; run a recipe into it first, "
                        f"e.g. `textbooks run RECIPE --out {run_dir}`")
    return sorted(stages, key=lambda stage: (_finished(stage.marker), stage.name))


def _finished(marker: dict) -> float:
    """When the stage finished; a marker without a time (written by hand, or by an old version) sorts first."""
    finished = marker.get("finished")
    return float(finished) if isinstance(finished, (int, float)) else 0.0
