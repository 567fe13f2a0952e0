"""`LLMConfig`, the settings of one client, usable as a nested `llm:` block in a step's config; and the API key.

The key is read from the environment variable the config names, when the client is made, and is held only by
the provider that sends it: it is not a config field, so it is in no repr, fingerprint, cache row or stats file.
"""

from __future__ import annotations

import ipaddress
import os
from typing import Literal
from urllib.parse import urlparse

from pydantic import BaseModel, ConfigDict, Field, field_validator

from textbooks.errors import UserError

OPENAI_BASE_URL = "https://api.openai.com/v1"
LOCAL_API_KEY = "EMPTY"  # local servers (vLLM, llama.cpp, Ollama) ignore the key, but the SDK wants one


def _default_base_url() -> str:
    return os.environ.get("OPENAI_BASE_URL") or OPENAI_BASE_URL


class Price(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: float = Field(ge=0, description="US dollars per million prompt tokens.")
    output: float = Field(ge=0, description="US dollars per million generated tokens.")


class LLMConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Model name as the server knows it (e.g. gpt-4o), or, for the transformers and "
                                   "vllm providers, a model folder or hub name.")
    provider: Literal["openai", "transformers", "vllm"] = Field(
        "openai", description="openai: any OpenAI-compatible server; transformers: a local model run here; vllm: "
                              "vLLM's offline engine in this process.")
    base_url: str = Field(default_factory=_default_base_url,
                          description="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL, else OpenAI's).")
    api_key_env: str = Field("OPENAI_API_KEY", description="Environment variable that holds the API key.")
    concurrency: int = Field(8, ge=1, description="Requests in flight at once.")
    requests_per_minute: float | None = Field(None, gt=0, description="Most requests started per minute (None: no "
                                                                       "limit).")
    tokens_per_minute: float | None = Field(None, gt=0, description="Most tokens per minute, counted before sending "
                                                                     "as prompt characters/4 + max_tokens (None: no "
                                                                     "limit).")
    max_retries: int = Field(5, ge=0, description="Retries of a request after 429, 5xx, timeout or lost connection.")
    retry_base_s: float = Field(1.0, gt=0, description="First back-off delay in seconds; doubles on each retry.")
    retry_max_s: float = Field(60.0, gt=0, description="Longest wait between retries, Retry-After included.")
    timeout_s: float = Field(120.0, gt=0, description="Seconds to wait for one response before retrying.")
    temperature: float = Field(0.0, ge=0, description="Sampling temperature (0: greedy).")
    max_tokens: int = Field(1024, ge=1, description="Most tokens to generate per request.")
    seed: int = Field(0, description="Base sampling seed: at temperature > 0, sample i of a prompt is sent with "
                                     "seed + i, where the provider takes a seed.")
    cache: bool | None = Field(None, description="Keep every raw response in a persistent SQLite cache, so that a "
                                                  "rerun (or a killed run resumed) sends only what was never "
                                                  "answered. Unset: on in the dataset steps that ask a model "
                                                  "(annotate, synth), off elsewhere.")
    cache_path: str | None = Field(None, description="The cache file (default: the textbooks cache folder's "
                                                      "llm/responses.sqlite).")
    batch: bool = Field(False, description="Send through the provider's batch API (OpenAI-style /v1/files and "
                                           "/v1/batches), polled; resumed by the batch id kept in the cache.")
    batch_poll_s: float = Field(30.0, gt=0, description="Seconds between polls of a running batch.")
    prices: dict[str, Price] = Field(default_factory=dict,
                                     description="US dollars per million tokens by model, e.g. {gpt-4o: {input: "
                                                 "2.5, output: 10}}; added to the built-in table.")
    device: str = Field("cpu", description="transformers provider: the device to run the model on.")
    batch_size: int = Field(8, ge=1, description="transformers provider: requests decoded together.")

    @field_validator("base_url", mode="before")
    @classmethod
    def _base_url_or_default(cls, value: str | None) -> str:
        return _default_base_url() if value is None else value


def cached_unless_set(config: LLMConfig) -> LLMConfig:
    """`config` with the response cache on, unless the recipe or a flag turned it off: what a step that asks
    thousands of paid requests wants by default."""
    return config if config.cache is not None else config.model_copy(update={"cache": True})


def is_loopback_url(url: str) -> bool:
    """Whether `url` points at this machine (localhost, 127.x.x.x, ::1)."""
    host = urlparse(url).hostname or ""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve_api_key(config: LLMConfig) -> str:
    """The key from `config.api_key_env`; a placeholder for a loopback server; else a UserError."""
    key = os.environ.get(config.api_key_env)
    if key:
        return key
    if is_loopback_url(config.base_url):
        return LOCAL_API_KEY
    raise UserError(f"no API key for {config.base_url}: set the environment variable {config.api_key_env} "
                    f"(or point base_url at a local server, which needs no key)")
