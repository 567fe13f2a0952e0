"""`textbooks eval` end to end through the CLI: samples files in human-eval and EvalPlus formats, a local
model with resumable completions, an OpenAI-compatible endpoint and an LLM judge on loopback, bad input."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from llm_server import FakeLLMServer, llm_server_fixture  # noqa: F401  (fixture `llm_server`)

from textbooks.benchmarks import load_benchmark
from textbooks.cli import main
from textbooks.model import Phi
from textbooks.model.config import ModelConfig
from textbooks.model.io import save_model
from textbooks.tokens.tokenizer import train_tokenizer

HUMANEVAL = load_benchmark("humaneval")[:6]


def write_samples(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def summary_of(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


def test_samples_in_human_eval_format(tmp_path):
    rows = [{"task_id": p.task_id, "completion": p.canonical_solution} for p in HUMANEVAL]
    rows += [{"task_id": p.task_id, "completion": "    return None\n"} for p in HUMANEVAL[:3]]
    samples = write_samples(tmp_path / "samples.jsonl", rows)
    out = tmp_path / "eval"
    assert main(["eval", "--samples", str(samples), "--bench", "humaneval", "--limit", "6", "--k", "1", "2",
                 "--out", str(out)]) == 0
    scores = summary_of(out)["benchmarks"]["humaneval"]
    # three problems have one right and one wrong sample, three have one right sample: k=2 needs n >= 2 everywhere
    assert scores["problems"] == 6 and scores["samples"] == 9
    assert scores["pass@k"] == {"1": pytest.approx((3 * 0.5 + 3 * 1.0) / 6)}
    written = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert [row["passed"] for row in written] == [True] * 6 + [False] * 3
    assert all(row["reason"] for row in written[6:]) and written[6]["sample"] == 1
    assert "| humaneval | 6 | 9 | 75.0% |" in (out / "summary.md").read_text()


def test_samples_in_evalplus_format_on_humaneval_plus(tmp_path):
    problems = load_benchmark("humaneval+")[:3]
    rows = [{"task_id": p.task_id, "solution": p.prompt + p.canonical_solution} for p in problems]
    rows.append({"task_id": problems[0].task_id, "solution": problems[0].prompt + "    return None\n"})
    out = tmp_path / "eval"
    assert main(["eval", "--samples", str(write_samples(tmp_path / "s.jsonl", rows)), "--bench", "humaneval+",
                 "--limit", "3", "--out", str(out)]) == 0
    scores = summary_of(out)["benchmarks"]["humaneval+"]
    assert scores["pass@k"]["1"] == pytest.approx((0.5 + 1 + 1) / 3)
    assert scores["base_pass@k"]["1"] == pytest.approx((0.5 + 1 + 1) / 3)


def test_bad_input_is_refused_with_a_message(tmp_path, capsys):
    assert main(["eval", "--samples", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "a")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["eval", "model", "--bench", "humaneval,nope", "--out", str(tmp_path / "b")]) == 2
    assert "unknown benchmark 'nope'" in capsys.readouterr().err
    stray = write_samples(tmp_path / "stray.jsonl", [{"task_id": "Other/1", "completion": "pass"}])
    assert main(["eval", "--samples", str(stray), "--bench", "humaneval", "--out", str(tmp_path / "c")]) == 2
    assert "'Other/1' is in none of humaneval" in capsys.readouterr().err
    assert main(["eval", "--bench", "humaneval", "--out", str(tmp_path / "d")]) == 2
    assert "needs an input" in capsys.readouterr().err


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> Path:
    texts = [p.prompt + p.canonical_solution for p in load_benchmark("fresh")] * 3
    tokenizer = train_tokenizer(texts, 400, tmp_path_factory.mktemp("tok") / "bpe")
    config = ModelConfig(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=1024)
    folder = tmp_path_factory.mktemp("model") / "best"
    save_model(Phi(config).eval(), folder, tokenizer)
    return folder


def test_a_local_model_end_to_end_and_resumed(tmp_path, model_folder, capsys):
    out = tmp_path / "eval"
    args = ["eval", str(model_folder), "--bench", "fresh,humaneval", "--limit", "3", "--max-new-tokens", "16",
            "--out", str(out)]
    # killed when every completion is made and judged, as samples.jsonl is written: the next run reuses them
    killed = subprocess.run([sys.executable, "-m", "textbooks", *args], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "TEXTBOOKS_KILL_AT": "write:samples.jsonl"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not (out / "_SUCCESS").exists() and not (out / "samples.jsonl").exists()
    completions = (out / "completions" / "fresh.jsonl").read_text()
    assert main(args) == 0
    said = capsys.readouterr().out
    assert "fresh: completions from" in said and "completing" not in said
    assert (out / "completions" / "fresh.jsonl").read_text() == completions
    summary = summary_of(out)
    for name in ("fresh", "humaneval"):
        scores = summary["benchmarks"][name]
        assert scores["problems"] == 3 and scores["pass@k"] == {"1": 0.0}  # an untrained model passes nothing
        assert 5 < scores["solution_loss"] < 8  # near ln(512) = 6.2 for random weights
        per_problem = scores["solution_loss_per_problem"]  # what `textbooks compare` bootstraps over
        assert len(per_problem) == 3 and min(per_problem.values()) <= scores["solution_loss"] <= max(
            per_problem.values())
    assert main(args) == 0
    assert "eval: done earlier" in capsys.readouterr().out


def test_killed_while_generating_loses_only_the_batch_in_flight(tmp_path, model_folder, capsys):
    """kill -9 (the test hook) after two of three batches are recorded: the re-run generates the third only, and
    scores and samples equal an uninterrupted run's."""
    args = [str(model_folder), "--bench", "fresh", "--limit", "6", "--batch-size", "2", "--max-new-tokens", "12",
            "--temperature", "0.8", "--no-solution-loss"]
    assert main(["eval", *args, "--out", str(tmp_path / "whole")]) == 0
    out = tmp_path / "killed"
    killed = subprocess.run([sys.executable, "-m", "textbooks", "eval", *args, "--out", str(out)], capture_output=True,
                            text=True, timeout=300, env={**os.environ, "TEXTBOOKS_KILL_AT": "eval:generate:2"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    capsys.readouterr()
    assert main(["eval", *args, "--out", str(out)]) == 0
    assert "eval: fresh: completing 2 prompts x 1" in capsys.readouterr().out
    assert summary_of(out) == summary_of(tmp_path / "whole")

    def samples(folder: Path) -> list[dict]:
        return [{key: value for key, value in json.loads(line).items() if key != "seconds"}
                for line in (folder / "samples.jsonl").read_text().splitlines()]

    assert samples(out) == samples(tmp_path / "whole")


def test_an_endpoint_model_with_an_llm_judge(tmp_path, llm_server, monkeypatch):
    fresh = {p.prompt: p for p in load_benchmark("fresh")[:4]}

    def serve(body: dict) -> str:
        if "messages" in body:  # the judge: a high grade when the candidate is the reference body
            content = body["messages"][-1]["content"]
            solution = content.split("## Student solution")[-1]
            right = any(p.canonical_solution.strip() in solution for p in fresh.values())
            return "Looks correct.\nGrade: 9/10" if right else "Wrong.\nGrade: 1/10"
        problem = fresh[body["prompt"]]  # the model: right on the first two problems
        index = list(fresh).index(body["prompt"])
        return problem.canonical_solution + "\ndef extra():\n" if index < 2 else "    return None\n"

    llm_server.reply = serve
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    out = tmp_path / "eval"
    assert main(["eval", "openai:tiny-code", "--base-url", llm_server.url, "--bench", "fresh", "--limit", "4",
                 "--judge-model", "judge", "--judge-base-url", llm_server.url, "--out", str(out)]) == 0
    scores = summary_of(out)["benchmarks"]["fresh"]
    assert scores["pass@k"]["1"] == 0.5
    assert "solution_loss" not in scores  # no local model to measure
    assert scores["llm_grade"]["score_percent"] == pytest.approx((9 + 9 + 1 + 1) / 4 * 10)
    completions = [r.body for r in llm_server.requests if "prompt" in r.body]
    assert len(completions) == 4 and all(len(r["stop"]) <= 4 for r in completions)
    assert re.search(r"\| fresh \| 4 \| 4 \| 50\.0% \|.*\| 50\.0% \|", (out / "summary.md").read_text())


def test_provider_vllm_without_vllm_says_what_to_install(tmp_path, model_folder, capsys):
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here: test_provider_vllm_generates covers the provider")
    args = ["eval", str(model_folder), "--bench", "fresh", "--limit", "2", "--provider", "vllm"]
    assert main([*args, "--out", str(tmp_path / "v")]) == 2
    error = capsys.readouterr().err
    assert "needs vLLM installed (pip install vllm" in error and "vllm serve" in error
    assert not (tmp_path / "v" / ".work" / "vllm-model").exists()  # told before any export
    # an explicit provider by name is the same as the one chosen from the folder
    assert main(["eval", str(model_folder), "--bench", "fresh", "--limit", "2", "--max-new-tokens", "4",
                 "--provider", "ours", "--no-solution-loss", "--out", str(tmp_path / "o")]) == 0
    assert summary_of(tmp_path / "o")["benchmarks"]["fresh"]["problems"] == 2


@pytest.mark.gpu
def test_provider_vllm_generates(tmp_path, model_folder):
    """Our model folder, exported for vLLM's offline engine, completes the prompts the local provider does (greedy,
    same weights: the same completions, up to kernels' rounding on near ties)."""
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vLLM is not installed (pip install vllm on a machine with a GPU)")
    import torch

    if not torch.cuda.is_available():
        pytest.skip("vLLM's engine needs a CUDA device; there is none here")
    common = [str(model_folder), "--bench", "fresh", "--limit", "4", "--max-new-tokens", "16", "--no-solution-loss"]
    assert main(["eval", *common, "--provider", "vllm", "--out", str(tmp_path / "vllm")]) == 0
    assert (tmp_path / "vllm" / ".work" / "vllm-model" / "config.json").is_file()
    assert main(["eval", *common, "--device", "cuda", "--out", str(tmp_path / "ours")]) == 0
    same = [a == b for a, b in zip(*(
        [json.loads(line)["completion"] for line in (tmp_path / name / "samples.jsonl").read_text().splitlines()]
        for name in ("vllm", "ours")))]
    assert sum(same) >= 3
