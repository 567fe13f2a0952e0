"""Dataset cards: every dataset folder gets a README.md that the Hugging Face Hub reads as its dataset card, so the
folder can be uploaded as it is (`huggingface_hub.upload_folder`) and `datasets.load_dataset(FOLDER)` reads the
shards the card names, not `dropped/`.

    ---
    configs:                     # the Hub's data files: the kept rows, and the dropped ones as a second config
    - config_name: default
      data_files: [{split: train, path: part-*.parquet}]
    size_categories: [1K<n<10K]
    ---
    # dedup
    rows and bytes, the columns and their types, the drops by reason (from stats.json), the steps that made it,
    oldest first, with their settings as recipe entries, and diversity figures when they were measured

The runner writes it for every dataset stage after stats.json and before the marker (`Stage.write_card`); a
recipe's `diversity:` measures the folder after the marker and writes the card again with its figures. The
steps before are found through the fingerprints in their markers: the input each step's stats.json records,
else a folder beside it (a recipe's run folder) whose marker has the input's fingerprint.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import yaml

from textbooks import __version__
from textbooks.store import data
from textbooks.store.atomic import write_bytes

CARD = "README.md"
MAX_CHAIN = 32  # steps followed back; a chain this long is cut with a note
SIZES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
         (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"))
DIVERSITY_FIGURES = (("rows measured", ("rows",), "{:,}"), ("families", ("families", "families"), "{:,}"),
                     ("rows with a variation", ("families", "share_in_families"), "{:.1%}"),
                     ("shape duplicates", ("redundancy", "shape_duplicate_rate"), "{:.1%}"),
                     ("distinct 4-grams", ("redundancy", "distinct_n", "4"), "{:.3f}"),
                     ("zstd compression ratio", ("redundancy", "compression_ratio"), "{:.2f}x"),
                     ("Vendi score", ("spread", "vendi_score"), "{:.2f}"))


def size_category(rows: int) -> str:
    """The Hub's size category for a number of rows."""
    return next((name for bound, name in SIZES if rows < bound), "n>1B")


def find_input(folder: Path, stats: dict, parts: dict | None) -> Path | None:
    """The step folder `folder`'s step read, when that input was a step's output still there, else None."""
    identity = (parts or {}).get("input")
    if not isinstance(identity, dict) or not identity.get("fingerprint"):
        return None
    candidates = []
    if stats.get("input") and not str(stats["input"]).startswith("hf:"):
        recorded = Path(stats["input"])
        candidates += [recorded, folder.parent / recorded.name]
    if folder.parent.is_dir():
        candidates += sorted(path for path in folder.parent.iterdir() if path.is_dir() and path != folder)
    for candidate in candidates:
        marker = data.read_marker(candidate) if candidate.is_dir() else None
        if marker and marker.get("fingerprint") == identity["fingerprint"]:
            return candidate
    return None


def step_chain(folder: Path, stats: dict, parts: dict | None) -> list[tuple[Path, dict, dict | None]]:
    """(folder, stats, fingerprint parts) of the step that made `folder` and of each step before it, oldest first."""
    chain, seen = [(folder, stats, parts)], {folder.resolve()}
    while len(chain) < MAX_CHAIN:
        found = find_input(*chain[-1])
        if found is None or found.resolve() in seen:
            break
        seen.add(found.resolve())
        chain.append((found, data.read_stats(found), (data.read_marker(found) or {}).get("parts")))
    return chain[::-1]


def _columns(folder: Path) -> list[tuple[str, str]]:
    """(name, Arrow type) of every column of the shards, in first-seen order."""
    columns: dict[str, str] = {}
    for path in data.shard_paths(folder):
        for field in pq.read_schema(path):
            columns.setdefault(field.name, str(field.type))
    return list(columns.items())


def front_matter(folder: Path, stats: dict) -> dict:
    matter: dict = {}
    configs = []
    if data.shard_paths(folder):
        configs.append({"config_name": "default", "data_files": [{"split": "train", "path": data.SHARD_GLOB}],
                        "default": True})
    if data.shard_paths(folder / data.DROPPED):
        configs.append({"config_name": "dropped",
                        "data_files": [{"split": "train", "path": f"{data.DROPPED}/{data.SHARD_GLOB}"}]})
    if configs:
        matter["configs"] = configs
    matter["size_categories"] = [size_category(int(stats.get("rows_out", 0)))]
    matter["tags"] = ["textbooks", "code", str(stats.get("stage", "dataset"))]
    matter["pretty_name"] = folder.name
    return matter


