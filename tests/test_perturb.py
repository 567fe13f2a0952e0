"""Prompt perturbations (`textbooks.evaluate.perturb`) and `textbooks eval --perturb`: reproducible from the seed,
every perturbed HumanEval and MBPP prompt parses with its canonical solution and the canonical solutions still
pass in the sandbox, only the docstring's prose changes, and the evaluation reports each kind next to the plain
prompts, from a samples file or a local model whose perturbed completions are recorded and reused.

Measured on 2 shared cores (2026-12): the module takes 28-41 s, judging 4 x 164 HumanEval and 200 MBPP programs
5-8 s of it, the tiny model's three evaluations about 12 s."""

from __future__ import annotations

import ast
import difflib
import json
import random
import re
import warnings
from pathlib import Path

import pytest
from test_eval import model_folder  # noqa: F401, F811  (the tiny local model, a module fixture)

from textbooks.benchmarks import Problem, load_benchmark
from textbooks.cli import main
from textbooks.evaluate.judge import judge
from textbooks.evaluate.perturb import AGREEMENT, ARTICLES, KINDS, perturb
from textbooks.report import StageRun, Table, evaluation
from textbooks.store import data

SEED = 7
MBPP_JUDGED = 200
MBPP_SLOW = ("Mbpp/123",)  # 7 s alone (tests/test_judge.py)
HUMANEVAL = load_benchmark("humaneval")
MBPP = load_benchmark("mbpp")
TOY = Problem(
    task_id="Toy/1", entry_point="count_long",
    prompt='def count_long(text: str, limit: int) -> int:\n'
           '    """Return the number of words in the text that are longer than limit letters.\n'
           '    A word is a run of letters, and "the quick" holds two of them; the result is a count.\n'
           '    >>> count_long("the quick brown fox", 3)\n'
           '    2\n'
           '    """\n',
    canonical_solution="    return sum(len(word) > limit for word in text.split())\n",
    test="def check(candidate):\n    assert candidate('the quick brown fox', 3) == 2\n", kind="check")


def parses(problem: Problem) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (DeprecationWarning, SyntaxWarning))
        try:
            ast.parse(problem.prompt + problem.canonical_solution)
        except SyntaxError:
            return False
    return True


def without_docstrings(source: str) -> str:
    """The code of `source` with every docstring emptied: what typos and grammar must leave alone."""
    tree = ast.parse(source)
    for node in ast.walk(tree):  # HumanEval/115's docstring comes after an import
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            node.value.value = ""
    return ast.dump(tree)


def test_the_seed_decides_the_prompts() -> None:
    for kind in KINDS:
        once = [perturb(problem, [kind], SEED) for problem in HUMANEVAL + MBPP]
        assert once == [perturb(problem, [kind], SEED) for problem in HUMANEVAL + MBPP]
        other = [perturb(problem, [kind], SEED + 1) for problem in HUMANEVAL + MBPP]
        changed = [(a.prompt, b.prompt) for a, b, plain in zip(once, other, HUMANEVAL + MBPP)
                   if a.prompt != plain.prompt]
        assert sum(a != b for a, b in changed) > 0.5 * len(changed), kind
    with pytest.raises(ValueError, match="unknown perturbation 'nope'"):
        perturb(TOY, ["typos", "nope"], SEED)


@pytest.mark.parametrize("kinds", [[kind] for kind in KINDS] + [list(KINDS)], ids="+".join)
def test_every_perturbed_prompt_parses_with_its_solution(kinds: list[str]) -> None:
    perturbed = [perturb(problem, kinds, SEED) for problem in HUMANEVAL + MBPP]
    assert len(perturbed) == 664
    broken = [problem.task_id for problem in perturbed if not parses(problem)]
    assert not broken, broken[:5]
    changed = sum(a.prompt != b.prompt for a, b in zip(perturbed, HUMANEVAL + MBPP))
    assert changed > 0.9 * (len(HUMANEVAL) if kinds == ["rename"] else len(perturbed))  # rename leaves MBPP alone
    if "rename" not in kinds:  # only docstrings change: the code, the doctests and MBPP's test line stay
        for plain, problem in zip(HUMANEVAL + MBPP, perturbed):
            assert problem.canonical_solution == plain.canonical_solution
            assert without_docstrings(problem.prompt) == without_docstrings(plain.prompt), problem.task_id
            for before, after in zip(plain.prompt.splitlines(), problem.prompt.splitlines()):
                if ">>>" in before or before.startswith("assert"):
                    assert after == before, problem.task_id


def test_mbpp_prompts_are_not_renamed() -> None:
    assert all(perturb(problem, ["rename"], SEED) == problem for problem in MBPP)


