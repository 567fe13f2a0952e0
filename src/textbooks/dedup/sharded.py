"""The dedup reduce as tasks on the executor: this process holds no per-row state, only the parts' row counts.

    exact       per group of hash buckets: rows with an equal normalised hash; each later copy -> its first
    bands       per group of key buckets: the LSH candidate pairs (each indexed first copy with the one
                before it among the rows of an equal band key), as `(earlier, later)` rows by part of earlier
    send        (verify) per part: its pairs, de-duplicated; those within the part checked, the others sent on
                by part of the later row with the earlier row's shingle set
    check       (verify) per part: the pairs sent to it checked against its own rows' shingle sets
    components  one task: the connected components of the copies and the accepted pairs (scipy), each row's
                root the first row of its component; per part its rows' verdicts

Rows are global positions (part offset + row). Every file goes to the step's `.work/` folder, one per task
(`exact-00002.parquet`, ...), with one partition per destination where a later phase reads a slice of it.

It gives the in-memory reduce's result (`textbooks.dedup.lsh`), row for row: the candidate pairs are the same
(the same chains, in the same order, bucket by bucket), and the clusters of union-find over pairs checked in
order, skipping a pair whose rows are joined already, are the connected components of the pairs that pass the
check plus the copies, whatever the order; the root is the component's first row either way. Only the work
differs: here every distinct pair is checked, joined or not.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from textbooks.dedup import lsh
from textbooks.dedup.buckets import BUCKETS, bucket_range, part_of, partitioned
from textbooks.dedup.verdicts import VERDICTS, ShardedVerdicts
from textbooks.pipeline.phases import Phases
from textbooks.pipeline.stage import WorkShard
from textbooks.store import data
from textbooks.store.inputs import Part

ROWS_PER_TASK = 100_000  # of the exact and bands phases, by default
GROUPING = "shuffle-tasks"  # the recorded number of tasks of the exact and bands phases


@dataclass(frozen=True)
class Shuffle:
    """The phases' functions, shipped to the workers with what they share (no per-row data)."""

    folder: Path  # the step's .work/
    offsets: tuple[int, ...]  # each part's first global row, then the row count
    tasks: int  # of the exact and bands phases
    threshold: float
    verify: bool

    @property
    def parts(self) -> int:
        return len(self.offsets) - 1

    def _buckets(self, what: str, task: int, columns: list[str]) -> list[pa.Table]:
        """Every part's buckets of `task`, with `row` made global."""
        first, end = bucket_range(task, self.tasks)
        tables = []
        for part in range(self.parts):
            table = WorkShard(part, self.folder).read_partitions(what, first, end, columns)
            rows = table["row"].to_numpy().astype(np.int64) + self.offsets[part]
            tables.append(table.set_column(table.schema.get_field_index("row"), "row", pa.array(rows)))
        return tables

    def exact(self, task: int) -> dict:
        """Each later copy of a normalised hash with the first row that has it."""
        table = pa.concat_tables(self._buckets("exact", task, ["row", "high", "low"]))
        rows, high, low = (table[name].to_numpy() for name in ("row", "high", "low"))
        order = np.lexsort((rows, low, high))
        rows, high, low = rows[order], high[order], low[order]
        changed = (high[1:] != high[:-1]) | (low[1:] != low[:-1])
        starts = np.concatenate((np.ones(min(1, rows.size), dtype=bool), changed))  # the first row of each hash
        parent = rows[np.flatnonzero(starts)][np.cumsum(starts) - 1]
        copies = rows != parent
        data.write_table(pa.table({"row": rows[copies], "parent": parent[copies]}), self._file("exact", task))
        return {"copies": int(copies.sum())}

    def _copies(self) -> tuple[np.ndarray, np.ndarray]:
        """(row, first row with the same hash) of every later copy, sorted by row."""
        tables = [data.read_shard(self._file("exact", task)) for task in range(self.tasks)]
        table = pa.concat_tables(tables)
        rows, parents = table["row"].to_numpy(), table["parent"].to_numpy()
        order = np.argsort(rows)
        return rows[order], parents[order]

    def bands(self, task: int) -> dict:
        """The candidate pairs of the key buckets of `task`, as `lsh.candidate_pairs` chains them."""
        copies, _ = self._copies()
        table = pa.concat_tables(self._buckets("bands", task, ["row", "band", "key"]))
        rows, band, key = (table[name].to_numpy() for name in ("row", "band", "key"))
        first_copy = ~np.isin(rows, copies)
        rows, band, key = rows[first_copy], band[first_copy], key[first_copy]
        order = np.lexsort((rows, key, band))
        rows, band, key = rows[order], band[order], key[order]
        same = (band[1:] == band[:-1]) & (key[1:] == key[:-1])
        earlier, later = rows[:-1][same], rows[1:][same]
        destination = part_of(earlier, np.asarray(self.offsets))
        pairs = partitioned(destination, self.parts, {"earlier": earlier, "later": later})
        data.write_partitions(pairs, self._file("bands", task))
        return {"pairs": int(same.sum())}

    def _pairs_of(self, part: int) -> tuple[np.ndarray, np.ndarray]:
        """The distinct candidate pairs whose earlier row is in `part`, sorted."""
        tables = [data.read_partitions(self._file("bands", task), part) for task in range(self.tasks)]
        table = pa.concat_tables(tables)
        count = max(self.offsets[-1], 1)
        codes = np.unique(table["earlier"].to_numpy() * count + table["later"].to_numpy())
        return codes // count, codes % count

    def _rows(self, part: int, column: str) -> pa.Array:
        """One column of a part's `rows` map output."""
        return data.read_shard(WorkShard(part, self.folder).path("rows"), [column])[column].combine_chunks()

    def send(self, part: int) -> dict:
        """Check the pairs within `part`; send the others on with the earlier row's shingle set."""
        earlier, later = self._pairs_of(part)
        shingles, offset = self._rows(part, "shingles"), self.offsets[part]
        here = part_of(later, np.asarray(self.offsets)) == part
        similar = lsh.jaccard_check(*_flat(shingles), self.threshold)
        accepted = [similar(first - offset, second - offset) for first, second in
                    zip(earlier[here].tolist(), later[here].tolist())]
        keep = np.asarray(accepted, dtype=bool)
        edges = pa.table({"earlier": earlier[here][keep], "later": later[here][keep]})
        data.write_table(edges, self._file("near", part, "local"))
        away = ~here
        sent = {"earlier": earlier[away], "later": later[away],
                "shingles": shingles.take(pa.array(earlier[away] - offset))}
        destination = part_of(later[away], np.asarray(self.offsets))
        data.write_partitions(partitioned(destination, self.parts, sent), self._file("send", part))
        return {"pairs": int(earlier.size), "accepted_here": int(keep.sum()), "sent": int(away.sum())}

    def check(self, part: int) -> dict:
        """Check the pairs sent to `part` against its rows' shingle sets."""
        table = pa.concat_tables([data.read_partitions(self._file("send", sender), part)
                                  for sender in range(self.parts)])
        theirs, ours = table["shingles"].combine_chunks(), self._rows(part, "shingles")
        (their_values, their_offsets), (our_values, our_offsets) = _flat(theirs), _flat(ours)
        values = np.concatenate((their_values, our_values))
        offsets = np.concatenate((their_offsets[:-1], our_offsets + their_values.size))
        similar = lsh.jaccard_check(values, offsets, self.threshold)
        earlier, later = table["earlier"].to_numpy(), table["later"].to_numpy()
        first_ours = table.num_rows - self.offsets[part]
        keep = np.asarray([similar(pair, first_ours + second) for pair, second in enumerate(later.tolist())],
                          dtype=bool)
        data.write_table(pa.table({"earlier": earlier[keep], "later": later[keep]}), self._file("near", part))
        return {"pairs": int(table.num_rows), "accepted": int(keep.sum())}

    def components(self, _: object) -> dict:
        """Every row's root: the first row of its connected component of copies and accepted pairs."""
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        count = self.offsets[-1]
        if count == 0:
            self._write_verdicts(np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int8))
            return {"rows": 0, "dropped": 0}
        copies, parents = self._copies()
        earlier, later = self._edges()
        first = np.concatenate((parents, earlier))
        second = np.concatenate((copies, later))
        graph = coo_matrix((np.ones(first.size, dtype=np.int32), (first, second)), shape=(count, count)).tocsr()
        _, labels = connected_components(graph, directed=False)
        _, first_row = np.unique(labels, return_index=True)
        roots = first_row[labels].astype(np.int64)
        exact_parent = np.arange(count, dtype=np.int64)
        exact_parent[copies] = parents
        reason = np.where(roots == np.arange(count), 0, np.where(exact_parent == roots, 1, 2)).astype(np.int8)
        self._write_verdicts(roots, reason)
        return {"rows": int(count), "dropped": int(np.count_nonzero(reason))}

    def _edges(self) -> tuple[np.ndarray, np.ndarray]:
        """The near-duplicate edges: the accepted pairs (verify), else every candidate pair."""
        if self.verify:
            files = [self._file("near", part, kind) for part in range(self.parts) for kind in ("local", None)]
            tables = [data.read_shard(path) for path in files]
        else:
            tables = [data.read_shard(self._file("bands", task)) for task in range(self.tasks)]
        table = pa.concat_tables(tables)
        return table["earlier"].to_numpy(), table["later"].to_numpy()

    def _write_verdicts(self, roots: np.ndarray, reason: np.ndarray) -> None:
        ids = pa.chunked_array([self._rows(part, "id") for part in range(self.parts)], pa.string())
        dropped = reason != 0
        duplicate_of = ids.take(pa.array(roots, mask=~dropped))
        tables = [pa.table({"cluster": pa.array(roots[begin:end]), "reason": pa.array(reason[begin:end]),
                            "duplicate_of": duplicate_of.slice(begin, end - begin)})
                  for begin, end in zip(self.offsets[:-1], self.offsets[1:])]
        data.write_partitions(tables, self.folder / VERDICTS)

    def _file(self, phase: str, index: int, kind: str | None = None) -> Path:
        return self.folder / f"{phase}{'-' + kind if kind else ''}-{index:05d}.parquet"


