"""Peak memory of the diversity measures of one dataset (`measure_with_families`: families, redundancy and
balance, no embeddings), and its rows/s.

    python bench/diversity_memory.py --rows 100000               # bench/dedup.py's corpus of that many rows
    python bench/diversity_memory.py --measure runs/demo/dedup   # any dataset folder

The corpus (bench/dedup.py's: the standard library's functions, classes and methods with perturbed and exact
copies planted, in 16 shards) is built and written by one process and measured by another, each started
afresh from this small one: a process's `ru_maxrss` counts the memory of the process it was forked from, so
neither may start from one that held the corpus. The peak it reports is the measure's own: the interpreter and
its imports (printed as the baseline) plus what the measure holds. The measure runs in one process, as in the
diversity step's plan.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def peak_mib() -> float:
    """This process's peak resident set so far, in MiB (`ru_maxrss` is KiB on Linux, bytes on macOS)."""
    scale = 2**20 if sys.platform == "darwin" else 2**10
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def measure(folder: str, save: str | None) -> None:
    import datasketch  # noqa: F401  (the measure imports it: part of the baseline, as the other imports)

    from textbooks.diversity.dataset import measure_with_families

    baseline = peak_mib()
    start = time.perf_counter()
    found, family = measure_with_families(folder)
    seconds = time.perf_counter() - start
    peak, rows = peak_mib(), found["rows"]
    print(f"  measured {rows:,} rows in {seconds:.1f} s ({rows / seconds:,.0f} rows/s): "
          f"{found['families']['families']:,} families")
    print(f"  peak RSS {peak:,.0f} MiB: imports {baseline:,.0f} MiB, the measure {peak - baseline:,.0f} MiB "
          f"({(peak - baseline) * 2**20 / max(rows, 1):,.0f} B per row)")
    if save:
        Path(save).write_text(json.dumps({"measures": found, "family": family.tolist()}))


def write(rows: int, seed: int, folder: str) -> None:
    from dedup import build_corpus, write_dataset

    documents, planted = build_corpus(rows, seed)
    held = sum(map(sys.getsizeof, documents)) / 2**20
    print(f"corpus: {len(documents):,} rows ({planted:,} planted copies), {held:,.0f} MiB as Python strings")
    write_dataset(documents, Path(folder))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--corpus", help="write the corpus into this folder and keep it (default: a temporary one)")
    parser.add_argument("--measure", metavar="FOLDER", help="measure this dataset folder here and now instead")
    parser.add_argument("--write", metavar="FOLDER", help=argparse.SUPPRESS)  # the corpus-writing process
    parser.add_argument("--save", help="write the measures and each row's family to this JSON file")
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.save)
    elif args.write:
        write(args.rows, args.seed, args.write)
    else:
        with tempfile.TemporaryDirectory() as scratch:
            folder = args.corpus or scratch
            subprocess.run([sys.executable, __file__, "--rows", str(args.rows), "--seed", str(args.seed),
                            "--write", folder], check=True)
            saved = ["--save", args.save] if args.save else []
            subprocess.run([sys.executable, __file__, "--measure", folder, *saved], check=True)


if __name__ == "__main__":
    main()
