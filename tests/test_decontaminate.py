"""`textbooks decontaminate`: planted contamination found by each measure, every benchmark problem matching
itself, the hub format giving the same report as the local files, bad input refused, and the parts (n-gram
index, nearest rows, tree edit distance) against straightforward references."""

from __future__ import annotations

import json
import os
import random
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from planted import stdlib_functions
from planted_contamination import chosen_problems, planted_rows
from test_quality import refused, write_dataset

from textbooks.benchmarks import load_benchmark
from textbooks.benchmarks.files import FILES, HUB_FILES, parse_jsonl
from textbooks.benchmarks.problem import Solution
from textbooks.cli import main
from textbooks.decontam import execution
from textbooks.decontam.neighbours import Nearest, distances
from textbooks.decontam.ngrams import NgramIndex, set_overlap, tokens
from textbooks.decontam.targets import load_targets
from textbooks.decontam.trees import apted_distance, function_trees, match_bound, match_rate
from textbooks.evaluate.judge import judge
from textbooks.report.step import write_report
from textbooks.sandbox import Limits, Sandbox
from textbooks.store import data

BENCHMARKS = Path(os.environ["TEXTBOOKS_BENCHMARKS"])  # conftest sets it when the caller has not


def _run(folder: Path, out: Path, *flags: str) -> dict:
    assert main(["decontaminate", str(folder), "--out", str(out), "--workers", "1", *flags]) == 0
    return json.loads((out / "decontamination.json").read_text())


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> dict:
    """2,012 standard-library functions with 174 planted rows of 40 problems (20 HumanEval, 20 MBPP),
    decontaminated against both benchmarks."""
    humaneval, mbpp = load_benchmark("humaneval"), load_benchmark("mbpp")
    problems = chosen_problems(humaneval, mbpp, count=20)
    rows = [("stdlib", "base", text) for text in stdlib_functions(min_lines=1, limit=2000)]
    rows += planted_rows(problems)
    random.Random(1).shuffle(rows)
    folder = tmp_path_factory.mktemp("planted")
    table = [{"id": f"{index}|{task}|{kind}", "text": text, "source": "test"}
             for index, (task, kind, text) in enumerate(rows)]
    write_dataset(folder / "data", table, shards=3)
    out = folder / "out"
    summary = _run(folder / "data", out, "--bench", "humaneval,mbpp", "--neighbours", "5", "--no-confirm-plus")
    matches = pq.read_table(out / "matches.parquet").to_pylist()
    return {"rows": table, "problems": {p.task_id: p for p in problems}, "summary": summary, "matches": matches,
            "out": out}


def _kind(row_id: str) -> tuple[str, str]:
    _, task, kind = row_id.split("|")
    return task, kind


def test_planted_verbatim_copies_are_all_found_by_ngrams(planted) -> None:
    verbatim = {row["id"] for row in planted["rows"] if row["id"].endswith("|verbatim")}
    found = {m["id"] for m in planted["matches"] if m["id"] in verbatim and _kind(m["id"])[0] == m["task_id"]
             and m["ngram_share"] >= 0.5}
    assert found == verbatim and len(verbatim) == 40
    dropped = [row for path in data.shard_paths(planted["out"] / data.DROPPED)
               for row in pq.read_table(path).to_pylist()]
    reasons = {row["id"]: (row["drop_reason"], row["contaminated_by"]) for row in dropped}
    for row_id in verbatim:  # pruned by the n-gram measure, naming its own problem
        task = _kind(row_id)[0]
        assert reasons[row_id] == ("contaminated:ngram", f"{'humaneval' if task[0] == 'H' else 'mbpp'}:{task}")


