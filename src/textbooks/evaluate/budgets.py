"""The training budget behind an evaluation: steps and tokens of each training run, and the packed tokens each
read, so that `textbooks compare --same-budget` refuses arms that were not trained alike.

    training_budget(Path("runs/ablation/finetune-raw-0"))
    # [{"run": "finetune-raw-0", "steps": 60, "tokens_seen": 122880, "data": "exercises-tokens",
    #   "train_tokens": 310522}, {"run": "pretrain-raw-0", "steps": 200, ...}]

An evaluation names its model (summary.json's `model`); when that is one of our training runs, the chain is the
run and, through `init: '@NAME'`, the run it started from, and so on. Each run's data is the token folder of the
same run whose marker is the run's input (the fingerprint the runner recorded); its training tokens are
`train.bin`'s length.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from textbooks.errors import UserError
from textbooks.store import data
from textbooks.store.atomic import read_json

TOLERANCE = 0.01  # packed training tokens may differ by less than this share (whole documents are drawn)


def training_budget(model: str | Path) -> list[dict] | None:
    """The chain of training runs behind a model folder, newest first; None when it is not a run of ours."""
    folder = Path(model)
    chain: list[dict] = []
    while folder.is_dir() and (folder / "summary.json").is_file() and _kind(folder) == "model":
        summary, stats = read_json(folder / "summary.json"), data.read_stats(folder)
        tokens = _input_tokens(folder)
        chain.append({"run": folder.name, "steps": summary.get("final_step"), "tokens_seen": summary.get("tokens_seen"),
                      "data": tokens.name if tokens else None, "train_tokens": _train_tokens(tokens)})
        init = str((stats.get("config") or {}).get("init") or "")
        if not init.startswith("@"):
            break
        folder = folder.parent / init[1:].split("/", 1)[0]
    return chain or None


def _kind(folder: Path) -> str | None:
    marker = data.read_marker(folder)
    return marker.get("kind") if marker else None


def _input_tokens(run: Path) -> Path | None:
    """The token folder next to `run` whose marker's fingerprint is the one recorded as the run's input."""
    wanted = ((data.read_marker(run) or {}).get("parts") or {}).get("input") or {}
    for sibling in sorted(run.parent.iterdir()):
        marker = data.read_marker(sibling) if sibling.is_dir() else None
        if marker and marker.get("kind") == "tokens" and marker.get("fingerprint") == wanted.get("fingerprint"):
            return sibling
    return None


def _train_tokens(folder: Path | None) -> int | None:
    if folder is None or not (folder / "train.bin").is_file():
        return None
    dtype = np.dtype(read_json(folder / "meta.json").get("dtype", "uint16"))
    return (folder / "train.bin").stat().st_size // dtype.itemsize


def check_same_budget(budgets: dict[str, list[dict] | None]) -> None:
    """Refuse arms (label -> the budget of each of its evaluations) whose training differs: another number of
    runs, steps or tokens seen, or packed training tokens that differ by `TOLERANCE` or more."""
    flat = [(label, chain) for label, chains in budgets.items() for chain in chains]
    missing = [label for label, chain in flat if chain is None]
    if missing:
        raise UserError(f"compare: same_budget: {missing[0]}'s model is not a training run of this toolkit (no "
                        "summary.json and marker), so its budget cannot be checked; compare without --same-budget")
    first_label, first = flat[0]
    for label, chain in flat[1:]:
        if len(chain) != len(first):
            raise UserError(f"compare: same_budget: {label} was trained in {len(chain)} runs, {first_label} in "
                            f"{len(first)}")
        for mine, theirs in zip(first, chain):
            for key in ("steps", "tokens_seen"):
                if mine[key] != theirs[key]:
                    raise UserError(f"compare: same_budget: {theirs['run']} ({label}) has {key} {theirs[key]}, "
                                    f"{mine['run']} ({first_label}) {mine[key]}: train the arms alike")
            low, high = sorted([mine["train_tokens"] or 0, theirs["train_tokens"] or 0])
            if high and (high - low) / high >= TOLERANCE:
                raise UserError(f"compare: same_budget: {theirs['data']} packs {theirs['train_tokens']:,} training "
                                f"tokens, {mine['data']} {mine['train_tokens']:,}: {100 * (high - low) / high:.1f}% "
                                f"apart (at most {100 * TOLERANCE:g}%); give the arms the same `tokens`")
