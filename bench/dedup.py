"""Near-duplicate removal speed: `textbooks dedup` against a plain datasketch loop, in one run.

    python bench/dedup.py              # 50,000 documents; --docs N for another size, --workers N for fewer cores

The corpus is built offline: top-level functions and classes and the methods of every module of this
interpreter's standard library (tests included), then perturbed copies (locals renamed, lines re-wrapped,
comments changed; `tests/planted.py`) and exact copies of random documents, so that there are real
near-duplicates. It is written as a dataset folder of 16 shards, as `textbooks ingest` would.

ours: the dedup stage end to end with default settings (`run_step`, the process executor on every core), from
reading the shards to writing kept and dropped rows, process start-up included; once with the in-memory reduce
(`shuffle: memory`, what `auto` picks at this size) and once with the sharded one (`shuffle: sharded`: exact
groups, banding, verification and components as tasks on the pool). Both must remove the same rows.

peer: datasketch as its README shows it, on the same documents and the same shingles (our `code` tokens and
5-gram hashes): per document a `MinHash` (sharing one set of permutations, which is kinder to the peer than
building them per document), `update` per shingle, then `MinHashLSH(threshold, num_perm)` query and insert;
a document that matches an earlier kept one is removed. The peer runs on one core, as that loop does. Its
rate is given with and without the shingling time (the stricter figure hands it the shingles for free).
"""

from __future__ import annotations

import argparse
import ast
import random
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from conftest import shard_tables  # noqa: E402
from planted import stdlib_modules, variant  # noqa: E402

from textbooks.dedup.config import DedupConfig  # noqa: E402
from textbooks.dedup.shingles import shingle_sets, token_hashes  # noqa: E402
from textbooks.dedup.stage import DedupStage  # noqa: E402
from textbooks.dedup.tokens import code_tokens  # noqa: E402
from textbooks.pipeline.executors import make_executor  # noqa: E402
from textbooks.pipeline.executors.process import available_cores  # noqa: E402
from textbooks.pipeline.runner import run_step  # noqa: E402
from textbooks.store import data  # noqa: E402

SHARDS = 16
T = TypeVar("T")


def stdlib_units(min_lines: int = 3, max_lines: int = 400) -> list[str]:
    """Top-level functions and classes, and methods (dedented), of every standard library module."""
    units: list[str] = []
    for source, tree in stdlib_modules(skipped=set()):
        lines = source.splitlines(keepends=True)
        nodes = [node for node in tree.body if isinstance(node, (ast.FunctionDef, ast.ClassDef))]
        nodes += [member for node in nodes if isinstance(node, ast.ClassDef) for member in node.body
                  if isinstance(member, ast.FunctionDef)]
        for node in nodes:
            if min_lines <= node.end_lineno - node.lineno + 1 <= max_lines:
                units.append(textwrap.dedent("".join(lines[node.lineno - 1:node.end_lineno])))
    return units


def build_corpus(size: int, seed: int) -> tuple[list[str], int]:
    """`size` documents: stdlib units, then perturbed and exact copies; returns them and the copies made."""
    rng = random.Random(seed)
    units = stdlib_units()
    rng.shuffle(units)
    originals = units[:int(size * 0.7)]
    documents = list(originals)
    planted = 0
    while len(documents) < size:
        source = rng.choice(originals)
        copy = source if rng.random() < 0.2 else variant(source, rng) if source.isascii() else None
        if copy is not None:
            documents.append(copy)
            planted += 1
    rng.shuffle(documents)
    return documents, planted


def write_dataset(documents: list[str], folder: Path) -> None:
    for shard in range(SHARDS):
        texts = documents[shard::SHARDS]
        ids = [f"doc-{shard}-{row}" for row in range(len(texts))]
        table = pa.table({"id": ids, "text": texts, "source": ["stdlib"] * len(texts)})
        data.write_table(table, folder / data.shard_name(shard))
    data.write_marker(folder, {"fingerprint": "bench", "stage": "bench"})


@dataclass
class Timing:
    seconds: float
    stolen: float | None  # the share of CPU time the hypervisor took meanwhile (None: not known here)

    def __add__(self, other: Timing) -> Timing:
        seconds = self.seconds + other.seconds
        if self.stolen is None or other.stolen is None:
            return Timing(seconds, None)
        return Timing(seconds, (self.stolen * self.seconds + other.stolen * other.seconds) / seconds)


