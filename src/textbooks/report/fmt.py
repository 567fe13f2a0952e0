"""Numbers as the report prints them: thousands separators, binary byte units, "n/a" for what is unknown."""

from __future__ import annotations

import numbers
import time
from typing import Any

UNKNOWN = "n/a"


def count(value: Any) -> str:
    return f"{int(value):,}" if isinstance(value, numbers.Real) else UNKNOWN


def size(value: Any) -> str:
    if not isinstance(value, numbers.Real):
        return UNKNOWN
    if abs(value) < 1024:
        return f"{int(value)} B"
    amount = float(value)
    for unit in ("KiB", "MiB", "GiB"):
        amount /= 1024
        if abs(amount) < 1024:
            return f"{amount:.1f} {unit}"
    return f"{amount / 1024:.1f} TiB"


def seconds(value: Any) -> str:
    if not isinstance(value, numbers.Real):
        return UNKNOWN
    if value < 60:
        return f"{value:.1f} s"
    minutes, rest = divmod(int(round(value)), 60)
    return f"{minutes // 60}h {minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m {rest:02d}s"


def percent(part: Any, whole: Any) -> str:
    if not isinstance(part, numbers.Real) or not isinstance(whole, numbers.Real) or not whole:
        return UNKNOWN
    return f"{100 * part / whole:.1f}%"


def when(unix_time: Any) -> str:
    if not isinstance(unix_time, numbers.Real):
        return UNKNOWN
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(unix_time))
