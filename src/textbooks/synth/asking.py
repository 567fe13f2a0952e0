"""What the synth step's tasks share on its loop (the client, the sandbox, the sampler, the seed snippets) and
how they ask: one attempt for many rows, a dead endpoint stopping the step at once."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from textbooks.errors import UserError
from textbooks.llm import Completion, LLMClient, LLMConfig, LLMError
from textbooks.llm.config import cached_unless_set
from textbooks.pipeline.executors.base import Worker
from textbooks.synth import records
from textbooks.synth.config import SynthConfig, make_sampler, messages, version
from textbooks.synth.sampler import Params


class SynthState:
    """What a step's tasks share on its loop: the client, the sandbox, the sampler and the seed snippets."""

    def __init__(self, config: SynthConfig, worker: Worker) -> None:
        from textbooks.sandbox import Limits, Sandbox
        from textbooks.synth.verify import Verifier

        assert config.llm is not None  # checked in `check`
        self.client = LLMClient(cached_unless_set(config.llm), limiter=worker.limiter)
        self.sampler = make_sampler(config)
        workers = config.sandbox_workers or min(8, os.cpu_count() or 1)
        self.sandbox = Sandbox(workers=workers, limits=Limits(timeout_s=config.timeout_s))
        allowed = frozenset(config.allowed_imports) if config.allowed_imports is not None else None
        self.allowed = allowed
        self.verifier = Verifier(self.sandbox, allowed_imports=allowed)
        self.snippets = records.snippets(config.snippets) if config.snippets else None
        self.answered = 0  # requests the endpoint answered in this step (a dead endpoint stops it at once)
        self.bar = records.progress_bar(f"synth {config.kind}", config.llm.model)

    async def aclose(self) -> None:
        self.bar.close()
        self.sandbox.close()
        await self.client.aclose()


async def ask(config: SynthConfig, state: SynthState, params: list[Params], snippets: list[str | None],
              attempt: int) -> list[Completion | LLMError]:
    """Attempt `attempt` (0-based: the request's sample index) for each row; stops the step when the endpoint
    has answered none of its requests."""
    replies = await state.client.map_chat([messages(config, item, snippet) for item, snippet in
                                           zip(params, snippets)], samples=[attempt] * len(params),
                                          version=version(config), temperature=config.temperature,
                                          progress=state.bar, return_exceptions=True)
    answered = sum(isinstance(reply, Completion) for reply in replies)
    state.answered += answered
    if replies and not state.answered:
        error = next(reply for reply in replies if isinstance(reply, LLMError))
        raise UserError(f"synth: the model answered none of the {len(replies)} requests so far; the last error: "
                        f"{error}. Check llm.base_url, llm.model and the API key, then run the step again")
    return replies


def usage_columns(reply: Completion | LLMError, config: LLMConfig) -> dict[str, Any]:
    """The row's model, token counts and cost (nothing for a failed request or a cached answer's cost)."""
    from textbooks.llm.pricing import cost_usd, price_of

    if not isinstance(reply, Completion):
        return {"model": config.model, "prompt_tokens": 0, "completion_tokens": 0, "cost_usd": 0.0}
    cost = 0.0 if reply.cached else cost_usd(price_of(config.model, config.prices), reply.prompt_tokens,
                                             reply.completion_tokens) or 0.0
    return {"model": config.model, "prompt_tokens": reply.prompt_tokens,
            "completion_tokens": reply.completion_tokens, "cost_usd": cost}


async def in_thread(function: Any, *args: Any) -> Any:
    """A blocking call (the sandbox) off the loop, so requests keep flowing while programs run."""
    return await asyncio.to_thread(function, *args)
