"""The model embedders: a tiny randomly initialised causal LM the test saves with its own tokenizer (so no
download), embedded by the step and by a plain transformers loop; sentence-transformers when installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from quality_snippets import BOILERPLATE, EDUCATIONAL
from test_quality import refused, run, write_dataset

from textbooks.quality.classify import ClassifyConfig, ClassifyStage
from textbooks.quality.config import EmbedConfig
from textbooks.quality.embed import EmbedStage
from textbooks.quality.vectors import META, as_matrix
from textbooks.store import data
from textbooks.tokens.tokenizer import train_tokenizer

TEXTS = EDUCATIONAL[:10] + BOILERPLATE[:10] + ["", "x = 1"]


def save_tiny_causal_lm(folder: Path, hidden: int = 32, positions: int = 256) -> Path:
    """A 2-layer GPT-2 with random weights and a byte-level BPE trained on the snippets, as save_pretrained
    writes them."""
    from transformers import GPT2Config, GPT2LMHeadModel

    train_tokenizer(EDUCATIONAL + BOILERPLATE, vocab_size=400, out_dir=folder)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=400, n_positions=positions, n_embd=hidden, n_layer=2, n_head=2, bos_token_id=0,
                        eos_token_id=0)
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return save_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"))


def plain_mean_hidden(model_folder: Path, texts: list[str], max_tokens: int) -> np.ndarray:
    """One text at a time, no padding: the mean of the last hidden state, as anyone would write it."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_folder)
    model = AutoModel.from_pretrained(model_folder).eval()
    rows = []
    with torch.inference_mode():
        for text in texts:
            ids = tokenizer(text or tokenizer.eos_token, truncation=True, max_length=max_tokens,
                            return_tensors="pt")["input_ids"]
            rows.append(model(input_ids=ids).last_hidden_state[0].mean(dim=0).numpy())
    return np.stack(rows)


def test_causal_lm_embeddings_are_the_mean_hidden_state_whatever_the_batch(tiny_model, tmp_path: Path) -> None:
    rows = [{"id": f"row-{index}", "text": text, "source": "test"} for index, text in enumerate(TEXTS)]
    corpus = write_dataset(tmp_path / "corpus", rows)
    out = run(EmbedStage(EmbedConfig(embedder="causal-lm", model=str(tiny_model), batch_size=4, max_tokens=64),
                         str(corpus)), tmp_path / "embed")
    meta = data.read_json(out / META)
    assert (meta["embedder"], meta["model"], meta["dimension"], meta["max_tokens"]) == (
        "causal-lm", str(tiny_model), 32, 64)
    table = data.read_dataset(out)
    by_id = dict(zip(table["id"].to_pylist(), as_matrix(table["embedding"], 32)))
    made = np.stack([by_id[row["id"]] for row in rows])
    expected = plain_mean_hidden(tiny_model, TEXTS, 64)
    assert np.allclose(made, expected.astype(np.float16).astype(np.float32), atol=2e-3), np.abs(made - expected).max()
    assert not np.allclose(made[0], made[1])


def test_a_classifier_fitted_on_hashing_refuses_causal_lm_embeddings(tiny_model, tmp_path: Path, capsys) -> None:
    rows = [{"id": f"edu-{index}", "text": text, "source": "test"} for index, text in enumerate(EDUCATIONAL[:8])]
    rows += [{"id": f"boiler-{index}", "text": text, "source": "test"} for index, text in enumerate(BOILERPLATE[:8])]
    corpus = write_dataset(tmp_path / "corpus", rows)
    labels = write_dataset(tmp_path / "labels", [{**row, "edu_label": 5.0 if row["id"].startswith("edu") else 0.0,
                                                  "edu_reason": "test"} for row in rows])
    hashing = run(EmbedStage(EmbedConfig(), str(corpus)), tmp_path / "hashing")
    fitted = run(ClassifyStage(ClassifyConfig(labels=str(labels), embeddings=str(hashing), trees=20),
                               str(corpus)), tmp_path / "fitted")
    lm = run(EmbedStage(EmbedConfig(embedder="causal-lm", model=str(tiny_model)), str(corpus)), tmp_path / "lm")
    capsys.readouterr()  # what loading the model printed
    error = refused(capsys, ["classify", "--input", str(corpus), "--embeddings", str(lm), "--model", str(fitted)],
                    tmp_path / "refused")
    assert "fitted on hashing embeddings (dimension 256)" in error
    assert f"holds causal-lm embeddings of {tiny_model} (dimension 32)" in error


def test_a_textbooks_model_folder_is_refused_with_the_export_command(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "native"
    folder.mkdir()
    (folder / "model.json").write_text("{}")
    corpus = write_dataset(tmp_path / "corpus", [{"id": "a", "text": "x = 1", "source": "test"}])
    error = refused(capsys, ["embed", "--input", str(corpus), "--embedder", "causal-lm", "--model", str(folder)],
                    tmp_path / "out")
    assert "textbooks export-hf" in error


def test_sentence_transformers_embeds_as_the_library_does(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers", reason="sentence-transformers is optional: pip install "
                                                        "'textbooks[embed]'")
    from sentence_transformers import SentenceTransformer
    try:
        from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    except ImportError:  # before sentence-transformers 5.7
        from sentence_transformers.models import Pooling, Transformer

    # a causal LM wrapped with mean pooling, its tokenizer without a pad token (the embedder pads with EOS)
    word = Transformer(str(save_tiny_causal_lm(tmp_path / "lm")))
    model_folder = tmp_path / "st"
    SentenceTransformer(modules=[word, Pooling(32, pooling_mode="mean")]).save(str(model_folder))
    rows = [{"id": f"r{i}", "text": t, "source": "test"} for i, t in enumerate(TEXTS)]
    corpus = write_dataset(tmp_path / "corpus", rows)
    out = run(EmbedStage(EmbedConfig(embedder="sentence-transformers", model=str(model_folder), batch_size=4),
                         str(corpus)), tmp_path / "embed")

    meta = data.read_json(out / META)
    assert (meta["embedder"], meta["dimension"]) == ("sentence-transformers", 32)
    table = data.read_dataset(out)
    by_id = dict(zip(table["id"].to_pylist(), as_matrix(table["embedding"], 32)))
    made = np.stack([by_id[row["id"]] for row in rows])
    peer = SentenceTransformer(str(model_folder), device="cpu")
    peer.tokenizer.pad_token = peer.tokenizer.eos_token
    expected = peer.encode(TEXTS, batch_size=4, convert_to_numpy=True)
    assert np.allclose(made, expected.astype(np.float16).astype(np.float32), atol=2e-3), np.abs(made - expected).max()
    assert not np.allclose(made[0], made[1])
