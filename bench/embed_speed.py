"""Embedding speed: `textbooks embed --embedder causal-lm` against a plain transformers loop, in one run.

    python bench/embed_speed.py                                    # CPU: a small GPT-2 the bench makes, ~1,000 rows
    python bench/embed_speed.py --model Salesforce/codegen-350M-mono --rows 20000 --batch-size 64   # on a GPU

The rows are functions of this interpreter's standard library (`tests/planted.py`), 8 to 60 lines each,
written as a dataset folder of 4 shards. Without `--model` the bench saves a randomly initialised GPT-2
(4 layers, 256 wide, 1024 positions) with a byte-level BPE of 4,096 entries trained on those rows: the speed of
a forward pass does not depend on the weights.

ours: the embed step end to end (`run_step`, the process executor with one worker, since torch already spreads a
batch over every core), from reading the shards to writing the embeddings, the model's loading included.

peer: what one writes from the transformers documentation: `AutoModel` (no LM head), rows in dataset order in
batches of the same size, padded to the longest in the batch and cut at the same `max_tokens`, the mask-weighted
mean of `last_hidden_state`, the model's loading included. Both use the same device and precision.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from planted import stdlib_functions  # noqa: E402

from textbooks.cli import quiet_when_piped  # noqa: E402
from textbooks.pipeline.executors import make_executor  # noqa: E402
from textbooks.pipeline.runner import run_step  # noqa: E402
from textbooks.quality.causal_lm import pick_device, pick_dtype  # noqa: E402
from textbooks.quality.config import EmbedConfig  # noqa: E402
from textbooks.quality.embed import EmbedStage  # noqa: E402
from textbooks.store import data  # noqa: E402
from textbooks.tokens.tokenizer import train_tokenizer  # noqa: E402

SHARDS = 4


def write_corpus(folder: Path, texts: list[str]) -> Path:
    rows = [{"id": f"row-{index}", "text": text, "source": "stdlib"} for index, text in enumerate(texts)]
    for shard in range(SHARDS):
        data.write_table(pa.Table.from_pylist(rows[shard::SHARDS]), folder / data.shard_name(shard))
    data.write_marker(folder, {"fingerprint": f"bench-{len(rows)}", "stage": "bench"})
    return folder


def save_small_model(folder: Path, texts: list[str]) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel

    train_tokenizer(texts, vocab_size=4096, out_dir=folder)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=4096, n_positions=1024, n_embd=256, n_layer=4, n_head=4, bos_token_id=0,
                        eos_token_id=0)
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def ours(corpus: Path, out: Path, model: str, batch_size: int, max_tokens: int) -> float:
    config = EmbedConfig(embedder="causal-lm", model=model, batch_size=batch_size, max_tokens=max_tokens)
    started = time.perf_counter()
    run_step(EmbedStage(config, str(corpus)), out, executor=make_executor("process", 1), say=lambda _: None)
    return time.perf_counter() - started


def peer(corpus: Path, model_name: str, batch_size: int, max_tokens: int) -> tuple[float, np.ndarray]:
    from transformers import AutoModel, AutoTokenizer

    started = time.perf_counter()
    device = pick_device("auto")
    tokenizer = AutoTokenizer.from_pretrained(model_name)
    tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token
    model = AutoModel.from_pretrained(model_name, dtype=pick_dtype("auto", device)).to(device).eval()
    texts = data.read_dataset(corpus)["text"].to_pylist()
    vectors = []
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], truncation=True, max_length=max_tokens,
                              padding=True, return_tensors="pt").to(device)
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            vectors.append(((hidden * mask).sum(1) / mask.sum(1)).float().cpu().numpy())
    return time.perf_counter() - started, np.concatenate(vectors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000, help="rows to embed (about; whole functions)")
    parser.add_argument("--model", default=None, help="a hub name or model folder (default: a small GPT-2 made here)")
    parser.add_argument("--batch-size", type=int, default=16, help="texts per forward pass, both sides")
    parser.add_argument("--max-tokens", type=int, default=512, help="tokens read of each text, both sides")
    args = parser.parse_args()
    quiet_when_piped()
    texts = stdlib_functions(limit=args.rows)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        corpus = write_corpus(root / "corpus", texts)
        model = args.model or str(save_small_model(root / "model", texts))
        peer_seconds, _ = peer(corpus, model, args.batch_size, args.max_tokens)
        our_seconds = ours(corpus, root / "embed", model, args.batch_size, args.max_tokens)
    device = pick_device("auto")
    print(f"{len(texts):,} rows, model {args.model or 'small GPT-2 (4x256)'}, batch {args.batch_size}, "
          f"max_tokens {args.max_tokens}, device {device}, torch threads {torch.get_num_threads()}")
    print(f"ours (embed step): {len(texts) / our_seconds:,.1f} rows/s ({our_seconds:.1f} s)")
    print(f"peer (plain transformers loop): {len(texts) / peer_seconds:,.1f} rows/s ({peer_seconds:.1f} s)")
    print(f"ratio: {peer_seconds / our_seconds:.2f}x")


if __name__ == "__main__":
    main()
