"""How a `compare` step's result reads: its tables, compare.md, the panels of compare.png, and its report section.

Everything here reads compare.json (as `textbooks.evaluate.side_by_side` writes it), so the report of a run
shows a comparison without the evaluations it was made from.
"""

from __future__ import annotations

from typing import Callable

from textbooks.report import fmt
from textbooks.report.blocks import Block, Figure, Paragraph, Section, Subheading, Table
from textbooks.report.diversity import side_by_side
from textbooks.report.plots import Bar
from textbooks.report.stages import StageRun
from textbooks.store.atomic import read_json

JSON, PNG = "compare.json", "compare.png"  # as the compare step writes them
MEASURES = (("pass@1", "pass@1"), ("pass@10", "pass@10"), ("solution_loss", "solution loss"))
LOSS = "solution_loss"


def _is_loss(metric: str) -> bool:
    return metric == LOSS


def _cell(metric: str, measure: dict) -> str:
    """`12.2% [7.3, 17.7]` or `1.234 [1.101, 1.352]`, with `; 3 seeds 12.0 ± 1.1%` over several seeds."""
    scale, digits, unit = (1, 3, "") if _is_loss(metric) else (100, 1, "%")
    text = (f"{scale * measure['mean']:.{digits}f}{unit} [{scale * measure['low']:.{digits}f}, "
            f"{scale * measure['high']:.{digits}f}]")
    seeds = measure.get("over_seeds")
    if seeds:
        text += (f"; {seeds['seeds']} seeds {scale * seeds['mean']:.{digits}f} ± {scale * seeds['std']:.{digits}f}"
                 f"{unit}")
    return text


def _difference(row: dict) -> str:
    """`+24.4 points [+17.1, +31.7]` (pass@k) or `-0.500 [-0.512, -0.488]` (loss)."""
    scale, digits, unit = (1, 3, "") if _is_loss(row["metric"]) else (100, 1, " points")
    return (f"{scale * row['mean']:+.{digits}f}{unit} [{scale * row['low']:+.{digits}f}, "
            f"{scale * row['high']:+.{digits}f}]")


def _missing(metric: str, measures: dict) -> str:
    if _is_loss(metric) and any(loss is not None for loss in measures.get("solution_loss_over_tokens", [])):
        return "n/a (no per-problem losses: evaluate again)"
    return fmt.UNKNOWN


def intro(result: dict) -> str:
    return (f"Every interval is a {100 * result['confidence']:g}% bootstrap interval over the benchmark's problems "
            f"({result['resamples']:,} resamples, seed {result['seed']}). A difference is paired (both arms scored "
            "on the same resampled problems) and is larger than its interval when the interval excludes 0. The "
            "solution loss is the mean over problems of each canonical solution's loss per token (lower is "
            "better; an evaluation's own summary gives the mean over all tokens). For several seeds of one arm, a "
            "problem's score is its mean over the seeds, and the seeds' scores are given as mean ± std: the "
            "interval over problems does not hold how far another seed would move a score, the spread over seeds "
            "does.")


def _scored(result: dict) -> list[tuple[str, dict]]:
    """Each benchmark's results, then each perturbation's (labelled `humaneval (typos)`)."""
    return [*result["benchmarks"].items(), *result.get("perturbed", {}).items()]


def _verdict(row: dict) -> str:
    return "larger than its interval" if row["excludes_zero"] else "interval includes 0"


