"""Every LLM call of the project goes through here (DESIGN.md, principle 5).

`LLMClient` talks to any OpenAI-compatible server (OpenAI, vLLM, llama.cpp, Ollama, TGI) with a concurrency
limit, visible retries and token accounting; see client.py.
"""

from textbooks.llm.client import (
    Completion,
    LLMClient,
    LLMConfig,
    LLMError,
    Messages,
    Usage,
    is_loopback_url,
)

__all__ = ["Completion", "LLMClient", "LLMConfig", "LLMError", "Messages", "Usage", "is_loopback_url"]
