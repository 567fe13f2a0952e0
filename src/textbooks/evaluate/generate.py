"""Completions for code benchmarks: n samples per prompt from one of several providers, cut at the stops.

    completer = make_completer("runs/phi-1")                   # ours: a model or run folder (best/, checkpoint)
    completer = make_completer("microsoft/phi-1")              # any transformers causal LM, by name or folder
    completer = make_completer("openai:MODEL", CompleterOptions(base_url="http://localhost:8000/v1"))  # a server
    completions = completer.complete(prompts, n=1, temperature=0.0, max_new_tokens=512)  # [[str]] per prompt

A provider is a small class behind `Completer`, registered by prefix in `PROVIDERS` (`ours:`, `hf:`, and
`openai:` for an OpenAI-compatible server through `textbooks.llm`, see `EndpointCompleter`, and `vllm:` for vLLM's
offline engine through the same client); `make_completer`
picks one from the prefix, or from what a path holds. The local providers sort prompts by token length into
batches (least padding), decode greedily at temperature 0 (once per prompt, repeated n times) and by nucleus
sampling from a seeded generator otherwise, stop a row as soon as its text holds a stop sequence, and return each
completion cut by `truncate_completion`. Tokens are decoded without special tokens and without transformers'
clean-up of spaces, so code comes back byte for byte.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import torch
from tqdm.auto import tqdm

from textbooks.errors import UserError
from textbooks.model.generate import StopCondition, generate_batch, stop_at_text
from textbooks.model.hf import HUB_NAME
from textbooks.model.io import load_model, resolve_model_folder, tokenizer_folder
from textbooks.store import hub

# Codex's stops for HumanEval (Chen et al. 2021): the start of the next top-level statement after the body.
STOP_SEQUENCES = ["\nclass", "\ndef", "\n#", "\nif", "\nprint"]
API_STOP_LIMIT = 4  # OpenAI's /v1/completions refuses more than 4 stop strings


def truncate_completion(text: str, stops: Sequence[str] = STOP_SEQUENCES) -> str:
    """`text` up to (not including) the earliest occurrence of any of `stops`; all of `text` if none occurs.

    Stops match exact characters anywhere, position 0 included (which leaves ""); the earliest start wins,
    whichever stop it belongs to; empty stops are ignored and nothing is stripped. The HumanEval prompt ends
    with a newline, so a completion starts inside the function body, and the stops, which begin with "\\n",
    match only unindented lines after it: a nested `def`, an indented `if` or comment stays in the body.
    """
    starts = [start for start in (text.find(stop) for stop in stops if stop) if start >= 0]
    return text[:min(starts, default=len(text))]


@dataclass(frozen=True)
class CompleterOptions:
    """How a provider is built; a provider ignores what does not apply to it."""

    batch_size: int = 8  # rows decoded together (local models)
    seed: int = 0  # sampling seed: the same prompts and options give the same samples
    stops: tuple[str, ...] = tuple(STOP_SEQUENCES)
    device: str = "cpu"
    dtype: torch.dtype | None = None  # None: as saved
    tokenizer: str | None = None  # ours: a tokenizer folder or hub name, when the model folder has none
    progress: bool = True  # a progress bar over prompts (openai: over requests)
    base_url: str | None = None  # openai: the server (None: $OPENAI_BASE_URL, else OpenAI's)
    api_key_env: str = "OPENAI_API_KEY"  # openai: the variable holding the key (a loopback server needs none)
    concurrency: int = 8  # openai: requests in flight at once
    endpoint: Literal["completions", "chat"] = "completions"  # openai: /v1/completions, or chat for chat models
    cache: str | None = None  # openai: a response cache file (textbooks.llm's SQLite cache); None: no cache
    provider: Literal["openai", "vllm"] = "openai"  # how textbooks.llm reaches the model (vllm: in this process)


class Completer(ABC):
    """n completions per prompt; each provider is one subclass built from `(target, CompleterOptions)`."""

    @abstractmethod
    def complete(self, prompts: list[str], n: int = 1, temperature: float = 0.0, top_p: float = 0.95,
                 max_new_tokens: int = 512) -> list[list[str]]:
        """`n` truncated completions for each prompt, in the prompts' order."""


