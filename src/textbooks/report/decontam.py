"""The decontaminate step's section: the paper's table 3 (similar problems at each tau), what each measure found,
what was pruned, and the closest pairs side by side."""

from __future__ import annotations

import json

from textbooks.report import fmt, plots
from textbooks.report.blocks import Block, Details, Figure, Paragraph, Preformatted, Section, Subheading, Table
from textbooks.report.stages import StageRun

SUMMARY = "decontamination.json"


def section(stage: StageRun) -> Section | None:
    path = stage.path / SUMMARY
    if not path.is_file():
        return None
    summary = json.loads(path.read_text(encoding="utf-8"))
    settings = summary["settings"]
    benches = summary["benchmarks"]
    if not benches:
        skipped = summary.get("skipped") or []
        return Section("Decontamination", [Paragraph(
            "No benchmark was compared and every row was kept: "
            + (f"the files of {', '.join(skipped)} were not here (skip_missing)." if skipped
               else "none of the step's benchmarks had its files here.") + " Set $TEXTBOOKS_BENCHMARKS (or "
            "benchmarks_dir) to a folder holding them and run the step again.")])
    taus = sorted({tau for found in benches.values() for tau in found["similar"]}, key=float, reverse=True)
    table3 = [[bench, tau, fmt.count(found["similar"][tau]["similar"]), fmt.count(found["similar"][tau]["non_similar"]),
               fmt.count(found["problems"])] for bench, found in benches.items() for tau in taus]
    measures = [[bench, fmt.count(found["ngram"]["problems_sharing"]), fmt.count(found["ngram"]["problems_over_share"]),
                 _distance(found["embedding"]["min_nearest"]), _distance(found["embedding"]["median_nearest"]),
                 fmt.count(found["execution"]["problems_passed"]),
                 fmt.count(found["execution"].get("problems_confirmed_plus", 0)),
                 fmt.count(found["execution"]["problems_passed_trivial_tests"])]
                for bench, found in benches.items()]
    pruned = summary["pruned"]
    blocks: list[Block] = [
        Paragraph(f"Every row compared with every problem of {', '.join(benches)}: {settings['ngram']}-gram "
                  "overlap, the L2 distance of normalised embeddings, the AST match rate tau (1.0: the same "
                  "structure once names, literals, comments and docstrings are gone) and execution of the row's "
                  "functions against the problem's own tests. A problem is similar at tau when some row reaches "
                  f"it (the paper's table 3). {fmt.count(summary['pairs_scored'])} candidate pairs were scored."),
        Table(["benchmark", "tau", "similar", "non-similar", "problems"], table3, "lrrrr"),
        Figure("similar", plots.similar_by_tau(stage.name, {bench: [found["similar"][tau]["similar"] for tau in taus]
                                                            for bench, found in benches.items()}, taus),
               "Problems with a row at least tau alike, per benchmark."),
        Subheading("What each measure found"),
        Table(["benchmark", "sharing an n-gram", f"n-gram overlap >= {settings['ngram_share']:g}",
               "nearest distance", "median nearest distance", "passed by a row", "confirmed by EvalPlus",
               "passed, trivial tests"], measures, "lrrrrrrr"),
        Paragraph(f"Pruned {fmt.count(pruned['rows'])} rows into dropped/ (each with drop_reason, contaminated_by "
                  f"and match_score): " + (", ".join(f"{measure} {fmt.count(count)}" for measure, count
                                                   in pruned["by_measure"].items()) or "none") +
                  f". Thresholds: n-gram overlap {settings['ngram_share']:g}, tau {settings['prune_tau']:g}, "
                  "execution on non-trivial tests" + ("" if settings["distance"] is None
                                                     else f", embedding distance {settings['distance']:g}") + "."),
    ]
    closest = _closest_rows(summary, float(taus[-1]) if taus else 1.0)
    if closest:
        blocks.append(Details(f"Closest rows of the {len(closest)} problems with a match (tau >= {taus[-1]}, a "
                              "shared n-gram or a passing row)", [Table(
                                  ["problem", "AST match (row, tau)", "n-gram (row, overlap)",
                                   "embedding (row, distance)", "execution (row)"], closest, "lllll")]))
    examples = summary.get("examples", [])
    if examples:
        blocks.append(Details(f"The {len(examples)} closest pairs by AST match rate", [
            block for example in examples for block in (
                Subheading(f"{example['problem']} and {example['id']}: tau {example['tau']:.3f}"
                           + (f", passes its tests ({example['execution']})" if example["execution"] else "")),
                Preformatted(example["problem_text"]), Preformatted(example["row_text"]))]))
    return Section("Decontamination", blocks)


def _closest_rows(summary: dict, floor: float) -> list[list[str]]:
    """Per problem that some measure matched, its best row by each measure, with the score."""
    rows = []
    for key, best in summary["closest"].items():
        if not (best.get("ast", {}).get("tau", 0.0) >= floor or "ngram" in best or "execution" in best):
            continue
        ast = f"{best['ast']['id']}: {best['ast']['tau']:.3f}" if "ast" in best else "-"
        ngram = f"{best['ngram']['id']}: {best['ngram']['share']:.2f}" if "ngram" in best else "-"
        near = f"{best['embedding']['id']}: {best['embedding']['distance']:.3f}" if "embedding" in best else "-"
        passed = best.get("execution")
        run = "-" if passed is None else f"{passed['id']} ({passed['function']}" + (
            ", trivial tests" if passed["trivial"] else "") + (
            ", EvalPlus too" if passed.get("plus_passed") else "") + ")"
        rows.append([key, ast, ngram, near, run])
    return rows


def _distance(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