def test_planted_renamed_and_reformatted_rows_are_found_by_the_ast_match_rate(planted) -> None:
    matches = planted["matches"]
    wanted = {row["id"] for row in planted["rows"] if _kind(row["id"])[1] in ("renamed", "reformatted")}
    found = {m["id"] for m in matches if m["id"] in wanted and _kind(m["id"])[0] == m["task_id"]
             and (m["tau"] or 0) >= 0.9}
    assert len(found) >= 0.95 * len(wanted), sorted(wanted - found)[:5]
    flagged = {m["id"] for m in matches if (m["tau"] or 0) >= 0.9}
    stdlib = {row_id for row_id in flagged if _kind(row_id)[1] == "base"}
    assert len(flagged - stdlib) / len(flagged) >= 0.9, sorted(stdlib)


def test_planted_rows_that_pass_the_tests_are_found_by_execution(planted) -> None:
    """Ground truth: each planted row run against its own problem's tests (its function under the problem's
    name); the step must find >= 95% of those that pass, whatever their text."""
    problems, matches = planted["problems"], planted["matches"]
    planted_rows_ = [row for row in planted["rows"] if _kind(row["id"])[1] != "base"]
    targets = {target.problem.task_id: target for target in load_targets(["humaneval", "mbpp"])
               if target.problem.task_id in problems}
    with Sandbox(workers=2, limits=Limits(timeout_s=5)) as sandbox:
        candidates = [execution.Candidate(row["text"], targets[_kind(row["id"])[0]]) for row in planted_rows_]
        truth = execution.run_candidates(candidates, sandbox)
        passing = {row["id"] for row, name in zip(planted_rows_, truth) if name is not None}
        rewritten = [row for row in planted_rows_ if row["id"].endswith("|rewritten")]
        assert {row["id"] for row in rewritten} <= passing  # the hand rewrites keep the behaviour
        found = {m["id"] for m in matches if m["id"] in passing and _kind(m["id"])[0] == m["task_id"]
                 and m["passed_function"]}
        assert len(found) >= 0.95 * len(passing) and len(passing) >= 150, sorted(passing - found)[:5]
        # A standard-library function that passes a problem's non-trivial tests must be the problem's function:
        # EvalPlus's extra inputs, where it has the problem, do not disprove it.
        stdlib = [m for m in matches if _kind(m["id"])[1] == "base" and m["passed_function"] and not m["trivial"]]
        by_key = {target.key: target for target in load_targets(["humaneval", "mbpp"])}
        texts = {row["id"]: row["text"] for row in planted["rows"]}
        checked = [execution.Candidate(texts[m["id"]], by_key[f"{m['bench']}:{m['task_id']}"]) for m in stdlib]
        confirmed = execution.confirm_plus(checked, [m["passed_function"] for m in stdlib], sandbox)
    assert False not in confirmed, [(m["id"], m["task_id"]) for m, ok in zip(stdlib, confirmed) if ok is False]


def test_planted_report_counts_similar_problems_per_tau(planted) -> None:
    summary = planted["summary"]
    for bench in ("humaneval", "mbpp"):
        table = summary["benchmarks"][bench]["similar"]
        assert sorted(table, key=float, reverse=True) == ["0.95", "0.9", "0.85", "0.8"]
        counts = [table[tau]["similar"] for tau in sorted(table, key=float, reverse=True)]
        assert counts == sorted(counts) and counts[0] >= 20  # each planted problem is similar at every tau
        assert all(table[tau]["similar"] + table[tau]["non_similar"] == summary["benchmarks"][bench]["problems"]
                   for tau in table)
    assert summary["pruned"]["rows"] == sum(summary["pruned"]["by_measure"].values()) > 170


def test_each_benchmark_problem_matches_itself(tmp_path: Path) -> None:
    targets = load_targets(["humaneval", "mbpp"])
    rows = [{"id": target.key, "text": target.document, "source": "test"} for target in targets]
    summary = _run(write_dataset(tmp_path / "data", rows), tmp_path / "out", "--neighbours", "1",
                   "--no-execution")
    for target in targets:
        closest = summary["closest"][target.key]
        assert closest["embedding"]["id"] == target.key and closest["embedding"]["distance"] < 1e-3
        assert closest["ast"]["tau"] == 1.0
    assert summary["benchmarks"]["humaneval"]["similar"]["0.95"]["similar"] == 164


