"""Training: the schedule, the data order, the checks made before any compute, learning on real code, the run
folder (log, checkpoints, best/), the recipe job, and finetuning a transformers model other than phi."""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import (
    TINY_MODEL,
    make_tokens,
    read_log,
    single_thread,  # noqa: F401  (autouse: torch on one thread)
    tiny_config,
)

from textbooks.errors import UserError
from textbooks.model import Phi, preset
from textbooks.model.config import PRESETS
from textbooks.model.io import load_model
from textbooks.pipeline.runner import run_step
from textbooks.store import data
from textbooks.tokens.folder import TokenData, open_tokens, write_token_folder
from textbooks.train.config import TrainConfig
from textbooks.train.data import TrainWindows, validation_batches
from textbooks.train.distributed import world_from_env
from textbooks.train.metrics import PEAK_FLOPS, peak_flops_for_name, peak_flops_per_second
from textbooks.train.plan import plan_run
from textbooks.train.schedule import learning_rate
from textbooks.train.step import TrainStep
from textbooks.train.trainer import Trainer, train

LOG_FIELDS = {"step", "loss", "lr", "grad_norm", "tokens_per_s", "mfu", "data_wait_s", "step_s", "peak_mem_bytes",
              "tokens_seen"}


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> TokenData:
    return make_tokens(tmp_path_factory.mktemp("train"))


def quiet(message: str) -> None:
    pass


def test_schedule_warms_up_then_decays_linearly_to_min_lr() -> None:
    rate = [learning_rate(step, peak=1e-3, warmup_steps=10, decay_steps=110, min_lr=1e-5) for step in range(120)]
    assert rate[0] == pytest.approx(1e-4) and rate[9] == pytest.approx(1e-3)  # warm-up endpoints
    assert max(rate) == pytest.approx(1e-3) and rate[10] == pytest.approx(1e-3)  # peak, where the decay starts
    assert rate[60] == pytest.approx(1e-5 + (1e-3 - 1e-5) / 2)  # half-way down
    assert np.all(np.diff(rate[10:111]) < 0)  # linear decay ...
    assert np.allclose(np.diff(rate[10:110]), np.diff(rate[10:110])[0])
    assert rate[110:] == [1e-5] * 10  # ... to min_lr, then held
    assert learning_rate(0, 1e-4, 0, 100) == 1e-4  # no warm-up: the peak at once


def test_phase_defaults_are_the_papers() -> None:
    pretrain, finetune = tiny_config(lr=None, batch_size=None, max_steps=None, warmup_steps=None).resolved(), \
        tiny_config(phase="finetune", lr=None, batch_size=None, max_steps=None, warmup_steps=None).resolved()
    assert (pretrain.lr, pretrain.warmup_steps, pretrain.weight_decay, pretrain.batch_size, pretrain.max_steps) == \
        (1e-3, 750, 0.1, 1024, 36000)
    assert (finetune.lr, finetune.warmup_steps, finetune.weight_decay, finetune.batch_size, finetune.max_steps) == \
        (1e-4, 50, 0.01, 256, 6000)
    assert tiny_config(max_steps=24000, decay_steps=36000).resolved().decay_steps == 36000


def test_peak_flops_table() -> None:
    assert peak_flops_for_name("NVIDIA H100 80GB HBM3", torch.bfloat16) == 989e12
    assert peak_flops_for_name("NVIDIA H100 PCIe", torch.bfloat16) == 756e12
    assert peak_flops_for_name("NVIDIA A100-SXM4-80GB", torch.float16) == 312e12
    assert peak_flops_for_name("NVIDIA A10G", torch.bfloat16) == 125e12
    assert peak_flops_for_name("NVIDIA L4", torch.bfloat16) == 121e12
    assert peak_flops_for_name("Tesla V100-SXM2-16GB", torch.float16) == 125e12
    assert peak_flops_for_name("Tesla V100-SXM2-16GB", torch.bfloat16) is None
    assert peak_flops_for_name("Some Future Accelerator", torch.bfloat16) is None
    assert peak_flops_per_second(torch.device("cpu"), torch.float32) is None


