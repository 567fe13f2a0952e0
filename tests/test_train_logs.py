"""Logging a training run to TensorBoard and Weights & Biases (offline) next to log.jsonl: the steps logged,
a resumed run without steps twice, the flag, the fingerprint, and a missing package."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
from train_helpers import (
    make_tokens,
    read_log,
    single_thread,  # noqa: F401  (autouse: torch on one thread)
    tiny_config,
)

from textbooks.cli import step_parser
from textbooks.errors import UserError
from textbooks.pipeline.runner import fingerprint
from textbooks.tokens.folder import TokenData
from textbooks.train import logs
from textbooks.train.checkpoint import step_folder
from textbooks.train.step import TrainStep
from textbooks.train.trainer import train

pytest.importorskip("tensorboard", reason="the log extra: pip install 'textbooks[log]'")
pytest.importorskip("wandb", reason="the log extra: pip install 'textbooks[log]'")


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> TokenData:
    return make_tokens(tmp_path_factory.mktemp("logs"), max_bytes=700_000)


@pytest.fixture(autouse=True)
def offline_wandb(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No key and no network: W&B must choose offline by itself (WANDB_MODE unset), and keep out of $HOME."""
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_PROJECT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "wandb-cache"))
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "wandb-data"))


def tensorboard_scalars(folder: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return {tag: [(event.step, event.value) for event in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def wandb_history(run_folder: Path) -> list[dict]:
    """The history rows of an offline run's .wandb file (a LevelDB-style log of protobuf records)."""
    from wandb.proto import wandb_internal_pb2

    raw = next(run_folder.glob("run-*.wandb")).read_bytes()
    block, position, pieces, rows = 32768, 7, b"", []  # 7: the file header (":W&B", magic, version)
    while position + 7 <= len(raw):
        if block - position % block < 7:  # a block's tail too short for a header is padding
            position += block - position % block
            continue
        length, kind = int.from_bytes(raw[position + 4:position + 6], "little"), raw[position + 6]
        chunk, position = raw[position + 7:position + 7 + length], position + 7 + length
        if kind == 0:
            break
        pieces = chunk if kind in (1, 2) else pieces + chunk  # full / first, then middle and last
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pieces)
            if record.WhichOneof("record_type") == "history":
                rows.append({item.key or "/".join(item.nested_key): item.value_json for item in record.history.item})
    return rows


def test_tensorboard_and_wandb_get_every_step_and_a_resumed_run_logs_none_twice(tokens: TokenData,
                                                                                tmp_path: Path) -> None:
    config = tiny_config(max_steps=20, checkpoint_every=10, eval_every=5, log=["tensorboard", "wandb"])
    out = tmp_path / "run"
    train(config, tokens.folder, out, say=lambda message: None)
    first = tensorboard_scalars(out / "tensorboard")
    steps, vals = read_log(out)
    assert [step for step, _ in first["train/loss"]] == list(range(1, 21))
    assert [value for _, value in first["train/loss"]] == pytest.approx([line["loss"] for line in steps])
    assert [step for step, _ in first["val/loss"]] == [5, 10, 15, 20]
    assert {"train/lr", "train/grad_norm", "train/tokens_per_s", "train/tokens_seen"} <= set(first)
    assert "train/mfu" not in first  # null on a CPU: left out rather than logged as a number
    run_id = (out / "wandb" / logs.RUN_ID).read_text()
    (first_run,) = (out / "wandb").glob(f"offline-run-*-{run_id}")
    history = wandb_history(first_run)
    assert [int(row["_step"]) for row in history if "train/loss" in row] == list(range(1, 21))

    # As if killed after step 17: the last checkpoint is step 10, and steps 11-17 were logged already.
    shutil.rmtree(step_folder(out, 20))
    (out / "summary.json").unlink()
    train(config, tokens.folder, out, say=lambda message: None, resume=True)
    again = tensorboard_scalars(out / "tensorboard")
    assert [step for step, _ in again["train/loss"]] == list(range(1, 21))  # purged and written again, once
    assert [step for step, _ in again["val/loss"]] == [5, 10, 15, 20]
    assert (out / "wandb" / logs.RUN_ID).read_text() == run_id  # the same W&B run continues
    resumed = [folder for folder in (out / "wandb").glob(f"offline-run-*-{run_id}") if folder != first_run]
    assert len(resumed) == 1
    assert [int(row["_step"]) for row in wandb_history(resumed[0]) if "train/loss" in row] == list(range(11, 21))


def test_logging_settings_are_a_flag_and_change_no_fingerprint(tokens: TokenData) -> None:
    parser, _, flags = step_parser("train")
    config = flags.config(parser.parse_args(["--input", "x", "--out", "y", "--model", "tiny",
                                             "--log", "tensorboard", "wandb"]))
    assert config.log == ["tensorboard", "wandb"]
    plain = TrainStep(tiny_config(), str(tokens.folder))
    logged = TrainStep(tiny_config(log=["tensorboard"]), str(tokens.folder))
    assert fingerprint(plain, plain)[0] == fingerprint(logged, logged)[0]


def test_a_missing_logging_package_names_the_extra(tokens: TokenData, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    found = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "wandb" else found(name))
    with pytest.raises(UserError, match=r"wandb is not installed.*pip install 'textbooks\[log\]'"):
        train(tiny_config(log=["wandb"]), tokens.folder, tmp_path / "run", say=lambda message: None)
    assert not (tmp_path / "run").exists()  # refused before any file is written


def test_wandb_goes_online_only_with_a_key_or_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert logs.wandb_mode() == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert logs.wandb_mode() == "online"
    monkeypatch.setenv("WANDB_MODE", "disabled")
    assert logs.wandb_mode() == "disabled"
