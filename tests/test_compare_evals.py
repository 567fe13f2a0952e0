"""`textbooks compare`: evaluations side by side, with intervals that are computed from the problems (a planted
difference is found and bracketed, identical evaluations differ by [0, 0]), seeds of one arm, real eval folders
and run folders end to end, and refusals of what cannot be compared."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from textbooks.benchmarks import load_benchmark
from textbooks.cli import main
from textbooks.diversity.step import measure_step
from textbooks.evaluate.side_by_side import CompareConfig, CompareStep
from textbooks.pipeline.recipe import load_recipe
from textbooks.pipeline.runner import run_step
from textbooks.pipeline.work import Work
from textbooks.report import write_report
from textbooks.store import data

PROBLEMS = [f"HumanEval/{index}" for index in range(164)]


def write_eval(folder: Path, passed: dict[str, set[str]], losses: dict[str, list[float]] | None = None,
               problems: dict[str, list[str]] | None = None, samples: int = 1) -> Path:
    """An eval folder by hand: summary.json and samples.jsonl, each problem passed by all or none of its samples."""
    problems = problems or {bench: PROBLEMS for bench in passed}
    folder.mkdir(parents=True)
    benchmarks = {}
    rows = []
    for bench, tasks in problems.items():
        benchmarks[bench] = {"problems": len(tasks), "samples": samples * len(tasks), "pass@k": {}}
        if losses and bench in losses:
            benchmarks[bench]["solution_loss"] = float(np.mean(losses[bench]))
            benchmarks[bench]["solution_loss_per_problem"] = dict(zip(tasks, losses[bench]))
        rows += [{"bench": bench, "task_id": task, "sample": sample, "passed": task in passed[bench]}
                 for task in tasks for sample in range(samples)]
    (folder / "summary.json").write_text(json.dumps({"model": "by hand", "benchmarks": benchmarks}))
    (folder / "samples.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return folder


def compared(out: Path) -> dict:
    return json.loads((out / "compare.json").read_text())


def test_a_planted_difference_is_found_and_its_interval_holds_the_truth(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    losses = rng.uniform(0.8, 2.0, len(PROBLEMS))
    noise = rng.normal(0, 0.2, len(PROBLEMS))
    lower = losses - 0.5 + (noise - noise.mean())  # exactly 0.5 lower on average, not on every problem
    a = write_eval(tmp_path / "a", {"humaneval": set(PROBLEMS[:40])}, {"humaneval": losses.tolist()})
    # B passes 80 problems: 20 of A's 40 and 60 others, 40 more in all
    b = write_eval(tmp_path / "b", {"humaneval": set(PROBLEMS[20:100])}, {"humaneval": lower.tolist()})
    out = tmp_path / "compare"
    assert main(["compare", f"base={a}", f"better={b}", "--out", str(out)]) == 0
    found = compared(out)["benchmarks"]["humaneval"]
    assert found["problems"] == 164
    base = found["arms"]["base"]["pass@1"]
    assert base["mean"] == pytest.approx(40 / 164)
    assert base["low"] < 40 / 164 < base["high"] and 0.08 < base["high"] - base["low"] < 0.18  # about 4 std errors
    assert found["arms"]["base"]["solution_loss"]["mean"] == pytest.approx(losses.mean())
    differences = {row["metric"]: row for row in found["differences"]}
    assert set(differences) == {"pass@1", "solution_loss"}  # one sample per problem: no pass@10
    passes, loss = differences["pass@1"], differences["solution_loss"]
    assert (passes["first"], passes["second"]) == ("base", "better")
    assert passes["mean"] == pytest.approx(40 / 164) and passes["low"] < 40 / 164 < passes["high"]
    assert passes["low"] > 0 and passes["excludes_zero"]
    assert loss["mean"] == pytest.approx(-0.5) and loss["low"] < -0.5 < loss["high"] and loss["high"] < 0
    # paired: far narrower than the two arms' own intervals over problems, which overlap
    assert loss["high"] - loss["low"] < 0.1 < found["arms"]["base"]["solution_loss"]["high"] - found["arms"][
        "better"]["solution_loss"]["low"]
    markdown = (out / "compare.md").read_text()
    assert "| humaneval | pass@1 | better − base | +24.4 points [" in markdown
    assert markdown.count("larger than its interval |") == 2
    assert (out / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and data.is_complete(out)
    assert data.read_stats(out)["larger_than_interval"] == ["humaneval pass@1 better - base",
                                                            "humaneval solution_loss better - base"]


def test_identical_evaluations_differ_by_exactly_nothing(tmp_path: Path, capsys) -> None:
    losses = {"humaneval": np.linspace(0.5, 1.5, len(PROBLEMS)).tolist()}
    a = write_eval(tmp_path / "a", {"humaneval": set(PROBLEMS[::3])}, losses)
    b = write_eval(tmp_path / "b", {"humaneval": set(PROBLEMS[::3])}, losses)
    out = tmp_path / "compare"
    assert main(["compare", str(a), str(b), "--out", str(out), "--resamples", "500"]) == 0
    for row in compared(out)["benchmarks"]["humaneval"]["differences"]:
        assert (row["mean"], row["low"], row["high"], row["excludes_zero"]) == (0, 0, 0, False)
    assert "interval includes 0" in (out / "compare.md").read_text()
    assert compared(out)["resamples"] == 500
    capsys.readouterr()
    assert main(["compare", str(a), str(b), "--out", str(out), "--resamples", "500"]) == 0
    assert "compare: done earlier" in capsys.readouterr().out


def test_seeds_of_one_arm_are_pooled_per_problem_and_spread_over_seeds(tmp_path: Path) -> None:
    seeds = [write_eval(tmp_path / f"s{index}", {"humaneval": set(PROBLEMS[:count])}, samples=10)
             for index, count in enumerate((30, 50))]
    other = write_eval(tmp_path / "other", {"humaneval": set(PROBLEMS[:40])}, samples=10)
    out = tmp_path / "compare"
    assert main(["compare", f"seeded={seeds[0]}", f"other={other}", f"seeded={seeds[1]}", "--out", str(out)]) == 0
    result = compared(out)
    assert result["arms"] == {"seeded": [str(seeds[0]), str(seeds[1])], "other": [str(other)]}
    seeded = result["benchmarks"]["humaneval"]["arms"]["seeded"]
    assert seeded["pass@1"]["mean"] == pytest.approx(40 / 164)
    spread = seeded["pass@1"]["over_seeds"]
    assert spread["seeds"] == 2 and spread["values"] == pytest.approx([30 / 164, 50 / 164])
    assert spread["std"] == pytest.approx(np.std([30 / 164, 50 / 164], ddof=1))
    assert seeded["pass@10"]["mean"] == pytest.approx(40 / 164)  # all or none of 10 samples pass: pass@10 = pass@1
    assert "solution_loss" not in seeded and "2 seeds 24.4 ± 8.6%" in (out / "compare.md").read_text()
    # a recipe's list: the same labels, commas split as on the command line
    config = CompareConfig(evals=[f"seeded={seeds[0]}", {"path": str(other), "label": "other"},
                                  f"seeded={seeds[1]},{other}"])
    assert [(item.label, Path(item.path).name) for item in config.evals] == [
        ("seeded", "s0"), ("other", "other"), ("seeded", "s1"), (None, "other")]


def write_samples(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def write_measured_dataset(folder: Path) -> None:
    """A finished dataset step with its diversity.json, as `diversity: true` in a recipe leaves it."""
    texts = [f"def f{index % 4}(x):\n    return x + {index % 4}\n" for index in range(12)]
    folder.mkdir(parents=True)
    data.write_table(pa.table({"id": [str(index) for index in range(12)], "text": texts, "source": ["t"] * 12}),
                     folder / data.shard_name(0))
    data.write_marker(folder, {"stage": "filter", "kind": "dataset", "fingerprint": "filtered", "finished": 1.0})
    measure_step(folder, lambda line: None)


def test_real_eval_folders_and_a_run_folder_end_to_end_with_the_report(tmp_path: Path, capsys) -> None:
    problems = load_benchmark("humaneval")[:6]
    good = write_samples(tmp_path / "good.jsonl", [{"task_id": p.task_id, "completion": p.canonical_solution}
                                                   for p in problems])
    half = write_samples(tmp_path / "half.jsonl", [
        {"task_id": p.task_id, "completion": p.canonical_solution if index % 2 else "    return None\n"}
        for index, p in enumerate(problems)])
    run = tmp_path / "run"
    write_measured_dataset(run / "filter")
    for name, samples in (("eval-good", good), ("eval-half", half)):
        assert main(["eval", "--samples", str(samples), "--bench", "humaneval", "--limit", "6",
                     "--out", str(run / name)]) == 0
    out = tmp_path / "compare"
    assert main(["compare", str(run), "--out", str(out)]) == 0
    result = compared(out)
    assert list(result["arms"]) == [f"{run}/eval-good", f"{run}/eval-half"]  # in the order they finished
    arms = result["benchmarks"]["humaneval"]["arms"]
    assert arms[f"{run}/eval-good"]["pass@1"]["mean"] == 1 and arms[f"{run}/eval-half"]["pass@1"]["mean"] == 0.5
    assert "compare: humaneval: pass@1" in capsys.readouterr().out
    diversity = result["diversity"]  # the run's measured dataset, shared by both arms: named by the run
    assert [(entry["name"], entry["arms"], entry["measures"]["rows"]) for entry in diversity] == [
        ("run: filter", list(result["arms"]), 12)]
    assert "## Diversity of each arm's data" in (out / "compare.md").read_text()

    # in a run folder, `@eval` names an eval step and the arm; the report shows the comparison
    run_step(CompareStep(CompareConfig(evals=["@eval-good", "half=@eval-half"])), run / "compare",
             run_folder=run, say=lambda line: None)
    assert list(compared(run / "compare")["arms"]) == ["eval-good", "half"]
    report = write_report(run, say=lambda line: None).with_suffix(".md").read_text()
    assert "Evaluations compared" in report and "half − eval-good" in report and "compare-compare.png" in report
    assert "| compare | 2 arms on humaneval; 1 difference larger than its interval |" in report
    assert "| rows | 12 |" in report.split("Diversity of each arm's data")[1]


def test_what_cannot_be_compared_exits_2_naming_why(tmp_path: Path, capsys) -> None:
    humaneval = write_eval(tmp_path / "humaneval", {"humaneval": set()})
    both = write_eval(tmp_path / "both", {"humaneval": set(), "mbpp": set()},
                      problems={"humaneval": PROBLEMS, "mbpp": ["Mbpp/11"]})
    fewer = write_eval(tmp_path / "fewer", {"humaneval": set()}, problems={"humaneval": PROBLEMS[:160]})
    (tmp_path / "empty").mkdir()
    cases = [([str(humaneval), str(both)], f"different benchmarks: {humaneval} on humaneval, {both} on humaneval, "
                                           "mbpp"),
             ([str(humaneval), str(fewer)], f"humaneval: {humaneval} and {fewer} are on different problems (164 and "
                                            f"160; 4 only in {humaneval} (HumanEval/160, HumanEval/161, "
                                            "HumanEval/162 ...))"),
             ([str(humaneval), str(tmp_path / "missing")], f"{tmp_path / 'missing'} does not exist"),
             ([str(tmp_path / "empty")], "holds no summary.json and no eval step"),
             ([str(humaneval), f"again={humaneval}"], "is given twice")]
    for index, (evals, message) in enumerate(cases):
        out = tmp_path / f"out{index}"
        assert main(["compare", *evals, "--out", str(out)]) == 2
        error = capsys.readouterr().err
        assert message in error and error.count("\n") == 1, error
        assert not data.is_complete(out) and not (out / "compare.json").exists()
    # an eval step in a run folder that stopped before its end
    run = tmp_path / "run"
    shutil.copytree(humaneval, run / "eval")
    Work(run / "eval", "eval").begin("unfinished", {"step": "eval"})
    assert main(["compare", str(run), "--out", str(tmp_path / "unfinished")]) == 2
    assert "is not finished (`textbooks eval` stopped before its end" in capsys.readouterr().err
    (humaneval / "samples.jsonl").unlink()
    assert main(["compare", str(humaneval), "--out", str(tmp_path / "no-samples")]) == 2
    assert "has no samples.jsonl" in capsys.readouterr().err


def test_a_recipe_names_eval_steps_and_refuses_a_step_of_another_kind(tmp_path: Path, capsys) -> None:
    recipe = tmp_path / "recipe.yaml"
    head = ("stages:\n  - stage: eval\n    name: eval-a\n    samples: a.jsonl\n  - stage: eval\n    name: eval-b\n"
            "    samples: b.jsonl\n  - stage: tokenize\n    input: hf:nothing\n  - stage: compare\n")
    recipe.write_text(head + "    evals: ['@eval-a', 'b=@eval-b']\n")
    step = load_recipe(recipe).steps[-1]
    assert [(item.label, item.path) for item in step.config.evals] == [(None, "@eval-a"), ("b", "@eval-b")]
    assert step.input is None
    recipe.write_text(head + "    evals: ['@eval-a', '@tokenize']\n")
    assert main(["run", str(recipe), "--out", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err
    assert "key 'evals.1.path'" in error and "'@tokenize' is token data (made by tokenize); this setting takes an " \
                                            "evaluation" in error, error


BUDGET_RECIPE = """\
stages:
  - stage: ingest
    include: ["json/*.py", "email/_*.py"]
    units: [function, class]
  - stage: tokenize
    name: tokens-a
    input: ingest
    vocab_size: 320
    val_fraction: 0.1
    tokens: 20000
  - stage: tokenize
    name: tokens-b
    input: ingest
    tokenizer: '@tokens-a/tokenizer'
    val_fraction: 0.1
    seed: 1
    tokens: {tokens_b}
{arms}
  - stage: compare
    evals: ['a=@eval-a', 'b=@eval-b']
    same_budget: true
    resamples: 100
