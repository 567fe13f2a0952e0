"""Batched generation and what evaluation builds on it, on tiny random fp32 models: left-padded rows compute
what each prompt alone computes, stops finish rows early, completions are cut exactly, our completer and
transformers' agree on the same weights, and the solution loss equals a one-at-a-time computation."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import PhiForCausalLM

from textbooks.errors import UserError
from textbooks.evaluate.generate import (
    CompleterOptions,
    HFCompleter,
    OursCompleter,
    make_completer,
    truncate_completion,
)
from textbooks.evaluate.loss import solution_ids, solution_loss
from textbooks.model import ModelConfig, Phi, export_hf, save_model
from textbooks.model.generate import generate, generate_batch, stop_at_text
from textbooks.tokens.tokenizer import load_tokenizer, train_tokenizer

VOCAB = 320
SNIPPETS = [f"def f{i}(x):\n    return x * {i} + {i % 7}\n" for i in range(200)]
PROMPTS = ["def add(a, b):\n", "def f3(x):\n    y = x\n",
           "import os\n\n\ndef path_of(name):\n    \"\"\"A path.\"\"\"\n", "x = 1\n"]
QUIET = CompleterOptions(progress=False, batch_size=2)


def small_model(seed: int = 0, **overrides) -> Phi:
    """Two layers with phi-1's head shape (64 dims, 32 rotary) and a wide init, so greedy choices are not ties."""
    torch.manual_seed(seed)
    settings = {"vocab_size": VOCAB, "hidden_size": 128, "intermediate_size": 256, "num_hidden_layers": 2,
                "num_attention_heads": 2, "initializer_range": 0.2, **overrides}
    return Phi(ModelConfig(**settings)).eval()


def random_prompts(lengths: tuple[int, ...] = (3, 9, 1, 6)) -> list[list[int]]:
    generator = torch.Generator().manual_seed(1)
    return [torch.randint(0, VOCAB, (length,), generator=generator).tolist() for length in lengths]


@pytest.fixture(scope="module")
def tokenizer_dir(tmp_path_factory) -> Path:
    return train_tokenizer(SNIPPETS, VOCAB, tmp_path_factory.mktemp("tok") / "bpe")


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory, tokenizer_dir: Path) -> Path:
    folder = tmp_path_factory.mktemp("run") / "best"
    save_model(small_model(), folder, tokenizer_dir)
    return folder


def test_left_padded_rows_give_the_logits_of_each_prompt_alone() -> None:
    model = small_model()
    prompts = random_prompts()
    width = max(map(len, prompts))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    with torch.no_grad():
        padded, cache = model(ids, attention_mask=mask, return_cache=True)
        step = torch.tensor([[5]] * len(prompts))
        next_logits = model(step, cache=cache, attention_mask=torch.cat((mask, torch.ones_like(step)), 1))
        for row, prompt in enumerate(prompts):
            alone = model(torch.tensor([prompt]))
            torch.testing.assert_close(padded[row, width - len(prompt):], alone[0])
            torch.testing.assert_close(next_logits[row, -1], model(torch.tensor([prompt + [5]]))[0, -1])
        with pytest.raises(ValueError, match="attention_mask must be"):
            model(ids, attention_mask=mask[:, 1:])


