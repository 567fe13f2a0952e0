"""Listing the files of a folder with include/exclude globs, the same way on every machine.

Globs match the whole path relative to the folder, with `/` as separator: `*` and `?` stay inside one folder
name, `**` spans any number of folders (none included), so `**/*.py` matches `os.py` and `json/decoder.py`
while `json/*.py` matches only the files directly in `json/`. The listing is sorted, so tasks cut from it are
the same whichever process makes them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator

# The stdlib's own test suites and third-party packages are not "the standard library": leave them out.
DEFAULT_EXCLUDE = ["**/site-packages/**", "**/dist-packages/**",
                   "**/test/**", "**/tests/**", "**/idle_test/**"]


def _translate_name(pattern: str) -> str:
    """Regex for one folder or file name: `*` and `?` never cross a `/`."""
    out, index = [], 0
    while index < len(pattern):
        char = pattern[index]
        index += 1
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and (end := pattern.find("]", index + 1)) != -1:
            body = pattern[index:end]  # searched from index + 1 so that `[]]` is a class holding `]`
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body).replace("\\", "\\\\") + "]")
            index = end + 1
        else:
            out.append(re.escape(char))
    return "".join(out)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a glob (see the module docstring) into a regex that must match a whole relative path."""
    parts = pattern.removeprefix("./").strip("/").split("/")
    out = []
    for position, part in enumerate(parts):
        last = position == len(parts) - 1
        if part == "**":
            out.append(".*" if last else "(?:[^/]+/)*")
        else:
            out.append(_translate_name(part) + ("" if last else "/"))
    return re.compile("".join(out))


class GlobFilter:
    """Decides which relative paths are in: matched by an include glob and by no exclude glob."""

    def __init__(self, include: list[str], exclude: list[str]) -> None:
        self.include = [glob_regex(pattern) for pattern in include]
        self.exclude = [glob_regex(pattern) for pattern in exclude]
        # An exclude glob ending in `/**` removes whole folders, which are then not walked at all
        # (the stdlib's site-packages holds ten times more files than the stdlib itself).
        self.exclude_folders = [glob_regex(pattern[:-3]) for pattern in exclude if pattern.endswith("/**")]

    def wants(self, relpath: str) -> bool:
        return (any(regex.fullmatch(relpath) for regex in self.include)
                and not any(regex.fullmatch(relpath) for regex in self.exclude))

    def skips_folder(self, relpath: str) -> bool:
        return any(regex.fullmatch(relpath) for regex in self.exclude_folders)


def list_files(root: Path, include: list[str], exclude: list[str]) -> list[str]:
    """Relative POSIX paths of the regular files under `root` that the globs select, sorted."""
    globs = GlobFilter(include, exclude)
    return sorted(relpath for relpath in _walk(root, globs) if globs.wants(relpath))


def _walk(root: Path, globs: GlobFilter) -> Iterator[str]:
    for folder, subfolders, names in os.walk(root):
        relfolder = Path(folder).relative_to(root).as_posix()
        prefix = "" if relfolder == "." else relfolder + "/"
        subfolders[:] = [name for name in subfolders if not globs.skips_folder(prefix + name)]
        for name in names:
            if os.path.isfile(os.path.join(folder, name)):
                yield prefix + name
