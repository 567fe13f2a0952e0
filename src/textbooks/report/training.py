"""The sections of the model steps: token data (tokenize), loss curves and throughput (train), export-hf.

The loss plot draws the validation split's unigram entropy as the bar a model has to beat: a model below it
has learnt more than which tokens are frequent.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from textbooks.report import fmt, plots
from textbooks.report.blocks import Figure, Paragraph, Section, Table
from textbooks.report.stages import StageRun


def token_data(stage: StageRun) -> Section | None:
    meta_path = stage.path / "meta.json"
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    splits = meta.get("splits", {})
    rows = [[name, fmt.count(split.get("tokens")), fmt.count(split.get("documents"))]
            for name, split in splits.items()]
    blocks = [
        Paragraph(f"Tokenizer: {meta.get('tokenizer_source', fmt.UNKNOWN)}, {fmt.count(meta.get('vocab_size'))} "
                  f"entries, end-of-text id {meta.get('eos_id')}, token ids stored as {meta.get('dtype')}. "
                  f"Unigram entropy of the validation tokens: {_nats(meta.get('val_unigram_entropy'))}."),
        Table(["split", "tokens", "documents"], rows, "lrr"),
    ]
    sources = meta.get("sources") or []
    if len(sources) > 1:
        columns = ["source", "weight", "documents", "tokens taken", "share"]
        source_rows = [[stage.shown(source.get("input")), f"{source.get('weight', 1)}",
                        fmt.count(source.get("documents")),
                        fmt.count(source.get("tokens_taken", source.get("tokens"))),
                        f"{100 * source['share']:.1f}%" if isinstance(source.get("share"), float) else fmt.UNKNOWN]
                       for source in sources]
        blocks += [Table(columns, source_rows, "lrrrr")]
    return Section("Token data", blocks)


def _nats(value: object) -> str:
    return f"{value:.3f} nats" if isinstance(value, (int, float)) else fmt.UNKNOWN


def read_log(path: Path) -> tuple[list[dict], list[dict]]:
    """Training lines and validation lines of a trainer's log.jsonl (a torn last line is skipped)."""
    steps, evals = [], []
    if not path.is_file():
        return steps, evals
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        (evals if record.get("kind") == "val" else steps).append(record)
    return steps, evals


def _median(records: list[dict], key: str) -> float | None:
    values = [record[key] for record in records[len(records) // 10:] if isinstance(record.get(key), (int, float))]
    return float(np.median(values)) if values else None


def loss_curves(stage: StageRun) -> Section | None:
    steps, evals = read_log(stage.path / "log.jsonl")
    if not steps:
        return None
    summary = _summary(stage.path)
    entropy = stage.stats.get("val_unigram_entropy")
    png = plots.loss_curves(stage.name, [r["step"] for r in steps], [r["loss"] for r in steps],
                            [r["step"] for r in evals], [r["val_loss"] for r in evals], entropy)
    tokens_per_s, mfu = _median(steps, "tokens_per_s"), _median(steps, "mfu")
    peak = max((r.get("peak_mem_bytes") or 0 for r in steps), default=0)
    best = min(evals, key=lambda r: r["val_loss"]) if evals else None
    rows = [
        ["steps", fmt.count(steps[-1]["step"])],
        ["tokens seen", fmt.count(steps[-1].get("tokens_seen"))],
        ["parameters", fmt.count(summary.get("parameters"))],
        ["last training loss", f"{steps[-1]['loss']:.4f}"],
        ["last validation loss", f"{evals[-1]['val_loss']:.4f}" if evals else fmt.UNKNOWN],
        ["best validation loss", f"{best['val_loss']:.4f} at step {best['step']:,}" if best else fmt.UNKNOWN],
        ["validation unigram entropy", _nats(entropy)],
        ["tokens/s (median)", f"{tokens_per_s:,.0f}" if tokens_per_s else fmt.UNKNOWN],
        ["MFU (median)", f"{100 * mfu:.1f}%" if mfu else fmt.UNKNOWN],
        ["peak memory", fmt.size(peak) if peak else fmt.UNKNOWN],
    ]
    blocks = [Table(["", "value"], rows, "lr"),
              Figure("loss", png, "Training loss per step (pale), its moving average, and validation loss (dots); "
                                  "the dashed line is the unigram entropy of the validation tokens.")]
    if best and isinstance(entropy, (int, float)):
        verdict = "below" if best["val_loss"] < entropy else "not yet below"
        blocks.insert(0, Paragraph(f"Best validation loss {best['val_loss']:.3f} nats is {verdict} the unigram "
                                   f"entropy {entropy:.3f} nats (perplexity {math.exp(best['val_loss']):,.1f})."))
    return Section("Training", blocks)


def _summary(folder: Path) -> dict:
    path = folder / "summary.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def exported(stage: StageRun) -> Section | None:
    source = stage.stats.get("source")
    if not source:
        return None
    return Section("Export", [Paragraph(f"{stage.shown(source)} written as a transformers folder: from the run "
                                       f"folder, PhiForCausalLM.from_pretrained('{stage.name}') loads it.")])