def test_the_hub_format_gives_the_same_report_as_the_local_files(tmp_path: Path) -> None:
    hub = tmp_path / "hub"
    for name in ("humaneval", "mbpp"):
        records = parse_jsonl(_read(BENCHMARKS / FILES[name]))
        if name == "mbpp":  # the hub's `full` test split holds the test ids only
            records = [record for record in records if 11 <= record["task_id"] <= 510]
        path = hub / HUB_FILES[name].replace("*", "00000-of-00001")
        path.parent.mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(records), path)
    problems = chosen_problems(load_benchmark("humaneval"), load_benchmark("mbpp"), count=14)
    texts = [text for _, _, text in planted_rows(problems)] + stdlib_functions(limit=60)
    rows = [{"id": str(index), "text": text, "source": "test"} for index, text in enumerate(texts)]
    folder = write_dataset(tmp_path / "data", rows)
    local = _run(folder, tmp_path / "local", "--no-execution", "--benchmarks-dir", str(BENCHMARKS))
    from_hub = _run(folder, tmp_path / "hub-out", "--no-execution", "--benchmarks-dir", str(hub))
    assert local == from_hub and local["pruned"]["rows"] > 0


def test_missing_benchmark_files_keep_every_row_and_the_report_says_why(tmp_path: Path, capsys) -> None:
    rows = [{"id": str(i), "text": f"def f{i}(x):\n    return x + {i}\n", "source": "test"} for i in range(10)]
    folder = write_dataset(tmp_path / "data", rows)
    (tmp_path / "empty").mkdir()
    run = tmp_path / "run"
    summary = _run(folder, run / "decontaminate", "--bench", "humaneval,mbpp", "--skip-missing",
                   "--benchmarks-dir", str(tmp_path / "empty"))
    printed = capsys.readouterr().out
    assert "humaneval: skipped, HumanEval.jsonl.gz is not in" in printed and "every row is kept" in printed
    assert summary["benchmarks"] == {} and summary["skipped"] == ["humaneval", "mbpp"]
    assert data.read_dataset(run / "decontaminate").num_rows == 10
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an empty plot's legend warned
        write_report(run, say=lambda _: None)
    section = (run / "report.md").read_text().split("### Decontamination", 1)[1]
    assert "every row was kept: the files of humaneval, mbpp were not here" in section
    assert "| benchmark |" not in section.split("\n## ", 1)[0]
    error = refused(capsys, ["decontaminate", str(folder), "--bench", "humaneval", "--benchmarks-dir",
                             str(tmp_path / "empty")], tmp_path / "strict")  # without skip_missing: an error
    assert "HumanEval.jsonl.gz" in error, error


def _read(path: Path) -> str:
    import gzip

    return gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text()


def test_bad_input_is_refused(tmp_path: Path, capsys) -> None:
    rows = [{"id": str(i), "text": f"def f{i}(x):\n    return x + {i}\n", "source": "test"} for i in range(10)]
    folder = write_dataset(tmp_path / "data", rows)
    assert "unknown benchmark 'codecontests'" in refused(
        capsys, ["decontaminate", str(folder), "--bench", "humaneval,codecontests"], tmp_path / "a")
    for tau in ("1.5", "0", "-0.2"):
        assert "outside (0, 1]" in refused(capsys, ["decontaminate", str(folder), "--tau", f"0.9,{tau}"],
                                           tmp_path / "b")
    other = write_dataset(tmp_path / "other", [{"id": f"x{i}", "text": "pass", "source": "test"} for i in range(4)])
    assert main(["embed", "--input", str(other), "--out", str(tmp_path / "embed")]) == 0
    error = refused(capsys, ["decontaminate", str(folder), "--embeddings", str(tmp_path / "embed")], tmp_path / "c")
    assert "embeddings of 4 rows" in error
    error = refused(capsys, ["decontaminate", str(folder), "--embeddings", str(tmp_path / "data")], tmp_path / "d")
    assert "holds no embeddings" in error