"""
ARM = """\
  - stage: train
    name: train-{arm}
    input: tokens-{arm}
    model_overrides: {{num_hidden_layers: 1, hidden_size: 64, intermediate_size: 128, num_attention_heads: 2}}
    seq_len: 32
    batch_size: 4
    micro_batch_size: 4
    max_steps: {steps}
    warmup_steps: 1
    checkpoint_every: 2
    eval_every: 2
    eval_windows: 4
  - stage: eval
    name: eval-{arm}
    input: train-{arm}
    bench: [fresh]
    limit: 4
    max_new_tokens: 8
    batch_size: 4
"""


def budget_recipe(path: Path, tokens_b: int = 20000, steps_b: int = 2) -> Path:
    arms = ARM.format(arm="a", steps=2) + ARM.format(arm="b", steps=steps_b)
    path.write_text(BUDGET_RECIPE.format(tokens_b=tokens_b, arms=arms.rstrip("\n")))
    return path


def test_same_budget_checks_the_training_behind_each_arm(tmp_path: Path, capsys) -> None:
    """Arms trained alike on equal packed tokens compare; other steps, or packed tokens 1% or more apart, are
    refused, naming what differs (the real token folders and training runs of a recipe)."""
    run = tmp_path / "run"
    assert main(["run", str(budget_recipe(tmp_path / "alike.yaml")), "--out", str(run)]) == 0
    budgets = json.loads((run / "compare" / "compare.json").read_text())["budgets"]
    (first,), (second,) = budgets["a"], budgets["b"]
    assert first[0]["steps"] == second[0]["steps"] == 2 and first[0]["data"] == "tokens-a"
    assert abs(first[0]["train_tokens"] - second[0]["train_tokens"]) < 0.01 * first[0]["train_tokens"]
    assert first[0]["train_tokens"] == (run / "tokens-a" / "train.bin").stat().st_size // 2
    capsys.readouterr()
    assert main(["run", str(budget_recipe(tmp_path / "more.yaml", tokens_b=24000)), "--out", str(run)]) == 2
    assert "tokens-b packs" in capsys.readouterr().err
    assert main(["run", str(budget_recipe(tmp_path / "longer.yaml", steps_b=4)), "--out", str(run)]) == 2
    assert "has steps 4" in capsys.readouterr().err


def test_samples_of_perturbed_prompts_are_left_out_of_the_plain_scores(tmp_path: Path) -> None:
    """An evaluation with `--perturb` holds the perturbed prompts' samples too (`perturb: KIND`); the arms are
    compared on the plain prompts, so those samples count nowhere."""
    passed = {"humaneval": set(PROBLEMS[:30])}
    plain = write_eval(tmp_path / "plain", passed)
    perturbed = write_eval(tmp_path / "perturbed", passed)
    with open(perturbed / "samples.jsonl", "a", encoding="utf-8") as handle:
        for task in PROBLEMS:  # every perturbed sample passes: counted, it would lift pass@1 to 1
            handle.write(json.dumps({"bench": "humaneval", "task_id": task, "sample": 0, "passed": True,
                                     "perturb": "typos"}) + "\n")
    assert main(["compare", f"a={plain}", f"b={perturbed}", "--out", str(tmp_path / "out")]) == 0
    arms = compared(tmp_path / "out")["benchmarks"]["humaneval"]["arms"]
    assert arms["a"]["pass@1"] == arms["b"]["pass@1"]


def with_perturbation(folder: Path, kind: str, passed: set[str], losses: list[float] | None = None) -> Path:
    """Add to a hand-made eval folder what `eval --perturb KIND` writes: the samples and the summary's scores."""
    summary = json.loads((folder / "summary.json").read_text())
    scores: dict = {"problems": len(PROBLEMS), "changed": len(PROBLEMS), "pass@k": {"1": len(passed) / 164}}
    if losses is not None:
        scores["solution_loss"] = float(np.mean(losses))
        scores["solution_loss_per_problem"] = dict(zip(PROBLEMS, losses))
    summary["benchmarks"]["humaneval"].setdefault("perturbed", {})[kind] = scores
    (folder / "summary.json").write_text(json.dumps(summary))
    with open(folder / "samples.jsonl", "a", encoding="utf-8") as handle:
        for task in PROBLEMS:
            handle.write(json.dumps({"bench": "humaneval", "task_id": task, "sample": 0, "passed": task in passed,
                                     "perturb": kind}) + "\n")
    return folder


