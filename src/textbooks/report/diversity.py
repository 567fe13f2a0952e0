"""The report's diversity sections: a dataset's families of variations, redundancy, balance and spread (from the
diversity step's stats, or from the diversity.json a recipe with `diversity: true` writes into each dataset
step), and the table that sets every measured dataset of a run side by side."""

from __future__ import annotations

import numpy as np

from textbooks.report import fmt
from textbooks.report.blocks import Block, Figure, Paragraph, Preformatted, Section, Subheading, Table
from textbooks.report.plots import KEPT, _figure, _png, count_bars
from textbooks.report.stages import StageRun
from textbooks.store.atomic import read_json

DIVERSITY_FILE = "diversity.json"  # as textbooks.diversity.step writes it (not imported: the report reads files)


def measured(stage: StageRun) -> dict | None:
    """A stage's diversity measures: the diversity step's own, else the recipe's diversity.json."""
    if "diversity" in stage.stats:
        return stage.stats["diversity"]
    path = stage.path / DIVERSITY_FILE
    if not path.is_file():
        return None
    found = read_json(path)
    return found if found.get("fingerprint") == stage.marker.get("fingerprint") else None


def family_sizes(stage: str, histogram: list[list]) -> bytes:
    """Families per size bucket (1, 2, 3-4, ...): how many variations each row has."""
    return count_bars(f"{stage}: families by size", [str(label) for label, _ in histogram],
                      [int(count) for _, count in histogram],
                      "family size (rows that are variations of one another)", "families")


def library_bars(stage: str, top: list[list]) -> bytes:
    """Rows importing each of the most imported libraries (the paper's figure 3.1)."""
    names, counts = [str(name) for name, _ in top][::-1], [int(count) for _, count in top][::-1]
    figure = _figure(0.9 + 0.25 * len(names))
    axes = figure.add_subplot()
    axes.barh(np.arange(len(names)), counts, color=KEPT)
    axes.set_yticks(np.arange(len(names)), names)
    axes.set_xlabel("rows importing it")
    axes.set_title(f"{stage}: imported libraries")
    return _png(figure)


def measures_by_stage(names: list[str], found: list[dict]) -> bytes:
    """The shares that fall when redundancy is removed, one line per measure across the measured stages."""
    figure = _figure(3.0)
    axes = figure.add_subplot()
    lines = (("rows with a variation", lambda m: m["redundancy"]["near_duplicate_rate"]),
             ("AST-shape duplicates", lambda m: m["redundancy"]["shape_duplicate_rate"]),
             ("distinct 4-grams", lambda m: m["redundancy"]["distinct_n"].get("4", 0.0)),
             ("removed by dedup at 0.7", lambda m: m["redundancy"]["greedy_dedup_removed"].get("0.7", 0.0)))
    positions = np.arange(len(names))
    for label, value in lines:
        axes.plot(positions, [value(measures) for measures in found], marker="o", label=label)
    axes.set_xticks(positions, names, rotation=20, ha="right")
    axes.set_ylim(0, 1.02)
    axes.set_ylabel("share")
    axes.legend(fontsize=8, frameon=False)
    axes.set_title("redundancy through the stages")
    return _png(figure)


def _percent(value: object) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, (int, float)) else fmt.UNKNOWN


def _number(value: object, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else fmt.UNKNOWN


ROWS = (("rows", lambda m: fmt.count(m["rows"])), ("families", lambda m: fmt.count(m["families"]["families"])),
        ("rows with a variation", lambda m: _percent(m["redundancy"]["near_duplicate_rate"])),
        ("AST-shape duplicates", lambda m: _percent(m["redundancy"]["shape_duplicate_rate"])),
        ("distinct 1-grams", lambda m: _number(m["redundancy"]["distinct_n"].get("1"))),
        ("distinct 4-grams", lambda m: _number(m["redundancy"]["distinct_n"].get("4"))),
        ("compression ratio (zstd, long window)", lambda m: _number(m["redundancy"]["compression_ratio"], 2)),
        ("removed by dedup at Jaccard 0.7", lambda m: _percent(m["redundancy"]["greedy_dedup_removed"].get("0.7"))),
        ("largest family", lambda m: fmt.count(m["families"]["size_percentiles"].get("max"))),
        ("libraries imported", lambda m: fmt.count(m["balance"]["libraries"]["distinct"])),
        ("Vendi score", lambda m: _number(m.get("spread", {}).get("vendi_score"), 1)))


def side_by_side(names: list[str], found: list[dict]) -> Table:
    rows = [[label] + [value(measures) for measures in found] for label, value in ROWS
            if label != "Vendi score" or any("spread" in measures for measures in found)]
    return Table(["", *names], rows, "l" + "r" * len(names))


def section(stage: StageRun) -> Section | None:
    found = measured(stage)
    if not found:
        return None
    families = found["families"]
    blocks: list[Block] = [
        Paragraph(f"{fmt.count(found['rows'])} rows in {fmt.count(families['families'])} families of variations "
                  f"(exact, near-duplicate and AST-shape duplicates joined); {_percent(families['share_in_families'])}"
                  f" of rows have at least one variation, the largest family has "
                  f"{fmt.count(families['size_percentiles'].get('max'))} rows."),
        Figure("families", family_sizes(stage.name, families["size_histogram"]),
               "Families per size: a family of one is a row with no variation in the dataset."),
        Subheading("Measures"), side_by_side([stage.name], [found])]
    for example in families.get("examples", []):
        blocks += [Subheading(f"A family of {fmt.count(example['size'])} rows"),
                   Paragraph("Its first two rows: " + ", ".join(example["ids"]))]
        blocks += [Preformatted(text) for text in example["texts"]]
    libraries = found["balance"]["libraries"]
    if libraries.get("top"):
        blocks += [Subheading("Imported libraries"),
                   Paragraph(f"{fmt.count(libraries['distinct'])} libraries; normalized entropy "
                             f"{_number(libraries.get('normalized_entropy'))}, the largest "
                             f"{_percent(libraries.get('largest_share'))} of imports."),
                   Figure("libraries", library_bars(stage.name, libraries["top"]),
                          "Rows importing each of the most imported libraries.")]
    compared = stage.stats.get("compared") if "diversity" in stage.stats else None
    if compared:
        names = [stage.name] + [stage.shown(path) for path in compared]
        blocks += [Subheading("Compared"), side_by_side(names, [found, *compared.values()])]
    return Section("Diversity", blocks)


def through_the_stages(stages: list[StageRun]) -> list[Section]:
    """Every measured dataset of the run in one table, in the order the steps ran."""
    found = [(stage.name, measures) for stage in stages if (measures := measured(stage))]
    if len(found) < 2:
        return []
    return [Section("Diversity through the stages", [
        Paragraph("Each measured dataset's redundancy, side by side: a stage that removes redundancy lowers the "
                  "share of rows with a variation and the compression ratio, and raises distinct n-grams."),
        side_by_side([name for name, _ in found], [measures for _, measures in found]),
        Figure("diversity-stages", measures_by_stage([name for name, _ in found], [m for _, m in found]),
               "Redundancy measures of each measured dataset, in the order the steps ran.")])]
