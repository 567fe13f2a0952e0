"""Writing report.html and report.md for a run folder, unless they already describe its current stages.

    RUN_DIR/report.html                    one self-contained page: inline CSS, plots as data: URIs
    RUN_DIR/report.md                      the same content as GitHub-flavoured Markdown
    RUN_DIR/report_files/*.png             the Markdown's images
    RUN_DIR/report_files/fingerprint.json  the title and stage markers the report was made from
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Callable

from textbooks import data
from textbooks.report.blocks import Chapter, Figure
from textbooks.report.render import to_html, to_markdown
from textbooks.report.stages import StageRun, find_stages

PAGE = "report.html"
MARKDOWN = "report.md"
FILES = "report_files"
FINGERPRINT = "fingerprint.json"
FORMAT_VERSION = 1


def _fingerprint(stages: list[StageRun], title: str) -> dict:
    """A stage's marker changes whenever it is made again, so equal markers mean an equal report."""
    return {"format": FORMAT_VERSION, "title": title, "stages": {stage.name: stage.marker for stage in stages}}


def _up_to_date(run_dir: Path, fingerprint: dict) -> bool:
    record = run_dir / FILES / FINGERPRINT
    if not all(path.is_file() for path in (run_dir / PAGE, run_dir / MARKDOWN, record)):
        return False
    try:
        return data.read_json(record) == fingerprint
    except (OSError, ValueError):
        return False


def _key(index: int, name: str) -> str:
    """An anchor and file-name prefix that is unique (the index) and safe in a URL and a file name."""
    return f"{index:02d}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', name).strip('-.') or 'stage'}"


def build_chapters(stages: list[StageRun]) -> list[Chapter]:
    from textbooks.report.generic import label, overview
    from textbooks.report.sections import load_sections, sections_for

    load_sections()
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
        for figure in (block for section in chapter.sections for block in section.blocks):
            if isinstance(figure, Figure):
                path = run_dir / image_path(chapter, figure)
                if path in written:
                    raise ValueError(f"two figures named {figure.name!r} in chapter {chapter.title!r}; "
                                     "give each figure of a stage's sections its own name")
                data.write_bytes(figure.png, path)
                written.add(path)
    for stale in set((run_dir / FILES).glob("*.png")) - written:
        stale.unlink()


def write_report(run_dir: Path, title: str = "textbooks run", say: Callable[[str], None] = print) -> Path:
    """Write RUN_DIR/report.html and RUN_DIR/report.md about the run's finished stages; return the page."""
    run_dir = Path(run_dir)
    stages = find_stages(run_dir)
    page = run_dir / PAGE
    fingerprint = _fingerprint(stages, title)
    if _up_to_date(run_dir, fingerprint):
        say(f"report: done earlier ({page}), nothing to do")
        return page
    (run_dir / FILES / FINGERPRINT).unlink(missing_ok=True)
    chapters = build_chapters(stages)
    intro = (f"{len(stages)} finished {'stage' if len(stages) == 1 else 'stages'} in the run folder "
             f"{run_dir.resolve().name}; report written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}.")
    _write_images(run_dir, chapters)
    markdown = to_markdown(title, intro, chapters, image_path)
    data.write_bytes(markdown.encode("utf-8"), run_dir / MARKDOWN)
    data.write_bytes(to_html(title, intro, chapters).encode("utf-8"), page)
    data.write_json(fingerprint, run_dir / FILES / FINGERPRINT)
    say(f"report: {page}")
    return page
