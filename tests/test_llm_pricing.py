"""Token and cost accounting of textbooks.llm, the dry-run estimate, and LLMConfig as a step's `llm:` block."""

from __future__ import annotations

from pathlib import Path

import pytest
from llm_server import FakeLLMServer, llm_server_fixture  # noqa: F401  (fixture `llm_server`)
from pydantic import BaseModel, ValidationError

from textbooks.llm import LLMClient, LLMConfig
from textbooks.llm.pricing import PRICES


def test_the_estimate_counts_before_sending_and_skips_what_is_cached(llm_server: FakeLLMServer,
                                                                      tmp_path: Path) -> None:
    config = LLMConfig(model="priced", base_url=llm_server.url, max_tokens=100, cache=True,
                       cache_path=str(tmp_path / "c.sqlite"), prices={"priced": {"input": 2.0, "output": 8.0}})
    client = LLMClient(config)
    prompts = ["a" * 40, "b" * 80, "c" * 3]

    estimate = client.estimate_complete(prompts)
    assert (estimate.requests, estimate.cached, estimate.prompt_tokens) == (3, 0, 10 + 20 + 1)
    assert estimate.max_output_tokens == 300
    assert estimate.cost_usd == pytest.approx((31 * 2.0 + 300 * 8.0) / 1e6)
    assert llm_server.requests == []  # nothing sent

    client.complete_many(prompts[:1], progress=False)
    after = client.estimate_complete(prompts, tokenizer=lambda text: 1)  # any token counter
    assert (after.requests, after.cached, after.prompt_tokens, after.max_output_tokens) == (2, 1, 2, 200)
    unpriced = LLMClient(LLMConfig(model="no-price", base_url=llm_server.url)).estimate_complete(prompts)
    assert unpriced.cost_usd is None and "gpt-4o" in PRICES


def test_spend_is_counted_from_the_server_usage(llm_server: FakeLLMServer) -> None:
    client = LLMClient(LLMConfig(model="gpt-4o", base_url=llm_server.url, prices={"gpt-4o": {"input": 1e6,
                                                                                             "output": 2e6}}))
    client.complete_many(["one two", "three"], progress=True)  # echo: 3 + 2 prompt words, 3 + 2 reply words
    assert (client.usage.prompt_tokens, client.usage.completion_tokens) == (3, 5)
    assert client.usage.cost_usd == pytest.approx(3 * 1.0 + 5 * 2.0)


class StepConfig(BaseModel):
    llm: LLMConfig


def test_llm_config_is_a_strict_documented_nested_block() -> None:
    step = StepConfig.model_validate({"llm": {"model": "gpt-4o", "requests_per_minute": 100,
                                              "prices": {"gpt-4o": {"input": 2.5, "output": 10}}}})
    assert step.llm.prices["gpt-4o"].output == 10
    with pytest.raises(ValidationError, match="api_key"):
        StepConfig.model_validate({"llm": {"model": "m", "api_key": "sk-..."}})  # keys never in settings
    assert all(field.description for field in LLMConfig.model_fields.values())
