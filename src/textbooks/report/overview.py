"""The run overview: one row per step with the figures that say what that step did, and the funnel of rows.

Each kind of step has its own figures (`RESULTS`): a dataset stage its rows, tokenize its tokens, train its
steps and loss, eval its pass@1 per benchmark; a step the table does not know shows its rows when it counted
them. The figures come from the step's stats.json alone, so the overview reads no dataset.
"""

from __future__ import annotations

import numbers
from typing import Callable

from textbooks.report import fmt, plots
from textbooks.report.blocks import Figure, Paragraph, Section, Table
from textbooks.report.diversity import through_the_stages
from textbooks.report.stages import StageRun


def label(stage: StageRun) -> str:
    """The step's name, with the stage that made it when the two differ."""
    return stage.name if stage.kind == stage.name else f"{stage.name} ({stage.kind})"


def rows_result(stage: StageRun) -> str:
    stats = stage.stats
    if "rows_in" not in stats:
        return ""
    return (f"{fmt.count(stats['rows_in'])} rows in, {fmt.count(stats.get('rows_out'))} out "
            f"({fmt.percent(stats.get('rows_out'), stats['rows_in'])} kept)")


def tokens_result(stage: StageRun) -> str:
    tokens, documents = stage.stats.get("tokens", {}), stage.stats.get("documents", {})
    return (f"{fmt.count(tokens.get('train'))} training and {fmt.count(tokens.get('val'))} validation tokens "
            f"from {fmt.count(sum(documents.values()) if documents else None)} documents; "
            f"vocabulary {fmt.count(stage.stats.get('vocab_size'))}")


def _loss(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, numbers.Real) else fmt.UNKNOWN


def train_result(stage: StageRun) -> str:
    stats = stage.stats
    return (f"{fmt.count(stats.get('final_step'))} steps, {fmt.count(stats.get('tokens_seen'))} tokens; "
            f"validation loss {_loss(stats.get('final_val_loss'))} (best {_loss(stats.get('best_val_loss'))} "
            f"at step {fmt.count(stats.get('best_step'))})")


def export_result(stage: StageRun) -> str:
    source = stage.stats.get("source")
    return f"a transformers folder from {stage.shown(source)}" if source else ""


def eval_result(stage: StageRun) -> str:
    benchmarks = stage.stats.get("summary", {}).get("benchmarks", {})
    return "; ".join(f"{name} pass@1 {_pass_at_1(scores)} {_problems(scores)}"
                     for name, scores in benchmarks.items())


def _problems(scores: dict) -> str:
    """How many problems a score is over; a partial samples file says how many of the benchmark's it covered."""
    coverage = scores.get("coverage")
    if coverage:
        return f"on {fmt.count(coverage['tasks'])} of {fmt.count(coverage['of'])} problems (partial samples)"
    return f"of {fmt.count(scores.get('problems'))} problems"


def _pass_at_1(scores: dict) -> str:
    value = scores.get("pass@k", {}).get("1")
    return f"{100 * value:.1f}%" if isinstance(value, numbers.Real) else fmt.UNKNOWN


def compare_result(stage: StageRun) -> str:
    stats = stage.stats
    larger = len(stats.get("larger_than_interval", []))
    return (f"{fmt.count(len(stats.get('arms', [])))} arms on {', '.join(stats.get('benchmarks', []))}; {larger} "
            f"difference{'' if larger == 1 else 's'} larger than {'its' if larger == 1 else 'their'} interval")


RESULTS: dict[str, Callable[[StageRun], str]] = {
    "tokenize": tokens_result,
    "train": train_result,
    "export-hf": export_result,
    "eval": eval_result,
    "compare": compare_result,
}


def ran_on(stage: StageRun) -> str:
    """The executor of a dataset stage, the device of a training run; empty for a step that has neither."""
    stats = stage.stats
    if "engine" in stats:
        return str(stats["engine"])
    if "device" in stats:
        processes = stats.get("world_size", 1)
        return f"{stats['device']} {stats.get('precision', '')}".strip() + (f" ×{processes}" if processes != 1 else "")
    return ""


def _loss_of(scores: dict | None) -> str:
    value = (scores or {}).get("solution_loss")
    return f"{value:.3f}" if isinstance(value, numbers.Real) else fmt.UNKNOWN


def compared(stages: list[StageRun]) -> list[Section]:
    """With two or more eval steps (a pretrained and a finetuned model), their scores side by side."""
    evals = [stage for stage in stages if stage.kind == "eval"]
    if len(evals) < 2:
        return []
    results = [stage.stats.get("summary", {}).get("benchmarks", {}) for stage in evals]
    names = list(dict.fromkeys(name for benchmarks in results for name in benchmarks))
    rows = []
    for name in names:
        rows.append([f"{name} pass@1"] + [_pass_at_1(benchmarks[name]) if name in benchmarks else fmt.UNKNOWN
                                          for benchmarks in results])
        rows.append([f"{name} solution loss"] + [_loss_of(benchmarks.get(name)) for benchmarks in results])
    models = [fmt.path(str(stage.stats.get("summary", {}).get("model", "")), stage.run_dir) for stage in evals]
    return [Section("Models compared", [
        Paragraph("Each eval step's scores side by side; the solution loss is the model's mean loss on the "
                  "canonical solutions (lower is better)."),
        Table(["", *[f"{stage.name} ({model})" for stage, model in zip(evals, models)]], rows,
              "l" + "r" * len(evals))])]


def overview(stages: list[StageRun]) -> list[Section]:
    """One row per step, and the funnel of rows through the dataset stages."""
    rows = [[label(stage), RESULTS.get(stage.kind, rows_result)(stage), fmt.seconds(stage.stats.get("seconds")),
             ran_on(stage)] for stage in stages]
    sections = [Section("Steps", [Table(["step", "what it made", "seconds", "ran on"], rows, "llrl")])]
    sections += compared(stages)
    sections += through_the_stages(stages)
    counted = [stage for stage in stages if "rows_in" in stage.stats and "rows_out" in stage.stats]
    if counted:
        png = plots.funnel([label(stage) for stage in counted], [int(stage.stats["rows_in"]) for stage in counted],
                           [int(stage.stats["rows_out"]) for stage in counted])
        sections.append(Section("Rows through the stages", [
            Figure("funnel", png, "Rows into and out of each stage, in the order the stages finished.")]))
    return sections
