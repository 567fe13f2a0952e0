"""The providers behind textbooks.llm besides HTTP: a transformers model run here (a tiny exported folder),
vLLM's engine (when installed), and evaluation's `openai:` completer asking n samples as n cached requests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
from llm_server import FakeLLMServer, llm_server_fixture  # noqa: F401  (fixture `llm_server`)

from textbooks.errors import UserError
from textbooks.evaluate.generate import CompleterOptions, HFCompleter, make_completer
from textbooks.llm import LLMClient, LLMConfig
from textbooks.model import ModelConfig, Phi, export_hf
from textbooks.tokens.tokenizer import train_tokenizer

SNIPPETS = [f"def f{i}(x):\n    return x * {i} + {i % 7}\n" for i in range(200)]
PROMPTS = ["def add(a, b):\n", "def f3(x):\n    y = x\n"]


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hf")
    tokenizer = train_tokenizer(SNIPPETS, 320, root / "bpe")
    torch.manual_seed(0)
    model = Phi(ModelConfig(vocab_size=320, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                            num_attention_heads=2, initializer_range=0.2)).eval()
    return export_hf(model, root / "model", tokenizer)


def test_a_transformers_model_answers_as_evaluation_decodes_it(hf_folder: Path, tmp_path: Path) -> None:
    config = LLMConfig(model=str(hf_folder), provider="transformers", max_tokens=8, cache=True,
                       cache_path=str(tmp_path / "c.sqlite"))
    client = LLMClient(config)

    greedy = client.complete_many(PROMPTS, progress=False)
    reference = HFCompleter(str(hf_folder), CompleterOptions(progress=False, stops=("<never>",), dtype=torch.float32))
    assert [[reply.text] for reply in greedy] == reference.complete(PROMPTS, max_new_tokens=8)
    assert all(reply.finish_reason == "length" and reply.completion_tokens == 8 for reply in greedy)

    sampled = client.complete_many([PROMPTS[0]] * 3, samples=[0, 1, 0], temperature=2.0, progress=False)
    assert sampled[0].text == sampled[2].text and sampled[2].cached  # sample 0 again: the cache
    assert sampled[0].text != sampled[1].text  # sample 1: its own seed
    again = LLMClient(config).complete_many(PROMPTS, progress=False)
    assert [reply.text for reply in again] == [reply.text for reply in greedy] and all(r.cached for r in again)

    chat = LLMClient(config.model_copy(update={"cache": False})).chat_many([[{"role": "user", "content": "x"}]],
                                                                           progress=False)
    assert chat[0].completion_tokens == 8 and chat[0].prompt_tokens > 0


def test_a_missing_transformers_model_is_a_user_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="cannot load it as a transformers causal LM"):
        LLMClient(LLMConfig(model=str(tmp_path / "empty"), provider="transformers"))


HAS_VLLM = importlib.util.find_spec("vllm") is not None


@pytest.mark.skipif(HAS_VLLM, reason="vLLM is installed: the engine test below runs instead")
def test_vllm_without_vllm_says_what_to_install() -> None:
    with pytest.raises(UserError, match="pip install vllm"):
        LLMClient(LLMConfig(model="any", provider="vllm"))


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_VLLM or not torch.cuda.is_available(), reason="needs vLLM installed and a CUDA device")
def test_vllm_engine_answers(hf_folder: Path) -> None:
    client = LLMClient(LLMConfig(model=str(hf_folder), provider="vllm", max_tokens=8))
    replies = client.complete_many(PROMPTS, progress=False)
    assert all(reply.completion_tokens > 0 for reply in replies)


def test_endpoint_samples_are_distinct_cached_requests(llm_server: FakeLLMServer, tmp_path: Path) -> None:
    llm_server.reply = lambda body: f"    return {body['seed']}\n"
    options = CompleterOptions(base_url=llm_server.url, progress=False, seed=10, cache=str(tmp_path / "c.sqlite"))
    prompts = ['def one():\n    """One."""\n', "def two():\n"]

    completions = make_completer("openai:tiny-code", options).complete(prompts, n=3, temperature=0.8)

    assert completions == [[f"    return {seed}\n" for seed in (10, 11, 12)]] * 2
    assert len(llm_server.requests) == 6
    assert make_completer("openai:tiny-code", options).complete(prompts, n=3, temperature=0.8) == completions
    assert len(llm_server.requests) == 6  # the rerun asked nothing
