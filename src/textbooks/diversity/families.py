"""Families of variations: how many versions of each piece of code a dataset holds, and how they are spread.

    from textbooks.diversity.families import SignatureBuilder, Signatures, find_families, greedy_dedup_removed

    signatures = Signatures.of(texts)                       # shingles and MinHash once, for both calls
    families = find_families(texts, signatures=signatures, embeddings=vectors)
    families.summary()   # {"rows": 2396, "families": 200, "share_in_families": 0.99, "size_histogram": ...}
    greedy_dedup_removed(texts, signatures=signatures)      # {"0.5": 0.89, "0.7": 0.80, "0.9": 0.39}

    builder = SignatureBuilder()                            # or part by part, holding no text past its part
    for chunk in parts:
        builder.add(chunk)                                  # and each row's `tree_shape` into `shapes`
    find_families(signatures=builder.build(), shapes=shapes)   # the same families as from all the texts

A family is a connected component of the duplicate graph over the rows, whose edges are of four kinds, joined
in this order: exact copies (`normalized_hash`), near-duplicates (MinHash LSH at a Jaccard threshold on the
dedup step's code tokens, local names canonicalised, each candidate pair checked by its exact Jaccard), equal
syntax-tree shapes (`ast_shape`: the same code up to names, literals, comments, docstrings, layout and the
order of a block's statements), and pairs of rows whose embeddings have cosine similarity at least `cosine`.
`Families.edges` counts the joins each kind made that the kinds before it had not.

Shapes carry most of the weight on variants. On 2,396 planted variants of 200 stdlib functions (renamed,
re-wrapped, re-indented, comments, docstrings and literals changed, statements swapped: the test's data),
exact + near alone find 489 families (adjusted Rand 0.87 against the truth), with shapes 200 (1.0). The LSH
shape is datasketch's, as in dedup, which catches a pair at Jaccard 0.7 only 44% of the time (0.87 at 0.8);
chains through other variants make up for much of it. Over the 2,569 stdlib functions of 3-60 lines, shapes
join 110 pairs of real templates (deprecated wrappers, `read_uint2`/`read_int4`), near-duplicates 7.
Measured 2026-12-01 on 2 cores: 790 rows/s for all of it (2,396 rows in 3.0 s: signatures 0.95 s, shapes
about 1.1 s); `greedy_dedup_removed` at three thresholds on the same signatures 0.1 s.

The dedup step keeps the first row of each LSH cluster; `greedy_dedup_removed` is the share it would drop at
each threshold, from the same building blocks (`textbooks.dedup`), so with the same seed (datasketch's 1, the
step's default) it is what `textbooks dedup --threshold T` drops.
"""

from __future__ import annotations

import ast
import hashlib
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from textbooks.corpus.units import parse_python
from textbooks.dedup import lsh, minhash
from textbooks.dedup.exact import normalized_hash
from textbooks.dedup.shingles import shingle_sets, token_hashes
from textbooks.dedup.tokens import code_tokens