def test_perturbed_canonical_solutions_pass(sandbox, cache_dir: Path) -> None:
    mbpp = random.Random(SEED).sample([p for p in MBPP if p.task_id not in MBPP_SLOW], MBPP_JUDGED)
    for name, problems, variants in (("humaneval", HUMANEVAL, [[kind] for kind in KINDS] + [list(KINDS)]),
                                     ("mbpp", mbpp, [list(KINDS)])):
        for kinds in variants:
            perturbed = [perturb(problem, kinds, SEED) for problem in problems]
            verdicts = judge(name, perturbed, [(p.task_id, p.canonical_solution) for p in perturbed], sandbox,
                             cache_dir=cache_dir, originals=problems)
            failed = [f"{p.task_id}: {v.reason}" for p, v in zip(perturbed, verdicts) if v.status != "passed"]
            assert not failed, f"{name} {kinds}: {failed[:5]}"


def test_typos_touch_prose_words_only() -> None:
    # four letters or more, not in quotes, not a name of the code (`text`, `limit`, `word`)
    prose = {"Return", "number", "words", "that", "longer", "than", "letters", "holds", "them", "result", "count"}
    for seed in range(40):
        typed = perturb(TOY, ["typos"], seed)
        assert typed.canonical_solution == TOY.canonical_solution
        pairs = list(zip(TOY.prompt.split(), typed.prompt.split(), strict=True))
        changed = [(before, after) for before, after in pairs if before != after]
        assert len(changed) == 1  # a tenth of the ~10 eligible words, at least one
        before, after = (word.strip('.,;"') for word in changed[0])
        assert before in prose and after[0] == before[0] and abs(len(after) - len(before)) <= 1


def test_grammar_drops_articles_and_breaks_agreement() -> None:
    seen = set()
    for seed in range(40):
        broken = perturb(TOY, ["grammar"], seed)
        assert broken.prompt != TOY.prompt and parses(broken)
        before, after = TOY.prompt.lower().split(), broken.prompt.lower().split()
        for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=before, b=after, autojunk=False).get_opcodes():
            if op == "delete":
                assert set(before[i1:i2]) <= set(ARTICLES)
                seen.add("article")
            elif op == "replace":  # verbs swapped, perhaps next to a dropped article
                words = [(word.rstrip(".,"), word[len(word.rstrip(".,")):]) for word in before[i1:i2]]
                assert [AGREEMENT.get(word, word) + end for word, end in words if word not in ARTICLES] == \
                    [word for word in after[j1:j2] if word not in ARTICLES], (before[i1:i2], after[j1:j2])
                seen.add("agreement")
            else:
                assert op == "equal"
        assert '"the quick"' in broken.prompt and 'count_long("the quick brown fox", 3)' in broken.prompt
    assert seen == {"article", "agreement"}


def test_rename_is_consistent_and_kept_where_unsafe() -> None:
    renamed = perturb(TOY, ["rename"], SEED)
    function = ast.parse(renamed.prompt).body[0]
    names = [arg.arg for arg in function.args.args]
    assert names != ["text", "limit"] and len(set(names)) == 2
    docstring = ast.get_docstring(function)
    assert f"the {names[0]} that are longer than {names[1]} letters" in docstring
    assert '"the quick"' in docstring and 'count_long("the quick brown fox", 3)' in docstring
    assert renamed.canonical_solution == f"    return sum(len(word) > {names[1]} for word in {names[0]}.split())\n"
    # `a` is also the article in the docstring; `n` is bound again by the lambda: both are kept, `b` is renamed
    unsafe = Problem(task_id="Toy/2", entry_point="f", kind="check", test="",
                     prompt='def f(a, n, b):\n    """Add a to n times b."""\n',
                     canonical_solution="    g = lambda n: n * b\n    return a + g(n)\n")
    kept = perturb(unsafe, ["rename"], SEED)
    assert [arg.arg for arg in ast.parse(kept.prompt).body[0].args.args][:2] == ["a", "n"]
    assert not re.search(r"\bb\b", kept.canonical_solution + kept.prompt) and kept.prompt != unsafe.prompt


