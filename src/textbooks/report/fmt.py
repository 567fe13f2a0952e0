"""Numbers and paths as the report prints them: thousands separators, binary byte units, "n/a" for what is
unknown, and paths relative to the run folder (a report names no folder of the machine it was written on, so
it reads the same wherever the run folder is copied)."""

from __future__ import annotations

import numbers
import os
import re
import time
from pathlib import Path
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
    if value < 1:
        return f"{1000 * value:.0f} ms"
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


def path(value: str, run_dir: Path) -> str:
    """`value` relative to the run folder when it is inside it; an absolute path outside it as `…/` and its name;
    anything else (a relative path, a hub name, `openai:MODEL`) as it is."""
    if not os.path.isabs(value):
        return value
    try:
        return Path(value).resolve().relative_to(Path(run_dir).resolve()).as_posix()
    except ValueError:
        return f"…/{Path(value).name}"


def paths_in(value: Any, run_dir: Path) -> Any:
    """`value` (settings: JSON of dicts, lists, strings) with every absolute path string shown by `path`."""
    if isinstance(value, str):
        return path(value, run_dir)
    if isinstance(value, dict):
        return {key: paths_in(item, run_dir) for key, item in value.items()}
    if isinstance(value, list):
        return [paths_in(item, run_dir) for item in value]
    return value


# An absolute path inside free text (a traceback's `File "/..."`): two or more segments after a slash that
# does not follow a word, so `a/b`, `x / y` and a URL's host are left alone.
_PATH_IN_TEXT = re.compile(r"(?<![\w.:/~-])(?:/[\w.+@-]+){2,}/?")


def paths_in_text(text: str, run_dir: Path) -> str:
    """`text` (stderr, a verdict's reason) with every absolute path in it shown by `path`."""
    return _PATH_IN_TEXT.sub(lambda match: path(match.group(0), run_dir), text)