KINDS = ("exact", "near", "shape", "embedding")
MIN_SHAPE_NODES = 20  # smaller trees get no shape edges (see find_families)
SIZE_BUCKETS = (("1", 1), ("2", 2), ("3-4", 4), ("5-8", 8), ("9-16", 16), ("17-32", 32), ("33-64", 64))
LARGEST_BUCKET = "65+"
# A cosine block of this many similarities at most (float32: 64 MiB) is in memory at once.
_BLOCK_SIMILARITIES = 1 << 24
_NAME = "_"  # what every identifier becomes in a shape
_DOCUMENTED = (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def ast_shape(text: str) -> str | None:
    """A hash of the code's syntax tree with every identifier, attribute name, argument name and literal value
    replaced by a placeholder (literals by their type), and comments and docstrings removed: two functions that
    differ only in names, literals, comments, docstrings and formatting get the same shape. None when the text
    does not parse as Python.

    The statements of a block are a multiset: moving independent statements around keeps the shape (an extra
    or changed statement does not). Every name is the same placeholder, not one numbered by first appearance:
    renaming a local while an attribute or keyword argument keeps its name (`self.size = size` to
    `self.size = n`) is still the same code. Shapes compare within one Python version (its `ast`).
    """
    shaped = _shape_and_size(text)
    return None if shaped is None else shaped[0]


def _shape_and_size(text: str) -> tuple[str, int] | None:
    """`ast_shape` of `text` and the number of nodes of its tree (docstrings left out)."""
    tree = parse_python(text)
    return None if tree is None else tree_shape(tree)


def tree_shape(tree: ast.AST) -> tuple[str, int] | None:
    """`ast_shape` of a parsed tree and its number of nodes (for a caller that parses each row once)."""
    nodes = [0]
    try:
        canonical = _canonical(tree, nodes)
    except RecursionError:
        return None
    return hashlib.blake2b(canonical.encode("utf-8"), digest_size=16).hexdigest(), nodes[0]


def _canonical(node: ast.AST, nodes: list[int]) -> str:
    """`node` as text: names erased, literals as their types, docstrings dropped, each block's statements sorted."""
    nodes[0] += 1
    if isinstance(node, ast.Constant):
        return f"Constant({type(node.value).__name__})"
    fields = []
    for field, value in ast.iter_fields(node):
        if isinstance(value, ast.AST):
            fields.append(_canonical(value, nodes))
        elif isinstance(value, list):
            if field == "body" and isinstance(node, _DOCUMENTED) and value and _is_docstring(value[0]):
                value = value[1:]
            items = [_canonical(item, nodes) if isinstance(item, ast.AST) else _field(item) for item in value]
            is_block = bool(value) and isinstance(value[0], ast.stmt)
            fields.append("[" + ",".join(sorted(items) if is_block else items) + "]")
        else:
            fields.append(_field(value))
    return f"{type(node).__name__}({','.join(fields)})"


def _is_docstring(statement: ast.AST) -> bool:
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) \
        and isinstance(statement.value.value, str)


def _field(value: object) -> str:
    """A plain field: outside a Constant, every string of a node is an identifier (None: an absent one)."""
    return _NAME if isinstance(value, str) else repr(value)


@dataclass
class Families:
    """Which family each row belongs to, and how many joins each kind of edge made."""

    family: np.ndarray  # int64, one family number per row (0..families-1, numbered by first row)
    edges: dict[str, int]  # joins per kind ("exact", "near", "shape", "embedding") that earlier kinds had not

    def sizes(self) -> np.ndarray:
        """The number of rows of each family, by family number."""
        return np.bincount(self.family).astype(np.int64) if self.family.size else np.zeros(0, dtype=np.int64)

    def summary(self, largest: int = 10) -> dict:
        """Plain numbers for a report: counts, shares, size percentiles and histogram, the largest families."""
        sizes = self.sizes()
        rows = int(self.family.size)
        percentiles = np.percentile(sizes, [50, 90, 99]).tolist() if sizes.size else [0.0, 0.0, 0.0]
        order = np.lexsort((np.arange(sizes.size), -sizes))[:largest]
        return {
            "rows": rows,
            "families": int(sizes.size),
            "singletons": int(np.count_nonzero(sizes == 1)),
            "share_in_families": float(sizes[sizes > 1].sum() / rows) if rows else 0.0,
            "size_percentiles": {"50": percentiles[0], "90": percentiles[1], "99": percentiles[2],
                                 "max": int(sizes.max()) if sizes.size else 0},
            "size_histogram": size_histogram(sizes),
            "largest": [[int(family), int(sizes[family])] for family in order],
        }


def size_histogram(sizes: np.ndarray) -> list[list]:
    """`[[bucket, families], ...]` over the buckets 1, 2, 3-4, 5-8, 9-16, 17-32, 33-64, 65+ (all of them)."""
    uppers = np.array([upper for _, upper in SIZE_BUCKETS])
    counts = np.bincount(np.searchsorted(uppers, sizes), minlength=len(uppers) + 1)
    labels = [label for label, _ in SIZE_BUCKETS] + [LARGEST_BUCKET]
    return [[label, int(count)] for label, count in zip(labels, counts)]


