"""Shared test set-up: benchmark data location and small helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pytest

from textbooks.store import data

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TEXTBOOKS_BENCHMARKS", str(ROOT.parent / "shared" / "benchmarks"))


def dataset_rows(folder: Path) -> list[dict]:
    """Every row of a finished dataset and of its dropped/ part, in shard order, for exact comparisons."""
    rows = [dict(row, _part="kept") for row in data.read_dataset(folder).to_pylist()]
    dropped = folder / data.DROPPED
    if data.is_complete(dropped):
        rows += [dict(row, _part="dropped") for row in data.read_dataset(dropped).to_pylist()]
    return rows


def shard_tables(folder: Path) -> dict[str, pa.Table]:
    """Each shard file of a dataset (kept and dropped) by relative name."""
    return {str(path.relative_to(folder)): data.read_shard(path)
            for path in sorted(folder.rglob(data.SHARD_GLOB))}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `slow` skip unless TEXTBOOKS_SLOW=1 (the default suite must stay under 15 minutes on 2 cores)."""
    if os.environ.get("TEXTBOOKS_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="slow: set TEXTBOOKS_SLOW=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def repo_root() -> Path:
    return ROOT


@pytest.fixture(scope="module")
def sandbox():
    """A sandbox of two workers, shared by a module's tests (the judge's, EvalPlus parity)."""
    from textbooks.sandbox import Sandbox

    with Sandbox(workers=2) as box:
        yield box


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A module's own reference-output cache, so that no test reads another run's records."""
    return tmp_path_factory.mktemp("reference")