@pytest.mark.parametrize(("device_name", "bf16", "fp32"), [
    ("NVIDIA H200", 989e12, 67e12), ("NVIDIA H200 NVL", 835e12, 60e12), ("NVIDIA GH200 480GB", 989e12, 67e12),
    ("NVIDIA GH200 144G HBM3e", 989e12, 67e12), ("NVIDIA H100 80GB HBM3", 989e12, 67e12),
    ("NVIDIA H100 NVL", 835e12, 60e12), ("NVIDIA H100 PCIe", 756e12, 51e12), ("NVIDIA H800", 989e12, 67e12),
    ("NVIDIA H800 PCIe", 756e12, 51e12), ("NVIDIA A100-SXM4-80GB", 312e12, 19.5e12),
    ("NVIDIA A100 80GB PCIe", 312e12, 19.5e12), ("NVIDIA A10", 125e12, 31.2e12), ("NVIDIA L40S", 362e12, 91.6e12),
    ("NVIDIA L40", 181e12, 90.5e12), ("NVIDIA GeForce RTX 4090", 165.2e12, 82.6e12)])
def test_peak_flops_by_exact_device_name(device_name: str, bf16: float, fp32: float) -> None:
    """The most specific table name in the device name wins: an H200 NVL is not an H200 SXM, a GH200 is known."""
    assert peak_flops_for_name(device_name, torch.bfloat16) == bf16
    assert peak_flops_for_name(device_name, torch.float16) == bf16
    assert peak_flops_for_name(device_name, torch.float32) == fp32


def test_every_peak_table_name_reads_as_itself() -> None:
    """No shorter name shadows a longer one, whatever the table's order."""
    for name, peaks in PEAK_FLOPS.items():
        assert peak_flops_for_name(f"NVIDIA {name}", torch.bfloat16) == peaks["bf16"], name
        assert peak_flops_for_name(f"NVIDIA {name} 80GB", torch.float32) == peaks["fp32"], name


