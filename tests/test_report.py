"""The run report on a real run folder made by the real runner: two tiny stages, then `write_report`."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from textbooks.errors import UserError
from textbooks.pipeline.executors import make_executor
from textbooks.pipeline.runner import run_step
from textbooks.pipeline.stage import ShardResult, Stage, with_drop_reason
from textbooks.pipeline.step import StepConfig
from textbooks.report import Paragraph, Section, StageRun, Table, section, write_report
from textbooks.report.blocks import Chapter
from textbooks.report.read import text_lengths
from textbooks.report.render import to_markdown
from textbooks.store import data

SCRIPT = "<script>alert('x')</script> | ``` not a fence"


class MakeRowsConfig(StepConfig):
    rows_per_task: int = 40


class MakeRows(Stage):
    """An ingest-like stage: documents of many lengths, the shortest and one hostile row dropped."""

    name = "ingest"
    Config = MakeRowsConfig
    takes = ()

    def plan(self) -> list[Any]:
        return [0, 1]

    def map(self, task: Any) -> ShardResult:
        count = self.config.rows_per_task
        ids = [f"doc-{task}-{index}" for index in range(count)]
        texts = [f"def f{index}():\n" + "    return 1\n" * (index * index % 97) for index in range(count)]
        if task == 0:
            texts[0] = SCRIPT
        table = pa.table({"id": ids, "text": texts, "source": ["test"] * count})
        short = [len(text) < 40 or text == SCRIPT for text in texts]
        kept = table.filter(pa.array([not flag for flag in short]))
        dropped = table.filter(pa.array(short))
        reasons = ["hostile" if text == SCRIPT else "too_short" for text in dropped["text"].to_pylist()]
        return ShardResult(kept=kept, dropped=with_drop_reason(dropped, reasons), counters={"files": 1})


class NearDupConfig(StepConfig):
    cluster_size: int = 3


class NearDup(Stage):
    """A dedup-like stage: rows grouped into `minhash_cluster`s, the first of each kept."""

    name = "dedup"
    Config = NearDupConfig

    def plan(self) -> list[Any]:
        return data.shard_paths(Path(self.input))

    def map(self, task: Any) -> ShardResult:
        table = data.read_shard(task)
        clusters = [f"{task.name}-{index // self.config.cluster_size}" if index < 12 else None
                    for index in range(table.num_rows)]
        table = table.append_column("minhash_cluster", pa.array(clusters, pa.string()))
        first = [cluster is None or index % self.config.cluster_size == 0 for index, cluster in enumerate(clusters)]
        kept = table.filter(pa.array(first))
        dropped = table.filter(pa.array([not flag for flag in first]))
        originals = [f"{task.name}-row-{index - index % self.config.cluster_size}"
                     for index, flag in enumerate(first) if not flag]
        dropped = dropped.append_column("duplicate_of", pa.array(originals, pa.string()))
        return ShardResult(kept=kept, dropped=with_drop_reason(dropped, "near_duplicate"))


def _run(out: Path) -> None:
    engine = make_executor("process", 1)
    run_step(MakeRows(MakeRowsConfig()), out / "ingest", executor=engine, say=lambda line: None)
    run_step(NearDup(NearDupConfig(), str(out / "ingest")), out / "dedup", executor=engine, say=lambda line: None)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    _run(out)
    (out / "unfinished").mkdir()  # a stage that never finished: not part of the report
    return out


@pytest.fixture
def run_dir(finished_run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


@pytest.fixture(scope="module")
def reported(finished_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One report written on a copy of the run, for the tests that only read it."""
    copy = tmp_path_factory.mktemp("reported") / "run"
    shutil.copytree(finished_run, copy)
    lines: list[str] = []
    page = write_report(copy, title="tiny <run>", say=lines.append)
    assert page == copy / "report.html"
    assert lines == [f"report: {page}"]
    return copy


def test_html_is_self_contained(reported: Path) -> None:
    page = (reported / "report.html").read_text(encoding="utf-8")
    sources = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert sources, "the page shows no image"
    assert all(source.startswith(("data:image/png;base64,", "#")) for source in sources)
    assert len([source for source in sources if source.startswith("data:")]) >= 5
    assert "http://" not in page and "https://" not in page
    assert "<link" not in page and "<script" not in page


def test_html_shows_stages_counts_and_reasons(reported: Path) -> None:
    page = (reported / "report.html").read_text(encoding="utf-8")
    ingest, dedup = data.read_stats(reported / "ingest"), data.read_stats(reported / "dedup")
    assert "<title>tiny &lt;run&gt;</title>" in page
    for stats in (ingest, dedup):
        assert f">{stats['stage']}<" in page or f". {stats['stage']}<" in page
        for key in ("rows_in", "rows_out"):
            assert f">{stats[key]:,}<" in page
        for reason, count in stats["drops"].items():
            assert reason in page and f">{count:,}<" in page
    assert "unfinished" not in page
    assert page.index("1. ingest") < page.index("2. dedup")
    assert "Near-duplicate clusters" in page and "doc-0-1" in page
    assert "duplicate of: part-00000.parquet-row-0" in page


