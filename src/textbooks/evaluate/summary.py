"""`summary.md`: an evaluation's summary.json as Markdown tables.

A row per benchmark (pass@k, solution loss, LLM grade; base-test scores of EvalPlus benchmarks on a row of their
own); then, per benchmark, the decontamination split (`split.split_markdown`) and the perturbed prompts' scores
next to the plain ones, with the change in points and in nats per token.
"""

from __future__ import annotations

import math

from textbooks.evaluate import split


def summary_markdown(summary: dict) -> str:
    """The summary as Markdown: the table of benchmarks, then each benchmark's split and perturbed tables."""
    ks = sorted({int(k) for scores in summary["benchmarks"].values() for k in scores["pass@k"]})
    header = ["benchmark", "problems", "samples"] + [f"pass@{k}" for k in ks] + ["solution loss", "LLM grade"]
    lines = [f"# Evaluation of {summary['model']}", "", "| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    for name, scores in summary["benchmarks"].items():
        problems = str(scores["problems"])
        if "coverage" in scores:  # partial samples: the scores are over the covered tasks only
            problems = f"{scores['coverage']['tasks']} of {scores['coverage']['of']} (partial)"
        cells = [name, problems, str(scores["samples"])]
        cells += [_percent(scores["pass@k"].get(str(k))) for k in ks]
        loss = scores.get("solution_loss")
        cells.append(_loss(loss))
        grade = scores.get("llm_grade")
        cells.append("" if grade is None else f"{grade['score_percent']:.1f}%")
        lines.append("| " + " | ".join(cells) + " |")
        if "base_pass@k" in scores:
            base = [f"{name} (base tests)", problems, str(scores["samples"])]
            base += [_percent(scores["base_pass@k"].get(str(k))) for k in ks] + ["", ""]
            lines.append("| " + " | ".join(base) + " |")
    for name, scores in summary["benchmarks"].items():
        if "split" in scores:
            lines += split.split_markdown(name, scores["split"])
        if "perturbed" in scores:
            lines += perturbed_markdown(name, scores, summary.get("perturb", {}).get("seed"))
    return "\n".join(lines) + "\n"


def perturbed_markdown(name: str, scores: dict, seed: int | None) -> list[str]:
    """One benchmark's plain scores and, under them, each perturbation's, with the change from plain."""
    ks = sorted(int(k) for k in scores["pass@k"])
    header = ["prompts", "changed"] + [f"pass@{k}" for k in ks] + ["solution loss"]
    lines = ["", f"## {name}: perturbed prompts (seed {seed})", "", "| " + " | ".join(header) + " |",
             "|" + "---|" * len(header)]
    plain_loss = scores.get("solution_loss")
    lines.append("| " + " | ".join(["plain", ""] + [_percent(scores["pass@k"].get(str(k))) for k in ks]
                                   + [_loss(plain_loss)]) + " |")
    for kind, found in scores["perturbed"].items():
        cells = [kind, f"{found['changed']} of {found['problems']}"]
        for k in ks:
            value, plain = found["pass@k"].get(str(k)), scores["pass@k"].get(str(k))
            shift = "" if value is None or plain is None else f" ({100 * (value - plain):+.1f})"
            cells.append(_percent(value) + shift)
        loss = found.get("solution_loss")
        shift = "" if not _finite(loss) or not _finite(plain_loss) else f" ({loss - plain_loss:+.3f})"
        cells.append(_loss(loss) + shift)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _loss(value: float | None) -> str:
    return f"{value:.3f}" if _finite(value) else ""


def _percent(value: float | None) -> str:
    return "" if value is None else f"{100 * value:.1f}%"
