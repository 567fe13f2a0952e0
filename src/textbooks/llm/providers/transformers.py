"""A transformers causal LM run in this process: a folder written by `save_pretrained` (our exports are) or a
hub name. Chat requests go through the tokenizer's chat template (a plain "role: content" transcript when the
tokenizer has none); sampling is seeded per request (`seed`), so sample i of a prompt is the same every run.
Requests queued at once are taken `batch_size` at a time in a worker thread and decoded one by one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textbooks.errors import UserError
from textbooks.llm.config import LLMConfig
from textbooks.llm.providers.base import LocalBatcher, Provider, openai_shaped
from textbooks.llm.types import Request


class TransformersProvider(Provider):
    name = "transformers"

    def __init__(self, config: LLMConfig) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from textbooks.store import hub

        if not Path(config.model).is_dir():
            hub.prepare()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(config.model)
            self.model = AutoModelForCausalLM.from_pretrained(config.model).to(config.device).eval()
        except (OSError, ValueError) as error:
            raise UserError(f"{config.model}: cannot load it as a transformers causal LM ({error}); pass a "
                            f"folder written by save_pretrained or a hub name") from None
        self.model_name = config.model
        self._batcher = LocalBatcher(self._run_batch, config.batch_size)

    async def send(self, request: Request) -> dict[str, Any]:
        return await self._batcher.send(request)

    def _prompt(self, request: Request) -> str:
        if request.kind == "complete":
            return request.prompt or ""
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(request.messages, tokenize=False, add_generation_prompt=True)
        lines = [f"{message['role']}: {message.get('content', '')}" for message in request.messages or []]
        return "\n".join(lines) + "\nassistant:"

    def _run_batch(self, requests: list[Request]) -> list[dict[str, Any]]:
        return [self._generate(request) for request in requests]

    def _generate(self, request: Request) -> dict[str, Any]:
        import torch

        params = request.params
        ids = self.tokenizer(self._prompt(request), return_tensors="pt")["input_ids"].to(self.model.device)
        max_tokens = int(params.get("max_tokens") or 16)
        temperature = float(params.get("temperature") or 0.0)
        sampling: dict[str, Any] = {"do_sample": False}
        if temperature > 0:
            torch.manual_seed(int(params.get("seed") or 0))
            sampling = {"do_sample": True, "temperature": temperature, "top_p": float(params.get("top_p", 1.0)),
                        "top_k": 0}
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        with torch.inference_mode():
            output = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                         max_new_tokens=max_tokens, pad_token_id=pad, **sampling)
        new = output[0, ids.shape[1]:].tolist()
        text = self.tokenizer.decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        finish = "length" if len(new) >= max_tokens else "stop"
        stops = params.get("stop") or []
        starts = [start for start in (text.find(stop) for stop in ([stops] if isinstance(stops, str) else stops)
                                      if stop) if start >= 0]
        if starts:
            text, finish = text[:min(starts)], "stop"
        return openai_shaped(request.kind, text, finish, ids.shape[1], len(new), self.model_name)
