"""The model on its own: parameter counts of the paper's sizes, config errors, the KV cache, dropout, the loss,
generation, and our model folder (save, load, which folder a run path names, damaged folders)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from textbooks.errors import UserError
from textbooks.model import PRESETS, ModelConfig, Phi, generate, preset
from textbooks.model.io import (
    COMPLETE,
    load_model,
    load_model_config,
    resolve_model_folder,
    save_model,
    tokenizer_folder,
)
from textbooks.model.phi import cross_entropy, dropout, param_count_without_allocation

VOCAB = 300


def small_model(seed: int = 0, **overrides) -> Phi:
    """A 2-layer model with phi-1's head shape (64 dims, 32 rotary) and a wide init, so logits are distinct."""
    torch.manual_seed(seed)
    settings = {"vocab_size": VOCAB, "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
                "num_attention_heads": 2, "initializer_range": 0.2, **overrides}
    return Phi(ModelConfig(**settings)).eval()


def prompt(batch: int = 2, length: int = 7, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize(("name", "count"), [("phi-1", 1_418_270_720), ("phi-1-small", 356_794_368)])
def test_paper_sizes_have_the_exact_parameter_counts(name: str, count: int) -> None:
    config = preset(name)
    assert config.num_parameters() == count
    assert param_count_without_allocation(config) == count


def test_unknown_preset_lists_the_presets() -> None:
    with pytest.raises(UserError) as error:
        preset("phi-9")
    assert all(name in str(error.value) for name in PRESETS)


def test_heads_must_divide_the_width() -> None:
    with pytest.raises(UserError, match="not divisible by num_attention_heads"):
        preset("tiny", vocab_size=512, num_attention_heads=3)


def test_cached_incremental_logits_equal_the_full_forward() -> None:
    model = small_model()
    ids = prompt(length=12)
    full = model(ids)
    logits, cache = model(ids[:, :5], return_cache=True)
    steps = [logits]
    for position in range(5, 12):
        logits, cache = model(ids[:, position:position + 1], cache=cache, return_cache=True)
        steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), full)
    two_at_once, _ = model(ids[:, 10:12], cache=[(k[:, :, :10], v[:, :, :10]) for k, v in cache], return_cache=True)
    torch.testing.assert_close(two_at_once, full[:, 10:12])


def test_dropout_acts_only_in_train_mode() -> None:
    model = small_model(attention_dropout=0.1, resid_pdrop=0.1, embd_pdrop=0.1)
    ids = prompt()
    torch.testing.assert_close(model(ids), model(ids), rtol=0, atol=0)
    model.train()
    assert not torch.allclose(model(ids), model(ids))


def test_training_path_equals_the_eval_path_when_nothing_is_dropped() -> None:
    """The CPU training attention (blocks of queries, baddbmm) and loss against SDPA and F.cross_entropy: with a
    dropout too small to ever fire, train-mode logits, loss and gradients equal eval mode's."""
    model = small_model(attention_dropout=1e-12, resid_pdrop=0.0)
    ids = prompt(length=300)  # three query blocks, the last one partial
    targets = prompt(length=300, seed=2)
    eval_logits, eval_loss = model(ids, targets)
    eval_grads = torch.autograd.grad(eval_loss, list(model.parameters()))
    model.train()
    train_logits, train_loss = model(ids, targets)
    train_grads = torch.autograd.grad(train_loss, list(model.parameters()))
    torch.testing.assert_close(train_logits, eval_logits)
    torch.testing.assert_close(train_loss, F.cross_entropy(eval_logits.view(-1, VOCAB), targets.view(-1)))
    for train_grad, eval_grad in zip(train_grads, eval_grads):
        torch.testing.assert_close(train_grad, eval_grad)


def test_cpu_dropout_keeps_the_right_share_and_scales() -> None:
    x = torch.ones(400, 500, requires_grad=True)
    y = dropout(x, 0.25, training=True)
    assert set(y.unique().tolist()) <= {0.0, torch.tensor(1 / 0.75).item()}  # as F.dropout scales
    assert abs((y > 0).float().mean().item() - 0.75) < 0.01
    y.sum().backward()
    torch.testing.assert_close(x.grad, y.detach())
    assert dropout(x, 0.25, training=False) is x


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_loss_and_its_gradient_equal_torch_cross_entropy(dtype: torch.dtype) -> None:
    torch.manual_seed(0)
    logits = torch.randn(3, 90, VOCAB, dtype=dtype, requires_grad=True)  # more rows than one CPU chunk
    targets = torch.randint(0, VOCAB, (3, 90))
    targets[:, -1] = -100
    expected = F.cross_entropy(logits.float().view(-1, VOCAB), targets.view(-1), ignore_index=-100)
    loss = cross_entropy(logits, targets)
    torch.testing.assert_close(loss, expected)
    (want,) = torch.autograd.grad(expected * -3.0, logits)  # any upstream gradient, negative included
    (got,) = torch.autograd.grad(cross_entropy(logits, targets) * -3.0, logits)
    assert got.dtype == dtype
    torch.testing.assert_close(got, want)


