"""Every LLM call of the project goes through here (DESIGN.md, principle 5).

    config.py      LLMConfig (a step's `llm:` block) and the API key
    types.py       Request, Completion, Usage, LLMError
    providers/     openai (any OpenAI-compatible server), transformers, vllm: one file each behind `Provider`
    cache.py       the persistent response cache (SQLite, WAL): resume for free, re-parse without re-asking
    limits.py      request and token rates (the concurrency limit is pipeline/executors/limits.py's `Limiter`)
    retry.py       back-off and Retry-After
    pricing.py     cost from a price table, and the dry-run estimate
    client.py      LLMClient: the above in front of one provider
"""

from textbooks.llm.client import LLMClient
from textbooks.llm.config import LLMConfig, Price, is_loopback_url, resolve_api_key
from textbooks.llm.pricing import Estimate
from textbooks.llm.types import Completion, LLMError, Messages, Request, Usage

__all__ = ["Completion", "Estimate", "LLMClient", "LLMConfig", "LLMError", "Messages", "Price", "Request", "Usage",
           "is_loopback_url", "resolve_api_key"]
