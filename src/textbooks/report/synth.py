"""The report of a synth step: how often the generator's code failed (per attempt, per topic, by reason), how
evenly the kept rows cover the sampler's choices, and what a kept and a dropped row look like."""

from __future__ import annotations

from textbooks.report import fmt
from textbooks.report.blocks import Block, Paragraph, Preformatted, Section, Subheading, Table
from textbooks.report.read import drop_samples
from textbooks.report.stages import StageRun
from textbooks.store import data

EXAMPLE_LINES = 30


def _share(rate: dict) -> str:
    return f"{rate['error_rate']:.1%}" if rate.get("error_rate") is not None else fmt.UNKNOWN


def _rates(title: str, rates: dict[str, dict], limit: int | None = None) -> list[Block]:
    ordered = sorted(rates.items(), key=lambda item: (-item[1]["attempts"], item[0]))[:limit]
    return [Subheading(title), Table([title.split(" per ")[-1], "attempts", "failed", "error rate"],
                                     [[key, fmt.count(rate["attempts"]), fmt.count(rate["failed"]), _share(rate)]
                                      for key, rate in ordered], "lrrr")]


def _example(row: dict, why: str) -> list[Block]:
    lines = (row.get("text") or "").splitlines()
    shown = "\n".join(lines[:EXAMPLE_LINES]) + (f"\n... ({len(lines) - EXAMPLE_LINES} more lines)"
                                                if len(lines) > EXAMPLE_LINES else "")
    about = f" ({row['topic']}, {row['audience']})" if row.get("topic") else ""
    return [Paragraph(f"{row['id']}{about}: {why}"), Preformatted(shown)]


def generated(stage: StageRun) -> Section | None:
    stats = stage.stats
    rate = stats.get("error_rate")
    if not rate:
        return None
    kind = stage.marker.get("settings", {}).get("kind") or ("exercises" if "problems" in stats else "textbooks")
    usage = stats.get("usage", {})
    blocks: list[Block] = [Paragraph(
        f"{fmt.count(rate['failed'])} of {fmt.count(rate['attempts'])} attempts failed verification by execution "
        f"(error rate {_share(rate)}); {fmt.count(stats.get('rows_out'))} {kind} kept; "
        f"{fmt.count(usage.get('prompt_tokens'))} prompt and {fmt.count(usage.get('completion_tokens'))} output "
        f"tokens, ${usage.get('cost_usd', 0):.4f}.")]
    problems = stats.get("problems")
    if problems:
        blocks.append(Paragraph(f"{fmt.count(problems['solved'])} of {fmt.count(problems['asked'])} problems "
                                f"solved ({fmt.count(problems['solutions'])} solutions kept)."))
    reasons = stats.get("drop_reasons", {})  # drawn by the drop-reasons section
    blocks += _rates("Error rate per attempt", rate.get("by_attempt", {}))
    blocks += _rates("Error rate per model", rate.get("by_model", {}))
    blocks += _rates("Error rate per topic", rate.get("by_topic", {}), limit=25)
    covered = stats.get("coverage", {})
    if covered:
        rows = [[name, fmt.count(found.get("distinct")), fmt.count(found.get("of")) if "of" in found else "",
                 f"{found['normalized_entropy']:.3f}" if found.get("normalized_entropy") is not None else ""]
                for name, found in covered.items()]
        blocks += [Subheading("Coverage of the kept rows"),
                   Table(["choice", "distinct", "of", "evenness (normalized entropy)"], rows, "lrrr")]
    shards = data.shard_paths(stage.path)
    kept = data.read_shard(shards[0], ["id", "text", "topic", "audience"]).slice(0, 1).to_pylist() if shards else []
    if kept:
        blocks += [Subheading("A kept row")] + _example(kept[0], "passed")
    shown = [reason for reason in reasons if reason != "kept_flagged"][:3]
    for reason, samples in (drop_samples(stage.dropped, shown, 1) if shown else {}).items():
        blocks += [Subheading(f"A dropped row: {reason}")] + _example(samples[0], reason)
    return Section("Generated data", blocks)


def mined(stage: StageRun) -> Section | None:
    """A mine-exercises step: how many exercises, of which kind, and one of them as a model will read it."""
    found = stage.stats.get("exercises")
    if not found:
        return None
    blocks: list[Block] = [Paragraph(
        f"{fmt.count(found.get('kept'))} exercises ({fmt.count(found.get('functions'))} functions, "
        f"{fmt.count(found.get('methods'))} methods with their class as context), cut from documented, "
        f"self-contained functions: the signature and docstring are the prompt, the body the solution. "
        f"{fmt.count(found.get('with_doctests'))} have docstring examples, which pass with their own body and "
        f"fail with an empty one.")]
    shards = data.shard_paths(stage.path)
    if shards:
        table = data.read_shard(shards[0], ["id", "text", "doctests"])
        rows = table.to_pylist()
        chosen = next((row for row in rows if row["doctests"]), rows[0] if rows else None)
        if chosen is not None:
            blocks += [Subheading("An exercise")] + _example(chosen, f"{chosen['doctests']} docstring examples")
    return Section("Exercises", blocks)
