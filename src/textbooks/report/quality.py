"""The sections of the quality steps: the judge's scores of an `annotate` step (their distribution, the two
judges' agreement, the best- and worst-scored snippets)."""

from __future__ import annotations

import pyarrow as pa

from textbooks.report import fmt, plots
from textbooks.report.blocks import Block, Figure, Paragraph, Preformatted, Section, Subheading, Table
from textbooks.report.stages import StageRun
from textbooks.store import data

SHOWN = 2
SNIPPET_LINES = 30


def _rows(stage: StageRun, columns: list[str], only: bool = False) -> pa.Table | None:
    """The step's rows (only `columns` when `only`), or None when a column is missing."""
    paths = data.shard_paths(stage.path)
    if not paths:
        return None
    try:
        tables = [data.read_shard(path, columns if only else None) for path in paths]
    except Exception:  # noqa: BLE001 - a shard without the column: not this section's kind of step
        return None
    table = pa.concat_tables(tables, promote_options="default")
    return table if all(column in table.column_names for column in columns) else None


def _snippet(row: dict) -> list[Block]:
    lines = (row.get("text") or "").splitlines()
    shown = "\n".join(lines[:SNIPPET_LINES]) + (f"\n... ({len(lines) - SNIPPET_LINES} more lines)"
                                                if len(lines) > SNIPPET_LINES else "")
    return [Paragraph(f"{row['id']}: {row['edu_label']:g} ({row.get('edu_reason') or 'no reason given'})"),
            Preformatted(shown)]


def judge_scores(stage: StageRun) -> Section | None:
    table = _rows(stage, ["edu_label", "text", "id"])
    if table is None:
        return None
    stats = stage.stats
    read = stats.get("counters", {}).get("rows_read")
    labels = dict(stats.get("labels", {}))
    if all(key.isdigit() for key in labels):  # whole scores: every one of 0-5 gets its bar, empty or not
        labels = {str(score): labels.get(str(score), 0) for score in range(6)}
    unscored = int(stats.get("counters", {}).get("unscored", 0))
    annotator = table["annotator"][0].as_py() if "annotator" in table.column_names and table.num_rows else "?"
    blocks: list[Block] = [
        Paragraph(f"{fmt.count(table.num_rows)} rows sampled from {fmt.count(read)} "
                  f"and scored by {annotator} for their educational value to a student learning basic coding "
                  f"concepts (0-5); mean {stats.get('mean_label') or 0:.2f}."),
        Figure("scores", plots.score_bars(stage.name, list(labels), list(labels.values()), unscored),
               "Rows per score; 'none': the judge's answer could not be read, or the request kept failing.")]
    counters = stats.get("counters", {})
    if counters.get("requests"):  # an LLM judge: what it was asked and what it cost
        blocks += [Subheading("Requests"),
                   Table(["requests", "from the cache", "asked again", "unreadable", "failed", "prompt tokens",
                          "output tokens", "cost (USD)"],
                         [[fmt.count(counters.get(name, 0)) for name in (
                             "requests", "cached", "reasked", "unparseable", "failed_requests", "prompt_tokens",
                             "completion_tokens")] + [f"{counters.get('cost_usd', 0):.4f}"]], "rrrrrrrr")]
    found = stats.get("agreement")
    if found:
        blocks += [Subheading("Agreement of the two judges"),
                   Table(["rows", "Spearman", "Cohen's kappa", "threshold", "educational (first)",
                          "educational (second)", "both"],
                         [[fmt.count(found["rows"]), f"{found['spearman']:.3f}", f"{found['kappa']:.3f}",
                           f"{found['threshold']:g}", fmt.count(found["yes_first"]), fmt.count(found["yes_second"]),
                           fmt.count(found["both_yes"])]], "rrrrrrr")]
    scored = [row for row in table.select([name for name in ("id", "text", "edu_label", "edu_reason")
                                           if name in table.column_names]).to_pylist()
              if row["edu_label"] is not None]
    scored.sort(key=lambda row: (-row["edu_label"], row["id"]))
    if scored:
        blocks.append(Subheading(f"Best scored: {min(SHOWN, len(scored))} of {fmt.count(len(scored))}"))
        for row in scored[:SHOWN]:
            blocks += _snippet(row)
        blocks.append(Subheading(f"Worst scored: {min(SHOWN, len(scored))} of {fmt.count(len(scored))}"))
        for row in scored[::-1][:SHOWN]:
            blocks += _snippet(row)
    return Section("Educational value", blocks)


def classifier_measures(stage: StageRun) -> Section | None:
    """A classify step: how well its classifier learned the judge's labels (held out), and the scores it gave."""
    found = stage.stats.get("classifier")
    if not found or "held_out" not in found:
        return None
    held = found["held_out"]
    matrix = held.get("confusion_matrix", {})
    embeddings = found.get("embeddings", {})
    made_by = embeddings.get("embedder", "?") + (f" ({embeddings['model']})" if embeddings.get("model") else "")
    blocks: list[Block] = [
        Paragraph(f"A {found.get('classifier', '?')} on {made_by} embeddings, fitted on "
                  f"{fmt.count(found.get('training_rows'))} of {fmt.count(found.get('labelled_rows'))} judged rows "
                  f"(educational: a label of {found.get('label_threshold', '?'):g} or more) and measured on "
                  f"{fmt.count(held.get('rows'))} held-out rows at a score of {held.get('cutoff', 0.5):g}."),
        Table(["ROC-AUC", "average precision", "precision", "recall", "F1"],
              [[_measure(held.get(key)) for key in ("roc_auc", "average_precision", "precision", "recall", "f1")]],
              "rrrrr"),
        Table(["", "judged educational", "judged not"],
              [["scored educational", fmt.count(matrix.get("true_positive")), fmt.count(matrix.get("false_positive"))],
               ["scored not", fmt.count(matrix.get("false_negative")), fmt.count(matrix.get("true_negative"))]],
              "lrr")]
    curve = held.get("precision_recall_curve") or []
    if curve:
        blocks.append(Figure("precision-recall", plots.precision_recall(
            stage.name, [point["recall"] for point in curve], [point["precision"] for point in curve],
            [point["kept"] for point in curve], [point["threshold"] for point in curve], held.get("cutoff", 0.5)),
            "Precision against recall over score thresholds, and the share of held-out rows each keeps."))
    table = _rows(stage, ["edu_score"], only=True)
    if table is not None:
        scores = [value for value in table["edu_score"].to_pylist() if value is not None]
        if scores:
            blocks.append(Figure("scores", plots.score_histogram(stage.name, scores, "edu_score"),
                                 f"The classifier's score of each of the {fmt.count(len(scores))} rows."))
    return Section("Classifier", blocks)


def _measure(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else fmt.UNKNOWN
