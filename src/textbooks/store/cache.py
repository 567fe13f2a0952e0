"""The one place caches live: `$TEXTBOOKS_CACHE`, else `$XDG_CACHE_HOME/textbooks`, else `~/.cache/textbooks`.

    cache_dir("reference")     # the judge's reference outputs
    cache_dir("benchmarks")    # downloaded benchmark files

Everything under it can be deleted at any time: it is made again when needed.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "TEXTBOOKS_CACHE"


def cache_dir(*parts: str) -> Path:
    """The cache folder for `parts` (not created: writers create what they write)."""
    root = os.environ.get(ENV_VAR)
    if root:
        base = Path(root)
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "textbooks"
    return base.joinpath(*parts)
