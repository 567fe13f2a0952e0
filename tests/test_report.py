"""The run report on a real run folder made by the real runner: two tiny stages and two evaluations of
completions written here (judged in the real sandbox), then `write_report`."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from browser import render

import textbooks
from textbooks.benchmarks import load_benchmark
from textbooks.errors import UserError
from textbooks.evaluate.step import EvalConfig, EvalStep
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


HOSTILE = "    return '</code></pre><script>alert(1)</script>'\n"


def _write_samples(path: Path, completions: dict[str, str]) -> Path:
    path.write_text("".join(json.dumps({"task_id": task_id, "completion": completion}) + "\n"
                            for task_id, completion in completions.items()), encoding="utf-8")
    return path


def _evaluate(samples: Path, out: Path) -> None:
    run_step(EvalStep(EvalConfig(bench=["fresh"], samples=str(samples), workers=1, allow_partial=True)), out,
             say=lambda line: None)


def _run(out: Path, elsewhere: Path) -> None:
    """ingest and dedup; `eval` judges two right solutions, a wrong one and an empty one, `eval_nothing` three
    empty completions. The samples files are outside the run folder, `elsewhere`."""
    engine = make_executor("process", 1)
    run_step(MakeRows(MakeRowsConfig()), out / "ingest", executor=engine, say=lambda line: None)
    run_step(NearDup(NearDupConfig(), str(out / "ingest")), out / "dedup", executor=engine, say=lambda line: None)
    problems = load_benchmark("fresh")[:4]
    mixed = {problems[0].task_id: problems[0].canonical_solution, problems[1].task_id: HOSTILE,
             problems[2].task_id: problems[2].canonical_solution, problems[3].task_id: ""}
    _evaluate(_write_samples(elsewhere / "mixed.jsonl", mixed), out / "eval")
    nothing = {problem.task_id: "" for problem in problems[:3]}
    _evaluate(_write_samples(elsewhere / "nothing.jsonl", nothing), out / "eval_nothing")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run")
    _run(out, tmp_path_factory.mktemp("samples"))
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


def _samples(run: Path, step: str) -> list[dict]:
    return [json.loads(line) for line in (run / step / "samples.jsonl").read_text(encoding="utf-8").splitlines()]


def _overview(page: str) -> dict[str, list[str]]:
    """The overview table of a report page: its cells by step label."""
    table = re.search(r'<h3>Steps</h3>\n<table>(.*?)</table>', page, re.S).group(1)
    rows = [[html.unescape(cell) for cell in re.findall(r'<td class="[lr]">(.*?)</td>', row)]
            for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1])]
    return {row[0]: row[1:] for row in rows}


def test_overview_shows_each_steps_own_figures(reported: Path) -> None:
    rows = _overview((reported / "report.html").read_text(encoding="utf-8"))
    assert list(rows) == ["ingest", "dedup", "eval", "eval_nothing (eval)"]
    for step in ("ingest", "dedup"):
        stats = data.read_stats(reported / step)
        kept = 100 * stats["rows_out"] / stats["rows_in"]
        assert rows[step][0] == f"{stats['rows_in']:,} rows in, {stats['rows_out']:,} out ({kept:.1f}% kept)"
        assert rows[step][2] == "process"
    for step, label in (("eval", "eval"), ("eval_nothing", "eval_nothing (eval)")):
        samples = _samples(reported, step)
        passed = 100 * sum(row["passed"] for row in samples) / len(samples)
        fresh = len(load_benchmark("fresh"))
        assert rows[label][0] == f"fresh pass@1 {passed:.1f}% on {len(samples)} of {fresh} problems (partial samples)"
    assert sum(row["passed"] for row in _samples(reported, "eval")) == 2, "the two canonical solutions pass"
    assert not any("n/a" in cells[0] for cells in rows.values())


def test_settings_are_folded(reported: Path) -> None:
    page = (reported / "report.html").read_text(encoding="utf-8")
    folded = re.findall(r"<details><summary>Settings: (\d+) keys</summary>\n<pre><code>(.*?)</code></pre>\n</details>",
                        page, re.S)
    steps = ["ingest", "dedup", "eval", "eval_nothing"]
    assert len(folded) == len(steps) and "<h4>Settings</h4>" not in page
    for step, (keys, shown) in zip(steps, folded):
        config, settings = data.read_stats(reported / step)["config"], json.loads(html.unescape(shown))
        assert int(keys) == len(config) == len(settings)
        if "samples" in config:  # a file outside the run folder: shown by its name
            config["samples"] = f"…/{Path(config['samples']).name}"
        assert settings == config


def test_eval_shows_passing_and_failing_completions(reported: Path) -> None:
    page = (reported / "report.html").read_text(encoding="utf-8")
    markdown = (reported / "report.md").read_text(encoding="utf-8")
    chapter = page[page.index("<h2 id=\"03-eval\">"):page.index("<h2 id=\"04-eval_nothing\">")]
    assert "<h3>Completions: fresh</h3>" in chapter
    assert "<h4>Passing: 2 of 2</h4>" in chapter and "<h4>Failing: 2 of 2</h4>" in chapter
    assert "<p>1 of the 4 completions is empty.</p>" in chapter and "<p>The completion is empty.</p>" in chapter
    for row in _samples(reported, "eval"):
        verdict = "passed" if row["passed"] else f"{row['status']}: {row['reason']}"
        assert html.escape(f"{row['task_id']} (sample 0), {verdict}, in ") in chapter
        assert html.escape(row["prompt"].rstrip("\n")) in chapter
        if row["completion"]:
            assert f"<pre><code>{html.escape(row['completion'].rstrip(chr(10)))}</code></pre>" in chapter
            assert f"```text\n{row['completion']}```" in markdown
    assert HOSTILE.strip() not in page and "<script" not in page
    nothing = page[page.index("<h2 id=\"04-eval_nothing\">"):]
    assert "<p>Every completion is empty (3 of 3):" in nothing and "<p>No completion passes.</p>" in nothing


def test_report_names_no_absolute_path(reported: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Neither the run folder, the samples' folder, the sandbox's files nor this interpreter: paths are shown
    relative to the run folder, or as `…/` and their name."""
    machine = {str(reported), str(reported.resolve()), str(tmp_path_factory.getbasetemp()), sys.prefix,
               sys.base_prefix, str(Path(textbooks.__file__).parents[1])}
    markdown = (reported / "report.md").read_text(encoding="utf-8")
    page = re.sub(r"data:image/png;base64,[^\"]*", "", (reported / "report.html").read_text(encoding="utf-8"))
    for text in (markdown, page):
        assert not [path for path in machine if path in text]
        assert not re.findall(r"(?<![\w.:/~<-])(?:/[\w.+@-]+){2,}", text)
    assert "Completions read from …/mixed.jsonl." in markdown
    assert re.search(r'File "…/[\w.]+\.py", line \d+', markdown), "the sandbox's traceback, its paths cut"


def test_report_in_a_browser(reported: Path) -> None:
    """What Chromium builds from the page: a chapter per step, completions as text (the hostile one did not
    become an element), every step's settings under a <summary>."""
    page = render(reported / "report.html")
    assert [text for tag, text in page.headings if tag == "h2"] == [
        "Overview", "1. ingest", "2. dedup", "3. eval", "4. eval_nothing (eval)"]
    assert page.tags["script"] == 0 and page.tags["h2"] == 5
    completions = page.under("3. eval", "Completions: fresh")
    assert HOSTILE.strip() in completions
    assert "Passing: 2 of 2" in completions and "Failing: 2 of 2" in completions
    assert "Every completion is empty (3 of 3)" in page.under("4. eval_nothing (eval)", "Completions: fresh")
    settings = [summary for summary in page.summaries if summary.startswith("Settings: ")]
    assert len(settings) == 4 and page.tags["details"] > len(settings)
