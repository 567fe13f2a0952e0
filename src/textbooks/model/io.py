"""Our model folder: the format of training checkpoints, `best/`, and `textbooks import-hf` output.

    folder/model.safetensors   the state dict (transformers' PhiForCausalLM names)
    folder/model.json          {"format": "textbooks-phi", "version": 1, "config": ModelConfig fields}
    folder/tokenizer/          the tokenizer's files, when the model was saved with one

or, written by a training run with `checkpoint_format: sharded`, the same state dict in sharded/ instead of
model.safetensors: a torch.distributed.checkpoint folder (one file per rank, under the key "model") that
`load_model` reads whole in one process (`textbooks.store.sharded`), so export-hf, eval and `init:` take it alike.

    save_model(model, Path("runs/x/best"), tokenizer_dir=Path("runs/x/tokenizer"))
    model = load_model(resolve_model_folder(Path("runs/x")))  # a run folder: best/, else the newest checkpoint

model.json is written last, so a folder that has it holds a whole model even if a save was interrupted.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch
from pydantic import ValidationError
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from textbooks.errors import UserError
from textbooks.model.config import ModelConfig
from textbooks.model.phi import Phi
from textbooks.store.atomic import atomic_file, write_json

FORMAT = "textbooks-phi"
VERSION = 1
WEIGHTS = "model.safetensors"
META = "model.json"
TOKENIZER = "tokenizer"
SHARDED = "sharded"  # a sharded model's state, under the key SHARDED_KEY
SHARDED_KEY = "model"
COMPLETE = "_COMPLETE"  # the trainer's marker: a checkpoint folder without it was cut short
STEP_FOLDER = re.compile(r"step-(\d+)")


def save_model(model: Phi, folder: Path, tokenizer_dir: Path | None = None) -> None:
    """Write `model` (and a copy of `tokenizer_dir`'s files) as a model folder that `load_model` reads."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if tokenizer_dir is not None:
        _copy_tokenizer(Path(tokenizer_dir), folder / TOKENIZER)
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    _save_weights_atomically(state, folder / WEIGHTS)
    write_json({"format": FORMAT, "version": VERSION, "config": model.config.model_dump()}, folder / META)


def describe_sharded_model(config: ModelConfig, folder: Path, tokenizer_dir: Path | None = None) -> None:
    """model.json (and the tokenizer) for a folder whose sharded/ already holds the weights: written after them,
    as `save_model` writes model.json last."""
    if not is_sharded(folder):
        raise UserError(f"{folder} has no {SHARDED}/: write the sharded weights before describing them")
    if tokenizer_dir is not None:
        _copy_tokenizer(Path(tokenizer_dir), Path(folder) / TOKENIZER)
    write_json({"format": FORMAT, "version": VERSION, "config": config.model_dump()}, Path(folder) / META)


def is_sharded(folder: Path) -> bool:
    """Whether the model in `folder` is stored as shards (sharded/) rather than in model.safetensors."""
    return (Path(folder) / SHARDED).is_dir()


def _save_weights_atomically(state: dict[str, torch.Tensor], path: Path) -> None:
    """safetensors to a temporary sibling, fsync, rename: a crash never leaves a half-written weights file.

    Streamed to disk rather than through `data.write_bytes`, which would hold a second copy of the weights
    in memory (5.7 GB for phi-1 in fp32).
    """
    with atomic_file(path) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})


def _copy_tokenizer(source: Path, target: Path) -> None:
    if not source.is_dir():
        raise UserError(f"tokenizer folder {source} does not exist; pass the folder holding tokenizer.json")
    if source.resolve() == target.resolve():
        return
    shutil.copytree(source, target, dirs_exist_ok=True)


def load_model_config(folder: Path) -> ModelConfig:
    """The `ModelConfig` in `folder/model.json`; a missing or damaged file is a `UserError`."""
    meta_path = Path(folder) / META
    if not meta_path.is_file():
        raise UserError(f"no model in {folder}: {META} is missing; pass a folder written by the trainer or by "
                        f"`textbooks import-hf`, or a training run folder")
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{meta_path} is not readable JSON ({error}); the folder is damaged: save the model "
                        f"again or use an earlier checkpoint") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or not isinstance(meta.get("config"), dict):
        raise UserError(f"{meta_path} is not a {FORMAT} model description (expected keys format and config)")
    if meta.get("version") != VERSION:
        raise UserError(f"{meta_path} has format version {meta.get('version')!r}; this textbooks reads "
                        f"version {VERSION}: use the textbooks release that wrote it")
    try:
        return ModelConfig(**meta["config"])
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors())
        raise UserError(f"{meta_path} has an invalid model config: {problems}") from None


def load_model(folder: Path, device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> Phi:
    """The model saved in `folder`, in eval mode, on `device`, in `dtype` (default: as saved)."""
    folder = Path(folder)
    config = load_model_config(folder)
    weights_path = folder / WEIGHTS
    if is_sharded(folder):
        from textbooks.store.sharded import read_sharded

        weights_path = folder / SHARDED
        state = {name: tensor.to(device) for name, tensor in read_sharded(weights_path, SHARDED_KEY).items()}
    elif not weights_path.is_file():
        raise UserError(f"{folder} has {META} but no {WEIGHTS}; the save was interrupted: use another checkpoint")
    else:
        try:
            state = load_file(str(weights_path), device=str(device))
        except (SafetensorError, OSError) as error:
            raise UserError(f"{weights_path} is damaged ({error}); use another checkpoint or save again") from None
    with torch.device("meta"):  # no random initialisation of weights that are about to be replaced
        model = Phi(config)
    try:
        model.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as error:
        raise UserError(f"{weights_path} does not match the config in {META}: {error}") from None
    if dtype is not None:
        model.to(dtype=dtype)
    return model.eval()


def resolve_model_folder(path: Path) -> Path:
    """The model folder `path` names: itself, its `best/`, or its newest complete `checkpoints/step-*`."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path} does not exist: expected a model folder ({META}) or a training run folder")
    for candidate in (path, path / "best"):
        if (candidate / META).is_file():
            return candidate
    steps = []
    if (path / "checkpoints").is_dir():
        for checkpoint in (path / "checkpoints").iterdir():
            match = STEP_FOLDER.fullmatch(checkpoint.name)
            if match and (checkpoint / META).is_file() and (checkpoint / COMPLETE).is_file():
                steps.append((int(match.group(1)), checkpoint))
    if steps:
        return max(steps)[1]
    raise UserError(f"no model in {path}: expected a model folder ({META}) or a training run folder "
                    f"(best/{META} or checkpoints/step-*/ with {COMPLETE})")


def tokenizer_folder(folder: Path) -> Path | None:
    """`folder/tokenizer` when the model was saved with its tokenizer, else None."""
    candidate = Path(folder) / TOKENIZER
    return candidate if candidate.is_dir() else None


__all__ = ["describe_sharded_model", "is_sharded", "load_model", "load_model_config", "resolve_model_folder",
           "save_model", "tokenizer_folder"]