class _LocalCompleter(Completer):
    """A model run here: batches by prompt length, seeding, stops, progress. Subclasses set `tokenizer` (a
    transformers tokenizer) and `model`, and continue a batch of prompts."""

    def __init__(self, options: CompleterOptions) -> None:
        if options.batch_size < 1:
            raise UserError(f"batch_size must be at least 1, got {options.batch_size}")
        self.options = options

    @property
    @abstractmethod
    def device(self) -> torch.device: ...

    @abstractmethod
    def _encode(self, prompt: str) -> list[int]: ...

    @abstractmethod
    def _continue(self, prompts: list[list[int]], temperature: float, top_p: float, max_new_tokens: int,
                  generator: torch.Generator) -> list[str]:
        """The decoded new text of each prompt, each row stopped once `self._finished` holds for it."""

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def _finished(self) -> StopCondition:
        return stop_at_text(self._decode, self.options.stops)

    def complete(self, prompts: list[str], n: int = 1, temperature: float = 0.0, top_p: float = 0.95,
                 max_new_tokens: int = 512) -> list[list[str]]:
        if n < 1:
            raise UserError(f"n must be at least 1, got {n}")
        samples = n if temperature > 0 else 1  # greedy gives one answer: decode it once
        encoded = [self._encode(prompt) for prompt in prompts]
        order = sorted(range(len(prompts)), key=lambda index: -len(encoded[index]))  # longest first: memory peaks early
        jobs = [index for index in order for _ in range(samples)]
        results: list[list[str]] = [[] for _ in prompts]
        generator = torch.Generator(device=self.device).manual_seed(self.options.seed)
        with tqdm(total=len(prompts), unit="prompt", desc="complete",
                  disable=None if self.options.progress else True) as bar:
            for start in range(0, len(jobs), self.options.batch_size):
                batch = jobs[start:start + self.options.batch_size]
                texts = self._continue([encoded[index] for index in batch], temperature, top_p, max_new_tokens,
                                       generator)
                for index, text in zip(batch, texts):
                    results[index].append(truncate_completion(text, self.options.stops))
                    if len(results[index]) == samples:
                        bar.update(1)
        return [completions * (n // samples) for completions in results]


class OursCompleter(_LocalCompleter):
    """A textbooks model folder (or run folder) and its tokenizer, decoded by `generate_batch` with a KV cache."""

    def __init__(self, path: str | Path, options: CompleterOptions = CompleterOptions()) -> None:
        from textbooks.tokens.tokenizer import load_tokenizer

        super().__init__(options)
        folder = resolve_model_folder(Path(path))
        tokenizer = options.tokenizer or tokenizer_folder(folder)
        if tokenizer is None:
            raise UserError(f"{folder} was saved without its tokenizer: pass the tokenizer it was trained with "
                            f"(a folder or hub name)")
        self.tokenizer = load_tokenizer(tokenizer)
        self.model = load_model(folder, device=options.device, dtype=options.dtype)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _encode(self, prompt: str) -> list[int]:
        return self.tokenizer(prompt)["input_ids"]

    def _continue(self, prompts: list[list[int]], temperature: float, top_p: float, max_new_tokens: int,
                  generator: torch.Generator) -> list[str]:
        rows = generate_batch(self.model, prompts, max_new_tokens, temperature, top_p,
                              eos_id=self.tokenizer.eos_token_id, stop=self._finished(), generator=generator)
        return [self._decode(row) for row in rows]


class _StopRows:
    """A transformers stopping criterion: per row, whether its new tokens (after `prompt_width`) are done."""

    def __init__(self, prompt_width: int, finished: StopCondition) -> None:
        self.prompt_width, self.finished = prompt_width, finished

    def __call__(self, input_ids: torch.Tensor, scores: Any, **kwargs: Any) -> torch.Tensor:
        done = [self.finished(row[self.prompt_width:]) for row in input_ids.tolist()]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class HFCompleter(_LocalCompleter):
    """Any transformers causal LM by hub name or local folder, left-padded through `model.generate`.

    Sampling uses transformers' global RNG, seeded per batch from the completer's generator (top-k is off,
    so it samples the same nucleus as ours). Stops are checked on the decoded text, as ours does, rather than
    with `stop_strings`, which matches on token strings and needs the tokenizer passed at every call.
    """

    def __init__(self, name_or_path: str, options: CompleterOptions = CompleterOptions()) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        super().__init__(options)
        if not Path(name_or_path).is_dir():
            hub.prepare()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name_or_path)
            model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=options.dtype or "auto")
        except (OSError, ValueError) as error:
            raise UserError(f"{name_or_path}: cannot load it as a transformers causal LM ({error}); pass a "
                            f"folder written by save_pretrained or a hub name") from None
        self.model = model.to(options.device).eval()
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0

    @property
    def device(self) -> torch.device:
        return self.model.device

    def _encode(self, prompt: str) -> list[int]:
        return self.tokenizer(prompt)["input_ids"]

    def _continue(self, prompts: list[list[int]], temperature: float, top_p: float, max_new_tokens: int,
                  generator: torch.Generator) -> list[str]:
        from transformers import StoppingCriteriaList

        width = max(map(len, prompts))
        input_ids = torch.tensor([[self.pad_id] * (width - len(p)) + p for p in prompts], device=self.device)
        attention_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=self.device)
        sampling: dict[str, Any] = {"do_sample": False}
        if temperature > 0:
            torch.manual_seed(int(torch.randint(2**62, (1,), generator=generator, device=generator.device)))
            sampling = {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": 0}
        with torch.inference_mode():
            output = self.model.generate(
                input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=max_new_tokens,
                stopping_criteria=StoppingCriteriaList([_StopRows(width, self._finished())]),
                pad_token_id=self.pad_id, **sampling)
        return [self._decode(row) for row in output[:, width:].tolist()]


CHAT_REQUEST = ("Complete the following Python function. Reply with the whole function, signature included, "
                "in one ```python code block.\n\n```python\n{prompt}\n```")
_CODE_BLOCK = re.compile(r"```(?:python|py)[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)
_DEF_NAME = re.compile(r"^[ \t]*(?:async[ \t]+)?def[ \t]+(\w+)[ \t]*\(", re.MULTILINE)
_DOCSTRING = re.compile(r"\s*[rRuU]?(\"\"\"|\'\'\').*?\1[^\n]*(?:\n|$)", re.DOTALL)


def _header(name: str) -> re.Pattern[str]:
    """`def name(` through the first `)` after which the line ends with `:` (a comment allowed)."""
    definition = rf"^[ \t]*(?:async[ \t]+)?def[ \t]+{re.escape(name)}[ \t]*\("
    return re.compile(definition + r".*?\)[^\n]*:[ \t]*(?:#[^\n]*)?(?:\n|$)", re.MULTILINE | re.DOTALL)


def completion_from_reply(prompt: str, reply: str) -> str:
    """A chat model's reply turned into a continuation of `prompt` (not yet cut at the stops).

    The code is the first ```python (or ```py) block of the reply, else the whole reply. When the prompt
    defines functions, the last one is the function to complete; if the code defines it too (it repeats the
    signature), the continuation is what follows its header (`def NAME(` to the first `)` whose line ends
    with `:`) and the docstring right after the header, if there is one. Otherwise (the reply is the body
    alone, or the prompt has no `def`, as MBPP's) the code is the continuation as it stands. This assumes
    the prompt ends with the signature and docstring, as HumanEval's and MBPP's prompts do.
    """
    block = _CODE_BLOCK.search(reply)
    code = block.group(1) if block else reply
    names = _DEF_NAME.findall(prompt)
    header = _header(names[-1]).search(code) if names else None
    if header is None:
        return code
    docstring = _DOCSTRING.match(code, header.end())
    return code[docstring.end() if docstring else header.end():]


class EndpointCompleter(Completer):
    """`openai:MODEL`: a model behind an OpenAI-compatible server (OpenAI, vLLM, llama.cpp, TGI), reached
    through `textbooks.llm.LLMClient`, which owns concurrency, retries and the progress bar.

    `completions` (base code models) continues each prompt on `/v1/completions`; the server gets the first
    `API_STOP_LIMIT` stops and all of them are applied here. `chat` (chat-only models) asks for the function
    in a code block (`CHAT_REQUEST`) and makes a continuation of the reply with `completion_from_reply`. Sample
    i of a prompt is its own request (`n` > 1 is not served alike everywhere), sent with seed `options.seed + i`
    (reproducible where the server honours seeds) and, with `options.cache`, cached under its own key, so a
    rerun asks only what was never answered; at temperature 0 one request per prompt is repeated n times, as
    the local completers do. A request the server refuses, or that fails after every retry, raises the
    client's `LLMError` (a `UserError`) with the server's message.
    """

    def __init__(self, model: str, options: CompleterOptions = CompleterOptions()) -> None:
        from textbooks.llm import LLMClient, LLMConfig  # the openai SDK takes seconds to import

        if options.endpoint not in ("completions", "chat"):
            raise UserError(f"{options.provider}:{model}: endpoint must be 'completions' or 'chat', got "
                            f"{options.endpoint!r}")
        if options.concurrency < 1:
            raise UserError(f"{options.provider}:{model}: concurrency must be at least 1, got {options.concurrency}")
        config = LLMConfig(model=model, provider=options.provider, base_url=options.base_url,
                           api_key_env=options.api_key_env,
                           concurrency=options.concurrency, seed=options.seed, cache=options.cache is not None,
                           cache_path=options.cache)
        try:
            self.client = LLMClient(config)
        except UserError as error:
            raise UserError(f"{options.provider}:{model}: {error}") from None
        self.options = options

    def complete(self, prompts: list[str], n: int = 1, temperature: float = 0.0, top_p: float = 0.95,
                 max_new_tokens: int = 512) -> list[list[str]]:
        if n < 1:
            raise UserError(f"n must be at least 1, got {n}")
        samples = n if temperature > 0 else 1  # greedy gives one answer: ask once
        requests = [prompt for prompt in prompts for _ in range(samples)]
        settings: dict[str, Any] = {"temperature": temperature, "top_p": top_p, "max_tokens": max_new_tokens,
                                    "progress": self.options.progress, "samples": list(range(samples)) * len(prompts)}
        if self.options.endpoint == "chat":
            messages = [[{"role": "user", "content": CHAT_REQUEST.format(prompt=prompt.rstrip("\n"))}]
                        for prompt in requests]
            replies = self.client.chat_many(messages, **settings)
            texts = [completion_from_reply(prompt, reply.text) for prompt, reply in zip(requests, replies)]
        else:
            stops = [stop for stop in self.options.stops if stop][:API_STOP_LIMIT]
            texts = [reply.text for reply in self.client.complete_many(requests, stop=stops or None, **settings)]
        completions = [truncate_completion(text, self.options.stops) for text in texts]
        return [completions[index * samples:(index + 1) * samples] * (n // samples) for index in range(len(prompts))]


class VLLMCompleter(EndpointCompleter):
    """`vllm:MODEL`: vLLM's offline engine in this process (a transformers folder or hub name; vLLM and a GPU
    needed), through the same client as `openai:`, so completions and stops are cut alike."""

    def __init__(self, model: str, options: CompleterOptions = CompleterOptions()) -> None:
        super().__init__(model, replace(options, provider="vllm"))


# prefix -> provider, each built as `provider(target, options)`
PROVIDERS: dict[str, Callable[[str, CompleterOptions], Completer]] = {
    "ours": OursCompleter,
    "hf": HFCompleter,
    "openai": EndpointCompleter,
    "vllm": VLLMCompleter,
}


def _holds_our_model(path: Path) -> bool:
    try:
        resolve_model_folder(path)
    except UserError:
        return False
    return True


def make_completer(model_spec: str, options: CompleterOptions = CompleterOptions()) -> Completer:
    """The provider `model_spec` names: `PREFIX:TARGET` for a registered prefix; else a path holding a
    textbooks model (a model folder or run folder) is ours, a path with a transformers config.json or a hub
    name (`owner/name`) is transformers'."""
    prefix, colon, target = model_spec.partition(":")
    if colon and prefix in PROVIDERS:
        return PROVIDERS[prefix](target, options)
    path = Path(model_spec).expanduser()
    if path.exists():
        if _holds_our_model(path):
            return OursCompleter(path, options)
        if (path / "config.json").is_file():
            return HFCompleter(str(path), options)
        raise UserError(f"{model_spec} holds neither a textbooks model (model.json, or a run folder with best/ or "
                        f"checkpoints/) nor a transformers model (config.json)")
    if HUB_NAME.fullmatch(model_spec):
        return HFCompleter(model_spec, options)
    raise UserError(f"{model_spec} does not exist and is not a hub name: pass a model folder, a run folder, a "
                    f"transformers folder or name, or one of the prefixes {', '.join(f'{p}:' for p in PROVIDERS)}")


__all__ = ["PROVIDERS", "STOP_SEQUENCES", "Completer", "CompleterOptions", "EndpointCompleter", "HFCompleter",
           "OursCompleter", "completion_from_reply", "make_completer", "truncate_completion"]
