"""The section of an `eval` step: pass@k per benchmark, the canonical solutions' loss, verdict counts, and the
first failing completion of each benchmark, so a reader sees what the model writes."""

from __future__ import annotations

import json
from collections import Counter

from textbooks.report import plots
from textbooks.report.blocks import Figure, Paragraph, Preformatted, Section, Table
from textbooks.report.stages import StageRun


def scores(stage: StageRun) -> Section | None:
    summary_path = stage.path / "summary.json"
    if not summary_path.is_file():
        return None
    from textbooks.evaluate.run import summary_markdown

    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    benchmarks = summary["benchmarks"]
    table = _markdown_table(summary_markdown(summary))
    names = list(benchmarks)
    png = plots.eval_scores(stage.name, names, [benchmarks[name]["pass@k"].get("1", 0.0) for name in names],
                            [benchmarks[name].get("solution_loss") for name in names])
    blocks = [Paragraph(f"Model: {summary['model']}. Every completion ran in the sandbox; pass@k is the unbiased "
                        "estimator averaged over problems. The solution loss is the model's mean loss on the "
                        "canonical solutions given their prompts: it falls long before pass@1 rises."),
              table, Figure("scores", png, "pass@1 per benchmark, and the canonical solutions' loss.")]
    blocks += _verdicts(stage)
    return Section("Evaluation", blocks)


def _markdown_table(markdown: str) -> Table:
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    return Table(header, rows, "l" + "r" * (len(header) - 1))


def _verdicts(stage: StageRun) -> list:
    path = stage.path / "samples.jsonl"
    if not path.is_file():
        return []
    counts: dict[str, Counter] = {}
    first_failure: dict[str, dict] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            counts.setdefault(row["bench"], Counter())[row["status"]] += 1
            if not row["passed"] and row["bench"] not in first_failure:
                first_failure[row["bench"]] = row
    rows = [[bench, str(count["passed"]), str(count["failed"]), str(count["timeout"])]
            for bench, count in counts.items()]
    blocks: list = [Table(["benchmark", "passed", "failed", "timed out"], rows, "lrrr")]
    for bench, row in first_failure.items():
        text = (row["prompt"] + row["completion"])[-1200:]
        blocks.append(Preformatted(f"{bench} {row['task_id']} ({row['reason'][:200]}):\n{text}"))
    return blocks