def test_drop_sample_is_escaped(reported: Path) -> None:
    page = (reported / "report.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "<script>" not in page
    markdown = (reported / "report.md").read_text(encoding="utf-8")
    fenced = re.search(r"^(`{4,})text\nid: doc-0-0\n(.*?)\n\1$", markdown, re.M | re.S)
    assert fenced and fenced.group(2) == SCRIPT


def test_markdown_links_pngs_that_exist(reported: Path) -> None:
    markdown = (reported / "report.md").read_text(encoding="utf-8")
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown)
    assert len(links) >= 5
    for link in links:
        assert not link.startswith(("/", "http")) and link.startswith("report_files/")
        assert (reported / link).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "| ingest |" in markdown and "near\\_duplicate" in markdown


@pytest.fixture
def reported_copy(reported: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(reported, copy)
    return copy


def test_second_call_skips_until_a_marker_or_the_title_changes(reported_copy: Path) -> None:
    lines: list[str] = []
    page, markdown = reported_copy / "report.html", reported_copy / "report.md"
    old = 1_000_000_000
    for path in (page, markdown):
        os.utime(path, (old, old))
    write_report(reported_copy, title="tiny <run>", say=lines.append)
    assert lines[-1] == f"report: done earlier ({page}), nothing to do"
    assert page.stat().st_mtime == old and markdown.stat().st_mtime == old

    marker = data.read_marker(reported_copy / "dedup")
    data.write_marker(reported_copy / "dedup", {**marker, "fingerprint": "0" * 16})
    write_report(reported_copy, title="tiny <run>", say=lines.append)
    assert lines[-1] == f"report: {page}"
    assert page.stat().st_mtime != old and markdown.stat().st_mtime != old
    assert "0" * 16 in page.read_text(encoding="utf-8")

    write_report(reported_copy, title="another title", say=lines.append)
    assert lines[-1] == f"report: {page}"
    assert "<h1>another title</h1>" in page.read_text(encoding="utf-8")


def test_stale_images_are_removed(reported_copy: Path) -> None:
    stale = reported_copy / "report_files" / "99-gone-drops.png"
    stale.write_bytes(b"old")
    shutil.rmtree(reported_copy / "dedup")
    write_report(reported_copy, title="tiny <run>", say=lambda line: None)
    assert not stale.exists()
    assert not list((reported_copy / "report_files").glob("*dedup*"))
    assert "dedup" not in (reported_copy / "report.md").read_text(encoding="utf-8")


def test_registered_section_is_added_to_its_stage_only(run_dir: Path) -> None:
    @section("ingest")
    def probe(stage: StageRun) -> Section:
        return Section("Probe section", [Paragraph(f"probe saw {stage.stats['counters']['files']:g} files")])

    write_report(run_dir, say=lambda line: None)
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    assert page.count("Probe section") == 1 and "probe saw 2 files" in page


def test_run_without_finished_stage_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no finished stage"):
        write_report(tmp_path, say=lambda line: None)
    (tmp_path / "half").mkdir()
    data.write_table(pa.table({"id": ["a"], "text": ["x"], "source": ["s"]}), tmp_path / "half" / data.shard_name(0))
    with pytest.raises(UserError, match="no finished stage"):
        write_report(tmp_path, say=lambda line: None)
    with pytest.raises(UserError, match="no such run folder"):
        write_report(tmp_path / "missing", say=lambda line: None)


def test_a_dataset_folder_is_not_a_run(finished_run: Path, tmp_path: Path) -> None:
    dataset = next(path for path in sorted(finished_run.iterdir()) if data.is_complete(path))
    with pytest.raises(UserError, match="this is a dataset, not a run folder"):
        write_report(dataset, say=lambda line: None)
    assert not (dataset / "report.html").exists()


def test_lengths_are_sampled(finished_run: Path) -> None:
    everything = text_lengths(finished_run / "ingest")
    assert len(everything) == data.read_stats(finished_run / "ingest")["rows_out"]
    assert len(text_lengths(finished_run / "ingest", limit=10)) == 10


def test_markdown_escapes_table_cells() -> None:
    chapter = Chapter("c", "c", [Section("s", [Table(["a|b", "n"], [["x | <y>", "1"]], "lr")])])
    markdown = to_markdown("t", "i", [chapter], lambda chapter, figure: "")
    assert "| a\\|b | n |\n|:---|---:|\n| x \\| \\<y\\> | 1 |" in markdown