def _chain_lines(chain: list[tuple[Path, dict, dict | None]]) -> list[str]:
    lines = ["## How it was made", "", "Oldest first; each step's settings are a recipe entry "
             "(`textbooks run`), and its input the folder above it.", "",
             "| step | folder | rows in | rows out | dropped |", "|---|---|---|---|---|"]
    for folder, stats, _ in chain:
        drops = ", ".join(f"{reason}: {count:,}" for reason, count in (stats.get("drops") or {}).items())
        rows_in = f"{stats['rows_in']:,}" if "rows_in" in stats else "not recorded"
        rows_out = f"{stats['rows_out']:,}" if "rows_out" in stats else "not recorded"
        lines.append(f"| {stats.get('stage', 'not recorded')} | {folder.name} | {rows_in} | {rows_out} | "
                     f"{drops or 'none'} |")
    first_parts = chain[0][2] or {}
    origin = first_parts.get("input")
    if isinstance(origin, dict):
        what = origin.get("folder") or origin.get("file") or origin.get("glob") or origin.get("name")
        if origin.get("fingerprint"):
            what = f"the output of a {origin.get('step')} step that is no longer beside it"
        if what:  # else a source of its own (ingest's), named by its settings
            lines += ["", f"The first step read {what}."]
    entries = [{"stage": stats.get("stage"), "name": folder.name, **dict(sorted((stats.get("config") or {}).items()))}
               for folder, stats, _ in chain]
    lines += ["", "```yaml", yaml.safe_dump(entries, sort_keys=False).rstrip(), "```"]
    return lines


def _diversity_lines(figures: dict) -> list[str]:
    lines = ["## Diversity", "", "Measured by `textbooks diversity` (families of variations: exact, near and "
             "AST-shape duplicates).", "", "| measure | value |", "|---|---|"]
    for label, path, form in DIVERSITY_FIGURES:
        value = figures
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if value is not None:
            lines.append(f"| {label} | {form.format(value)} |")
    return lines


def dataset_card(folder: Path, stats: dict, parts: dict | None, diversity: dict | None = None) -> str:
    """The card of the dataset in `folder`, from its stats (this step's), fingerprint parts and diversity figures
    (the folder's diversity.json or a diversity step's own measures)."""
    folder = Path(folder)
    stage, rows = stats.get("stage", "a textbooks step"), int(stats.get("rows_out", 0))
    shards = len(data.shard_paths(folder))
    lines = ["---", yaml.safe_dump(front_matter(folder, stats), sort_keys=False).rstrip(), "---",
             f"# {folder.name}", "",
             f"A dataset made by `textbooks {stage}` (textbooks {__version__}): {rows:,} rows in {shards} Parquet "
             f"shard(s) (`{data.SHARD_GLOB}`), {int(stats.get('bytes_out', 0)):,} bytes of text.", "",
             "```python", "from datasets import load_dataset", "",
             f'rows = load_dataset("parquet", data_files="{folder.name}/{data.SHARD_GLOB}")["train"]  '
             f"# or load_dataset(FOLDER): this card names the files", "```", "",
             "## Columns", "", "| column | type |", "|---|---|"]
    lines += [f"| `{name}` | {kind} |" for name, kind in _columns(folder)] or ["| not recorded | |"]
    lines += ["", "## Rows", "", f"{int(stats.get('rows_in', rows)):,} rows in, {rows:,} kept."]
    drops = stats.get("drops") or {}
    if drops:
        lines += ["", f"Dropped rows are in `{data.DROPPED}/` (the `dropped` config), with `drop_reason`:", "",
                  "| reason | rows |", "|---|---|"]
        lines += [f"| {reason} | {count:,} |" for reason, count in drops.items()]
    lines += [""] + _chain_lines(step_chain(folder, stats, parts))
    figures = diversity or stats.get("diversity")
    if figures:
        lines += [""] + _diversity_lines(figures)
    return "\n".join(lines) + "\n"


def write_dataset_card(folder: Path, stats: dict, parts: dict | None, diversity: dict | None = None) -> Path:
    """Write FOLDER/README.md (atomically) and return its path."""
    path = Path(folder) / CARD
    write_bytes(dataset_card(folder, stats, parts, diversity).encode("utf-8"), path)
    return path