@dataclass(frozen=True)
class Signatures:
    """Each row's shingle set, MinHash signature and first exact copy: made once, used by both measures."""

    shingles: np.ndarray  # uint32: row i's sorted distinct shingle hashes are shingles[offsets[i]:offsets[i + 1]]
    offsets: np.ndarray  # int64, rows + 1 entries
    minhash: np.ndarray  # uint32, (rows, num_perm)
    first_copy: np.ndarray  # int64: the first row with the same normalised text
    ngram: int
    num_perm: int
    seed: int

    @classmethod
    def of(cls, texts: Sequence[str], ngram: int = 5, num_perm: int = 128, seed: int = 1) -> Signatures:
        """The dedup step's tokens (code mode), shingles and signatures of `texts`."""
        builder = SignatureBuilder(ngram, num_perm, seed)
        builder.add(texts)
        return builder.build()

    def __len__(self) -> int:
        return len(self.first_copy)

    def check(self, rows: int, ngram: int, num_perm: int, seed: int) -> None:
        """Raise ValueError when these signatures were not made for `rows` rows with these settings."""
        made, wanted = (len(self), self.ngram, self.num_perm, self.seed), (rows, ngram, num_perm, seed)
        if made != wanted:
            raise ValueError("signatures were made for {} rows with ngram={}, num_perm={}, seed={}, but are used "
                             "for {} rows with ngram={}, num_perm={}, seed={}: make them with "
                             "Signatures.of(texts, ngram, num_perm, seed) for these texts and settings"
                             .format(*made, *wanted))


class SignatureBuilder:
    """`Signatures` made part by part, so that no part's texts need outlive it: `add(texts)` for each part in row
    order, then `build()`, which hands over everything added and leaves the builder empty. Until then it holds
    each part's arrays and, for exact copies across parts, the normalised hash of each distinct text (32 hex
    characters) with its first row. The result equals `Signatures.of` of all the texts at once."""

    def __init__(self, ngram: int = 5, num_perm: int = 128, seed: int = 1) -> None:
        self.ngram, self.num_perm, self.seed = ngram, num_perm, seed
        self._start()

    def _start(self) -> None:
        self._first_row: dict[str, int] = {}
        self._rows = self._shingle_count = 0
        self._shingles: list[np.ndarray] = [np.zeros(0, dtype=np.uint32)]
        self._starts: list[np.ndarray] = []  # each part's row offsets, without its end, into all the shingles
        self._minhash: list[np.ndarray] = [np.zeros((0, self.num_perm), dtype=np.uint32)]
        self._first_copy: list[np.ndarray] = [np.zeros(0, dtype=np.int64)]

    def add(self, texts: Sequence[str], hashes: Sequence[list[int]] | None = None) -> None:
        """The signatures of the next rows; `hashes`: their `token_hashes(code_tokens(text)[0])`, when the caller
        has them already."""
        streams = hashes if hashes is not None else (token_hashes(code_tokens(text)[0]) for text in texts)
        values, offsets = shingle_sets(streams, self.ngram)
        self._shingles.append(values)
        self._starts.append(offsets[:-1] + self._shingle_count)
        self._minhash.append(minhash.signatures(values, offsets, minhash.permutations(self.num_perm, self.seed)))
        self._first_copy.append(_first_copies(texts, self._first_row, self._rows))
        self._rows += len(texts)
        self._shingle_count += values.size

    def build(self) -> Signatures:
        """The signatures of every row added, in the order added."""
        self._starts.append(np.array([self._shingle_count], dtype=np.int64))
        joined = [_joined(parts) for parts in (self._shingles, self._starts, self._minhash, self._first_copy)]
        self._start()
        return Signatures(*joined, self.ngram, self.num_perm, self.seed)


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """The parts as one array; the list is emptied, so that only one kind of array is ever held twice."""
    joined = np.concatenate(parts)
    parts.clear()
    return joined


