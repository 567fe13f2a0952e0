"""transformers interop on a tiny config with phi-1's head shape (64 dims, 32 rotary): fp32 logits agree both
ways, greedy generation agrees for 20 tokens, the tokenizer survives export, and what we cannot represent is
refused by name."""

from __future__ import annotations

import json
from pathlib import Path

import huggingface_hub.constants
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel, PhiConfig, PhiForCausalLM, PreTrainedTokenizerFast

from textbooks.errors import UserError
from textbooks.model import (
    ModelConfig,
    Phi,
    export_checkpoint,
    export_hf,
    from_hf_config,
    generate,
    import_hf,
    import_to_folder,
    load_model,
    save_model,
    to_hf_config,
)

VOCAB = 1000
SHAPE = {"vocab_size": VOCAB, "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2,
         "num_attention_heads": 4, "max_position_embeddings": 128}
TEXTS = ["def add(a, b):\n    return a + b\n", "for i in range(10):\n\tprint(i)\n", "class Point:\n    x: int = 0\n"]


def our_model(seed: int = 0) -> Phi:
    """Random weights with a wide init (distinct logits, so greedy choices are not near-ties) and a non-default
    rotary base, which must reach transformers' rope_parameters."""
    torch.manual_seed(seed)
    return Phi(ModelConfig(**SHAPE, rope_theta=20000.0, initializer_range=0.1)).eval()


def ids(batch: int = 2, length: int = 16) -> torch.Tensor:
    return torch.randint(0, VOCAB, (batch, length), generator=torch.Generator().manual_seed(7))


def small_tokenizer(folder: Path) -> Path:
    """A byte-level BPE with <|endoftext|>, saved as transformers saves a fast tokenizer."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(TEXTS * 20, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|endoftext|>", bos_token="<|endoftext|>")
    fast.save_pretrained(str(folder))
    return folder


def load_hf(folder: Path) -> PhiForCausalLM:
    model, info = PhiForCausalLM.from_pretrained(str(folder), dtype=torch.float32, output_loading_info=True)
    assert not any(info[kind] for kind in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    return model.eval()


def test_export_loads_in_transformers_with_the_same_logits(tmp_path: Path) -> None:
    ours = our_model()
    out = export_hf(ours, tmp_path / "hf")
    assert {"config.json", "generation_config.json", "model.safetensors"} <= {p.name for p in out.iterdir()}
    config = json.loads((out / "config.json").read_text())
    assert config["rope_parameters"] == {"rope_type": "default", "rope_theta": 20000.0, "partial_rotary_factor": 0.5}
    assert (config["hidden_act"], config["tie_word_embeddings"], config["model_type"]) == ("gelu_new", False, "phi")
    theirs = load_hf(out)
    with torch.no_grad():
        torch.testing.assert_close(theirs(ids()).logits, ours(ids()))


def test_import_of_a_transformers_model_gives_the_same_logits(tmp_path: Path) -> None:
    torch.manual_seed(1)
    hf_config = PhiConfig(**SHAPE, partial_rotary_factor=0.5, rope_theta=5000.0, hidden_act="gelu_new",
                          initializer_range=0.1)
    theirs = PhiForCausalLM(hf_config).eval()
    theirs.save_pretrained(str(tmp_path / "hf"))
    ours, tokenizer_dir = import_hf(str(tmp_path / "hf"))
    assert tokenizer_dir is None
    assert next(ours.parameters()).dtype == torch.float32
    assert ours.config.rope_theta == 5000.0 and ours.config.rotary_dim == 32
    with torch.no_grad():
        torch.testing.assert_close(ours(ids()), theirs(ids()).logits)


def test_greedy_generation_matches_transformers_for_20_tokens(tmp_path: Path) -> None:
    ours = our_model(seed=2)
    theirs = load_hf(export_hf(ours, tmp_path / "hf"))
    prompt = ids(length=6)
    expected = theirs.generate(prompt, attention_mask=torch.ones_like(prompt), do_sample=False, max_new_tokens=20,
                               pad_token_id=0)[:, prompt.shape[1]:]
    got = generate(ours, prompt, max_new_tokens=20)
    assert got.shape == (2, 20)
    assert torch.equal(got, expected)


def test_tokenizer_survives_export_and_import(tmp_path: Path) -> None:
    tokenizer_dir = small_tokenizer(tmp_path / "tok")
    original = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    ours = our_model()
    run = tmp_path / "run"
    save_model(ours, run / "best", tokenizer_dir)
    out = export_checkpoint(run, tmp_path / "hf")
    exported = AutoTokenizer.from_pretrained(str(out))
    for text in TEXTS + ["x = 1  # not seen in training\n"]:
        assert exported(text)["input_ids"] == original(text)["input_ids"]
    config = json.loads((out / "config.json").read_text())
    assert config["eos_token_id"] == original.eos_token_id == config["bos_token_id"]

    back = import_to_folder(str(out), tmp_path / "ours")
    assert {p.name for p in (back / "tokenizer").iterdir()} >= {"tokenizer.json"}
    assert not (back / "tokenizer" / "model.safetensors").exists()
    again = AutoTokenizer.from_pretrained(str(back / "tokenizer"))
    assert again(TEXTS[0])["input_ids"] == original(TEXTS[0])["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(load_model(back)(ids()), ours(ids()))


def test_a_tokenizer_larger_than_the_embedding_is_refused(tmp_path: Path) -> None:
    tokenizer_dir = small_tokenizer(tmp_path / "tok")
    torch.manual_seed(0)
    model = Phi(ModelConfig(**{**SHAPE, "vocab_size": 64}))
    with pytest.raises(UserError, match="embedding rows"):
        export_hf(model, tmp_path / "hf", tokenizer_dir)


def test_a_non_phi_model_is_refused_by_its_model_type(tmp_path: Path) -> None:
    GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=32, n_head=2, vocab_size=100)).save_pretrained(str(tmp_path / "g"))
    with pytest.raises(UserError, match="model_type 'gpt2'"):
        import_hf(str(tmp_path / "g"))


def test_a_missing_path_or_unreachable_name_is_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UserError, match="not a model folder"):
        import_hf(str(tmp_path / "missing"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # as HF_HUB_OFFLINE=1 would
    with pytest.raises(UserError, match="go online"):
        import_hf("textbooks-tests/no-such-model")


@pytest.mark.parametrize(("field", "value"), [
    ("qk_layernorm", True),
    ("num_key_value_heads", 2),
    ("rope_parameters", {"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0, "partial_rotary_factor": 0.5}),
    ("tie_word_embeddings", True),
    ("hidden_act", "relu"),
])
def test_what_our_model_cannot_compute_is_refused_by_name(field: str, value: object) -> None:
    hf_config = PhiConfig(**SHAPE, **{field: value})
    with pytest.raises(UserError, match=field):
        from_hf_config(hf_config)


def test_config_round_trip() -> None:
    config = ModelConfig(**SHAPE, partial_rotary_factor=0.25, rope_theta=500.0, attention_dropout=0.0)
    assert from_hf_config(to_hf_config(config)) == config
    assert from_hf_config(PhiConfig(**SHAPE, hidden_act="gelu_pytorch_tanh")).vocab_size == VOCAB
