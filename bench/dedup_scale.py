"""Near-dedup at scale, simulated: the sharded reduce on the local Ray executor, 250k to 2M rows.

    python bench/dedup_scale.py                              # 250k, 500k, 1M, 2M rows; equality on 200k
    python bench/dedup_scale.py --sizes 250000 --memory 250000 --check 0

The rows are synthetic, made fast with NumPy: texts of 64 random words from 10,000 (`w0000` .. `w9999`), of
which 30% are copies of an earlier text with 0 to 3 words replaced (0: an exact duplicate; 1 or 2: a
near-duplicate at Jaccard >= 0.7 on 5-gram shingles, mostly; 3: mostly not), written as a dataset of 50,000-row
Parquet shards. The stage runs with `normalize: text` (lower-cased words): `code` would try to compile every
random text first, which measures the parser, not the shuffle.

Each run is `run_step` in a fresh process (the driver), with a Ray instance of its own started there; its peak
resident set is `VmHWM` of /proc/self/status, that process alone since it started (Ray's workers, raylet and
object store are other processes, not counted, as they would be on other machines of a cluster). Not
`ru_maxrss`: on Linux a child's starts at what its parent held when it forked, here the generated corpus.
"machine busy" is the share of all CPU ticks that were not idle meanwhile, from /proc/stat: ours and every other
job's.

`--check N` runs the first N rows both ways, `shuffle: memory` on the process executor and `shuffle: sharded` on
Ray, and compares every output shard; `--memory` lists sizes also run with the in-memory reduce (on Ray, so
that the driver figures compare).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine_load import busy_and_total_ticks  # noqa: E402

from textbooks.store import data  # noqa: E402

TOKENS, VOCABULARY, COPIES, SHARD_ROWS = 64, 10_000, 0.3, 50_000
WORD = 6  # "w0123 ": every word is 5 letters and a space, so a text is a fixed-width slice of bytes


def make_tokens(rows: int, seed: int) -> np.ndarray:
    """`rows` texts as word numbers: originals, then copies (some words replaced) of random earlier rows."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, VOCABULARY, size=(rows, TOKENS), dtype=np.int16)
    copies = np.flatnonzero(rng.random(rows) < COPIES)
    copies = copies[copies > 0]
    sources = (rng.random(copies.size) * copies).astype(np.int64)  # an earlier row, original or copy
    for copy, source in zip(copies.tolist(), sources.tolist()):  # in order: a copy of a copy sees its source
        tokens[copy] = tokens[source]
    changes = rng.integers(0, 4, size=copies.size)
    for count in (1, 2, 3):
        chosen = copies[changes >= count]
        tokens[chosen, rng.integers(0, TOKENS, size=chosen.size)] = rng.integers(0, VOCABULARY, size=chosen.size)
    return tokens


def texts(tokens: np.ndarray) -> pa.StringArray:
    words = np.frombuffer("".join(f"w{number:04d} " for number in range(VOCABULARY)).encode(), np.uint8)
    flat = words.reshape(VOCABULARY, WORD)[tokens.astype(np.int64)].reshape(-1)
    offsets = np.arange(tokens.shape[0] + 1, dtype=np.int32) * (TOKENS * WORD)
    return pa.StringArray.from_buffers(tokens.shape[0], pa.py_buffer(offsets), pa.py_buffer(flat.tobytes()))


def write_corpus(tokens: np.ndarray, folder: Path) -> None:
    for shard, first in enumerate(range(0, tokens.shape[0], SHARD_ROWS)):
        part = tokens[first:first + SHARD_ROWS]
        ids = pa.array([f"row-{row}" for row in range(first, first + part.shape[0])])
        table = pa.table({"id": ids, "text": texts(part), "source": pa.array(["synthetic"] * part.shape[0])})
        data.write_table(table, folder / data.shard_name(shard))
    data.write_marker(folder, {"fingerprint": f"scale-{tokens.shape[0]}", "stage": "bench"})