def test_perturbed_prompts_are_compared_too_with_each_arms_change(tmp_path: Path) -> None:
    """Arm a passes 30 problems plainly and 10 of them under typos; arm b passes 30 either way: a's change is
    -20 problems and larger than its interval, b's is exactly 0, and under typos b - a is +20 problems. A
    perturbation only one evaluation ran is not compared."""
    losses = np.linspace(1.0, 2.0, len(PROBLEMS))
    a = write_eval(tmp_path / "a", {"humaneval": set(PROBLEMS[:30])}, {"humaneval": losses.tolist()})
    b = write_eval(tmp_path / "b", {"humaneval": set(PROBLEMS[:30])}, {"humaneval": losses.tolist()})
    with_perturbation(a, "typos", set(PROBLEMS[:10]), (losses + 0.25).tolist())
    with_perturbation(b, "typos", set(PROBLEMS[:30]), losses.tolist())
    with_perturbation(a, "rename", set(PROBLEMS[:30]))  # b has no rename run
    out = tmp_path / "out"
    assert main(["compare", f"a={a}", f"b={b}", "--out", str(out)]) == 0
    result = compared(out)
    assert list(result["perturbed"]) == ["humaneval (typos)"]
    typos = result["perturbed"]["humaneval (typos)"]
    assert typos["arms"]["a"]["pass@1"]["mean"] == pytest.approx(10 / 164)
    assert typos["arms"]["b"]["pass@1"]["mean"] == pytest.approx(30 / 164)
    change = {(row["arm"], row["metric"]): row for row in typos["change"]}
    assert change["a", "pass@1"]["mean"] == pytest.approx(-20 / 164) and change["a", "pass@1"]["excludes_zero"]
    assert change["a", "solution_loss"]["mean"] == pytest.approx(0.25)
    assert (change["b", "pass@1"]["low"], change["b", "pass@1"]["high"]) == (0.0, 0.0)
    [difference] = [row for row in typos["differences"] if row["metric"] == "pass@1"]
    assert difference["mean"] == pytest.approx(20 / 164) and difference["excludes_zero"]
    # the plain scores are the plain prompts' alone
    assert result["benchmarks"]["humaneval"]["arms"]["a"]["pass@1"]["mean"] == pytest.approx(30 / 164)
    markdown = (out / "compare.md").read_text()
    assert "## Change under perturbed prompts (perturbed − plain)" in markdown
    assert "| humaneval (typos) | pass@1 | a | -12.2 points [" in markdown
    assert "| humaneval (typos) | pass@1 | b − a | +12.2 points [" in markdown
