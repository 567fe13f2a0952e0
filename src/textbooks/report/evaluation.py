"""The sections of an `eval` step: pass@k per benchmark, the canonical solutions' loss and verdict counts, then,
per benchmark, a few passing and failing completions with their prompt and the verdict's reason, so a reader
sees what the model writes (and is told plainly when it wrote nothing at all). An evaluation with perturbed
prompts (`eval --perturb`) gets a table per benchmark of their scores next to the plain ones.

The samples come from the step's samples.jsonl (one row per sample: bench, task_id, sample, prompt,
completion, passed, status, reason, seconds, stderr), read once, keeping only the few it shows, of the plain
prompts (rows without `perturb`).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field

from textbooks.report import fmt, plots
from textbooks.report.blocks import Block, Details, Figure, Paragraph, Preformatted, Section, Subheading, Table
from textbooks.report.stages import StageRun

SAMPLES = "samples.jsonl"
PASSING_SHOWN = 2
FAILING_SHOWN = 3
COMPLETION_LINES = 40
PROMPT_LINES = 60
STDERR_LINES = 8
REASON_CHARS = 300


def scores(stage: StageRun) -> list[Section] | None:
    """The scores, then one section of completions per benchmark."""
    summary_path = stage.path / "summary.json"
    if not summary_path.is_file():
        return None
    from textbooks.evaluate.summary import perturbed_markdown, summary_markdown

    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    benchmarks = summary["benchmarks"]
    from textbooks.evaluate.split import SUBSETS

    table = _markdown_table(summary_markdown({**summary, "benchmarks": {
        name: {key: value for key, value in scores.items() if key not in ("split", "perturbed")}
        for name, scores in benchmarks.items()}}))
    names = list(benchmarks)
    png = plots.eval_scores(stage.name, names, [benchmarks[name]["pass@k"].get("1", 0.0) for name in names],
                            [benchmarks[name].get("solution_loss") for name in names])
    read = stage.stats.get("config", {}).get("samples")
    source = f"Completions read from {stage.shown(read)}" if read else f"Model: {stage.shown(summary['model'])}"
    blocks: list[Block] = [
        Paragraph(f"{source}. Every completion ran in the sandbox; pass@k is the unbiased estimator averaged over "
                  "problems. The solution loss is the model's mean loss on the canonical solutions given their "
                  "prompts: it falls long before pass@1 rises."),
        table, Figure("scores", png, "pass@1 per benchmark, and the canonical solutions' loss.")]
    for name, scores in benchmarks.items():
        if "split" in scores:
            rows = [[tau] + [" / ".join(_subset_cell(subsets[subset], key) for subset in SUBSETS)
                             for key in ("problems", "pass@1", "solution_loss")]
                    for tau, subsets in sorted(scores["split"].items(), key=lambda item: -float(item[0]))]
            blocks += [Paragraph(f"{name} split by the decontamination result: problems similar to the training "
                                 "data at each tau (a row with an AST match rate of at least tau) against the rest, "
                                 "as the paper's table 3."),
                       Table(["tau", "problems (similar / non-similar / all)", "pass@1", "solution loss"], rows,
                             "lrrr")]
        if "perturbed" in scores:
            blocks += [Paragraph(f"{name} with perturbed prompts (seed {summary['perturb']['seed']}), each kind "
                                 "alone, next to the plain prompts; in brackets the change from plain, in points "
                                 "and in nats per token."),
                       _markdown_table("\n".join(perturbed_markdown(name, scores, None)))]
    found = _read_samples(stage)
    if found:
        rows = [[bench, fmt.count(samples.statuses["passed"]), fmt.count(samples.statuses["failed"]),
                 fmt.count(samples.statuses["timeout"]), fmt.count(samples.empty)]
                for bench, samples in found.items()]
        blocks.append(Table(["benchmark", "passed", "failed", "timed out", "empty completions"], rows, "lrrrr"))
    return [Section("Evaluation", blocks)] + [Section(f"Completions: {bench}", _benchmark_blocks(stage, samples))
                                              for bench, samples in found.items()]


def _subset_cell(scores: dict, key: str) -> str:
    value = scores.get(key)
    if value is None:
        return "-"
    return str(value) if key == "problems" else f"{100 * value:.1f}%" if key == "pass@1" else f"{value:.3f}"


def _markdown_table(markdown: str) -> Table:
    lines = [line for line in markdown.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    return Table(header, rows, "l" + "r" * (len(header) - 1))


@dataclass
class BenchmarkSamples:
    """What the report keeps of one benchmark's samples: counts, and the few it shows."""

    statuses: Counter = field(default_factory=Counter)
    empty: int = 0
    passing: list[dict] = field(default_factory=list)
    failing: list[dict] = field(default_factory=list)  # non-empty completions
    failing_empty: list[dict] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(self.statuses.values())

    def keep(self, row: dict) -> None:
        self.statuses[row["status"]] += 1
        empty = not row["completion"].strip()
        self.empty += empty
        bucket = self.passing if row["passed"] else self.failing_empty if empty else self.failing
        if len(bucket) < (PASSING_SHOWN if row["passed"] else FAILING_SHOWN):
            bucket.append(row)

    def failures(self) -> list[dict]:
        """The failures to show: those with a completion first (a reader learns more from them)."""
        return (self.failing + self.failing_empty)[:FAILING_SHOWN]


