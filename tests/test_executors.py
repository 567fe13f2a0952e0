"""Executors chosen per step: the async executor holds one limit for a whole step; Ray places tasks by resources
and runs a stage's setup once per worker."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import shard_tables
from llm_server import llm_server_fixture  # noqa: F401  (the `llm_server` fixture)
from planted import word_corpus
from toy_stage import AskConfig, AskStage, PlacedConfig, PlacedStage

from textbooks.dedup.config import DedupConfig
from textbooks.dedup.stage import DedupStage
from textbooks.pipeline.executors import make_executor
from textbooks.pipeline.executors.base import ExecutorSettings
from textbooks.pipeline.runner import run_step, step_executor
from textbooks.store import data


def test_an_async_step_keeps_one_concurrency_limit_for_all_its_tasks(tmp_path: Path, llm_server) -> None:
    def slow_echo(body: dict) -> str:
        time.sleep(0.05)  # longer than the client takes to start 16 requests, even on a loaded machine
        return "answer to " + body["prompt"]

    llm_server.reply = slow_echo
    prompts = [f"question {number}" for number in range(400)]
    for part in range(4):  # four tasks, all on the step's one event loop
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / f"part-{part}.jsonl").write_text("".join(
            json.dumps({"id": f"q{number}", "text": prompts[number]}) + "\n" for number in range(part, 400, 4)))
    settings = step_executor(AskStage, ExecutorSettings(name="process"), ExecutorSettings(concurrency=16))
    executor = make_executor(settings)
    assert executor.name == "async"  # the stage declares it; the recipe's engine is only the default
    out = tmp_path / "answers"
    run_step(AskStage(AskConfig(base_url=llm_server.url), str(tmp_path / "in")), out, executor=executor,
             say=lambda message: None)

    asked = Counter(request.body["prompt"] for request in llm_server.requests)
    assert len(llm_server.requests) == 400 and set(asked.values()) == {1} and set(asked) == set(prompts)
    assert 8 <= llm_server.max_in_flight <= 16
    rows = data.read_dataset(out).to_pylist()
    assert sorted(row["answer"] for row in rows) == sorted("answer to " + prompt for prompt in prompts)
    assert data.read_stats(out)["engine"] == "async" and data.read_stats(out)["counters"]["requests"] == 400


def test_an_async_stage_makes_the_same_dataset_on_a_process_pool(tmp_path: Path, llm_server) -> None:
    (tmp_path / "in").mkdir()
    for part in range(3):
        rows = [{"id": f"q{part}-{number}", "text": f"question {part}.{number}"} for number in range(10)]
        (tmp_path / "in" / f"part-{part}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    made = {}
    for name in ("async", "process"):
        made[name] = tmp_path / name
        run_step(AskStage(AskConfig(base_url=llm_server.url), str(tmp_path / "in")), made[name],
                 executor=make_executor(name, 2), say=lambda message: None)
    assert shard_tables(made["async"]) == shard_tables(made["process"])
    assert data.read_dataset(made["process"]).num_rows == 30


def test_setup_runs_once_per_worker_of_the_process_pool(tmp_path: Path) -> None:
    setups = tmp_path / "setups"
    setups.mkdir()
    out = tmp_path / "placed"
    run_step(PlacedStage(PlacedConfig(setups=str(setups))), out, executor=make_executor("process", 2),
             say=lambda message: None)
    made = {path.name for path in setups.iterdir()}
    rows = data.read_dataset(out).to_pylist()
    assert len(rows) == 6 and len(made) == 2 and {row["source"] for row in rows} <= made


@pytest.fixture(scope="module")
def two_node_cluster():
    """A Ray cluster of two nodes on this machine; only the second one has the custom resource `special`. Its
    workers find the tests' own modules (the toy stages) on their PYTHONPATH, as a cluster finds user code."""
    pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).parent), before]))
    try:
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
        special = cluster.add_node(num_cpus=1, resources={"special": 1})
        cluster.wait_for_nodes()
    finally:
        if before is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = before
    try:
        yield cluster, special.node_id
    finally:
        cluster.shutdown()


def test_a_ray_step_runs_only_where_its_resource_is_and_sets_up_once_per_worker(two_node_cluster, tmp_path) -> None:
    cluster, special_node = two_node_cluster
    setups = tmp_path / "setups"
    setups.mkdir()
    executor = make_executor(step_executor(PlacedStage, ExecutorSettings(name="ray", ray_address=cluster.address),
                                           None))
    out = tmp_path / "placed"
    try:
        run_step(PlacedStage(PlacedConfig(setups=str(setups))), out, executor=executor, say=lambda message: None)
    finally:
        executor.close()
    rows = data.read_dataset(out).to_pylist()
    assert len(rows) == 6 and {row["text"] for row in rows} == {special_node}
    made = sorted(setups.iterdir())
    assert len(made) == 1 and made[0].read_text() == special_node  # one actor on the one node that fits
    assert {row["source"] for row in rows} == {made[0].name}


def test_the_sharded_dedup_on_ray_makes_the_in_memory_dataset(two_node_cluster, tmp_path) -> None:
    """Every phase of the sharded reduce runs as Ray tasks on either node; the dataset is the in-memory one's."""
    cluster, _ = two_node_cluster
    corpus = word_corpus(tmp_path / "corpus", 400, parts=3, seed=5)
    settings = {"normalize": "text", "threshold": 0.5, "bands": 20, "rows": 2}
    memory, sharded = tmp_path / "memory", tmp_path / "sharded"
    run_step(DedupStage(DedupConfig(shuffle="memory", **settings), str(corpus)), memory,
             executor=make_executor("process", 1), say=lambda message: None)
    executor = make_executor(ExecutorSettings(name="ray", ray_address=cluster.address))
    try:
        run_step(DedupStage(DedupConfig(shuffle="sharded", partitions=2, **settings), str(corpus)), sharded,
                 executor=executor, say=lambda message: None)
    finally:
        executor.close()
    assert data.read_stats(sharded)["engine"] == "ray"
    assert shard_tables(sharded) == shard_tables(memory)