def peak_rss_mib() -> float:
    """The high-water mark of this process's resident set (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("no VmHWM in /proc/self/status: this bench measures memory on Linux only")


def run_one(corpus: str, out: str, shuffle: str, engine: str) -> None:
    """The driver: one dedup run; prints its figures as JSON."""
    from textbooks.dedup.config import DedupConfig
    from textbooks.dedup.stage import DedupStage
    from textbooks.pipeline.executors import make_executor
    from textbooks.pipeline.runner import run_step

    stage = DedupStage(DedupConfig(normalize="text", shuffle=shuffle), corpus)
    executor = make_executor(engine)
    before, started = busy_and_total_ticks(), time.perf_counter()
    try:
        outcome = run_step(stage, Path(out), executor=executor, say=lambda _: None)
    finally:
        executor.close()
    seconds, after = time.perf_counter() - started, busy_and_total_ticks()
    busy = (after[0] - before[0]) / max(1, after[1] - before[1]) if before and after else None
    print(json.dumps({"seconds": seconds, "peak_rss_mib": peak_rss_mib(),
                      "rows_in": outcome.stats["rows_in"], "rows_out": outcome.stats["rows_out"],
                      "drops": outcome.stats["drops"], "busy": busy, "load": os.getloadavg()[0]}))


def driver(corpus: Path, out: Path, shuffle: str, engine: str) -> dict:
    command = [sys.executable, __file__, "--run-one", str(corpus), str(out), shuffle, engine]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def report(rows: int, shuffle: str, figures: dict, base: tuple[int, float] | None) -> None:
    rate = rows / figures["seconds"]
    scaled = f"{figures['seconds'] / base[1] / (rows / base[0]):.2f}" if base else "1.00"
    busy = "n/a" if figures["busy"] is None else f"{figures['busy']:.0%}"
    print(f"{rows:>9,} rows  {shuffle:<8} {figures['seconds']:7.1f} s  {rate:7,.0f} rows/s  time/linear {scaled}  "
          f"driver peak {figures['peak_rss_mib']:6,.0f} MiB  dropped {figures['rows_in'] - figures['rows_out']:,}  "
          f"machine busy {busy}, load {figures['load']:.1f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[250_000, 500_000, 1_000_000, 2_000_000])
    parser.add_argument("--memory", type=int, nargs="*", default=[], help="sizes also run with shuffle: memory")
    parser.add_argument("--check", type=int, default=200_000, help="rows compared with the in-memory path (0: no)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import shard_tables

    tokens = make_tokens(max(args.sizes + args.memory + [args.check]), args.seed)
    print(f"{tokens.shape[0]:,} synthetic rows of {TOKENS} words; {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        if args.check:
            corpus = Path(scratch) / f"corpus-{args.check}"
            write_corpus(tokens[:args.check], corpus)
            memory = driver(corpus, Path(scratch) / "check-memory", "memory", "process")
            sharded = driver(corpus, Path(scratch) / "check-sharded", "sharded", "ray")
            same = shard_tables(Path(scratch) / "check-memory") == shard_tables(Path(scratch) / "check-sharded")
            print(f"{args.check:,} rows: sharded on ray == memory on process: {same} "
                  f"({memory['rows_in'] - memory['rows_out']:,} dropped: {memory['drops']}; "
                  f"{sharded['seconds']:.1f} s against {memory['seconds']:.1f} s)", flush=True)
        base = None
        for rows in sorted(set(args.sizes + args.memory)):
            corpus = Path(scratch) / f"corpus-{rows}"
            write_corpus(tokens[:rows], corpus)
            for shuffle in ["sharded"] * (rows in args.sizes) + ["memory"] * (rows in args.memory):
                figures = driver(corpus, Path(scratch) / f"out-{rows}-{shuffle}", shuffle, "ray")
                report(rows, shuffle, figures, base if shuffle == "sharded" else None)
                base = base or ((rows, figures["seconds"]) if shuffle == "sharded" else None)
                shutil.rmtree(Path(scratch) / f"out-{rows}-{shuffle}")
            shutil.rmtree(corpus)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--run-one":
        run_one(*sys.argv[2:6])
    else:
        main()