def test_greedy_generation_is_deterministic_and_matches_argmax_decoding() -> None:
    model = small_model()
    ids = prompt()
    first = generate(model, ids, max_new_tokens=10)
    assert first.shape == (2, 10)
    assert torch.equal(first, generate(model, ids, max_new_tokens=10))
    sequence = ids
    for _ in range(10):  # no cache: the whole sequence each time
        sequence = torch.cat((sequence, model(sequence)[:, -1].argmax(-1, keepdim=True)), dim=1)
    assert torch.equal(first, sequence[:, ids.shape[1]:])


def test_generation_stops_at_eos_and_pads_finished_rows_with_it() -> None:
    model = small_model()
    ids = prompt()
    free = generate(model, ids, max_new_tokens=8)
    step = next(step for step in range(2, 8) if free[0, step] not in free[0, :step])
    eos = int(free[0, step])  # row 0 first produces it at `step`; row 1 may or may not
    stopped = generate(model, ids, max_new_tokens=8, eos_id=eos)
    assert torch.equal(stopped[0, :step + 1], free[0, :step + 1])
    assert (stopped[0, step:] == eos).all()
    assert stopped.shape[1] == 8 or bool((stopped == eos).any(dim=1).all())
    assert generate(model, ids[:1], max_new_tokens=8, eos_id=eos).shape == (1, step + 1)  # all done: stop


def test_sampling_follows_the_generator_and_top_p_one_token_is_greedy() -> None:
    model = small_model()
    ids = prompt()

    def sample(seed: int, **settings) -> torch.Tensor:
        return generate(model, ids, 12, generator=torch.Generator().manual_seed(seed), **settings)

    assert torch.equal(sample(3, temperature=1.0), sample(3, temperature=1.0))
    assert not torch.equal(sample(3, temperature=5.0), sample(4, temperature=5.0))
    assert torch.equal(sample(5, temperature=1.0, top_p=1e-6), generate(model, ids, 12))


def test_generate_restores_train_mode() -> None:
    model = small_model().train()
    generate(model, prompt(), 2)
    assert model.training


def test_save_and_load_give_identical_logits(tmp_path: Path) -> None:
    model = small_model()
    tokenizer = tmp_path / "tok"
    tokenizer.mkdir()
    (tokenizer / "tokenizer.json").write_text("{}")
    save_model(model, tmp_path / "m", tokenizer_dir=tokenizer)
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["format"] == "textbooks-phi" and meta["version"] == 1
    assert load_model_config(tmp_path / "m") == model.config
    loaded = load_model(tmp_path / "m")
    ids = prompt()
    torch.testing.assert_close(loaded(ids), model(ids), rtol=0, atol=0)
    assert tokenizer_folder(tmp_path / "m") == tmp_path / "m" / "tokenizer"
    assert (tmp_path / "m" / "tokenizer" / "tokenizer.json").read_text() == "{}"
    assert load_model(tmp_path / "m", dtype=torch.bfloat16).lm_head.weight.dtype == torch.bfloat16
    assert not list((tmp_path / "m").glob(".*tmp"))


def test_resolve_model_folder_picks_best_then_the_latest_complete_checkpoint(tmp_path: Path) -> None:
    model = small_model()
    run = tmp_path / "run"
    for step, complete in ((100, True), (200, True), (300, False)):
        folder = run / "checkpoints" / f"step-{step:07d}"
        save_model(model, folder)
        if complete:
            (folder / COMPLETE).write_text("{}")
    assert resolve_model_folder(run) == run / "checkpoints" / "step-0000200"
    save_model(model, run / "best")
    assert resolve_model_folder(run) == run / "best"
    assert resolve_model_folder(run / "checkpoints" / "step-0000300") == run / "checkpoints" / "step-0000300"
    assert tokenizer_folder(run / "best") is None
    with pytest.raises(UserError, match="no model in"):
        resolve_model_folder(run / "checkpoints")
    with pytest.raises(UserError, match="does not exist"):
        resolve_model_folder(tmp_path / "missing")


@pytest.mark.parametrize("damage", ["weights", "json", "config", "missing weights", "no model.json"])
def test_a_damaged_folder_is_a_user_error(tmp_path: Path, damage: str) -> None:
    folder = tmp_path / "m"
    save_model(small_model(), folder)
    if damage == "weights":
        (folder / "model.safetensors").write_bytes(b"not safetensors")
    elif damage == "json":
        (folder / "model.json").write_text("{")
    elif damage == "config":
        meta = json.loads((folder / "model.json").read_text())
        meta["config"]["hidden_size"] = 100  # no longer divisible by the heads
        (folder / "model.json").write_text(json.dumps(meta))
    elif damage == "missing weights":
        (folder / "model.safetensors").unlink()
    else:
        (folder / "model.json").unlink()
    with pytest.raises(UserError, match=str(folder)):
        load_model(folder)


def test_weights_that_do_not_fit_the_config_are_a_user_error(tmp_path: Path) -> None:
    save_model(small_model(), tmp_path / "a")
    save_model(small_model(num_hidden_layers=1), tmp_path / "b")
    (tmp_path / "b" / "model.safetensors").replace(tmp_path / "a" / "model.safetensors")
    with pytest.raises(UserError, match="does not match the config"):
        load_model(tmp_path / "a")