def _first_copies(texts: Sequence[str], first: dict[str, int] | None = None, start: int = 0) -> np.ndarray:
    """The first row with the same normalised text as each text, `texts` being rows `start...`; `first` holds
    the first row of each hash seen before them, and gains theirs."""
    first = {} if first is None else first
    return np.array([first.setdefault(normalized_hash(text), start + row) for row, text in enumerate(texts)],
                    dtype=np.int64)


def find_families(texts: Sequence[str] | None = None, threshold: float = 0.7, ngram: int = 5, num_perm: int = 128,
                  seed: int = 1, embeddings: np.ndarray | None = None, cosine: float = 0.95,
                  kinds: Sequence[str] = KINDS, signatures: Signatures | None = None,
                  min_shape_nodes: int = MIN_SHAPE_NODES,
                  shapes: Sequence[tuple[str, int] | None] | None = None) -> Families:
    """The connected components of the duplicate graph over the rows: edges between exact duplicates
    (normalized_hash), near-duplicates (MinHash LSH at Jaccard `threshold` on `ngram`-token shingles of the
    code tokens with local names canonicalised, as dedup does, Jaccard-checked), equal AST shapes of trees
    with at least `min_shape_nodes` nodes, and, when embeddings are given, pairs of rows whose cosine
    similarity is >= `cosine` (in blocks: no n x n matrix in memory). Union-find over all edges.

    `signatures` (from `Signatures.of(texts, ngram, num_perm, seed)` or a `SignatureBuilder`) and `shapes`
    (`tree_shape` of each row's tree, None where it does not parse) save computing them again; with both,
    `texts` may be left out, so a caller that reads its rows part by part need not hold them. Tiny trees
    get no shape edges: `def f(ch): return ch in SPACES` and `def g(name): return name in REGISTRY` have one
    shape, and are no variations of one exercise.
    """
    _check_settings(kinds, threshold)
    wanted = signatures is not None or "near" in kinds
    made = _signatures_for(texts, signatures, ngram, num_perm, seed) if wanted else None
    roots = np.arange(_row_count(texts, made, shapes), dtype=np.int64)
    joined: dict[str, np.ndarray] = {}  # the roots after each kind's edges, in order
    if "exact" in kinds:
        first_copy = made.first_copy if made is not None else _first_copies(_given(texts, "signatures"))
        roots = joined["exact"] = lsh.cluster_roots(roots, _pairs_to_first(first_copy))
    if made is not None and "near" in kinds:
        similar = lsh.jaccard_check(made.shingles, made.offsets, threshold)
        shape = minhash.optimal_shape(threshold, num_perm)
        roots = joined["near"] = lsh.near_duplicate_roots(roots, made.minhash, *shape, similar)
    if "shape" in kinds:
        shaped = shapes if shapes is not None else map(_shape_and_size, _given(texts, "shapes"))
        roots = joined["shape"] = _shape_roots(roots, shaped, min_shape_nodes)
    if "embedding" in kinds and embeddings is not None:
        roots = joined["embedding"] = _embedding_roots(roots, embeddings, cosine)
    return Families(np.unique(roots, return_inverse=True)[1].astype(np.int64).reshape(-1), _merges(joined, kinds))


def _check_settings(kinds: Sequence[str], threshold: float) -> None:
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise ValueError(f"unknown edge kinds {unknown}: choose from {list(KINDS)}")
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold {threshold} is not a Jaccard similarity strictly between 0 and 1")


def _merges(joined: dict[str, np.ndarray], kinds: Sequence[str]) -> dict[str, int]:
    """Per kind, how many components its joins merged: the fall in their number from the kind before."""
    merges = {kind: 0 for kind in kinds}
    components = None
    for kind, roots in joined.items():
        after = int(np.count_nonzero(roots == np.arange(roots.size)))
        merges[kind] = (roots.size if components is None else components) - after
        components = after
    return merges


def _pairs_to_first(first: np.ndarray) -> np.ndarray:
    """`(first row, row)` for every row whose first row of its group is an earlier one."""
    later = np.flatnonzero(first != np.arange(first.size))
    return np.stack([first[later], later], axis=1)


