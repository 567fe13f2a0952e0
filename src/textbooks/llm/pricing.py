"""Cost of tokens from a price table, and the dry-run estimate of a set of requests before anything is sent.

    estimate = client.estimate_chat(conversations)    # Estimate(requests=..., prompt_tokens=..., cost_usd=...)

Prices are US dollars per million tokens. `PRICES` holds a few list prices (OpenAI's, as published in 2024:
check them before trusting a figure); a config's `prices` adds to it or overrides it. A model without a price
costs None in an estimate and 0 in the running totals.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from textbooks.llm.config import Price
from textbooks.llm.types import Request

PRICES: dict[str, Price] = {
    "gpt-4o": Price(input=2.5, output=10.0),
    "gpt-4o-mini": Price(input=0.15, output=0.6),
}


def price_of(model: str, prices: Mapping[str, Price]) -> Price | None:
    """The price of `model`: the config's table first, then `PRICES`."""
    return prices.get(model) or PRICES.get(model)


def cost_usd(price: Price | None, prompt_tokens: int, completion_tokens: int) -> float | None:
    if price is None:
        return None
    return (prompt_tokens * price.input + completion_tokens * price.output) / 1e6


def characters_over_4(text: str) -> int:
    """The token estimate without a tokenizer: about four characters a token for English and code."""
    return (len(text) + 3) // 4


@dataclass(frozen=True)
class Estimate:
    """What a run would send: requests not yet in the cache, their prompt tokens, the most output tokens they
    may generate, and the most they may cost (None: no price for the model)."""

    requests: int
    cached: int
    prompt_tokens: int
    max_output_tokens: int
    cost_usd: float | None


def estimate(requests: Sequence[Request], cached: Sequence[bool], prices: Mapping[str, Price],
             count_tokens: Callable[[str], int] = characters_over_4) -> Estimate:
    """The estimate for `requests`, of which those flagged in `cached` would not be sent."""
    to_send = [request for request, hit in zip(requests, cached) if not hit]
    prompt_tokens = sum(count_tokens(request.prompt_text()) for request in to_send)
    max_output = sum(int(request.params.get("max_tokens") or 0) for request in to_send)
    costs = [cost_usd(price_of(request.model, prices), count_tokens(request.prompt_text()),
                      int(request.params.get("max_tokens") or 0)) for request in to_send]
    total = None if any(cost is None for cost in costs) else sum(c for c in costs if c is not None)
    return Estimate(requests=len(to_send), cached=len(requests) - len(to_send), prompt_tokens=prompt_tokens,
                    max_output_tokens=max_output, cost_usd=total)
