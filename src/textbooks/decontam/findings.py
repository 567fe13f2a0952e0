"""From candidate pairs (a row, a benchmark problem) to scores, the rows to prune, and the paper's table 3.

    scored = score_pairs(pairs, texts, targets, settings, sandbox)   # adds tau, passed, trivial per pair
    drops = choose_drops(scored, targets, settings)                   # {(shard, position): (measure, key, score)}
    summary = summarize(scored, targets, settings, drops)

A pair is a candidate when the row is among the problem's `neighbours` nearest rows by embedding distance, or
shares an n-gram with it, or is within `distance` of it. For every pair the AST match rate is the best over the
row's functions (`trees.match_rate`, skipped where `trees.match_bound` is below `TAU_FLOOR`), and execution runs
the row's callable functions against the problem's tests (`execution.py`). A row is pruned when its n-gram
overlap with a problem is at least `ngram_share`, it passes a problem's non-trivial tests, reaches `prune_tau`,
or (when set) is within `distance`; the first of these it meets names the drop.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

from textbooks.decontam import execution
from textbooks.decontam.ngrams import overlap
from textbooks.decontam.targets import Target
from textbooks.decontam.trees import Tree, function_trees, match_bound, match_rate

TAU_FLOOR = 0.5  # below this bound the exact match rate is not computed (reported as missing)
MEASURES = ("ngram", "execution", "ast", "embedding")
EXCERPT_CHARS = 700


@dataclass(frozen=True)
class Settings:
    taus: tuple[float, ...]
    prune_tau: float
    ngram: int
    ngram_share: float
    distance: float | None
    execution: bool
    confirm_plus: bool = True
    benchmarks_dir: str | None = None


def best_match(functions: list[tuple[str, Tree]], target: Tree | None) -> tuple[float | None, str | None]:
    """The best match rate of any of a row's functions with the problem's, and that function's name."""
    best: tuple[float | None, str | None] = (None, None)
    if target is None:
        return best
    for name, tree in sorted(functions, key=lambda item: -match_bound(item[1], target)):
        bound = match_bound(tree, target)
        if bound < TAU_FLOOR or (best[0] is not None and bound <= best[0]):
            break
        rate = match_rate(tree, target)
        if best[0] is None or rate > best[0]:
            best = (rate, name)
    return best


def score_pairs(pairs: pa.Table, texts: dict[tuple[int, int], str], targets: Sequence[Target],
                settings: Settings, sandbox: Any | None, progress: bool | str = False) -> pa.Table:
    """`pairs` (shard, position, id, target, distance, shared) with tau, tau_function, passed_function and
    trivial added."""
    shards, positions = pairs["shard"].to_pylist(), pairs["position"].to_pylist()
    chosen = pairs["target"].to_pylist()
    trees: dict[tuple[int, int], list[tuple[str, Tree]]] = {}
    taus, functions = [], []
    for row in zip(shards, positions):
        if row not in trees:
            trees[row] = function_trees(texts[row])
    for row, target in zip(zip(shards, positions), chosen):
        rate, name = best_match(trees[row], targets[target].tree)
        taus.append(rate)
        functions.append(name)
    passed: list[str | None] = [None] * len(chosen)
    trivial: list[bool | None] = [None] * len(chosen)
    plus: list[bool | None] = [None] * len(chosen)
    if settings.execution and sandbox is not None and chosen:
        candidates = [execution.Candidate(texts[row], targets[target])
                      for row, target in zip(zip(shards, positions), chosen)]
        passed = execution.run_candidates(candidates, sandbox, progress=progress)
        matched = sorted({chosen[index] for index, name in enumerate(passed) if name is not None})
        weak = execution.trivial_targets([targets[index] for index in matched], sandbox)
        trivial = [None if name is None else targets[target].key in weak for name, target in zip(passed, chosen)]
        if settings.confirm_plus:
            plus = execution.confirm_plus(candidates, passed, sandbox, settings.benchmarks_dir)
    return (pairs.append_column("tau", pa.array(taus, pa.float64()))
            .append_column("tau_function", pa.array(functions, pa.string()))
            .append_column("passed_function", pa.array(passed, pa.string()))
            .append_column("trivial", pa.array(trivial, pa.bool_()))
            .append_column("plus_passed", pa.array(plus, pa.bool_())))


def ngram_share(scored: pa.Table, sizes: np.ndarray) -> np.ndarray:
    """Per pair, the overlap coefficient of the row's and the problem's n-grams (`ngrams.overlap`)."""
    return overlap(scored["shared"].to_numpy(), scored["row_ngrams"].to_numpy(), sizes[scored["target"].to_numpy()])


def choose_drops(scored: pa.Table, sizes: np.ndarray, targets: Sequence[Target], settings: Settings
                 ) -> dict[tuple[int, int], tuple[str, str, float]]:
    """`{(shard, position): (measure, problem key, score)}` for every row a measure prunes; per row the first
    measure of `MEASURES` it meets, and within it the best-scoring problem."""
    share = ngram_share(scored, sizes)
    columns = {name: scored[name].to_pylist() for name in ("shard", "position", "target", "distance", "tau",
                                                            "passed_function", "trivial")}
    found: dict[tuple[int, int], dict[str, tuple[float, str]]] = defaultdict(dict)
    for index, (shard, position, target) in enumerate(zip(columns["shard"], columns["position"],
                                                          columns["target"])):
        key, row = targets[target].key, (shard, position)
        scores = {
            "ngram": share[index] if share[index] >= settings.ngram_share else None,
            "execution": 1.0 if columns["passed_function"][index] and not columns["trivial"][index] else None,
            "ast": columns["tau"][index] if (columns["tau"][index] or 0.0) >= settings.prune_tau else None,
            "embedding": -columns["distance"][index] if settings.distance is not None
            and columns["distance"][index] <= settings.distance else None,
        }
        for measure, score in scores.items():
            if score is not None and (measure not in found[row] or score > found[row][measure][0]):
                found[row][measure] = (float(score), key)
    drops = {}
    for row, measures in found.items():
        measure = next(name for name in MEASURES if name in measures)
        score, key = measures[measure]
        drops[row] = (measure, key, abs(score))
    return drops


