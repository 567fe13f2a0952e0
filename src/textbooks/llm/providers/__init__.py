"""The backends behind the client, one small file each behind `Provider` (base.py):

    openai.py        any OpenAI-compatible HTTP server, through the `openai` SDK (chat, completions, batches)
    transformers.py  a transformers causal LM run in this process (a folder or hub name)
    vllm.py          vLLM's offline engine in this process (when vLLM is installed)

`make_provider(config, api_key)` builds the one `config.provider` names; each is imported only when used.
"""

from __future__ import annotations

from textbooks.llm.config import LLMConfig
from textbooks.llm.providers.base import Provider


def make_provider(config: LLMConfig, api_key: str) -> Provider:
    if config.provider == "openai":
        from textbooks.llm.providers.openai import OpenAIProvider

        return OpenAIProvider(config, api_key)
    if config.provider == "transformers":
        from textbooks.llm.providers.transformers import TransformersProvider

        return TransformersProvider(config)
    from textbooks.llm.providers.vllm import VLLMProvider

    return VLLMProvider(config)


__all__ = ["Provider", "make_provider"]
