"""Errors a user can act on.

A `UserError` is printed as one message without a traceback and ends the CLI with exit code 2. Raise it for
anything that is the input's fault (a bad recipe key, a missing file, a corrupt shard), with a message that
says what was wrong, where, and what to do.

`filesystem_problem(error, out)` turns what the file system refused (a read-only folder, a full disk, a file
where a folder should be) into such a message, wherever in a step it happened: the CLI asks it about every
error that is not a `UserError` before letting a traceback through.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path


class UserError(Exception):
    """A problem with the user's input or settings, reported without a traceback (exit code 2)."""


class EndedEarly(Exception):
    """A step that did what was asked and stops before making anything (a dry run's estimate): the CLI prints
    the message and exits 0; no marker is written, so the step is not done."""


# What the file system says when it will not take a write, and what the user can do about it.
_WRITE_ERRORS = {
    errno.ENOSPC: "free some space or choose another output folder",
    errno.EDQUOT: "free some space or choose another output folder",
    errno.EROFS: "choose an output folder on a writable file system",
    errno.EACCES: "choose another output folder or make this one writable",
    errno.EPERM: "choose another output folder or make this one writable",
    errno.ENOTDIR: "a file stands where a folder is needed; choose another output folder",
    errno.EISDIR: "a folder stands where a file is needed; choose another output folder",
    errno.ENAMETOOLONG: "choose a shorter output path",
}
# Below this many free bytes a failed write is taken to be the disk filling up (torch reports it as a
# RuntimeError without errno or cause; `textbooks.store.atomic` names it when the write is its own).
FULL_BYTES = 1 << 20


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    while error is not None and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def _existing(path: Path) -> Path | None:
    for folder in [path, *path.parents]:
        if folder.exists():
            return folder
    return None


def filesystem_problem(error: BaseException, out: Path | None = None) -> str | None:
    """One line naming the path and the cause when `error` (or one it was raised from) is the file system
    refusing a write; None when it is something else."""
    for cause in _chain(error):
        if isinstance(cause, OSError) and cause.errno in _WRITE_ERRORS:
            path = cause.filename or out or "the output folder"
            return f"cannot write {path}: {os.strerror(cause.errno)}; {_WRITE_ERRORS[cause.errno]}"
        if os.strerror(errno.ENOSPC) in str(cause):  # pyarrow's IOError, safetensors' error: no errno
            return f"cannot write {out or 'the output folder'}: {os.strerror(errno.ENOSPC)}; " \
                   f"{_WRITE_ERRORS[errno.ENOSPC]}"
    if out is not None:
        folder = _existing(Path(out))
        if folder is not None and shutil.disk_usage(folder).free < FULL_BYTES:
            said = (str(error).strip().splitlines() or [""])[0][:200]
            return (f"cannot write {out}: {os.strerror(errno.ENOSPC)} ({type(error).__name__}: {said}); "
                    f"{_WRITE_ERRORS[errno.ENOSPC]}")
    return None