def summarize(scored: pa.Table, sizes: np.ndarray, targets: Sequence[Target], settings: Settings,
              drops: dict[tuple[int, int], tuple[str, str, float]], texts: dict[tuple[int, int], str]) -> dict:
    """What the report shows: per benchmark the similar problems at each tau (table 3), per measure how many
    problems a row matches, and per problem its closest row by each measure."""
    share = ngram_share(scored, sizes)
    closest = _closest(scored, share, targets)
    benchmarks: dict[str, dict] = {}
    for bench in dict.fromkeys(target.bench for target in targets):
        members = [target for target in targets if target.bench == bench]
        benchmarks[bench] = _bench_summary(members, closest, settings)
    by_measure: dict[str, int] = defaultdict(int)
    for measure, _, _ in drops.values():
        by_measure[measure] += 1
    return {
        "benchmarks": benchmarks,
        "closest": closest,
        "examples": _examples(closest, targets, texts),
        "pruned": {"rows": len(drops), "by_measure": dict(by_measure)},
        "pairs_scored": scored.num_rows,
        "settings": {"tau": list(settings.taus), "prune_tau": settings.prune_tau, "ngram": settings.ngram,
                     "ngram_share": settings.ngram_share, "distance": settings.distance,
                     "execution": settings.execution},
    }


def _closest(scored: pa.Table, share: np.ndarray, targets: Sequence[Target]) -> dict[str, dict]:
    """Per problem key, its best row by each measure: {"ngram": {...}, "embedding": ..., "ast": ..., ...}."""
    closest: dict[str, dict] = {target.key: {} for target in targets}
    columns = {name: scored[name].to_pylist() for name in ("shard", "position", "id", "target", "distance",
                                                            "shared", "tau", "passed_function", "trivial",
                                                            "plus_passed")}
    for index in range(scored.num_rows):
        key = targets[columns["target"][index]].key
        row = {"id": columns["id"][index], "shard": columns["shard"][index], "position": columns["position"][index]}
        mine = closest[key]
        if columns["shared"][index] and share[index] > mine.get("ngram", {}).get("share", -1.0):
            mine["ngram"] = {**row, "shared": columns["shared"][index], "share": float(share[index])}
        distance = columns["distance"][index]
        if distance == distance and distance < mine.get("embedding", {}).get("distance", np.inf):
            mine["embedding"] = {**row, "distance": float(distance)}
        tau = columns["tau"][index]
        if tau is not None and tau > mine.get("ast", {}).get("tau", -1.0):
            mine["ast"] = {**row, "tau": tau}
        if columns["passed_function"][index] and (
                "execution" not in mine or (mine["execution"]["trivial"] and not columns["trivial"][index])):
            mine["execution"] = {**row, "function": columns["passed_function"][index],
                                 "trivial": bool(columns["trivial"][index]),
                                 "plus_passed": columns["plus_passed"][index]}
    return closest


def _bench_summary(members: list[Target], closest: dict[str, dict], settings: Settings) -> dict:
    taus = {f"{tau:g}": sorted(target.problem.task_id for target in members
                               if closest[target.key].get("ast", {}).get("tau", -1.0) >= tau)
            for tau in settings.taus}
    nearest = [closest[target.key]["embedding"]["distance"] for target in members
               if "embedding" in closest[target.key]]
    ngram = [closest[target.key]["ngram"]["share"] for target in members if "ngram" in closest[target.key]]
    executed = [closest[target.key]["execution"] for target in members if "execution" in closest[target.key]]
    return {
        "problems": len(members),
        "similar": {tau: {"similar": len(ids), "non_similar": len(members) - len(ids), "task_ids": ids}
                    for tau, ids in taus.items()},
        "ngram": {"problems_sharing": len(ngram),
                  "problems_over_share": sum(value >= settings.ngram_share for value in ngram)},
        "embedding": {"median_nearest": float(np.median(nearest)) if nearest else None,
                      "min_nearest": float(np.min(nearest)) if nearest else None},
        "execution": {"problems_passed": sum(not entry["trivial"] for entry in executed),
                      "problems_passed_trivial_tests": sum(entry["trivial"] for entry in executed),
                      "problems_confirmed_plus": sum(entry["plus_passed"] is True for entry in executed)},
        "no_tree": sum(target.tree is None for target in members),
    }


def _examples(closest: dict[str, dict], targets: Sequence[Target], texts: dict[tuple[int, int], str],
              count: int = 6) -> list[dict]:
    """The problems with the closest matches (by AST match rate, then execution), each with its row's text."""
    by_key = {target.key: target for target in targets}
    ranked = sorted(closest.items(), key=lambda item: (-item[1].get("ast", {}).get("tau", -1.0),
                                                       "execution" not in item[1], item[0]))
    shown = []
    for key, best in ranked[:count]:
        if "ast" not in best:
            break
        row = (best["ast"]["shard"], best["ast"]["position"])
        shown.append({"problem": key, "tau": best["ast"]["tau"], "id": best["ast"]["id"],
                      "problem_text": by_key[key].document[:EXCERPT_CHARS], "row_text": texts[row][:EXCERPT_CHARS],
                      "execution": best.get("execution", {}).get("function")})
    return shown
