"""What identifies a step's work: its fingerprint, and the content identity of what it reads.

The fingerprint of a step is a digest of its parts:

    {"format": FORMAT_VERSION, "step": "dedup", "version": 1,
     "settings": {...every setting but the unfingerprinted ones, references as written...},
     "input": <content identity of the input>, "refs": {"mixture.0.input": <content identity>, ...}}

The parts are kept in `.work/fingerprint.json` and in the `_SUCCESS` marker, so that when the fingerprint
differs the runner can say what changed (`changes`).

A content identity is cheap and never stale: a finished step folder is identified by its marker (its own
fingerprint and when it finished: a folder made again is new content), any other folder by the path, size and
modification time of every file in it, a file by its own, a glob by the files it matches, and anything else
(a hub name, `openai:MODEL`, `train`) by its text.
"""

from __future__ import annotations

import glob
import hashlib
import json
from pathlib import Path
from typing import Any

from textbooks.store import data

FORMAT_VERSION = 2
HF_PREFIX = "hf:"


def digest(value: Any) -> str:
    """A short stable hash of a JSON-able value."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _files_digest(paths: list[Path], root: Path | None = None) -> dict:
    hasher = hashlib.sha256()
    for path in paths:
        stat = path.stat()
        name = str(path.relative_to(root)) if root else str(path.resolve())
        hasher.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode("utf-8", "surrogateescape"))
    return {"files": len(paths), "content": hasher.hexdigest()[:16]}


def step_identity(marker: dict) -> dict:
    """The identity of a finished step folder, from its marker."""
    return {"step": marker.get("stage"), "fingerprint": marker.get("fingerprint"), "finished": marker.get("finished")}


def content_identity(target: str | Path) -> Any:
    """See the module docstring; `hf:PATH` is identified by PATH when it is local."""
    text = str(target)
    local = text[len(HF_PREFIX):] if text.startswith(HF_PREFIX) else text
    path = Path(local).expanduser()
    if path.is_dir():
        marker = data.read_marker(path)
        if marker is not None and "fingerprint" in marker:
            return step_identity(marker)
        files = sorted(item for item in path.rglob("*") if item.is_file())
        return {"folder": str(path.resolve()), **_files_digest(files, path)}
    if path.is_file():
        stat = path.stat()
        return {"file": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if any(char in local for char in "*?["):
        matched = sorted(Path(item) for item in glob.glob(local, recursive=True) if Path(item).is_file())
        return {"glob": local, **_files_digest(matched)}
    return {"name": text}


def fingerprint_parts(step_name: str, version: int, settings: dict, input_identity: Any, refs: dict) -> dict:
    return {"format": FORMAT_VERSION, "step": step_name, "version": version, "settings": settings,
            "input": input_identity, "refs": refs}


def changes(before: dict | None, now: dict) -> list[str]:
    """What differs between two sets of fingerprint parts, in words (`key: old -> new`, `input changed`)."""
    if not before:
        return ["made by an older version of textbooks"]
    found = []
    if before.get("format") != now.get("format") or before.get("step") != now.get("step"):
        return [f"made by {before.get('step')} (fingerprint format {before.get('format')})"]
    if before.get("version") != now.get("version"):
        found.append(f"step version {before.get('version')} -> {now.get('version')}")
    old, new = before.get("settings", {}), now.get("settings", {})
    for key in sorted(set(old) | set(new)):
        if old.get(key) != new.get(key):
            found.append(f"{key}: {old.get(key)!r} -> {new.get(key)!r}")
    if before.get("input") != now.get("input"):
        found.append("its input changed")
    old_refs, new_refs = before.get("refs", {}), now.get("refs", {})
    for key in sorted(set(old_refs) | set(new_refs)):
        if old_refs.get(key) != new_refs.get(key):
            found.append(f"what {key} refers to changed")
    return found or ["fingerprint differs"]