def test_ngram_index_agrees_with_the_set_loop() -> None:
    targets = load_targets(["humaneval"])[:40]
    documents = [target.document for target in targets]
    texts = [target.document for target in targets[:10]] + stdlib_functions(limit=50)
    texts[3] = texts[3][: len(texts[3]) // 2]  # half a problem
    for n in (5, 13):
        index = NgramIndex(documents, n)
        rows, problems, shared, per_text = index.match(texts)
        ours = {(int(row), int(problem)): int(count) for row, problem, count in zip(rows, problems, shared)}
        assert ours == set_overlap(documents, texts, n)
        assert per_text.tolist() == [len({tuple(words[i:i + n]) for i in range(len(words) - n + 1)}) or 1
                                     for words in map(tokens, texts)]
    assert ours[(0, 0)] == index.sizes[0]


def test_nearest_rows_match_a_full_sort() -> None:
    rng = np.random.default_rng(0)
    rows, problems = rng.normal(size=(500, 16)), rng.normal(size=(7, 16))
    matrix = distances(rows, problems)
    nearest = Nearest(k=5)
    for start in range(0, 500, 64):  # in blocks, as the step reads parts
        nearest.add(start, matrix[start:start + 64])
    problem, row, distance = nearest.result()
    for column in range(7):
        assert row[problem == column].tolist() == np.argsort(matrix[:, column], kind="stable")[:5].tolist()
    assert np.allclose(distance, np.sort(matrix, axis=0)[:5].T.ravel())
    assert np.allclose(distances(problems, problems).diagonal(), 0, atol=1e-3)


def test_match_rate_uses_a_tree_edit_distance_that_agrees_with_apted() -> None:
    trees = [tree for text in stdlib_functions(max_lines=15, limit=30) for _, tree in function_trees(text)][:16]
    for first in trees[:8]:
        for second in trees:
            rate = match_rate(first, second)
            assert rate == max(0.0, 1 - apted_distance(first, second) / max(first.size, second.size))
            assert rate <= match_bound(first, second) + 1e-12
    same = function_trees("def f(a, b):\n    '''Doc.'''\n    # note\n    return a + b * 2\n")[0][1]
    renamed = function_trees("def g(x: int, y) -> int:\n    return x + y * 7\n")[0][1]
    assert match_rate(same, renamed) == 1.0


def test_tests_a_body_that_does_nothing_passes_are_trivial() -> None:
    targets = {target.problem.task_id: target for target in load_targets(["humaneval"])}
    with Sandbox(workers=2, limits=Limits(timeout_s=5)) as sandbox:
        chosen = [targets["HumanEval/0"], targets["HumanEval/53"]]
        assert execution.trivial_targets(chosen, sandbox) == set()
        stub = execution.stub_programs(targets["HumanEval/0"])[0]
        verdict = judge("humaneval", [targets["HumanEval/0"].problem], [("HumanEval/0", Solution(stub))], sandbox)
        assert verdict[0].status == "failed"


def test_eval_reports_pass_at_1_on_similar_and_non_similar_problems(tmp_path: Path) -> None:
    humaneval = load_benchmark("humaneval")
    planted_ids = ["HumanEval/0", "HumanEval/10", "HumanEval/20", "HumanEval/30", "HumanEval/40"]
    by_id = {problem.task_id: problem for problem in humaneval}
    rows = [{"id": task, "text": by_id[task].prompt + by_id[task].canonical_solution, "source": "test"}
            for task in planted_ids]
    rows += [{"id": f"s{index}", "text": text, "source": "test"} for index, text in
             enumerate(stdlib_functions(limit=40))]
    found = _run(write_dataset(tmp_path / "data", rows), tmp_path / "decontaminate", "--bench", "humaneval",
                 "--no-execution")
    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"task_id": problem.task_id, "completion": problem.canonical_solution
                                           if problem.task_id in planted_ids else "    return None\n"}) + "\n"
                               for problem in humaneval))
    assert main(["eval", "--samples", str(samples), "--bench", "humaneval", "--decontamination",
                 str(tmp_path / "decontaminate"), "--out", str(tmp_path / "eval")]) == 0
    summary = json.loads((tmp_path / "eval" / "summary.json").read_text())
    split = summary["benchmarks"]["humaneval"]["split"]
    assert sorted(split, key=float, reverse=True) == ["0.95", "0.9", "0.85", "0.8"]
    for tau, subsets in split.items():
        similar = set(found["benchmarks"]["humaneval"]["similar"][tau]["task_ids"])
        assert set(planted_ids) <= similar
        assert subsets["similar"]["problems"] == len(similar) and subsets["total"]["problems"] == 164
        assert subsets["similar"]["pass@1"] == pytest.approx(len(planted_ids) / len(similar))
        assert subsets["non_similar"]["pass@1"] == 0.0
        assert subsets["total"]["pass@1"] == pytest.approx(len(planted_ids) / 164)
    assert "similar and non-similar problems" in (tmp_path / "eval" / "summary.md").read_text()
    error_out = tmp_path / "eval-bad"
    assert main(["eval", "--samples", str(samples), "--bench", "humaneval", "--decontamination",
                 str(tmp_path / "data"), "--out", str(error_out)]) == 2