def write_samples(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def canonical_rows(problems: list[Problem], kinds: list[str], seed: int) -> list[dict]:
    rows = [{"task_id": p.task_id, "completion": p.canonical_solution} for p in problems]
    for kind in kinds:
        rows += [{"task_id": p.task_id, "completion": perturb(p, [kind], seed).canonical_solution, "perturb": kind}
                 for p in problems]
    return rows


def test_eval_reports_perturbed_scores_from_a_samples_file(tmp_path: Path) -> None:
    problems = HUMANEVAL[:4] + MBPP[:4]
    samples = write_samples(tmp_path / "samples.jsonl", canonical_rows(problems, list(KINDS), 3))
    out = tmp_path / "eval"
    assert main(["eval", "--samples", str(samples), "--bench", "humaneval,mbpp", "--limit", "4",
                 "--perturb", "typos,grammar,rename", "--seed", "3", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["perturb"] == {"kinds": ["typos", "grammar", "rename"], "seed": 3}
    for name in ("humaneval", "mbpp"):
        scores = summary["benchmarks"][name]
        assert scores["pass@k"] == {"1": 1.0} and set(scores["perturbed"]) == set(KINDS)
        for kind, found in scores["perturbed"].items():
            assert found["pass@k"] == {"1": 1.0} and found["problems"] == 4
            assert found["changed"] == (0 if (name, kind) == ("mbpp", "rename") else 4)
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert sum("perturb" not in row for row in rows) == 8 and sum(row.get("perturb") == "typos" for row in rows) == 8
    typo_prompts = {row["prompt"] for row in rows if row.get("perturb") == "typos"}
    assert typo_prompts == {perturb(p, ["typos"], 3).prompt for p in problems}
    markdown = (out / "summary.md").read_text()
    assert "## humaneval: perturbed prompts (seed 3)" in markdown and "| rename | 0 of 4 | 100.0% (+0.0) |" in markdown
    # the report: the benchmarks' table as before, a perturbed table per benchmark, completions of plain prompts
    sections = evaluation.scores(StageRun("eval", "eval", out, data.read_marker(out), data.read_stats(out)))
    tables = [block for block in sections[0].blocks if isinstance(block, Table)]
    assert [row[0] for row in tables[0].rows] == ["humaneval", "mbpp"]
    assert [row[:2] for row in tables[1].rows] == [["plain", ""], ["grammar", "4 of 4"], ["rename", "4 of 4"],
                                                   ["typos", "4 of 4"]]
    assert [row[1] for row in tables[-1].rows] == ["4", "4"]  # passed, per benchmark: plain samples only
    # the judge runs the perturbed problem: a plain body after a renamed signature fails
    plain_bodies = [dict(row, perturb="rename") for row in canonical_rows(HUMANEVAL[:4], [], 3)]
    samples = write_samples(tmp_path / "plain.jsonl", canonical_rows(HUMANEVAL[:4], [], 3) + plain_bodies)
    assert main(["eval", "--samples", str(samples), "--bench", "humaneval", "--limit", "4", "--perturb", "rename",
                 "--seed", "3", "--out", str(tmp_path / "plain")]) == 0
    scores = json.loads((tmp_path / "plain" / "summary.json").read_text())["benchmarks"]["humaneval"]
    assert scores["pass@k"] == {"1": 1.0} and scores["perturbed"]["rename"]["pass@k"] == {"1": 0.0}


def test_bad_perturbations_are_refused_with_a_message(tmp_path: Path, capsys) -> None:
    samples = write_samples(tmp_path / "s.jsonl", canonical_rows(HUMANEVAL[:2], ["typos"], 0))
    args = ["eval", "--samples", str(samples), "--bench", "humaneval", "--limit", "2"]
    assert main([*args, "--perturb", "typos,nope", "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "unknown perturbation 'nope'; choose from typos, grammar, rename" in err and len(err.splitlines()) == 1
    assert main([*args, "--out", str(tmp_path / "b")]) == 2
    assert "`perturb` is 'typos', not one of --perturb (none given)" in capsys.readouterr().err
    assert main([*args, "--perturb", "typos,grammar", "--out", str(tmp_path / "c")]) == 2
    assert 'has no samples for humaneval (rows with "perturb": "grammar")' in capsys.readouterr().err


def test_perturbed_completions_are_recorded_and_reused(tmp_path: Path, model_folder: Path, capsys) -> None:  # noqa: F811
    out = tmp_path / "eval"
    args = ["eval", str(model_folder), "--bench", "humaneval,mbpp", "--limit", "2", "--max-new-tokens", "8",
            "--out", str(out)]
    assert main(args) == 0
    capsys.readouterr()
    assert main([*args, "--perturb", "typos,rename"]) == 0  # the plain completions come from the first run's records
    said = capsys.readouterr().out
    assert "eval: humaneval: completions from" in said and "eval: mbpp: completions from" in said
    assert "eval: humaneval.typos: completing 2 prompts" in said and "eval: humaneval.rename: completing 2" in said
    assert "eval: mbpp.rename: completions from" in said  # its prompts are the plain ones
    scores = json.loads((out / "summary.json").read_text())["benchmarks"]
    for name in ("humaneval", "mbpp"):
        assert set(scores[name]["perturbed"]) == {"typos", "rename"}
        assert all(5 < found["solution_loss"] < 8 for found in scores[name]["perturbed"].values())
    assert scores["mbpp"]["perturbed"]["rename"]["solution_loss"] == scores["mbpp"]["solution_loss"]
    typos = scores["humaneval"]["perturbed"]["typos"]["solution_loss_per_problem"]  # what `compare` bootstraps
    assert set(typos) == set(scores["humaneval"]["solution_loss_per_problem"]) == {"HumanEval/0", "HumanEval/1"}
    assert min(typos.values()) <= scores["humaneval"]["perturbed"]["typos"]["solution_loss"] <= max(typos.values())
    assert (out / "completions" / "humaneval.typos.jsonl").is_file()
    assert main([*args, "--perturb", "typos,rename", "--timeout-s", "9"]) == 0  # scored again, nothing generated
    said = capsys.readouterr().out
    assert "completing" not in said and "eval: humaneval.typos: completions from" in said
