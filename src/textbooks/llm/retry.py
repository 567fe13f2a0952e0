"""Back-off between retries: exponential with jitter, or exactly the server's `Retry-After`."""

from __future__ import annotations

import random
import time
from email.utils import parsedate_to_datetime
from typing import Any


def backoff_delay(attempt: int, base_s: float, max_s: float) -> float:
    """Seconds to wait before retry number `attempt` (0-based): base * 2**attempt, capped, times a jitter in
    [0.5, 1] so that many clients refused at once do not all come back at once."""
    return min(max_s, base_s * 2**attempt) * random.uniform(0.5, 1.0)


def retry_after_s(headers: Any) -> float | None:
    """The server's requested wait, from `retry-after-ms` (OpenAI) or `Retry-After` (seconds or HTTP date)."""
    if value := headers.get("retry-after-ms"):
        try:
            return max(0.0, float(value) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None