def tables(result: dict, shown: Callable[[str], str] = str) -> list[tuple[str, Table]]:
    """The arms, their scores (plain and perturbed prompts), the differences of every pair, each arm's change
    under perturbed prompts, and the diversity of each arm's data."""
    arms = Table(["arm", "evaluations"], [[arm, ", ".join(shown(path) for path in paths)]
                                         for arm, paths in result["arms"].items()], "ll")
    present = [(metric, label) for metric, label in MEASURES
               if any(metric in measures for _, found in _scored(result) for measures in found["arms"].values())]
    rows = [[bench, arm, fmt.count(len(result["arms"][arm])), fmt.count(found["problems"])]
            + [_cell(metric, measures[metric]) if metric in measures else _missing(metric, measures)
               for metric, _ in present]
            for bench, found in _scored(result) for arm, measures in found["arms"].items()]
    found_tables = [("Arms", arms), ("Scores", Table(["benchmark", "arm", "evaluations", "problems",
                                                      *[label for _, label in present]], rows,
                                                     "llrr" + "r" * len(present)))]
    labels = dict(MEASURES)
    differences = [[bench, labels[row["metric"]], f"{row['second']} − {row['first']}", _difference(row),
                    _verdict(row)] for bench, found in _scored(result) for row in found["differences"]]
    if differences:
        found_tables.append(("Differences", Table(["benchmark", "measure", "arms", "difference [interval]", ""],
                                                  differences, "lllrl")))
    changes = [[variant, labels[row["metric"]], row["arm"], _difference(row), _verdict(row)]
               for variant, found in result.get("perturbed", {}).items() for row in found["change"]]
    if changes:
        found_tables.append(("Change under perturbed prompts (perturbed − plain)", Table(
            ["prompts", "measure", "arm", "change [interval]", ""], changes, "lllrl")))
    diversity = result.get("diversity") or []
    if diversity:
        found_tables.append(("Diversity of each arm's data", side_by_side(
            [entry["name"] for entry in diversity], [entry["measures"] for entry in diversity])))
    return found_tables


def _markdown_table(table: Table) -> list[str]:
    def cells(values: list[str]) -> str:
        return "| " + " | ".join(str(value).replace("|", "\\|") for value in values) + " |"

    align = table.align.ljust(len(table.columns), "l")
    return [cells(table.columns), "|" + "|".join("---:" if side == "r" else "---" for side in align) + "|",
            *[cells(row) for row in table.rows]]


def markdown(result: dict) -> str:
    """compare.md: the tables of `tables`, after what the intervals mean."""
    lines = ["# Evaluations compared", "", intro(result)]
    for title, table in tables(result):
        lines += ["", f"## {title}", "", *_markdown_table(table)]
    return "\n".join(lines) + "\n"


def chart_panels(result: dict) -> list[tuple[str, dict[str, dict[str, Bar]]]]:
    """compare.png's panels, pass@1 (percent) and the solution loss: arm -> benchmark -> (mean, low, high,
    each seed's mean)."""
    panels = []
    for metric, label, scale in (("pass@1", "pass@1 (%)", 100.0), (LOSS, "solution loss (nats/token)", 1.0)):
        bars: dict[str, dict[str, Bar]] = {}
        for bench, found in result["benchmarks"].items():
            for arm, measures in found["arms"].items():
                if metric in measures:
                    measure = measures[metric]
                    seeds = measure.get("over_seeds", {}).get("values", [])
                    bars.setdefault(arm, {})[bench] = (scale * measure["mean"], scale * measure["low"],
                                                       scale * measure["high"], [scale * value for value in seeds])
        panels.append((label, bars))
    return panels


def said(result: dict) -> list[str]:
    """What the step prints: each arm's scores, and the differences larger than their interval."""
    lines = []
    for bench, found in result["benchmarks"].items():
        for arm, measures in found["arms"].items():
            lines.append(f"{bench}: {arm}: " + ", ".join(f"{label} {_cell(metric, measures[metric])}"
                                                          for metric, label in MEASURES if metric in measures))
        lines += [f"{bench}: {dict(MEASURES)[row['metric']]} {row['second']} − {row['first']} {_difference(row)}: "
                  "larger than its interval" for row in found["differences"] if row["excludes_zero"]]
    return lines


def section(stage: StageRun) -> Section | None:
    """The compare step's chapter: what the intervals mean, the chart, and the tables."""
    path = stage.path / JSON
    if not path.is_file():
        return None
    result = read_json(path)
    blocks: list[Block] = [Paragraph(intro(result))]
    if (stage.path / PNG).is_file():
        blocks.append(Figure("compare", (stage.path / PNG).read_bytes(),
                             "pass@1 and solution loss per benchmark, one bar per arm, with its interval over "
                             "problems (dots: each seed's score)."))
    for title, table in tables(result, stage.shown):
        blocks += [Subheading(title), table]
    return Section("Evaluations compared", blocks)
