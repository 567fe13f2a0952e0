"""Every diversity and redundancy measure of one dataset folder, as one dict for stats.json and the report.

    found = measure_dataset(Path("runs/demo/dedup"))                      # text measures and families
    found = measure_dataset(folder, embeddings=Path("runs/demo/embed"))   # and the spread of its embeddings

Families (`families.py`) need every row's text at once (a few GB for a million rows of code); the other text
measures stream part by part. A family column already in the dataset (`family_id`, written by the diversity step)
is read instead of found again.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from textbooks.corpus.units import parse_python
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
    texts: list[str] = []
    ids: list[str] = []
    shapes: list[tuple[str, int] | None] = []
    distinct, compressed = measures.DistinctN(), measures.Compression()
    libraries: Counter[str] = Counter()
    sampled: dict[str, Counter[str]] = {axis: Counter() for axis in axes}
    for part in _parts(folder):
        table = read_table(part, ["id", "text", *axes])
        chunk = [text or "" for text in table["text"].to_pylist()]
        texts += chunk
        ids += [str(row_id) for row_id in table["id"].to_pylist()]
        distinct.update(chunk)
        compressed.update(chunk)
        trees = [parse_python(text) for text in chunk]  # once a row: its shape and its imports
        shapes += [family_module.tree_shape(tree) if tree is not None else None for tree in trees]
        for text, tree in zip(chunk, trees):
            libraries.update(measures.tree_imports(tree) if tree is not None
                             else measures.imported_libraries([text]))
        for axis in axes:
            sampled[axis].update(str(value) for value in table[axis].to_pylist() if value is not None)
    vectors = vectors_for(embeddings, ids) if embeddings is not None else None
    signatures = family_module.Signatures.of(texts, ngram=ngram, seed=seed)  # once, for families and greedy dedup
    found = family_module.find_families(texts, threshold=threshold, ngram=ngram, seed=seed, embeddings=vectors,
                                        cosine=cosine, signatures=signatures, shapes=shapes)
    summary = found.summary()
    summary["examples"] = _examples(found, summary["largest"][:3], ids, texts)
    result: dict[str, Any] = {
        "rows": len(texts),
        "families": summary,
        "redundancy": {
            "near_duplicate_rate": summary["share_in_families"],
            "shape_duplicate_rate": _shape_duplicate_rate(shapes),
            "distinct_n": {str(n): value for n, value in distinct.result().items()},
            "compression_ratio": compressed.result(),
            "greedy_dedup_removed": family_module.greedy_dedup_removed(texts, ngram=ngram, seed=seed,
                                                                       signatures=signatures),
        },
        "balance": {"libraries": measures.balance(libraries, top=20),
                    **{axis: measures.balance(counts) for axis, counts in sampled.items()}},
    }
    if vectors is not None:
        result["spread"] = {"vendi_score": spread.vendi_score(vectors), **spread.cluster_entropy(vectors, seed=seed),
                            "nearest_neighbour_distance": spread.nearest_neighbour_distance(vectors, seed=seed)}
    return result, found.family


def _examples(found: family_module.Families, largest: list[list[int]], ids: list[str],
              texts: list[str]) -> list[dict]:
    """The first rows of the largest families (more than one row): what their variations look like."""
    shown = []
    for family, size in largest:
        if size < 2:
            break
        rows = np.flatnonzero(found.family == family)[:2].tolist()
        shown.append({"family": family, "size": size, "ids": [ids[row] for row in rows],
                      "texts": [texts[row][:EXAMPLE_CHARS] for row in rows]})
    return shown


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
