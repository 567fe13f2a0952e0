"""Every diversity and redundancy measure of one dataset folder, as one dict for stats.json and the report.

    found = measure_dataset(Path("runs/demo/dedup"))                      # text measures and families
    found = measure_dataset(folder, embeddings=Path("runs/demo/embed"))   # and the spread of its embeddings

One pass reads the dataset part by part, and no text outlives its part (the examples of the largest families
are read again from theirs). The text measures stream; families (`families.py`) need every row at once, but
not its text. Per row they hold its distinct shingles (4 B each: 92 a row, 370 B, on the standard library's
code), its MinHash signature (128 x 4 B), its AST shape (a 32-character hash and a node count, about 145 B
as Python objects), 16 B of offsets and first copy, and, per distinct text, its normalised hash with its
first row; the row's id only with embeddings. Besides those: zstd's 128 MiB window (about 210 MiB once full),
dedup's token-hash cache (at most 2**20 tokens), and distinct-n's n-gram hashes (8 B per distinct n-gram,
n = 1..4), which grow with how much new code the rows bring, not with their number.

Measured 2026-12-01 (bench/diversity_memory.py, 2 cores): 100,000 rows of that code peak at 656 MiB (1,676
MiB when every text and every row's tokens were held at once), 250,000 at 1,066 MiB: 2.9 KiB a row more,
transients and allocator slack included, so about 3.1 GiB for a million such rows. That corpus repeats 48,584
stdlib units; a million rows of new code (121 tokens a row) as varied as 400 short stdlib functions would
add about 1.2 GiB of n-gram hashes (3.6 GiB if every n-gram were new).
A `family_id` column already in the dataset is not read: families are found again.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from textbooks.corpus.units import parse_python
from textbooks.dedup.shingles import token_hashes
from textbooks.dedup.tokens import code_tokens
from textbooks.diversity import families as family_module
from textbooks.diversity import measures, spread
from textbooks.errors import UserError
from textbooks.store import data
from textbooks.store.inputs import Part, plan_parts, read_table

FAMILY = "family_id"
EXAMPLE_CHARS = 600  # of each example row of a large family
SAMPLER_AXES = ("topic", "audience", "level", "style", "difficulty", "function_name")


def _parts(folder: str) -> list[Part]:
    """A dataset's parts; a step's own output folder is read by its shards before its marker is written."""
    path = Path(folder)
    if path.is_dir() and not data.is_complete(path) and data.shard_paths(path):
        return [Part("shard", str(shard)) for shard in data.shard_paths(path)]
    return plan_parts(folder)


def _columns(folder: str) -> list[str]:
    parts = _parts(folder)
    if not parts:
        raise UserError(f"diversity: {folder} holds no rows")
    return read_table(parts[0]).schema.names


def measure_dataset(folder: str | Path, embeddings: str | Path | None = None, threshold: float = 0.7,
                    cosine: float = 0.95, ngram: int = 5, seed: int = 0) -> dict[str, Any]:
    """The measures of the dataset in `folder`: families, redundancy, balance (imported libraries; the sampler's
    axes where the rows have them) and, with `embeddings`, spread."""
    return measure_with_families(folder, embeddings, threshold, cosine, ngram, seed)[0]


def measure_with_families(folder: str | Path, embeddings: str | Path | None = None, threshold: float = 0.7,
                          cosine: float = 0.95, ngram: int = 5, seed: int = 0) -> tuple[dict[str, Any], np.ndarray]:
    """`measure_dataset`, and the family of each row in dataset order."""
    folder = str(folder)
    names = _columns(folder)
    if "text" not in names:
        raise UserError(f"diversity: {folder} has no `text` column (it has {', '.join(names[:8])}); measure a "
                        "dataset of documents, not a side dataset such as embeddings")
    axes = [name for name in SAMPLER_AXES if name in names]
    parts = _parts(folder)
    part_rows: list[int] = []
    ids: list[str] = []  # only to look up embeddings
    shapes: list[tuple[str, int] | None] = []
    builder = family_module.SignatureBuilder(ngram=ngram, seed=seed)
    distinct, compressed = measures.DistinctN(), measures.Compression()
    libraries: Counter[str] = Counter()
    sampled: dict[str, Counter[str]] = {axis: Counter() for axis in axes}
    for part in parts:
        table = read_table(part, ["id", "text", *axes])
        chunk = [text or "" for text in table["text"].to_pylist()]
        part_rows.append(len(chunk))
        if embeddings is not None:
            ids += [str(row_id) for row_id in table["id"].to_pylist()]
        hashes = [token_hashes(code_tokens(text)[0]) for text in chunk]  # tokenized once, for both:
        builder.add(chunk, hashes)  # families and greedy dedup
        distinct.update_hashes(hashes)
        del hashes
        compressed.update(chunk)
        for text in chunk:
            tree = parse_python(text)  # once a row, one tree at a time: its shape and its imports
            shapes.append(family_module.tree_shape(tree) if tree is not None else None)
            libraries.update(measures.tree_imports(tree) if tree is not None
                             else measures.imported_libraries([text]))
        for axis in axes:
            sampled[axis].update(str(value) for value in table[axis].to_pylist() if value is not None)
    vectors = vectors_for(embeddings, ids) if embeddings is not None else None
    signatures = builder.build()
    found = family_module.find_families(threshold=threshold, ngram=ngram, seed=seed, embeddings=vectors,
                                        cosine=cosine, signatures=signatures, shapes=shapes)
    summary = found.summary()
    summary["examples"] = _examples(found, summary["largest"][:3], parts, part_rows)
    result: dict[str, Any] = {
        "rows": len(signatures),
        "families": summary,
        "redundancy": {
            "near_duplicate_rate": summary["share_in_families"],
            "shape_duplicate_rate": _shape_duplicate_rate(shapes),
            "distinct_n": {str(n): value for n, value in distinct.result().items()},
            "compression_ratio": compressed.result(),
            "greedy_dedup_removed": family_module.greedy_dedup_removed(ngram=ngram, seed=seed,
                                                                       signatures=signatures),
        },
        "balance": {"libraries": measures.balance(libraries, top=20),
                    **{axis: measures.balance(counts) for axis, counts in sampled.items()}},
    }
    if vectors is not None:
        result["spread"] = {"vendi_score": spread.vendi_score(vectors), **spread.cluster_entropy(vectors, seed=seed),
                            "nearest_neighbour_distance": spread.nearest_neighbour_distance(vectors, seed=seed)}
    return result, found.family


def _examples(found: family_module.Families, largest: list[list[int]], parts: list[Part],
              part_rows: list[int]) -> list[dict]:
    """The first rows of the largest families (more than one row): what their variations look like, read again
    from their parts."""
    chosen = {family: np.flatnonzero(found.family == family)[:2].tolist() for family, size in largest if size > 1}
    rows = _read_rows(parts, part_rows, [row for family_rows in chosen.values() for row in family_rows])
    return [{"family": family, "size": size, "ids": [rows[row][0] for row in chosen[family]],
             "texts": [rows[row][1][:EXAMPLE_CHARS] for row in chosen[family]]}
            for family, size in largest if family in chosen]


def _read_rows(parts: list[Part], part_rows: list[int], rows: list[int]) -> dict[int, tuple[str, str]]:
    """`{row: (id, text)}` of the dataset's rows `rows` (numbered across its parts), each part read once."""
    starts = np.cumsum([0, *part_rows])
    found: dict[int, tuple[str, str]] = {}
    for index in sorted({int(np.searchsorted(starts, row, side="right")) - 1 for row in rows}):
        table = read_table(parts[index], ["id", "text"])
        if table.num_rows != part_rows[index]:
            raise UserError(f"diversity: {parts[index].path} has {table.num_rows} rows now, {part_rows[index]} "
                            "when the measure read it; it changed meanwhile, so measure again")
        ids, texts = table["id"].to_pylist(), table["text"].to_pylist()
        for row in rows:
            if starts[index] <= row < starts[index + 1]:
                found[row] = (str(ids[row - starts[index]]), texts[row - starts[index]] or "")
    return found


def _shape_duplicate_rate(shapes: list[tuple[str, int] | None]) -> float:
    """Share of rows whose AST shape another row shares; rows that do not parse, and trees too small for a shape
    to mean anything (`families.MIN_SHAPE_NODES`), count as unique."""
    counts = Counter(shape[0] for shape in shapes if shape is not None and shape[1] >= family_module.MIN_SHAPE_NODES)
    shared = sum(count for count in counts.values() if count > 1)
    return shared / len(shapes) if shapes else 0.0


def vectors_for(embeddings: str | Path, ids: list[str]) -> np.ndarray:
    """The rows' embeddings in row order; refused (it names the embed step to run) when the embeddings are of
    another dataset."""
    from textbooks.quality import vectors

    return vectors.lookup(embeddings, ids, "diversity").astype(np.float32)