def _flat(sets: pa.LargeListArray) -> tuple[np.ndarray, np.ndarray]:
    """The values and offsets (from 0) of a list array, which may be a slice of a longer one."""
    offsets = sets.offsets.to_numpy()
    return sets.values.to_numpy()[offsets[0]:offsets[-1]], offsets - offsets[0]


def sharded_reduce(parts: list[Part], rows: list[int], phases: Phases, threshold: float, verify: bool,
                   tasks: int | None) -> list[ShardedVerdicts]:
    """Run the phases (the module docstring) on the parts' map outputs (`rows` each) and hand each part where its
    verdicts are."""
    offsets = tuple(np.cumsum([0, *rows]).tolist())
    tasks = tasks or min(BUCKETS, max(1, -(-offsets[-1] // ROWS_PER_TASK)))
    # `partitions` is not in the fingerprint: a resumed run keeps the grouping its phase records were made with.
    recorded = phases.work.load(GROUPING)
    if recorded is None:
        phases.work.save(GROUPING, tasks)
    elif recorded != tasks:
        phases.say(f"{phases.step}: keeping the {recorded} tasks per phase of the run this one resumes")
        tasks = recorded
    shuffle = Shuffle(phases.work.folder, offsets, tasks, threshold, verify)
    phases.run("exact", shuffle.exact, list(range(tasks)))
    phases.run("bands", shuffle.bands, list(range(tasks)))
    if verify:
        phases.run("send", shuffle.send, list(range(len(rows))))
        phases.run("check", shuffle.check, list(range(len(rows))))
    phases.run("components", shuffle.components, [None])
    return [ShardedVerdicts(part, index) for index, part in enumerate(parts)]
