"""The sections every step gets (summary, drop reasons with samples, document lengths)."""

from __future__ import annotations

import json

import numpy as np

from textbooks.report import fmt, plots, read
from textbooks.report.blocks import Block, Details, Figure, Paragraph, Preformatted, Section, Subheading, Table
from textbooks.report.stages import StageRun

SAMPLES_PER_REASON = 3
SAMPLE_LINES = 8
SAMPLE_LINE_CHARS = 160


def summary(stage: StageRun) -> Section:
    """The stage's stats.json in words, its counters and the settings it ran with."""
    stats = stage.stats
    rows = [["made by stage", stage.kind]]
    if "rows_in" in stats or not stats:  # a dataset stage (steps such as train count other things)
        rows += [
            ["rows in", fmt.count(stats.get("rows_in"))],
            ["rows out", fmt.count(stats.get("rows_out"))],
            ["rows kept", fmt.percent(stats.get("rows_out"), stats.get("rows_in"))],
            ["bytes in", fmt.size(stats.get("bytes_in"))],
            ["bytes out", fmt.size(stats.get("bytes_out"))],
        ]
    rows += [["seconds (wall)", fmt.seconds(stats.get("seconds"))]]
    if "task_seconds" in stats:
        rows += [["seconds (sum over tasks)", fmt.seconds(stats.get("task_seconds"))],
                 ["shards", fmt.count(stats.get("shards"))],
                 ["engine", str(stats.get("engine", fmt.UNKNOWN))]]
    rows += [["finished", fmt.when(stage.marker.get("finished"))],
             ["fingerprint", str(stage.marker.get("fingerprint", fmt.UNKNOWN))]]
    blocks: list[Block] = [Table(["", "value"], rows, "ll")]
    if not stats:
        blocks.insert(0, Paragraph("This stage wrote no stats.json, so its counts are unknown."))
    if stats.get("counters"):
        counters = [[name, f"{value:,.6g}"] for name, value in sorted(stats["counters"].items())]
        blocks += [Subheading("Counters"), Table(["counter", "value"], counters, "lr")]
    if stats.get("config"):
        settings = json.dumps(fmt.paths_in(stats["config"], stage.run_dir), indent=2, sort_keys=True,
                              ensure_ascii=False)
        blocks.append(Details(f"Settings: {len(stats['config'])} keys", [Preformatted(settings)]))
    return Section("Summary", blocks)


def excerpt(text: str) -> str:
    """The first lines of a text, each cut short, saying how much was left out."""
    lines = text.splitlines()
    shown = [line if len(line) <= SAMPLE_LINE_CHARS else line[:SAMPLE_LINE_CHARS] + "…"
             for line in lines[:SAMPLE_LINES]]
    if len(lines) > SAMPLE_LINES:
        shown.append(f"… ({len(lines) - SAMPLE_LINES:,} more lines)")
    return "\n".join(shown)


def _sample(row: dict) -> str:
    duplicate_of = f"\nduplicate of: {row[read.DUPLICATE_OF]}" if row.get(read.DUPLICATE_OF) else ""
    return f"id: {row['id']}{duplicate_of}\n{excerpt(row['text'] or '')}"


def _samples(stage: StageRun, reasons: list[str]) -> list[Block]:
    blocks: list[Block] = []
    found = read.drop_samples(stage.dropped, reasons, SAMPLES_PER_REASON)
    for reason in [*reasons, *sorted(set(found) - set(reasons))]:
        if found.get(reason):
            blocks.append(Subheading(f"Dropped as {reason}: the first {len(found[reason])}"))
            blocks += [Preformatted(_sample(row)) for row in found[reason]]
    return blocks


def drop_reasons(stage: StageRun) -> Section | None:
    """Why rows went, how many, and the first few of each reason to audit the decision by eye."""
    if "drops" not in stage.stats:
        return None
    drops = stage.stats["drops"]
    if not drops:
        return Section("Drop reasons", [Paragraph("No rows were dropped.")])
    ordered = sorted(drops.items(), key=lambda item: (-item[1], item[0]))
    rows_in = stage.stats.get("rows_in")
    rows = [[reason, fmt.count(amount), fmt.percent(amount, rows_in)] for reason, amount in ordered]
    png = plots.drop_bars(stage.name, [reason for reason, _ in ordered], [amount for _, amount in ordered])
    blocks: list[Block] = [Table(["reason", "rows", "of rows in"], rows, "lrr"),
                           Figure("drops", png, f"Rows {stage.name} dropped, by reason.")]
    return Section("Drop reasons", blocks + _samples(stage, [reason for reason, _ in ordered]))


def _quantiles(name: str, lengths: np.ndarray) -> list[str]:
    return [name, fmt.count(len(lengths)), *(fmt.size(point) for point in np.percentile(lengths, [10, 50, 90])),
            fmt.size(lengths.max())]


def document_lengths(stage: StageRun) -> Section | None:
    """Lengths of kept against dropped texts: shows at a glance what a filter cut (only short files?)."""
    kept = read.text_lengths(stage.path)
    if not len(kept):
        return None
    dropped = read.text_lengths(stage.dropped) if stage.dropped.is_dir() else np.zeros(0, dtype=np.int64)
    rows = [_quantiles("kept", kept)] + ([_quantiles("dropped", dropped)] if len(dropped) else [])
    png = plots.length_histogram(stage.name, kept, dropped)
    return Section("Document lengths", [
        Table(["rows", "sampled", "10th percentile", "median", "90th percentile", "longest"], rows, "lrrrrr"),
        Figure("lengths", png, f"Length of each document's text in bytes, {stage.name}, at most "
                               f"{read.SAMPLE_ROWS:,} rows sampled per dataset (empty texts at 1 B)."),
    ])