def test_given_embeddings_and_a_run_killed_after_its_reduce(tmp_path: Path) -> None:
    """The embed step's output (the problems embedded by the same embedder) gives the same findings as the
    hashing vectors made on the fly; a run killed once the reduce is recorded resumes without redoing it and
    ends with the same files."""
    import os
    import subprocess
    import sys

    problems = chosen_problems(load_benchmark("humaneval"), load_benchmark("mbpp"), count=12)
    texts = [text for _, _, text in planted_rows(problems)] + stdlib_functions(limit=80)
    folder = write_dataset(tmp_path / "data", [{"id": str(index), "text": text, "source": "test"}
                                               for index, text in enumerate(texts)])
    assert main(["embed", "--input", str(folder), "--out", str(tmp_path / "embed")]) == 0
    flags = ["--bench", "humaneval", "--no-execution", "--neighbours", "5"]
    alone = _run(folder, tmp_path / "alone", *flags)
    given = _run(folder, tmp_path / "given", *flags, "--embeddings", str(tmp_path / "embed"))
    assert given["pruned"] == alone["pruned"]
    for bench, found in alone["benchmarks"].items():  # stored float16 embeddings: distances to about 1e-3
        other = given["benchmarks"][bench]
        assert {key: value for key, value in other.items() if key != "embedding"} == \
            {key: value for key, value in found.items() if key != "embedding"}
        assert other["embedding"]["median_nearest"] == pytest.approx(found["embedding"]["median_nearest"], abs=1e-2)
    argv = [sys.executable, "-m", "textbooks", "decontaminate", str(folder), "--out", str(tmp_path / "killed"),
            "--workers", "1", *flags]
    killed = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TEXTBOOKS_KILL_AT": "decontaminate:reduce"})
    assert killed.returncode == -9 and not data.is_complete(tmp_path / "killed")
    resumed = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "the reduce result was recorded earlier" in resumed.stdout
    assert json.loads((tmp_path / "killed" / "decontamination.json").read_text()) == alone
    assert pq.read_table(tmp_path / "killed" / "matches.parquet").equals(
        pq.read_table(tmp_path / "alone" / "matches.parquet"))