def _read_samples(stage: StageRun) -> dict[str, BenchmarkSamples]:
    path = stage.path / SAMPLES
    if not path.is_file():
        return {}
    found: dict[str, BenchmarkSamples] = {}
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if not row.get("perturb"):  # the completions shown are the plain prompts'
                found.setdefault(row["bench"], BenchmarkSamples()).keep(row)
    return found


def _benchmark_blocks(stage: StageRun, samples: BenchmarkSamples) -> list[Block]:
    """The first passing and failing completions of a benchmark, each with its prompt and verdict."""
    blocks: list[Block] = []
    if samples.empty == samples.total:
        blocks.append(Paragraph(f"Every completion is empty ({samples.total:,} of {samples.total:,}): the model ended "
                                "each one before writing any code, so every verdict below judges the prompt "
                                "alone."))
    elif samples.empty:
        blocks.append(Paragraph(f"{samples.empty:,} of the {samples.total:,} completions "
                                f"{'is' if samples.empty == 1 else 'are'} empty."))
    failures = samples.failures()
    for title, rows, total in (("Passing", samples.passing, samples.statuses["passed"]),
                               ("Failing", failures, samples.total - samples.statuses["passed"])):
        if not total:
            blocks.append(Paragraph("No completion passes." if title == "Passing" else "No completion fails."))
            continue
        blocks.append(Subheading(f"{title}: {len(rows)} of {total:,}"))
        for row in rows:
            blocks += _sample_blocks(stage, row)
    return blocks


def _sample_blocks(stage: StageRun, row: dict) -> list[Block]:
    verdict = row["status"] if row["passed"] else f"{row['status']}: {_reason(stage, row)}"
    prompt = row["prompt"]
    blocks: list[Block] = [
        Paragraph(f"{row['task_id']} (sample {row.get('sample', 0)}), {verdict}, in {fmt.seconds(row.get('seconds'))}"),
        Details(f"prompt, {len(prompt.splitlines()):,} lines: {_signature(prompt)}",
                [Preformatted(_head(prompt, PROMPT_LINES))]),
    ]
    if row["completion"].strip():
        blocks.append(Preformatted(_head(row["completion"], COMPLETION_LINES)))
    else:
        blocks.append(Paragraph(f"The completion is empty{'' if not row['completion'] else ' (whitespace only)'}."))
    stderr = row.get("stderr") or ""
    if not row["passed"] and stderr.strip():
        lines = stderr.rstrip("\n").splitlines()
        tail = "\n".join(lines[-STDERR_LINES:])
        count = f"last {STDERR_LINES} of {len(lines):,}" if len(lines) > STDERR_LINES else f"{len(lines)}"
        blocks.append(Details(f"stderr, {count} lines",
                              [Preformatted(fmt.paths_in_text(tail, stage.run_dir))]))
    return blocks


def _reason(stage: StageRun, row: dict) -> str:
    reason = fmt.paths_in_text(" ".join(str(row.get("reason") or "no reason given").split()), stage.run_dir)
    return reason if len(reason) <= REASON_CHARS else reason[:REASON_CHARS] + "…"


def _signature(prompt: str) -> str:
    """The line that names the function to write: the prompt's last `def`, else its first line."""
    lines = [line.strip() for line in prompt.splitlines() if line.strip()]
    defs = [line for line in lines if line.startswith(("def ", "async def "))]
    return (defs or lines or ["(empty)"])[-1 if defs else 0]


def _head(text: str, limit: int) -> str:
    lines = text.rstrip("\n").splitlines()
    more = f"\n… ({len(lines) - limit:,} more lines)" if len(lines) > limit else ""
    return "\n".join(lines[:limit]) + more
