"""`textbooks dedup`: near-duplicate removal with MinHash LSH, keeping the first row of each cluster.

    textbooks dedup --input runs/x/ingest --out runs/x/dedup --threshold 0.7

map: one input part -> its rows' shingle sets (`textbooks.dedup.tokens`, `.shingles`) and MinHash signatures
(`.minhash`), with each row's id and normalised hash (`textbooks.dedup.exact`), as the side table
`signatures`. reduce: all of them at once -> exact-duplicate groups, LSH candidate pairs (`.lsh`), an optional
exact-Jaccard check of each pair, and union-find clusters. apply: the part read again, split into kept rows
(with `minhash_cluster`) and dropped rows (with `drop_reason` and `duplicate_of`, the id of the row kept).

The first row of a cluster in dataset order (task order, then row order) is kept, and its global position is
the cluster id, so the output is the same whichever executor or process runs a task.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from textbooks.dedup import lsh, minhash
from textbooks.dedup.config import DedupConfig
from textbooks.dedup.exact import normalized_hash
from textbooks.dedup.shingles import shingle_sets, token_hashes
from textbooks.dedup.tokens import code_tokens, text_tokens
from textbooks.errors import UserError
from textbooks.pipeline.stage import DROP_REASON, DUPLICATE_OF, ShardResult, Stage, WorkShard, with_drop_reason
from textbooks.store.inputs import Part, plan_parts, read_table

CLUSTER = "minhash_cluster"
SIGNATURES = "signatures"
NEAR, EXACT = "near_duplicate", "exact_duplicate"


@dataclass(frozen=True)
class DedupState:
    """What `apply` needs for one part: per row its cluster id, and for a dropped row why and of which row."""

    part: Part
    cluster: np.ndarray
    reason: list[str | None]
    duplicate_of: list[str | None]


class DedupStage(Stage):
    name = "dedup"
    Config = DedupConfig
    has_reduce = True
    config: DedupConfig

    def __init__(self, config: DedupConfig, input: str | None = None) -> None:
        super().__init__(config, input)
        # Made here, in the driver, and shipped with the stage: a worker then never imports datasketch (and
        # scipy with it), which costs more than a small task's whole map.
        self.permutations = minhash.permutations(config.num_perm, config.seed)

    def plan(self) -> list[Part]:
        return plan_parts(self.input)

    def map(self, task: Part) -> ShardResult:
        """Shingle sets and signatures of one part's rows, in row order (the row number is the position)."""
        config = self.config
        table = read_table(task, ["id", "text"])
        texts = [text or "" for text in table["text"].to_pylist()]
        streams, parsed = self._token_streams(texts)
        values, offsets = shingle_sets(map(token_hashes, streams), config.ngram)
        signatures = minhash.signatures(values, offsets, self.permutations)
        columns = {
            "id": pc.cast(table["id"], pa.string()),
            "exact": pa.array([bytes.fromhex(normalized_hash(text)) for text in texts], pa.binary(16)),
            "signature": pa.FixedSizeListArray.from_arrays(pa.array(signatures.ravel()), config.num_perm),
        }
        if config.verify:
            columns["shingles"] = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(values))
        counters = {"documents": len(texts), "shingles": int(values.size)}
        if config.normalize == "code":
            counters["parsed_as_python"] = parsed
        return ShardResult(side={SIGNATURES: pa.table(columns)}, counters=counters)

    def _token_streams(self, texts: list[str]) -> tuple[list[list[str]], int]:
        """Each text's tokens, and how many texts parsed as Python (code mode)."""
        if self.config.normalize == "text":
            return [text_tokens(text) for text in texts], 0
        read = [code_tokens(text) for text in texts]
        return [tokens for tokens, _ in read], sum(parsed for _, parsed in read)

    def reduce(self, shards: list[WorkShard]) -> list[DedupState]:
        tables = [self._signatures(shard) for shard in shards]
        table = pa.concat_tables(tables)
        roots = self._clusters(table)
        reasons, duplicate_of = _verdicts(roots, table["exact"].to_pylist(), table["id"].to_pylist())
        bounds = np.cumsum([0] + [shard_table.num_rows for shard_table in tables]).tolist()
        return [DedupState(part, roots[start:end], reasons[start:end], duplicate_of[start:end])
                for part, start, end in zip(self.plan(), bounds[:-1], bounds[1:])]

    def _signatures(self, shard: WorkShard) -> pa.Table:
        table = shard.read(SIGNATURES)
        if table is None:
            raise UserError(f"{shard.path(SIGNATURES)}: map output missing; delete the output folder's .work "
                            "and run the stage again")
        return table

    def _clusters(self, table: pa.Table) -> np.ndarray:
        """The root of every row: the global position of the row its cluster keeps."""
        first_copy: dict[bytes, int] = {}
        parents = np.array([first_copy.setdefault(value, row) for row, value in
                            enumerate(table["exact"].to_pylist())], dtype=np.int64)
        signature = table["signature"].combine_chunks().flatten().to_numpy()
        matrix = signature.reshape(table.num_rows, self.config.num_perm)
        # LSH sees each text once: exact copies are joined already.
        return lsh.near_duplicate_roots(parents, matrix, *self.config.lsh_shape(), self._similar(table))

    def _similar(self, table: pa.Table) -> Callable[[int, int], bool] | None:
        if not self.config.verify:
            return None
        shingles = table["shingles"].combine_chunks()
        values, offsets = shingles.values.to_numpy(), shingles.offsets.to_numpy()
        return lsh.jaccard_check(values, offsets, self.config.threshold)

    def apply(self, shard: WorkShard, state: DedupState) -> ShardResult:
        table = read_table(state.part)
        if table.num_rows != len(state.cluster):
            raise UserError(f"{state.part.path}: has {table.num_rows} rows now, {len(state.cluster)} when "
                            "the stage began; it changed during the run, so run the stage again")
        earlier = [name for name in (CLUSTER, DUPLICATE_OF, DROP_REASON) if name in table.column_names]
        table = table.drop_columns(earlier).append_column(CLUSTER, pa.array(state.cluster, pa.int64()))
        dropped_rows = [row for row, reason in enumerate(state.reason) if reason is not None]
        kept = table.filter(pa.array([reason is None for reason in state.reason], pa.bool_()))
        duplicate_of = pa.array([state.duplicate_of[row] for row in dropped_rows], pa.string())
        dropped = table.take(pa.array(dropped_rows, pa.int64())).append_column(DUPLICATE_OF, duplicate_of)
        dropped = with_drop_reason(dropped, [state.reason[row] for row in dropped_rows])
        return ShardResult(kept=kept, dropped=dropped)


def _verdicts(roots: np.ndarray, exact: list[bytes], ids: list[str]
              ) -> tuple[list[str | None], list[str | None]]:
    """Per row: why it is dropped and the id of the row kept in its place; None and None for a kept row."""
    reasons: list[str | None] = []
    duplicate_of: list[str | None] = []
    for row, root in enumerate(roots.tolist()):
        if row == root:
            reasons.append(None)
            duplicate_of.append(None)
        else:
            reasons.append(EXACT if exact[row] == exact[root] else NEAR)
            duplicate_of.append(ids[root])
    return reasons, duplicate_of