def _given(texts: Sequence[str] | None, made: str) -> Sequence[str]:
    if texts is None:
        raise ValueError(f"neither texts nor their {made} were given: pass the texts, or {made} made from them")
    return texts


def _signatures_for(texts: Sequence[str] | None, signatures: Signatures | None, ngram: int, num_perm: int,
                    seed: int) -> Signatures:
    if signatures is None:
        return Signatures.of(_given(texts, "signatures"), ngram, num_perm, seed)
    signatures.check(len(texts) if texts is not None else len(signatures), ngram, num_perm, seed)
    return signatures


def _row_count(texts: Sequence[str] | None, signatures: Signatures | None,
               shapes: Sequence[tuple[str, int] | None] | None) -> int:
    """The number of rows, from whichever of texts, signatures and shapes there are (which must agree)."""
    counts = {name: len(given) for name, given in (("texts", texts), ("signatures", signatures), ("shapes", shapes))
              if given is not None}
    if not counts:
        raise ValueError("no texts, signatures or shapes were given: pass the texts, or their signatures and shapes")
    if len(set(counts.values())) > 1:
        raise ValueError(f"texts, signatures and shapes are of different numbers of rows ({counts}): make them of "
                         "the same rows")
    return next(iter(counts.values()))


def _shape_roots(roots: np.ndarray, shapes: Iterable[tuple[str, int] | None], min_nodes: int) -> np.ndarray:
    """`roots` with every row joined to the first row of the same AST shape (`shapes`: each row's, in order)."""
    first: dict[str, int] = {}
    rows = np.arange(roots.size, dtype=np.int64)
    for row, shaped in enumerate(shapes):
        if shaped is not None and shaped[1] >= min_nodes:
            rows[row] = first.setdefault(shaped[0], row)
    return lsh.cluster_roots(roots, _pairs_to_first(rows))


def _embedding_roots(roots: np.ndarray, embeddings: np.ndarray, cosine: float) -> np.ndarray:
    """`roots` with every pair of rows whose embeddings' cosine similarity is >= `cosine` joined.

    Exact and quadratic in rows, one block of rows against all later rows at a time; a zero vector is similar
    to nothing.
    """
    vectors = np.asarray(embeddings, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != roots.size:
        raise ValueError(f"embeddings have shape {vectors.shape}; find_families needs one vector per row, "
                         f"({roots.size}, dimensions)")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = np.divide(vectors, norms, out=np.full_like(vectors, np.nan), where=norms > 0)
    block = max(1, _BLOCK_SIMILARITIES // max(roots.size, 1))
    for start in range(0, roots.size, block):
        similar = unit[start:start + block] @ unit[start:].T  # later rows only: columns start at `start`
        earlier, later = np.nonzero(np.triu(similar >= cosine, k=1))
        pairs = np.stack([earlier, later], axis=1) + start
        pairs = pairs[roots[pairs[:, 0]] != roots[pairs[:, 1]]]
        if pairs.size:
            roots = lsh.cluster_roots(roots, pairs)
    return roots


def greedy_dedup_removed(texts: Sequence[str] | None = None, thresholds: Sequence[float] = (0.5, 0.7, 0.9),
                         ngram: int = 5, num_perm: int = 128, seed: int = 1, signatures: Signatures | None = None
                         ) -> dict[str, float]:
    """For each Jaccard threshold, the share of rows a greedy near-duplicate removal (keep the first row of each
    LSH cluster, exact copies included, as the dedup step does) would drop: {"0.5": share, ...}. With
    `signatures`, `texts` may be left out."""
    made = _signatures_for(texts, signatures, ngram, num_perm, seed)
    rows = np.arange(len(made))
    removed = {}
    for threshold in thresholds:
        _check_settings((), threshold)
        similar = lsh.jaccard_check(made.shingles, made.offsets, threshold)
        shape = minhash.optimal_shape(threshold, num_perm)
        roots = lsh.near_duplicate_roots(made.first_copy, made.minhash, *shape, similar)
        removed[f"{threshold:g}"] = float(np.count_nonzero(roots != rows) / rows.size) if rows.size else 0.0
    return removed
