"""Decontamination speed: the n-gram pass and the whole `textbooks decontaminate` step against the
straightforward set-of-n-grams loop, on the same rows, in one run.

    python bench/decontam_speed.py              # 100,000 rows against HumanEval and MBPP; --docs N for another size

The rows are bench/dedup.py's corpus (the standard library's functions, classes and methods, with perturbed and
exact copies planted); the problems are HumanEval's 164 and MBPP's 500 (from $TEXTBOOKS_BENCHMARKS). The peer is
what decontamination scripts usually do: a set of 13-token tuples per problem, a dict from n-gram to problems,
and a loop over each row's n-grams (`textbooks.decontam.ngrams.set_overlap`), on the same tokens. The n-gram pass
is `NgramIndex.match` over the rows in parts of 10,000 (hashed n-grams looked up in one sorted array); both must
find the same (row, problem, shared) triples or the script stops. The full pass is the step end to end through
`run_step` on the process executor (every core): n-grams, feature-hashing embeddings and structure vectors of
every row, each problem's nearest rows, the AST match rate and the execution match of the candidates in the
sandbox, and the pruned output written. Ratios are rows/s over the peer's rows/s.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from dedup import build_corpus, timed, write_dataset  # noqa: E402

from textbooks.decontam.ngrams import NgramIndex, set_overlap, tokens  # noqa: E402
from textbooks.decontam.step import DecontaminateConfig, DecontaminateStage  # noqa: E402
from textbooks.decontam.targets import load_targets  # noqa: E402
from textbooks.pipeline.executors import make_executor  # noqa: E402
from textbooks.pipeline.executors.process import available_cores  # noqa: E402
from textbooks.pipeline.runner import run_step  # noqa: E402
from textbooks.store import data  # noqa: E402

PART = 10_000


def indexed(index: NgramIndex, documents: list[str]) -> dict[tuple[int, int], int]:
    found = {}
    for start in range(0, len(documents), PART):
        rows, problems, shared, _ = index.match(documents[start:start + PART])
        found.update({(int(row) + start, int(problem)): int(count) for row, problem, count in
                      zip(rows, problems, shared)})
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ngram", type=int, default=13)
    args = parser.parse_args()
    documents, planted = build_corpus(args.docs, args.seed)
    targets = load_targets(["humaneval", "mbpp"])
    problems = [target.document for target in targets]
    print(f"corpus: {len(documents):,} rows, {planted:,} planted copies; {len(problems)} problems; "
          f"{available_cores()} cores")
    peer, peer_time = timed(lambda: set_overlap(problems, documents, args.ngram))
    ours, ours_time = timed(lambda: indexed(NgramIndex(problems, args.ngram), documents))
    words, tokens_time = timed(lambda: [tokens(document) for document in documents])
    _, peer_match_time = timed(lambda: set_overlap(problems, words, args.ngram, tokenize=list))
    index = NgramIndex(problems, args.ngram)
    _, ours_match_time = timed(lambda: [index.match_tokens(words[start:start + PART])
                                        for start in range(0, len(words), PART)])
    # the set loop has no n-gram for a problem shorter than n tokens; the index makes it one: compare the rest
    assert {key: value for key, value in ours.items() if key in peer} == peer and set(peer) <= set(ours), \
        "the n-gram index and the set loop disagree"
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "corpus"
        write_dataset(documents, folder)
        stage = DecontaminateStage(DecontaminateConfig(bench=["humaneval", "mbpp"], ngram=args.ngram), str(folder))
        executor = make_executor("process")
        try:
            _, full_time = timed(lambda: run_step(stage, Path(scratch) / "out", executor=executor,
                                                  say=lambda line: None))
        finally:
            executor.close()
        stats = data.read_stats(Path(scratch) / "out")
    rows = len(documents)
    peer_rate = rows / peer_time.seconds
    print(f"  set-of-n-grams loop  {peer_rate:9,.0f} rows/s  ({peer_time.seconds:.1f} s, {len(peer):,} pairs)")
    print(f"  n-gram index         {rows / ours_time.seconds:9,.0f} rows/s  ({ours_time.seconds:.1f} s): "
          f"{rows / ours_time.seconds / peer_rate:.2f}x")
    pruned = stats["decontamination"]["pruned"]
    print(f"  tokens alone         {rows / tokens_time.seconds:9,.0f} rows/s  ({tokens_time.seconds:.1f} s; "
          "both sides above include them)")
    print(f"  matching given the tokens: set loop {peer_match_time.seconds:.2f} s, index "
          f"{ours_match_time.seconds:.2f} s: {peer_match_time.seconds / ours_match_time.seconds:.2f}x")
    print(f"  full step            {rows / full_time.seconds:9,.0f} rows/s  ({full_time.seconds:.1f} s, "
          f"{stats['decontamination']['pairs_scored']:,} pairs scored, {pruned['rows']:,} rows pruned): "
          f"{rows / full_time.seconds / peer_rate:.2f}x")


if __name__ == "__main__":
    main()
