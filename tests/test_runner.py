"""The runner and the dataset store: layout, markers, skip, restart, failure, engines."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from toy_stage import MinCharsConfig, MinCharsStage

from textbooks.errors import UserError
from textbooks.pipeline.executors import make_executor
from textbooks.pipeline.runner import WORK, run_step
from textbooks.store import data

TEXTS = [["a", "bbbb", "cc", "dddddd"], ["eeeee", "f"], ["gggg", "hhh", "ii"]]


def write_inputs(folder: Path) -> Path:
    if folder.exists():
        return folder
    folder.mkdir(parents=True)
    for number, texts in enumerate(TEXTS):
        lines = [json.dumps({"id": f"f{number}-{i}", "text": text}) for i, text in enumerate(texts)]
        (folder / f"input-{number}.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def run(tmp_path: Path, workers: int = 1, **settings) -> tuple[Path, list[str]]:
    messages: list[str] = []
    stage = MinCharsStage(MinCharsConfig(**settings), str(write_inputs(tmp_path / "in")))
    out = tmp_path / "out"
    run_step(stage, out, executor=make_executor("local", workers), say=messages.append)
    return out, messages


def test_dataset_layout_and_stats(tmp_path):
    out, messages = run(tmp_path, min_chars=3)
    kept = data.read_dataset(out)
    assert kept.column("text").to_pylist() == ["bbbb", "dddddd", "eeeee", "gggg", "hhh"]
    dropped = data.read_dataset(out / data.DROPPED)
    assert dropped.column("drop_reason").to_pylist() == ["too_short"] * 4
    assert sorted(dropped.column("id").to_pylist()) == ["f0-0", "f0-2", "f1-1", "f2-2"]
    stats = data.read_stats(out)
    assert (stats["rows_in"], stats["rows_out"], stats["drops"]) == (9, 5, {"too_short": 4})
    assert stats["bytes_out"] == len("bbbbddddddeeeeegggghhh")
    assert stats["bytes_in"] == stats["bytes_out"] + len("acc" "f" "ii")
    assert stats["counters"] == {"records": 9}
    assert sorted(p.name for p in out.iterdir()) == [
        "README.md", "_SUCCESS", "dropped", "part-00000.parquet", "part-00001.parquet", "part-00002.parquet",
        "stats.json"]
    marker_time = (out / data.MARKER).stat().st_mtime_ns
    assert all(path.stat().st_mtime_ns <= marker_time for path in out.rglob("*") if path.is_file())
    assert not (out / WORK).exists()
    assert messages[-1].startswith("min_chars: 9 rows in, 5 out")


def test_second_run_does_nothing(tmp_path):
    out, _ = run(tmp_path)
    before = {path: path.stat().st_mtime_ns for path in out.rglob("*")}
    _, messages = run(tmp_path)
    assert messages == [f"min_chars: done earlier ({out}), nothing to do"]
    assert {path: path.stat().st_mtime_ns for path in out.rglob("*")} == before


def test_changed_settings_run_again(tmp_path):
    run(tmp_path, min_chars=3)
    out, messages = run(tmp_path, min_chars=5)
    assert "settings or input changed" in messages[0]
    assert data.read_dataset(out).column("text").to_pylist() == ["dddddd", "eeeee"]


def test_changed_input_runs_again(tmp_path):
    out, _ = run(tmp_path)
    extra = tmp_path / "in" / "input-1.jsonl"
    extra.write_text(json.dumps({"id": "new", "text": "zzzzzz"}) + "\n")
    os.utime(extra, ns=(1, 1))
    stage = MinCharsStage(MinCharsConfig(), str(tmp_path / "in"))
    run_step(stage, out, executor=make_executor("local", 1), say=lambda _: None)
    assert "zzzzzz" in data.read_dataset(out).column("text").to_pylist()


def test_failed_task_leaves_no_finished_dataset_and_resumes(tmp_path):
    with pytest.raises(UserError, match="met 'eeeee'"):
        run(tmp_path, fail_on="eeeee")
    out = tmp_path / "out"
    assert not data.is_complete(out)
    assert (out / WORK / "map-00000.json").is_file()  # the task before the failing one is kept


KILLED_RUN = """
import sys
from toy_stage import MinCharsConfig, MinCharsStage
from textbooks.pipeline.executors import make_executor
from textbooks.pipeline.runner import run_step
run_step(MinCharsStage(MinCharsConfig(), sys.argv[1]), sys.argv[2], executor=make_executor("local", 1))
"""


def run_killed(tmp_path: Path, out: Path, point: str) -> None:
    """Run the toy stage in a fresh process that the test hook kills with SIGKILL at `point`."""
    env = {**os.environ, "TEXTBOOKS_KILL_AT": point,
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), str(Path(__file__).parents[1] / "src")])}
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN, str(write_inputs(tmp_path / "in")), str(out)],
                            env=env, capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr


def test_resume_redoes_only_unfinished_tasks(tmp_path):
    reference_out, _ = run(tmp_path)
    reference = {path.name: data.read_shard(path) for path in data.shard_paths(reference_out)}
    out = tmp_path / "killed"
    run_killed(tmp_path, out, "min_chars:map:1")  # killed right after its first task is recorded
    stage = MinCharsStage(MinCharsConfig(), str(tmp_path / "in"))
    first_shard = (out / "part-00000.parquet").stat().st_mtime_ns
    messages: list[str] = []
    run_step(stage, out, executor=make_executor("local", 1), say=messages.append)
    assert messages[0] == "min_chars: resuming, 1/3 shards done earlier"
    assert (out / "part-00000.parquet").stat().st_mtime_ns == first_shard
    assert {path.name: data.read_shard(path) for path in data.shard_paths(out)} == reference


def test_process_pool_gives_the_same_dataset(tmp_path):
    single, _ = run(tmp_path / "one", workers=1)
    pooled, _ = run(tmp_path / "two", workers=2)
    for name in ("part-00000.parquet", "part-00001.parquet", "part-00002.parquet"):
        assert data.read_shard(single / name).equals(data.read_shard(pooled / name))


def test_stage_with_no_rows_out_is_an_error(tmp_path):
    with pytest.raises(UserError, match="produced no rows .*too_short: 9"):
        run(tmp_path, min_chars=100)
    assert not data.is_complete(tmp_path / "out")


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "part-00000.parquet"
    unwritable = pa.table({"x": pa.array([(1, 2, 3)], pa.month_day_nano_interval())})  # Parquet refuses it
    with pytest.raises(pa.ArrowNotImplementedError):
        data.write_table(unwritable, target)
    assert list(tmp_path.iterdir()) == []


def test_read_dataset_refuses_unfinished_and_corrupt(tmp_path):
    folder = tmp_path / "ds"
    data.write_table(pa.table({"id": ["a"], "text": ["t"], "source": ["s"]}), folder / "part-00000.parquet")
    with pytest.raises(UserError, match="not a finished dataset"):
        data.read_dataset(folder)
    data.write_marker(folder, {"fingerprint": "x"})
    (folder / "part-00001.parquet").write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(UserError, match="part-00001.parquet: not a readable Parquet file"):
        data.read_dataset(folder)
