"""`textbooks dedup`: near-duplicate removal with MinHash LSH, keeping the first row of each cluster.

    textbooks dedup --input runs/x/ingest --out runs/x/dedup --threshold 0.7

map: one input part -> its rows' shingle sets (`textbooks.dedup.tokens`, `.shingles`), MinHash signatures
(`.minhash`) and LSH band keys (`.lsh`), with each row's id and normalised hash (`textbooks.dedup.exact`), as
side tables cut into hash buckets (`.buckets`). reduce: exact-duplicate groups, LSH candidate pairs, an optional
exact-Jaccard check of each pair, and clusters: either all rows at once in this process (`shuffle: memory`, the
reference) or as phases of tasks on the executor (`shuffle: sharded`, `.sharded`), with the same result. apply:
the part read again, split into kept rows (with `minhash_cluster`) and dropped rows (with `drop_reason` and
`duplicate_of`, the id of the row kept).

The first row of a cluster in dataset order (task order, then row order) is kept, and its global position is
the cluster id, so the output is the same whichever executor, process or reduce runs a task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from textbooks.dedup import lsh, minhash
from textbooks.dedup.buckets import band_partitions, exact_partitions
from textbooks.dedup.config import DedupConfig
from textbooks.dedup.exact import normalized_hash
from textbooks.dedup.sharded import sharded_reduce
from textbooks.dedup.shingles import shingle_sets, token_hashes
from textbooks.dedup.tokens import code_tokens, text_tokens
from textbooks.dedup.verdicts import EXACT, NEAR, DedupState, ShardedVerdicts, row_verdicts
from textbooks.errors import UserError
from textbooks.pipeline.phases import Phases
from textbooks.pipeline.stage import DROP_REASON, DUPLICATE_OF, ShardResult, Stage, WorkShard, with_drop_reason
from textbooks.store import data
from textbooks.store.inputs import Part, plan_parts, read_table

__all__ = ["CLUSTER", "EXACT", "NEAR", "DedupStage", "DedupState"]

CLUSTER = "minhash_cluster"
ROWS, EXACT_BUCKETS, BAND_BUCKETS = "rows", "exact", "bands"  # map outputs (`textbooks.dedup.buckets`)
SHARDED_FROM_ROWS = 1_000_000  # `shuffle: auto` reduces in memory below this many rows


class DedupStage(Stage):
    name = "dedup"
    Config = DedupConfig
    has_reduce = True
    unfingerprinted = frozenset({"shuffle", "partitions"})  # how the clusters are found, not which
    config: DedupConfig

    def __init__(self, config: DedupConfig, input: str | None = None) -> None:
        super().__init__(config, input)
        # Made here, in the driver, and shipped with the stage: a worker then never imports datasketch (and
        # scipy with it), which costs more than a small task's whole map.
        self.permutations = minhash.permutations(config.num_perm, config.seed)
        self.shape = config.lsh_shape()

    def plan(self) -> list[Part]:
        return plan_parts(self.input)

    def map(self, task: Part) -> ShardResult:
        """Per row, in row order (the row number is the position): id, hash, shingles, band keys by bucket."""
        config = self.config
        table = read_table(task, ["id", "text"])
        texts = [text or "" for text in table["text"].to_pylist()]
        streams, parsed = self._token_streams(texts)
        values, offsets = shingle_sets(map(token_hashes, streams), config.ngram)
        signatures = minhash.signatures(values, offsets, self.permutations)
        digests = [bytes.fromhex(normalized_hash(text)) for text in texts]
        rows = {"id": pc.cast(table["id"], pa.string()), "exact": pa.array(digests, pa.binary(16))}
        if config.verify:
            rows["shingles"] = pa.LargeListArray.from_arrays(pa.array(offsets), pa.array(values))
        keys = lsh.band_keys(signatures, *self.shape)
        side = {ROWS: pa.table(rows), EXACT_BUCKETS: exact_partitions(digests),
                BAND_BUCKETS: band_partitions(keys, lsh.indexed(signatures))}
        counters = {"documents": len(texts), "shingles": int(values.size)}
        if config.normalize == "code":
            counters["parsed_as_python"] = parsed
        return ShardResult(side=side, counters=counters)

    def _token_streams(self, texts: list[str]) -> tuple[list[list[str]], int]:
        """Each text's tokens, and how many texts parsed as Python (code mode)."""
        if self.config.normalize == "text":
            return [text_tokens(text) for text in texts], 0
        read = [code_tokens(text) for text in texts]
        return [tokens for tokens, _ in read], sum(parsed for _, parsed in read)

    def reduce(self, shards: list[WorkShard], phases: Phases) -> list[DedupState] | list[ShardedVerdicts]:
        rows = [data.count_rows(_map_output(shard, ROWS)) for shard in shards]
        mode = self.config.shuffle
        if mode == "sharded" or mode == "auto" and sum(rows) >= SHARDED_FROM_ROWS:
            return sharded_reduce(self.plan(), rows, phases, self.config.threshold, self.config.verify,
                                  self.config.partitions)
        return self._reduce_in_memory(shards)

    def _reduce_in_memory(self, shards: list[WorkShard]) -> list[DedupState]:
        """Every row at once: exact groups, candidate pairs and union-find in this process (the reference)."""
        tables = [_read(shard, ROWS) for shard in shards]
        table = pa.concat_tables(tables)
        bounds = np.cumsum([0] + [shard_table.num_rows for shard_table in tables]).tolist()
        first_copy: dict[bytes, int] = {}
        parents = np.array([first_copy.setdefault(value, row) for row, value in
                            enumerate(table["exact"].to_pylist())], dtype=np.int64)
        keys, has_keys = self._band_keys(shards, bounds)
        # LSH sees each text once: exact copies are joined already.
        roots = lsh.keyed_roots(parents, keys, has_keys, self._similar(table))
        reasons, duplicate_of = row_verdicts(roots, table["exact"].to_pylist(), table["id"].to_pylist())
        return [DedupState(part, roots[start:end], reasons[start:end], duplicate_of[start:end])
                for part, start, end in zip(self.plan(), bounds[:-1], bounds[1:])]

    def _band_keys(self, shards: list[WorkShard], bounds: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Every row's band keys, from the buckets of every part, and whether the row has any."""
        keys = np.zeros((bounds[-1], self.shape[0]), dtype=np.uint64)
        has_keys = np.zeros(bounds[-1], dtype=bool)
        for shard, offset in zip(shards, bounds):
            table = data.read_shard(_map_output(shard, BAND_BUCKETS))
            rows = table["row"].to_numpy().astype(np.int64) + offset
            keys[rows, table["band"].to_numpy().astype(np.int64)] = table["key"].to_numpy()
            has_keys[rows] = True
        return keys, has_keys

    def _similar(self, table: pa.Table) -> Callable[[int, int], bool] | None:
        if not self.config.verify:
            return None
        shingles = table["shingles"].combine_chunks()
        values, offsets = shingles.values.to_numpy(), shingles.offsets.to_numpy()
        return lsh.jaccard_check(values, offsets, self.config.threshold)

    def apply(self, shard: WorkShard, verdicts: DedupState | ShardedVerdicts) -> ShardResult:
        state = verdicts.load(shard.folder)
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



def _map_output(shard: WorkShard, what: str) -> Path:
    path = shard.path(what)
    if not path.is_file():
        raise UserError(f"{path}: map output missing; delete the output folder's .work and run the stage again")
    return path


def _read(shard: WorkShard, what: str) -> pa.Table:
    return data.read_shard(_map_output(shard, what))
