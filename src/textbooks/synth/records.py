"""The rows the synth steps write, their seed snippets, and the error rates read back from a finished dataset.

Every attempt is a row: the ones that passed in the dataset, the ones that failed in `dropped/` with their
`drop_reason`, so the error rate per model, topic and attempt is counted from the data itself (`summary`).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import pyarrow as pa
from tqdm.auto import tqdm

from textbooks.pipeline.stage import with_drop_reason
from textbooks.store import data
from textbooks.store.inputs import plan_parts, read_table
from textbooks.synth.sampler import Params, Taxonomy, coverage

COMMON = [("id", pa.string()), ("text", pa.string()), ("source", pa.string()), ("sample_index", pa.int64()),
          ("topic", pa.string()), ("audience", pa.string()), ("level", pa.string()), ("style", pa.string()),
          ("difficulty", pa.string()), ("words", pa.list_(pa.string())), ("function_name", pa.string()),
          ("model", pa.string()), ("attempt", pa.int64()), ("prompt_tokens", pa.int64()),
          ("completion_tokens", pa.int64()), ("cost_usd", pa.float64()), ("error", pa.string())]
EXTRA = {"textbooks": [("code_blocks", pa.int64()), ("code_ok", pa.bool_())],
         "exercises": [("prompt", pa.string()), ("solution", pa.string()), ("tests", pa.string()),
                       ("entry_point", pa.string()), ("doctests", pa.int64()), ("pass_rate", pa.float64()),
                       ("attempts_made", pa.int64())]}


def schema(kind: str) -> pa.Schema:
    return pa.schema(COMMON + EXTRA[kind])


def row_id(kind: str, seed: int, index: int, attempt: int) -> str:
    return f"{kind}-s{seed}-{index:06d}-a{attempt}"


def attempt_row(kind: str, seed: int, params: Params, usage: dict[str, Any], model: str, attempt: int) -> dict:
    """The columns every attempt's row has: the sampler's choices, the model's usage, which attempt, its id."""
    return {**params.as_row(), **usage, "attempt": attempt, "id": row_id(kind, seed, params.index, attempt),
            "source": f"synth:{kind}:{model}", "error": ""}


def tables(kind: str, kept: list[dict], dropped: list[tuple[dict, str]]) -> tuple[pa.Table, pa.Table]:
    """The kept rows and the failed attempts (with their drop reasons) as tables of the kind's schema."""
    shape = schema(kind)
    kept_table = pa.Table.from_pylist(kept, schema=shape)
    dropped_table = with_drop_reason(pa.Table.from_pylist([row for row, _ in dropped], schema=shape),
                                     [reason for _, reason in dropped])
    return kept_table, dropped_table


class Snippets:
    """Seed snippets: the `text` of a dataset's rows, row i of a run getting a seeded random one."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts

    def pick(self, seed: int, index: int) -> str | None:
        if not self.texts:
            return None
        digest = hashlib.blake2b(f"snippet\0{seed}\0{index}".encode(), digest_size=8).digest()
        return self.texts[int.from_bytes(digest, "big") % len(self.texts)]


def snippets(folder: str) -> Snippets:
    texts: list[str] = []
    for part in plan_parts(folder):
        texts += [text for text in read_table(part, ["text"])["text"].to_pylist() if text]
    return Snippets(texts)


def progress_bar(desc: str, model: str) -> tqdm:
    """One bar for every request of the step (its shards share it): requests/s, tokens/s and spend."""
    return tqdm(total=0, desc=f"{desc} ({model})", unit="req", dynamic_ncols=True, disable=None)


def _rate(failed: int, total: int) -> dict[str, Any]:
    return {"attempts": total, "failed": failed, "error_rate": failed / total if total else None}


def summary(out: Path, kind: str, taxonomy: Taxonomy | None = None) -> dict[str, Any]:
    """Error rates (overall, per model, per top-level topic, per attempt), drop reasons, coverage of the
    kept rows, and totals of tokens and cost, read from the finished dataset and its dropped/ rows."""
    columns = ["sample_index", "topic", "audience", "level", "style", "difficulty", "function_name", "model",
               "attempt", "prompt_tokens", "completion_tokens", "cost_usd"] + (["code_ok"] if kind == "textbooks"
                                                                               else [])
    kept = _rows(out, columns)
    dropped = _rows(out / data.DROPPED, columns + ["drop_reason"])
    outcomes = [(row, kind == "textbooks" and row.get("code_ok") is False) for row in kept]
    outcomes += [(row, True) for row in dropped]
    groups: dict[str, dict[str, list[int]]] = {"model": defaultdict(lambda: [0, 0]),
                                               "topic": defaultdict(lambda: [0, 0]),
                                               "attempt": defaultdict(lambda: [0, 0])}
    for row, failed in outcomes:
        for name, key in (("model", row["model"]), ("topic", (row["topic"] or "").split(" > ")[0]),
                          ("attempt", str(row["attempt"]))):
            groups[name][key][0] += failed
            groups[name][key][1] += 1
    reasons = Counter(row["drop_reason"] for row in dropped)
    if kind == "textbooks":
        reasons.update({"kept_flagged": sum(failed for row, failed in outcomes[:len(kept)])})
    failed_total = sum(failed for _, failed in outcomes)
    found: dict[str, Any] = {
        "error_rate": {**_rate(failed_total, len(outcomes)),
                       **{f"by_{name}": {key: _rate(*counts) for key, counts in sorted(group.items())}
                          for name, group in groups.items()}},
        "drop_reasons": dict(reasons.most_common()),
        "coverage": coverage(kept, taxonomy),
        "usage": {name: sum(row[name] or 0 for row, _ in outcomes)
                  for name in ("prompt_tokens", "completion_tokens", "cost_usd")},
    }
    if kind == "exercises":
        solved = {row["sample_index"] for row in kept}
        asked = solved | {row["sample_index"] for row in dropped}
        found["problems"] = {"asked": len(asked), "solved": len(solved), "solutions": len(kept)}
    return found


def _rows(folder: Path, columns: list[str]) -> list[dict]:
    if not data.is_complete(folder) and not any(folder.glob(data.SHARD_GLOB)):
        return []
    paths = data.shard_paths(folder)
    return [row for path in paths for row in data.read_shard(path, columns).to_pylist()]


def summary_line(name: str, kind: str, stats: dict[str, Any]) -> str:
    rate = stats["error_rate"]
    share = f"{rate['error_rate']:.1%}" if rate["error_rate"] is not None else "n/a"
    head = f"{name} {kind}: {stats.get('rows_out', 0):,} kept"
    if kind == "exercises":
        problems = stats["problems"]
        head += f" ({problems['solved']:,} of {problems['asked']:,} problems solved)"
    usage = stats["usage"]
    return (f"{head}; {rate['failed']:,} of {rate['attempts']:,} attempts failed (error rate {share}); "
            f"{usage['prompt_tokens']:,} prompt and {usage['completion_tokens']:,} output tokens, "
            f"${usage['cost_usd']:,.4f}")
