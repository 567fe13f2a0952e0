"""A test hook: kill the process with SIGKILL at a named point, so tests can kill a run where they mean to.

    TEXTBOOKS_KILL_AT=dedup:map:3 textbooks dedup ...   # killed right after its third map record is written

Points are `STEP:PHASE[:COUNT]` (COUNT defaults to 1), counted in the process that reaches them: run the step
on one worker for an exact count. The phases are those the runner and the steps record: `map`, `reduce`,
`apply` (dataset stages), `encode` (tokenize: one input part tokenized), `generate` (eval: one batch of
completions), `best` and `checkpoint` (train: a folder written, not yet renamed into place). One more point
kills a write half-way: `write:NAME` (`textbooks.store.atomic`: the temporary of file NAME is written, not yet
renamed). Nothing happens when the variable is unset.
"""

from __future__ import annotations

import os
import signal
from collections import Counter

ENV_VAR = "TEXTBOOKS_KILL_AT"
_reached: Counter[tuple[str, str]] = Counter()


def reached(step: str, phase: str) -> None:
    """Count a point; SIGKILL this process when it is the one `TEXTBOOKS_KILL_AT` names."""
    spec = os.environ.get(ENV_VAR)
    if not spec:
        return
    name, _, rest = spec.partition(":")
    wanted_phase, _, count = rest.partition(":")
    if (name, wanted_phase) != (step, phase):
        return
    _reached[step, phase] += 1
    if _reached[step, phase] >= int(count or 1):
        os.kill(os.getpid(), signal.SIGKILL)
