"""What flows through the client: a `Request`, the provider's raw response (an OpenAI-shaped dict), the
`Completion` made from it, the running `Usage`, and the errors."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from textbooks.errors import UserError

Messages = list[dict[str, Any]]


@dataclass(frozen=True)
class Request:
    """One request as sent: `kind` chat (messages) or complete (prompt), the model, the sampling parameters
    (temperature, max_tokens, stop, seed, and any other field the server takes), the sample index (sample i of
    the same prompt is a different request) and the caller's prompt-template version."""

    kind: Literal["chat", "complete"]
    model: str
    messages: Messages | None = None
    prompt: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    sample: int = 0
    version: str = ""

    def body(self) -> dict[str, Any]:
        """The JSON body of the HTTP request (OpenAI's fields)."""
        content = {"messages": self.messages} if self.kind == "chat" else {"prompt": self.prompt}
        return {"model": self.model, **content, **self.params}

    def key(self, provider: str) -> str:
        """The cache key: a hash of everything that can change the answer."""
        identity = {"provider": provider, "kind": self.kind, "body": self.body(), "sample": self.sample,
                    "version": self.version}
        return hashlib.sha256(json.dumps(identity, sort_keys=True, ensure_ascii=False).encode()).hexdigest()

    def prompt_chars(self) -> int:
        if self.kind == "chat":
            return sum(len(str(message.get("content", ""))) for message in self.messages or [])
        return len(self.prompt or "")

    def prompt_text(self) -> str:
        if self.kind == "chat":
            return "\n".join(str(message.get("content", "")) for message in self.messages or [])
        return self.prompt or ""


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str | None  # "stop", "length", ... as the server reports it
    prompt_tokens: int
    completion_tokens: int
    parsed: Any = None  # the caller's parser applied to `text` (None without a parser)
    cached: bool = False  # read from the response cache, not asked


def completion_from_raw(kind: str, raw: dict[str, Any]) -> Completion:
    """The text, finish reason and token counts of an OpenAI-shaped response (chat or completions)."""
    choice = raw["choices"][0]
    text = (choice.get("message") or {}).get("content") if kind == "chat" else choice.get("text")
    usage = raw.get("usage") or {}
    return Completion(text=text or "", finish_reason=choice.get("finish_reason"),
                      prompt_tokens=int(usage.get("prompt_tokens") or 0),
                      completion_tokens=int(usage.get("completion_tokens") or 0))


def check_raw(kind: str, raw: Any) -> None:
    """Raise ValueError unless `raw` has the shape `completion_from_raw` reads."""
    try:
        completion_from_raw(kind, raw)
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as error:
        raise ValueError(f"response without choices[0] ({type(error).__name__}: {error})") from None


@dataclass
class Usage:
    """Running totals for one client: requests answered by the provider, cache hits, retries, failed requests,
    tokens of the answered requests and their cost (US dollars; 0 when the model has no price)."""

    requests: int = 0
    cached: int = 0
    retries: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


class LLMError(UserError):
    """A request the server refused (4xx) or kept failing (after every retry); says which and why."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # HTTP status of the last attempt, None for timeouts and connection errors


class ProviderError(Exception):
    """One failed attempt, as a provider reports it: whether a retry can fix it, and the wait the server asked."""

    def __init__(self, message: str, status: int | None = None, retryable: bool = True,
                 retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status, self.retryable, self.retry_after_s = status, retryable, retry_after_s