def cpu_ticks() -> tuple[int, int] | None:
    """(stolen, total) CPU ticks since boot from /proc/stat; None where there is no such file."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    except OSError:
        return None
    ticks = [int(field) for field in fields]
    return ticks[7], sum(ticks)


def timed(work: Callable[[], T]) -> tuple[T, Timing]:
    """`work`'s result, its wall time and the CPU steal meanwhile.

    On a shared virtual machine a neighbour can take a large share of the CPU; a run where it did is not
    comparable with one where it did not, so the share is printed with each figure.
    """
    before, started = cpu_ticks(), time.perf_counter()
    result = work()
    seconds, after = time.perf_counter() - started, cpu_ticks()
    stolen = (after[0] - before[0]) / max(1, after[1] - before[1]) if before and after else None
    return result, Timing(seconds, stolen)


def run_ours(folder: Path, out: Path, shuffle: str, workers: int | None) -> int:
    stage = DedupStage(DedupConfig(shuffle=shuffle), str(folder))
    engine = make_executor("process", workers)
    try:
        outcome = run_step(stage, out, executor=engine, say=lambda _: None)
    finally:
        engine.close()
    return outcome.stats["rows_in"] - outcome.stats["rows_out"]


def shingles_of(documents: list[str]) -> list[list[int]]:
    """The shingle hashes our stage uses, per document, as plain lists for datasketch."""
    streams = (token_hashes(code_tokens(text)[0]) for text in documents)
    values, offsets = shingle_sets(streams, DedupConfig().ngram)
    return [values[begin:end].tolist() for begin, end in zip(offsets[:-1], offsets[1:])]


def run_peer(shingles: list[list[int]]) -> int:
    from datasketch import MinHash, MinHashLSH

    config = DedupConfig()
    template = MinHash(num_perm=config.num_perm, seed=config.seed)
    lsh = MinHashLSH(threshold=config.threshold, num_perm=config.num_perm)
    removed = 0
    for key, document in enumerate(shingles):
        signature = MinHash(num_perm=config.num_perm, seed=config.seed, hashfunc=int,
                            permutations=template.permutations)
        for shingle in document:
            signature.update(shingle)
        if lsh.query(signature):
            removed += 1
        else:
            lsh.insert(key, signature)
    return removed


def report(name: str, count: int, timing: Timing, removed: int, note: str = "") -> float:
    rate = count / timing.seconds
    stolen = "n/a" if timing.stolen is None else f"{timing.stolen:.0%}"
    print(f"{name:<22} {rate:7,.0f} docs/s  {timing.seconds:6.1f} s  removed {removed:6,}  "
          f"CPU steal {stolen:>3}{note}")
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=None,
                        help="processes of ours (default: every core); 1 compares one core with one core")
    args = parser.parse_args()
    documents, planted = build_corpus(args.docs, args.seed)
    count = len(documents)
    workers = args.workers or available_cores()
    print(f"corpus: {count:,} documents, {planted:,} planted copies; ours on {workers} of "
          f"{available_cores()} cores")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "corpus"
        write_dataset(documents, folder)
        ours_removed, ours = timed(lambda: run_ours(folder, Path(scratch) / "memory", "memory", workers))
        sharded_removed, sharded = timed(lambda: run_ours(folder, Path(scratch) / "sharded", "sharded", workers))
        same = shard_tables(Path(scratch) / "memory") == shard_tables(Path(scratch) / "sharded")
    shingles, shingling = timed(lambda: shingles_of(documents))
    peer_removed, peer = timed(lambda: run_peer(shingles))
    ours_rate = report("ours  textbooks dedup", count, ours, ours_removed)
    sharded_rate = report("ours, sharded reduce", count, sharded, sharded_removed, f"  (same dataset: {same})")
    peer_rate = report("peer  datasketch loop", count, shingling + peer, peer_removed,
                       f"  ({shingling.seconds:.1f} s of it shingling)")
    free_rate = report("peer, free shingles", count, peer, peer_removed)
    for name, rate in (("ours", ours_rate), ("sharded", sharded_rate)):
        print(f"ratio {name}/peer: {rate / peer_rate:.2f}x  (against the peer with free shingles: "
              f"{rate / free_rate:.2f}x)")


if __name__ == "__main__":
    main()
