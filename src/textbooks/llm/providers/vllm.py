"""vLLM's offline engine (`vllm.LLM`) in this process, when vLLM is installed (`pip install vllm`, GPU machines).

Requests queued at once are handed to `LLM.generate` together (vLLM batches them itself), each with its own
`SamplingParams` (seed included); chat requests go through `LLM.chat`. The engine is made once per client.
"""

from __future__ import annotations

from typing import Any

from textbooks.errors import UserError
from textbooks.llm.config import LLMConfig
from textbooks.llm.providers.base import LocalBatcher, Provider, openai_shaped
from textbooks.llm.types import Request

BATCH = 256  # requests handed to the engine at once


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError:
        raise UserError("provider vllm needs vLLM installed (pip install vllm, on a machine with a GPU); or "
                        "serve the model with `vllm serve` and use provider openai") from None
    return vllm


class VLLMProvider(Provider):
    name = "vllm"

    def __init__(self, config: LLMConfig) -> None:
        self.vllm = _import_vllm()
        self.engine = self.vllm.LLM(model=config.model)
        self.model_name = config.model
        self._batcher = LocalBatcher(self._run_batch, BATCH)

    async def send(self, request: Request) -> dict[str, Any]:
        return await self._batcher.send(request)

    def _sampling(self, request: Request) -> Any:
        params = request.params
        stop = params.get("stop")
        return self.vllm.SamplingParams(
            temperature=float(params.get("temperature") or 0.0), top_p=float(params.get("top_p", 1.0)),
            max_tokens=int(params.get("max_tokens") or 16), seed=params.get("seed"),
            stop=[stop] if isinstance(stop, str) else stop)

    def _run_batch(self, requests: list[Request]) -> list[dict[str, Any]]:
        answers: dict[int, Any] = {}
        for kind in ("complete", "chat"):
            indices = [index for index, request in enumerate(requests) if request.kind == kind]
            if not indices:
                continue
            sampling = [self._sampling(requests[index]) for index in indices]
            if kind == "complete":
                outputs = self.engine.generate([requests[index].prompt for index in indices], sampling,
                                               use_tqdm=False)
            else:
                outputs = self.engine.chat([requests[index].messages for index in indices], sampling,
                                           use_tqdm=False)
            answers.update(zip(indices, outputs))
        raws = []
        for index, request in enumerate(requests):
            output = answers[index]
            generated = output.outputs[0]
            raws.append(openai_shaped(request.kind, generated.text, generated.finish_reason or "stop",
                                      len(output.prompt_token_ids or []), len(generated.token_ids),
                                      self.model_name))
        return raws