def test_padded_batch_greedy_equals_each_prompt_alone() -> None:
    model = small_model()
    prompts = random_prompts()
    batch = generate_batch(model, prompts, max_new_tokens=15)
    assert batch == [generate_batch(model, [prompt], max_new_tokens=15)[0] for prompt in prompts]
    assert all(len(row) == 15 for row in batch)
    width = max(map(len, prompts))  # the tensor interface, padded by the caller
    ids = torch.tensor([[7] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    assert generate(model, ids, 15, attention_mask=mask).tolist() == batch
    with pytest.raises(ValueError, match="pad prompts on the left"):
        generate(model, ids, 15, attention_mask=mask.flip(1))


def test_stops_finish_rows_early_and_decoding_ends_when_all_have() -> None:
    model = small_model()
    prompts = random_prompts()
    free = generate_batch(model, prompts, max_new_tokens=12)
    token = free[0][next(step for step in range(2, 12) if free[0][step] not in free[0][:step])]

    def cut(row: list[int]) -> list[int]:
        return row[:row.index(token) + 1] if token in row else row

    assert generate_batch(model, prompts, 12, stop=[[token]]) == [cut(row) for row in free]
    assert generate_batch(model, prompts, 12, stop=[free[1][3:5]])[1] == free[1][:5]  # a two-token stop

    calls = []
    model.register_forward_hook(lambda module, args, output: calls.append(1))
    rows = generate_batch(model, prompts, 12, stop=lambda ids: len(ids) >= 3)
    assert rows == [row[:3] for row in free]
    assert len(calls) == 3  # the prompt, then two steps: every row had finished


@pytest.mark.parametrize(("text", "expected"), [
    ("    return a + b\n", "    return a + b\n"),  # no stop: all of it
    ("\ndef g():\n    pass\n", ""),  # a stop at position 0
    ("    return x\n\n\ndef other():\n    pass\n", "    return x\n\n"),
    ("    def helper(y):\n        return y * 2\n    return helper(x)\n\nif __name__ == '__main__':\n    main()\n",
     "    def helper(y):\n        return y * 2\n    return helper(x)\n"),  # nested def kept, top-level if cut
    ("    # note\n    if x:\n        return 1\n    return 0\n# tests\nprint(f(1))\n",
     "    # note\n    if x:\n        return 1\n    return 0"),  # indented comment and if kept
    ("    pass\nprint(1)\nclass A: pass\n", "    pass"),  # the earliest stop wins, whatever its place in the list
    ("    return 1\nclassify = 2\n", "    return 1"),  # stops match characters, not words (Codex's rule)
])
def test_truncation_keeps_everything_before_the_first_stop(text: str, expected: str) -> None:
    assert truncate_completion(text) == expected


def test_truncation_with_own_stops() -> None:
    assert truncate_completion("a\n\nb", ["\n\n", ""]) == "a"  # an empty stop is ignored
    assert truncate_completion("abc", []) == "abc"


def test_a_text_stop_ends_the_row_at_the_token_that_completes_it(tokenizer_dir: Path) -> None:
    tokenizer = load_tokenizer(tokenizer_dir)
    model = small_model()
    prompt = tokenizer(PROMPTS[0])["input_ids"]
    free = generate_batch(model, [prompt], 16)[0]

    def decode(ids: list[int]) -> str:
        return tokenizer.decode(ids, clean_up_tokenization_spaces=False)

    step, stop = next((step, decode([free[step]])) for step in range(2, 16)
                      if decode([free[step]]).isascii() and decode([free[step]]) not in decode(free[:step]))
    assert generate_batch(model, [prompt], 16, stop=stop_at_text(decode, [stop]))[0] == free[:step + 1]


def test_ours_gives_n_completions_deterministic_greedy_and_seeded_samples(model_folder: Path) -> None:
    completer = make_completer(str(model_folder.parent), QUIET)  # the run folder: best/
    assert isinstance(completer, OursCompleter)
    greedy = completer.complete(PROMPTS, n=3, temperature=0.0, max_new_tokens=10)
    assert len(greedy) == len(PROMPTS) and all(len(set(samples)) == 1 and len(samples) == 3 for samples in greedy)
    assert completer.complete(PROMPTS, n=1, max_new_tokens=10) == [samples[:1] for samples in greedy]

    def sample(seed: int) -> list[list[str]]:
        options = CompleterOptions(progress=False, batch_size=2, seed=seed)
        return OursCompleter(model_folder, options).complete(PROMPTS, n=3, temperature=2.0, max_new_tokens=10)

    first = sample(0)
    assert all(len(samples) == 3 for samples in first)
    assert first == sample(0)
    assert first != sample(1)


def test_ours_cuts_completions_at_the_stops(model_folder: Path) -> None:
    free = OursCompleter(model_folder, CompleterOptions(progress=False, stops=())).complete(PROMPTS, 1,
                                                                                          max_new_tokens=16)
    text = free[0][0]
    stop = next(text[i:i + 2] for i in range(3, len(text) - 2) if text[i:i + 2].isascii())
    options = CompleterOptions(progress=False, stops=(stop,))
    cut = OursCompleter(model_folder, options).complete(PROMPTS, 1, max_new_tokens=16)
    assert cut == [[truncate_completion(samples[0], [stop])] for samples in free]
    assert cut[0][0] == text[:text.index(stop)]


def test_transformers_completions_equal_ours_on_the_same_weights(model_folder: Path, tokenizer_dir: Path,
                                                                 tmp_path: Path) -> None:
    from textbooks.model.io import load_model

    hf_folder = export_hf(load_model(model_folder), tmp_path / "hf", tokenizer_dir)
    options = CompleterOptions(progress=False, batch_size=3, dtype=torch.float32)
    theirs = make_completer(str(hf_folder), options)
    assert isinstance(theirs, HFCompleter)
    ours = OursCompleter(model_folder, options)
    assert theirs.complete(PROMPTS, n=2, max_new_tokens=12) == ours.complete(PROMPTS, n=2, max_new_tokens=12)
    samples = theirs.complete(PROMPTS[:2], n=2, temperature=2.0, top_p=0.9, max_new_tokens=6)
    assert samples == theirs.complete(PROMPTS[:2], n=2, temperature=2.0, top_p=0.9, max_new_tokens=6)  # seeded
    assert len(set(samples[0] + samples[1])) > 1


def test_make_completer_refuses_what_it_cannot_serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="neither a textbooks model"):
        make_completer(str(tmp_path / "empty"))
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(UserError, match="openai:some-model.*OPENAI_API_KEY"):
        make_completer("openai:some-model")
    with pytest.raises(UserError, match="does not exist and is not a hub name"):
        make_completer(str(tmp_path / "missing" / "deeper" / "model"))
    save_model(small_model(), tmp_path / "bare")
    with pytest.raises(UserError, match="without its tokenizer"):
        make_completer(str(tmp_path / "bare"))


PAIRS = [("def add(a, b):\n", "    return a + b\n"), ("def f3(x):", "\n    return x * 3 + 3\n"),
         ("x = 1\n", "y = x + 1\nprint(y)\n"), ("def g(x):\n    \"\"\"Twice x.\"\"\"\n", "    return 2 * x\n"),
         ("import os\n", "os.getcwd()\n")]


def test_the_prompt_share_is_the_common_prefix_of_the_tokenizations(tokenizer_dir: Path) -> None:
    tokenizer = load_tokenizer(tokenizer_dir)
    ids, shared = solution_ids(tokenizer, "def f3(x):", "\n    return x\n")
    assert shared == len(tokenizer("def f3(x):")["input_ids"])  # split at the seam: the prompt's tokens
    ids, shared = solution_ids(tokenizer, "def f3(x):\n", "    return x\n")
    assert shared == len(tokenizer("def f3(x):\n")["input_ids"]) - 1  # "\n" merges with the indent after it
    assert tokenizer.decode(ids[shared:]) == "\n    return x\n"


def test_solution_loss_equals_one_problem_at_a_time(tokenizer_dir: Path, tmp_path: Path) -> None:
    tokenizer = load_tokenizer(tokenizer_dir)
    model = small_model(initializer_range=0.02)
    result = solution_loss(model, tokenizer, PAIRS, batch_size=2)
    losses, counts = [], []
    with torch.no_grad():
        for prompt, solution in PAIRS:
            prompt_ids, ids = tokenizer(prompt)["input_ids"], tokenizer(prompt + solution)["input_ids"]
            shared = next(i for i, (a, b) in enumerate(zip(prompt_ids + [-1], ids)) if a != b)
            logits = model(torch.tensor([ids]))[0]
            losses.append(F.cross_entropy(logits[shared - 1:-1], torch.tensor(ids[shared:])).item())
            counts.append(len(ids) - shared)
    assert result.per_problem == pytest.approx(losses, abs=1e-5)
    assert result.problem_tokens == counts and result.tokens == sum(counts)
    weighted = sum(loss * count for loss, count in zip(losses, counts)) / sum(counts)
    assert result.mean == pytest.approx(weighted, abs=1e-5)

    theirs = PhiForCausalLM.from_pretrained(str(export_hf(model, tmp_path / "hf")), dtype=torch.float32)
    assert solution_loss(theirs, tokenizer, PAIRS, batch_size=3).per_problem == pytest.approx(losses, abs=1e-5)


def test_training_on_the_solutions_lowers_their_loss(tokenizer_dir: Path) -> None:
    tokenizer = load_tokenizer(tokenizer_dir)
    model = small_model(hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=1,
                        initializer_range=0.02)
    held_out = [("def h(z):\n", "    while z:\n        z -= 1\n"), ("s = 'a'\n", "t = s.upper()\n")]
    before = solution_loss(model, tokenizer, PAIRS)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(40):
        for ids, shared in (solution_ids(tokenizer, prompt, solution) for prompt, solution in PAIRS):
            targets = torch.tensor([[-100] * (shared - 1) + ids[shared:]])
            _, loss = model(torch.tensor([ids[:-1]]), targets)
            loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    after = solution_loss(model, tokenizer, PAIRS)
    assert model.training  # restored
    assert after.mean < 0.5 * before.mean
    assert all(a < b for a, b in zip(after.per_problem, before.per_problem))
    assert solution_loss(model, tokenizer, held_out).mean > after.mean