def test_windows_cover_every_window_once_per_epoch_and_ranks_split_each_batch() -> None:
    stream = np.arange(64 * 10 + 1)  # window w starts with token w * 64
    whole = TrainWindows(stream, seq_len=64, batch_size=4, micro_batch_size=2, seed=3)
    visited = [int(first) // 64 for _ in range(5) for inputs, _ in whole.next_batch() for first in inputs[:, 0]]
    assert sorted(visited[:10]) == sorted(visited[10:]) == list(range(10))  # 20 windows: two whole epochs
    assert visited[:10] != visited[10:] and (whole.position.epoch, whole.position.index) == (2, 0)
    ranks = [TrainWindows(stream, 64, 4, 2, seed=3, rank=rank, world_size=2) for rank in (0, 1)]
    single = TrainWindows(stream, 64, 4, 4, seed=3)
    for _ in range(4):
        (inputs, targets), = single.next_batch()
        shares = [rank.next_batch() for rank in ranks]
        assert torch.equal(inputs[0::2], shares[0][0][0]) and torch.equal(inputs[1::2], shares[1][0][0])
        assert torch.equal(inputs[:, 1:], targets[:, :-1])
    val = validation_batches(stream, 64, windows=5, micro_batch_size=2, rank=1, world_size=2)
    assert sum(len(x) for x, _ in val) == 2  # 5 rounded down to 4, half each


def test_validation_loss_does_not_depend_on_micro_batch_size(tokens: TokenData, tmp_path: Path) -> None:
    """The same weights score the same 24 windows to the same mean, cut into micro-batches of 4, 8 or 16."""
    ids = np.random.default_rng(0).integers(0, 500, size=64 * 40 + 1)
    small = write_token_folder(tmp_path / "tokens", {"train": ids, "val": ids}, tokens.tokenizer_dir)
    losses, scored = [], []
    for micro_batch_size in (4, 8, 16):
        config = tiny_config(batch_size=16, micro_batch_size=micro_batch_size, eval_windows=24)
        plan = plan_run(config, small.folder, tmp_path / f"run-{micro_batch_size}", world_from_env(), resume=False)
        trainer = Trainer(plan, quiet)
        scored.append([int(first) for inputs, _ in trainer.val_batches for first in inputs[:, 0]])
        losses.append(trainer.evaluate())
    assert len(scored[0]) == 24 and scored[0] == scored[1] == scored[2]
    assert max(losses) - min(losses) <= 1e-6, losses
    assert abs(losses[0] - math.log(512)) < 0.5  # a random model on random tokens: about log(vocab)


def _assert_refused_before_compute(config, tokens: Path, out: Path, *fragments: str) -> None:
    started = time.perf_counter()
    with pytest.raises(UserError) as raised:
        train(config, tokens, out, say=quiet)
    assert time.perf_counter() - started < 5
    assert not out.exists()  # nothing was made: no model, no folder
    for fragment in fragments:
        assert fragment in str(raised.value)


def test_bad_settings_are_refused_before_any_compute(tokens: TokenData, tmp_path: Path) -> None:
    folder, out = tokens.folder, tmp_path / "out"
    _assert_refused_before_compute(tiny_config(batch_size=10, micro_batch_size=4), folder, out,
                                   "batch_size 10", "micro_batch_size 4", "--batch-size 8 or 12")
    _assert_refused_before_compute(tiny_config(model="phi-7"), folder, out, "unknown model preset 'phi-7'")
    _assert_refused_before_compute(tiny_config(vocab_size=256), folder, out, "512 entries", "256 embedding rows",
                                   "--vocab-size 512")
    _assert_refused_before_compute(tiny_config(seq_len=2048), folder, out, "max_position_embeddings 1024")
    _assert_refused_before_compute(tiny_config(model_overrides={**TINY_MODEL, "vocab_size": 600}), folder, out,
                                   "--vocab-size")
    _assert_refused_before_compute(tiny_config(fsdp=True), folder, out, "torchrun")
    _assert_refused_before_compute(tiny_config(precision="fp16"), folder, out, "CUDA")
    small = write_token_folder(tmp_path / "small", {"train": np.arange(100) % 500, "val": np.arange(40) % 500},
                               tokens.tokenizer_dir)
    _assert_refused_before_compute(tiny_config(), small.folder, out, "val split has 40 tokens", "seq_len 64")
    _assert_refused_before_compute(tiny_config(seq_len=128, model_overrides={**TINY_MODEL}), small.folder, out,
                                   "train split has 100 tokens")


def test_a_paper_model_with_the_papers_batch_is_not_a_cpu_default(tokens: TokenData, tmp_path: Path) -> None:
    folder, out = tokens.folder, tmp_path / "out"
    _assert_refused_before_compute(TrainConfig(device="cpu"), folder, out, "--device cpu", "--model phi-1",
                                   "pretrain batch of 1024 x 2048 tokens", "1.8e+16 FLOPs", "--batch-size",
                                   "--model tiny")
    _assert_refused_before_compute(TrainConfig(phase="finetune", model="phi-1-small", device="cpu"), folder, out,
                                   "finetune batch of 256 x 2048", "--batch-size")
    for explicit in (TrainConfig(device="cpu", batch_size=1024), TrainConfig(device="cpu", batch_size=8),
                     TrainConfig(model="tiny", seq_len=1024, device="cpu")):  # taken as they are; none is built
        plan = plan_run(explicit, folder, out, world_from_env(), resume=False)
        assert plan.hp.batch_size == (explicit.batch_size or 1024) and plan.device.type == "cpu"


@pytest.mark.skipif(torch.cuda.is_available(), reason="the default device is a GPU on this machine")
def test_without_a_gpu_the_default_settings_ask_for_a_batch_size(tokens: TokenData, tmp_path: Path) -> None:
    _assert_refused_before_compute(TrainConfig(), tokens.folder, tmp_path / "out", "no CUDA device here",
                                   "--model phi-1", "--batch-size")


def test_every_train_setting_has_help_and_model_lists_the_presets(monkeypatch: pytest.MonkeyPatch) -> None:
    from textbooks.cli import step_parser

    assert [name for name, field in TrainConfig.model_fields.items() if not field.description] == []
    monkeypatch.setenv("COLUMNS", "1000")  # one line per flag
    (model_help,) = [line for line in step_parser("train")[0].format_help().splitlines()
                     if line.strip().startswith("--model str")]
    assert "one of: phi-1, phi-1-small, tiny, small" in model_help and list(PRESETS) == [
        "phi-1", "phi-1-small", "tiny", "small"]


def test_optimizer_decays_only_matrices() -> None:
    from textbooks.train.trainer import make_optimizer

    model = Phi(preset("tiny", vocab_size=128, **TINY_MODEL))
    plan = type("PlanLike", (), {"hp": tiny_config().resolved(), "config": tiny_config(),
                                 "device": torch.device("cpu")})()
    decayed, plain = make_optimizer(model, plan).param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(p.ndim == 2 for p in decayed["params"]) and all(p.ndim == 1 for p in plain["params"])
    assert len(decayed["params"]) + len(plain["params"]) == len(list(model.parameters()))


def test_activation_checkpointing_keeps_losses_gradients_and_names_and_frees_activations() -> None:
    from textbooks.train.distributed import World, parallelize

    def one_step(checkpointed: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor], list[str], int]:
        torch.manual_seed(0)
        model = Phi(preset("tiny", vocab_size=128, **TINY_MODEL)).train()  # dropout 0.1 on
        parallelize(model, compile=False, fsdp=False, world=World(), device=torch.device("cpu"),
                    activation_checkpointing=checkpointed)
        ids = torch.randint(0, 128, (2, 33))
        kept: list[int] = []  # bytes autograd keeps for the backward pass outside checkpointed blocks

        def keep(tensor: torch.Tensor) -> torch.Tensor:
            kept.append(tensor.nbytes)
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(keep, lambda tensor: tensor):
            _, loss = model(ids[:, :-1], ids[:, 1:])
        loss.backward()
        grads = {name: parameter.grad for name, parameter in model.named_parameters()}
        return loss.detach(), grads, list(model.state_dict()), sum(kept)

    plain, checkpointed = one_step(False), one_step(True)
    assert torch.equal(plain[0], checkpointed[0])  # the recomputation replays the same dropout masks
    assert plain[1].keys() == checkpointed[1].keys()
    assert all(torch.equal(plain[1][name], checkpointed[1][name]) for name in plain[1])
    assert plain[2] == checkpointed[2]  # the same state dict names: checkpoints and export need no renaming
    assert checkpointed[3] < plain[3] / 2


