"""Diversity measurement speed: `textbooks diversity` (no embeddings) next to the dedup stage, on the same rows, in
one run.

    python bench/diversity_speed.py              # 100,000 rows; --docs N for another size

The rows are bench/dedup.py's corpus (the standard library's functions, classes and methods, with perturbed and
exact copies planted). Both sides run end to end through `run_step` on the process executor (every core), from
reading the shards to writing their output: dedup's kept and dropped rows; diversity's rows with `family_id`
and every text measure (families from exact, near-duplicate and AST-shape edges; distinct-n; zstd long-window
compression; greedy dedup at three thresholds; imported libraries). The diversity step is expected to be the
slower (it does dedup's MinHash work and more); the ratio says by how much.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dedup import build_corpus, timed, write_dataset  # noqa: E402

from textbooks.dedup.config import DedupConfig  # noqa: E402
from textbooks.dedup.stage import DedupStage  # noqa: E402
from textbooks.diversity.step import DiversityConfig, DiversityStage  # noqa: E402
from textbooks.pipeline.executors import make_executor  # noqa: E402
from textbooks.pipeline.executors.process import available_cores  # noqa: E402
from textbooks.pipeline.runner import run_step  # noqa: E402
from textbooks.store import data  # noqa: E402


def run(stage: object, out: Path) -> None:
    executor = make_executor("process")
    try:
        run_step(stage, out, executor=executor, say=lambda line: None)
    finally:
        executor.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    documents, planted = build_corpus(args.docs, args.seed)
    print(f"corpus: {len(documents):,} rows, {planted:,} planted copies; {available_cores()} cores")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "corpus"
        write_dataset(documents, folder)
        _, dedup_time = timed(lambda: run(DedupStage(DedupConfig(), str(folder)), Path(scratch) / "dedup"))
        _, diversity_time = timed(lambda: run(DiversityStage(DiversityConfig(), str(folder)),
                                              Path(scratch) / "diversity"))
        found = data.read_stats(Path(scratch) / "diversity")["diversity"]
    rows = len(documents)
    dedup_rate, diversity_rate = rows / dedup_time.seconds, rows / diversity_time.seconds
    print(f"  dedup      {dedup_rate:9,.0f} rows/s  ({dedup_time.seconds:.1f} s)")
    print(f"  diversity  {diversity_rate:9,.0f} rows/s  ({diversity_time.seconds:.1f} s): "
          f"{found['families']['families']:,} families, {found['redundancy']['near_duplicate_rate']:.1%} of rows "
          f"with a variation")
    print(f"  ratio diversity / dedup: {diversity_rate / dedup_rate:.2f}x rows/s")


if __name__ == "__main__":
    main()
