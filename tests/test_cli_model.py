"""The model commands through `textbooks.cli.main`: export-hf / import-hf round trip, and train's refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from textbooks.cli import main
from textbooks.model import Phi, preset
from textbooks.model.io import load_model, save_model
from textbooks.tokens.folder import write_token_folder
from textbooks.tokens.tokenizer import train_tokenizer

SNIPPETS = [f"def f{i}(x):\n    return x * {i} + {i % 7}\n" for i in range(200)]


@pytest.fixture(scope="module")
def tokens(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tokens")
    tokenizer_dir = train_tokenizer(SNIPPETS, 300, root / "bpe")
    from textbooks.tokens.tokenizer import eos_id, load_tokenizer

    tokenizer = load_tokenizer(str(tokenizer_dir))
    stream = np.concatenate([np.array(tokenizer.encode(text) + [eos_id(tokenizer)]) for text in SNIPPETS])
    return write_token_folder(root / "tokens", {"train": stream[:-400], "val": stream[-400:]}, tokenizer).folder


def test_export_then_import_keeps_the_logits(tmp_path, tokens):
    model = Phi(preset("tiny", vocab_size=320, num_hidden_layers=2)).eval()
    save_model(model, tmp_path / "ours", tokens / "tokenizer")
    assert main(["export-hf", str(tmp_path / "ours"), str(tmp_path / "hf")]) == 0
    assert main(["import-hf", str(tmp_path / "hf"), "--out", str(tmp_path / "back")]) == 0
    ids = torch.randint(0, 320, (2, 24))
    torch.testing.assert_close(load_model(tmp_path / "back").eval()(ids), model(ids), rtol=0, atol=0)
    assert (tmp_path / "back" / "tokenizer" / "tokenizer.json").is_file()


def train_error(tmp_path: Path, tokens: Path, capsys, *flags: str) -> str:
    out = tmp_path / "run"
    assert main(["train", "--input", str(tokens), "--out", str(out), "--seq-len", "16", *flags]) == 2
    assert not (out / "checkpoints").exists()
    return capsys.readouterr().err


def test_train_refuses_bad_settings_before_any_compute(tmp_path, tokens, capsys):
    error = train_error(tmp_path, tokens, capsys, "--model", "tiny", "--batch-size", "10", "--micro-batch-size", "4")
    assert "batch_size 10" in error and "micro_batch_size 4" in error
    error = train_error(tmp_path, tokens, capsys, "--model", "huge")
    assert "unknown model preset 'huge'" in error and "phi-1-small" in error
    error = train_error(tmp_path, tokens, capsys, "--model", "tiny", "--vocab-size", "64", "--batch-size", "8",
                        "--micro-batch-size", "8")
    assert "vocab" in error and "64" in error
    error = train_error(tmp_path, tokens, capsys, "--model", "tiny", "--model-overrides", "num_hidden_layers")
    assert "KEY=VALUE" in error


def test_train_flags_reach_the_model(tmp_path, tokens):
    out = tmp_path / "run"
    flags = ["--model", "tiny", "--model-overrides", "num_hidden_layers=1", "hidden_size=64",
             "num_attention_heads=1", "intermediate_size=128", "--seq-len", "16", "--batch-size", "4",
             "--micro-batch-size", "4", "--max-steps", "3", "--eval-every", "3", "--eval-windows", "4",
             "--betas", "0.9", "0.99", "--device", "cpu"]
    assert main(["train", "--input", str(tokens), "--out", str(out), *flags]) == 0
    model = load_model(out / "best")
    assert model.config.num_hidden_layers == 1 and model.config.hidden_size == 64
    assert model.config.vocab_size == 320  # the tokenizer's 300 entries rounded up to a multiple of 64
    assert main(["train", "--input", str(tokens), "--out", str(out), *flags]) == 0  # done earlier: skipped
