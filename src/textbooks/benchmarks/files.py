"""Where files come from: `benchmarks_dir`, else the folder in `$TEXTBOOKS_BENCHMARKS` (laid out like
`shared/benchmarks`, or holding snapshots of the hub datasets: `HUB_FILES`), else a download. `humaneval` and
`mbpp` come from the Hugging Face hub
(`openai/openai_humaneval`; `google-research-datasets/mbpp`, config `full`; split `test`, same field names as the
files). The hub copies of EvalPlus (`evalplus/humanevalplus`, `evalplus/mbppplus`) have no `base_input`,
`plus_input` or `atol` (their inputs are baked into test code), so `humaneval+` and `mbpp+` come from the
release assets evalplus itself downloads, checked against the sha256 in `_RELEASES` and kept in
`textbooks.store.cache.cache_dir("benchmarks")`, never in the project. With `HF_HUB_OFFLINE` or
`HF_DATASETS_OFFLINE` set nothing is downloaded and a missing file is a `UserError`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import urllib.request
from pathlib import Path

from textbooks.errors import UserError
from textbooks.store.atomic import write_bytes
from textbooks.store.cache import cache_dir

ENV_VAR = "TEXTBOOKS_BENCHMARKS"
FILES = {
    "humaneval": "HumanEval.jsonl.gz",
    "mbpp": "mbpp.jsonl",
    "humaneval+": "HumanEvalPlus-v0.1.10.jsonl.gz",
    "mbpp+": "MbppPlus-v0.2.0.jsonl.gz",
}
# Release assets (url, sha256 of the uncompressed JSON Lines), as pinned in shared/benchmarks/README.md.
_RELEASES = {
    "humaneval+": (
        "https://github.com/evalplus/humanevalplus_release/releases/download/v0.1.10/HumanEvalPlus.jsonl.gz",
        "42526ec0e7d5f3ee0b06d6ced98f8c8bae3d76519151bfb3d36f79010645bd7f",
    ),
    "mbpp+": (
        "https://github.com/evalplus/mbppplus_release/releases/download/v0.2.0/MbppPlus.jsonl.gz",
        "b54e762755248ca411b523c917fa9f93c07b5ff2966bf60b3917b853926a3dad",
    ),
}
_HUB = {"humaneval": ("openai/openai_humaneval", None), "mbpp": ("google-research-datasets/mbpp", "full")}
# The test split's Parquet files in a snapshot of the hub dataset repository, under the folder (what
# `huggingface-cli download --repo-type dataset REPO --local-dir FOLDER/REPO` writes), read when the file is absent.
HUB_FILES = {"humaneval": "openai/openai_humaneval/openai_humaneval/test-*.parquet",
             "mbpp": "google-research-datasets/mbpp/full/test-*.parquet"}


def local_path(name: str, benchmarks_dir: str | Path | None) -> Path | None:
    """The file (or hub snapshot) of `name` in the benchmarks folder, or None when it is not there."""
    folder = benchmarks_dir if benchmarks_dir is not None else os.environ.get(ENV_VAR)
    if not folder or name not in FILES:
        return None
    if (Path(folder) / FILES[name]).is_file():
        return Path(folder) / FILES[name]
    snapshot = sorted(Path(folder).glob(HUB_FILES[name])) if name in HUB_FILES else []
    return snapshot[0] if snapshot else None


def records(name: str, benchmarks_dir: str | Path | None) -> list[dict]:
    """The raw records of `name`: from the folder, else the download cache, else a download."""
    file_name = FILES[name]
    folder = benchmarks_dir if benchmarks_dir is not None else os.environ.get(ENV_VAR)
    candidates = [Path(folder) / file_name] if folder else []
    if name in _RELEASES:
        candidates.append(cache_dir("benchmarks") / file_name)
    for path in candidates:
        if path.is_file():
            return parse_jsonl(_read_text(path))
    snapshot = sorted(Path(folder).glob(HUB_FILES[name])) if folder and name in HUB_FILES else []
    if snapshot:
        import pyarrow.parquet as pq

        return [row for path in snapshot for row in pq.read_table(path).to_pylist()]
    try:
        return _download(name)
    except Exception as error:  # offline, hub or HTTP failure: datasets and urllib raise many error types
        where = f"folder {folder}" if folder else f"no folder (benchmarks_dir not given, {ENV_VAR} not set)"
        raise UserError(
            f"benchmark {name!r}: {file_name} was not found in {where}, and downloading it failed ({error}). "
            f"Set {ENV_VAR} to a folder holding {file_name} (laid out like shared/benchmarks) or pass "
            "benchmarks_dir; or run once with network access."
        ) from error


def _read_text(path: Path) -> str:
    if path.suffix == ".gz":
        return gzip.decompress(path.read_bytes()).decode("utf-8")
    return path.read_text(encoding="utf-8")


def parse_jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _download(name: str) -> list[dict]:
    from textbooks.store import hub

    offline = hub.prepare() if name in _HUB else ("offline mode is set" if hub.offline_by_choice() else None)
    if offline:  # at once, not after the retries of a lookup that cannot succeed
        raise ConnectionError(offline)
    if name in _HUB:
        import datasets  # slow to import and only needed without local files

        dataset, config = _HUB[name]
        return [dict(row) for row in datasets.load_dataset(dataset, config, split="test")]
    url, sha256 = _RELEASES[name]
    with urllib.request.urlopen(url, timeout=120) as response:
        packed = response.read()
    text = gzip.decompress(packed)
    if hashlib.sha256(text).hexdigest() != sha256:
        raise ValueError(f"{url} is not the expected release (sha256 of its content is not {sha256})")
    write_bytes(packed, cache_dir("benchmarks") / FILES[name])
    return parse_jsonl(text.decode("utf-8"))
