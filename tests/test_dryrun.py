"""`textbooks run RECIPE --dry-run`: the paper-scale recipes plan offline, and a small recipe's figures match a
computation by hand."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from textbooks.cli import main
from textbooks.pipeline.dryrun import plan_recipe, recorded_throughput
from textbooks.pipeline.recipe import load_recipe
from textbooks.quality import prompts

SMALL = """
stages:
  - stage: ingest
    source: dir
    path: {src}
    expect: {{rows: 1000, tokens_per_row: 50}}
  - stage: dedup
    expect: {{kept: 0.5}}
  - stage: annotate
    annotator: llm
    sample_size: 200
    max_chars: 1000
    llm:
      model: judge-model
      base_url: http://127.0.0.1:9/v1
      max_tokens: 10
      prices: {{judge-model: {{input: 1.0, output: 2.0}}}}
  - stage: tokenize
    input: dedup
  - stage: train
    model: tiny
    seq_len: 64
    batch_size: 4
    micro_batch_size: 4
    max_steps: 10
    expect: {{gpus: 2, tokens_per_s_per_gpu: 100}}
"""


@pytest.mark.parametrize("name", ["phi-1.yaml", "phi-1-small.yaml"])
def test_paper_scale_recipes_plan_offline_and_touch_nothing(repo_root, tmp_path, monkeypatch, capsys, name):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["run", str(repo_root / "recipes" / name), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "nothing read, written or sent" in printed and "GPU-hours of training" in printed
    assert "hub dataset bigcode/the-stack-dedup data/python (streamed)" in printed
    assert "LLM gpt-4o: 100,000 requests" in printed  # the paper's ~100k annotations
    assert os.listdir(tmp_path) == []  # no run folder, no cache
    plans = {plan.name: plan for plan in plan_recipe(load_recipe(repo_root / "recipes" / name))}
    base = next(plan for plan in plans.values() if plan.kind == "train" and plan.name.endswith("base"))
    assert base.tokens_seen == 24000 * 1024 * 2048  # the paper's phi-1-base: ~50B tokens
    assert base.gpu_hours is not None and base.gpu_hours > 0
    exercises = plans["exercises-raw"]  # 880k exercises, each asked at most 3 times
    assert exercises.llm[0].requests == 880_000
    assert "up to 3 attempts (at most 2,640,000 requests)" in " ".join(exercises.notes)


def test_small_recipe_figures_match_a_hand_computation(tmp_path):
    recipe = tmp_path / "small.yaml"
    recipe.write_text(SMALL.format(src=tmp_path))
    plans = {plan.name: plan for plan in plan_recipe(load_recipe(recipe))}
    assert (plans["ingest"].flow.rows, plans["ingest"].flow.tokens) == (1000, 50_000)
    assert (plans["dedup"].flow.rows, plans["dedup"].flow.tokens) == (500, 25_000)
    # Annotate: 200 requests of the judge's prompt around a 50-token (200-character) snippet, 10 output tokens
    # each, at $1 and $2 per million tokens.
    template = sum(len(message["content"]) for message in prompts.messages("", 1000))
    per_request = (template + 200 + 3) // 4
    [llm] = plans["annotate"].llm
    assert (llm.requests, llm.prompt_tokens, llm.max_output_tokens) == (200, 200 * per_request, 2000)
    assert llm.cost_usd == pytest.approx((200 * per_request * 1.0 + 2000 * 2.0) / 1e6)
    assert plans["tokenize"].flow.tokens == 25_000
    train = plans["train"]
    assert train.tokens_seen == 10 * 4 * 64
    assert train.gpu_hours == pytest.approx(2560 / 100 / 3600)


def test_dry_run_prints_the_figures_and_names_a_bad_expect_key(tmp_path, capsys):
    recipe = tmp_path / "small.yaml"
    recipe.write_text(SMALL.format(src=tmp_path))
    assert main(["run", str(recipe), "--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "makes dataset: 500 rows, 25,000 tokens" in printed
    assert "trains on 2,560 tokens; 0.4 GPU-minutes (0.2 minutes on 2 GPUs)" in printed
    assert "LLM judge-model: 200 requests" in printed
    recipe.write_text(SMALL.format(src=tmp_path).replace("kept: 0.5", "keep: 0.5"))
    assert main(["run", str(recipe), "--dry-run"]) == 2
    error = capsys.readouterr().err
    assert "small.yaml:8: stages[1] (dedup): expect" in error and "keep" in error


def test_recorded_throughput_reads_the_newest_figure_for_a_preset_and_length(tmp_path: Path):
    results = tmp_path / "RESULTS.md"
    results.write_text(
        "## Training speed (CPU)\n\n| 2026-01-01 | cpu | phi-1 | 2048 | bf16 | 5 | n/a |\n\n"
        "### GPU training throughput\n\n| date | machine | preset | seq | dtype | tokens/s per GPU | MFU |\n"
        "|---|---|---|---|---|---|---|\n"
        "| 2026-11-01 | H200 | phi-1 | 2048 | bf16 | 30,000 | 40% |\n"
        "| 2026-12-01 | H200 | phi-1 | 2048 | bf16 | 41,500 | 55% |\n"
        "| 2026-12-02 | H200 | phi-1-small | 2048 | bf16 | 150,000 | 52% |\n")
    assert recorded_throughput(results, "phi-1", 2048) == 41_500
    assert recorded_throughput(results, "phi-1", 1024) is None
    assert recorded_throughput(results, "tiny", 2048) is None


def test_until_stops_after_the_named_step(tmp_path, capsys):
    source = tmp_path / "src"
    source.mkdir()
    for index in range(3):
        body = "".join(f"    y{line} = x * {line} + {index}\n" for line in range(12))
        (source / f"m{index}.py").write_text(f'def f{index}(x):\n    """Add {index}."""\n{body}    return y0\n')
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"stages:\n  - stage: ingest\n    source: dir\n    path: {source}\n  - stage: dedup\n")
    out = tmp_path / "run"
    assert main(["run", str(recipe), "--out", str(out), "--until", "ingest"]) == 0
    assert (out / "ingest" / "_SUCCESS").is_file() and not (out / "dedup").exists()
    assert main(["run", str(recipe), "--out", str(out), "--until", "nope"]) == 2
    assert "no step of" in capsys.readouterr().err