def test_tiny_model_learns_code_and_the_run_folder_is_complete(tokens: TokenData, tmp_path: Path) -> None:
    out = tmp_path / "run"
    summary = train(tiny_config(max_steps=150, checkpoint_every=50, eval_every=25, keep_checkpoints=2),
                    tokens.folder, out, say=quiet)

    steps, vals = read_log(out)
    assert [line["step"] for line in steps] == list(range(1, 151))
    assert all(set(line) == LOG_FIELDS for line in steps)
    assert all(line["mfu"] is None and line["peak_mem_bytes"] > 0 and line["tokens_per_s"] > 0 for line in steps)
    assert steps[-1]["tokens_seen"] == 150 * 8 * 64
    assert [line["step"] for line in vals] == [25, 50, 75, 100, 125, 150]
    best = min(vals, key=lambda line: line["val_loss"])
    assert best["val_loss"] < tokens.val_unigram_entropy  # more learnt than token frequencies
    assert summary["best_val_loss"] == best["val_loss"] and summary["best_step"] == best["step"]
    assert data.read_json(out / "best" / "trainer.json") == {"step": best["step"], "val_loss": best["val_loss"]}
    assert json.loads((out / "summary.json").read_text()) == summary
    assert sorted(path.name for path in (out / "checkpoints").iterdir()) == ["step-0000100", "step-0000150"]
    assert (out / "checkpoints" / "step-0000150" / "_COMPLETE").is_file()
    assert (out / "best" / "tokenizer" / "tokenizer.json").is_file()
    model = load_model(out / "best")
    assert model.config.vocab_size == 512 and model.config.num_hidden_layers == 2

    finetuned = tmp_path / "finetune"  # the paper's second stage, from the run folder (its best/)
    train(tiny_config(phase="finetune", init=str(out), model_overrides={"resid_pdrop": 0.0}, max_steps=4,
                      checkpoint_every=4), tokens.folder, finetuned, say=quiet)
    after = load_model(finetuned / "checkpoints" / "step-0000004")
    assert after.config.resid_pdrop == 0.0 and after.config.hidden_size == 128
    assert read_log(finetuned)[0][0]["loss"] < steps[0]["loss"]  # it started from the trained weights


