"""Exact duplicates: a hash of the text after normalising what never changes meaning.

Normalisation: line endings to `\\n`, trailing white space of each line dropped, runs of blank lines folded
to one, leading and trailing blank lines dropped. Two documents with the same `normalized_hash` are exact
duplicates; the first one (in dataset order) is kept.
"""

from __future__ import annotations

import hashlib
import re

_BLANK_RUNS = re.compile(r"\n{3,}")


def normalize(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    folded = "\n".join(line.rstrip() for line in lines)
    return _BLANK_RUNS.sub("\n\n", folded).strip("\n")


def normalized_hash(text: str) -> str:
    """128-bit BLAKE2b of the normalised text, as 32 hex characters."""
    return hashlib.blake2b(normalize(text).encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
