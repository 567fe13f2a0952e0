"""Writing report.html and report.md for a run folder (the `report` step decides when: `step.py`).

    RUN_DIR/report.html                    one self-contained page: inline CSS, plots as data: URIs
    RUN_DIR/report.md                      the same content as GitHub-flavoured Markdown
    RUN_DIR/report_files/*.png             the Markdown's images (the folder is the report step's own)
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from textbooks.report.blocks import Chapter, Figure, flatten
from textbooks.report.render import to_html, to_markdown
from textbooks.report.stages import StageRun
from textbooks.store.atomic import write_bytes, write_text

PAGE = "report.html"
MARKDOWN = "report.md"
FILES = "report_files"


def _key(index: int, name: str) -> str:
    """An anchor and file-name prefix that is unique (the index) and safe in a URL and a file name."""
    return f"{index:02d}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', name).strip('-.') or 'stage'}"


def build_chapters(stages: list[StageRun]) -> list[Chapter]:
    from textbooks.report.overview import label, overview
    from textbooks.report.sections import sections_for

    chapters = [Chapter("Overview", "overview", overview(stages))]
    for index, stage in enumerate(stages, start=1):
        chapters.append(Chapter(f"{index}. {label(stage)}", _key(index, stage.name), sections_for(stage)))
    return chapters


def image_path(chapter: Chapter, figure: Figure) -> str:
    """Where the Markdown finds a figure, relative to the run folder."""
    return f"{FILES}/{chapter.key}-{figure.name}.png"


def _write_images(run_dir: Path, chapters: list[Chapter]) -> None:
    """Save every figure as a PNG and remove the ones an earlier report left behind."""
    (run_dir / FILES).mkdir(parents=True, exist_ok=True)
    written: set[Path] = set()
    for chapter in chapters:
        for figure in (block for section in chapter.sections for block in flatten(section.blocks)):
            if isinstance(figure, Figure):
                path = run_dir / image_path(chapter, figure)
                if path in written:
                    raise ValueError(f"two figures named {figure.name!r} in chapter {chapter.title!r}; "
                                     "give each figure of a stage's sections its own name")
                write_bytes(figure.png, path)
                written.add(path)
    for stale in set((run_dir / FILES).glob("*.png")) - written:
        stale.unlink()


def render_report(run_dir: Path, stages: list[StageRun], title: str) -> Path:
    """Write RUN_DIR/report.html, report.md and report_files/*.png about `stages`; return the page."""
    run_dir = Path(run_dir)
    chapters = build_chapters(stages)
    intro = (f"{len(stages)} finished {'step' if len(stages) == 1 else 'steps'} in the run folder "
             f"{run_dir.resolve().name}; report written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.")
    _write_images(run_dir, chapters)
    markdown = to_markdown(title, intro, chapters, image_path)
    write_text(markdown, run_dir / MARKDOWN)
    write_text(to_html(title, intro, chapters), run_dir / PAGE)
    return run_dir / PAGE