def test_train_job_resumes_in_a_recipe_and_skips_when_finished(tokens: TokenData, tmp_path: Path) -> None:
    out, messages = tmp_path / "train", []
    job = TrainStep(tiny_config(max_steps=4, checkpoint_every=2), input=str(tokens.folder))
    stats = run_step(job, out, say=messages.append, run_folder=tmp_path).stats
    assert stats["final_step"] == 4 and stats["val_unigram_entropy"] == tokens.val_unigram_entropy
    assert data.is_complete(out)
    run_step(job, out, say=messages.append, run_folder=tmp_path)
    assert "done earlier" in messages[-1]
    plain = TrainStep(tiny_config(max_steps=4, checkpoint_every=2, lr=1e-3), input=str(tokens.folder))
    with pytest.raises(UserError, match="pass --resume"):
        run_step(plain, out, say=quiet)


def test_finetuning_a_transformers_causal_lm(tokens: TokenData, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel

    base = tmp_path / "gpt2"
    torch.manual_seed(0)
    GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=2, n_positions=128, vocab_size=tokens.vocab_size,
                               bos_token_id=tokens.eos_id, eos_token_id=tokens.eos_id)).save_pretrained(base)
    for item in tokens.tokenizer_dir.iterdir():
        shutil.copy2(item, base / item.name)
    out = tmp_path / "finetune"
    with pytest.raises(UserError, match="checkpoint_format sharded writes textbooks' phi models"):
        train(tiny_config(phase="finetune", init=f"hf:{base}", model_overrides={}, checkpoint_format="sharded"),
              tokens.folder, out, say=quiet)
    train(tiny_config(phase="finetune", init=f"hf:{base}", model_overrides={}, max_steps=12, warmup_steps=2,
                      eval_every=4, checkpoint_every=12), tokens.folder, out, say=quiet)

    steps, vals = read_log(out)
    assert vals[-1]["val_loss"] < vals[0]["val_loss"] and steps[-1]["loss"] < steps[0]["loss"]
    folder = out / "checkpoints" / "step-0000012"
    model = AutoModelForCausalLM.from_pretrained(folder)
    ids = AutoTokenizer.from_pretrained(folder)("def f(x):\n    return x\n", return_tensors="pt").input_ids
    assert torch.isfinite(model(ids).logits).all()
    assert math.isclose(data.read_json(out / "best" / "trainer.json")["val_loss"], min(v["val_loss"] for v in vals))
    assert open_tokens(tokens.folder).vocab_size == model.config.vocab_size


def test_finetuning_a_transformers_phi_model_converts_it_to_ours(tokens: TokenData, tmp_path: Path) -> None:
    from textbooks.model.hf import export_hf

    torch.manual_seed(0)
    base = export_hf(Phi(preset("tiny", vocab_size=512, **TINY_MODEL)), tmp_path / "phi-hf", tokens.tokenizer_dir)
    out = tmp_path / "finetune"
    train(tiny_config(phase="finetune", init=f"hf:{base}", model_overrides={"attention_dropout": 0.0}, max_steps=2,
                      checkpoint_every=2), tokens.folder, out, say=quiet)
    model = load_model(out / "checkpoints" / "step-0000002")  # our model folder, not a transformers one
    assert model.config.attention_dropout == 0.0 and model.config.num_hidden_layers == 2
