"""What a training run will do, checked before any model is built: every problem a setting can cause is a
`UserError` that says what to change, raised in seconds rather than after the weights are allocated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch

from textbooks.errors import UserError
from textbooks.model.config import ModelConfig, padded_vocab, preset
from textbooks.model.io import is_sharded
from textbooks.store import data
from textbooks.tokens.folder import TokenData, open_tokens
from textbooks.train import checkpoint
from textbooks.train.config import PAPER_PRESETS, RUN_ONLY_SETTINGS, Resolved, TrainConfig
from textbooks.train.data import window_count
from textbooks.train.distributed import World, training_device
from textbooks.train.logs import check_available

DROPOUT_FIELDS = frozenset({"embd_pdrop", "attention_dropout", "resid_pdrop"})
ModelKind = Literal["preset", "folder", "hf-phi", "hf"]


@dataclass(frozen=True)
class ModelSpec:
    """Which model to build and what is known of it without weights."""

    kind: ModelKind
    vocab_size: int
    max_positions: int | None
    config: ModelConfig | None = None  # our model's config (all kinds but "hf")
    source: str | None = None  # the folder or transformers name for kinds other than "preset"
    tokenizer_dir: Path | None = None  # the init model's tokenizer, when it has one locally


@dataclass
class Plan:
    """A checked run: settings resolved, token data open, model chosen, resume point found."""

    config: TrainConfig
    hp: Resolved
    tokens: TokenData
    out: Path
    world: World
    device: torch.device
    precision: str  # fp32 | bf16 | fp16
    accumulation: int
    model: ModelSpec
    data_identity: dict
    resume_from: Path | None = None
    resume_state: dict | None = None

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)


def plan_run(config: TrainConfig, data_dir: Path, out: Path, world: World, resume: bool) -> Plan:
    """Check everything that can be checked without compute, in the order a user would fix it."""
    hp = config.resolved()
    accumulation = _accumulation(hp, config, world)
    if config.fsdp and not world.launched:
        raise UserError("--fsdp shards the model over processes: launch with torchrun --nproc_per_node N, or "
                        "drop --fsdp")
    check_available(config.log)
    device = training_device(config.device, world)
    precision = _precision(config.precision, device)
    tokens = open_tokens(Path(data_dir))
    spec = model_spec(config, tokens)
    if config.checkpoint_format == "sharded" and spec.kind == "hf":
        raise UserError(f"init {config.init}: checkpoint_format sharded writes textbooks' phi models; a transformers "
                        f"model is saved whole with save_pretrained: use --checkpoint-format full")
    _check_batch_fits_device(config, hp, spec, device)
    _check_fits(config, spec, tokens, world)
    identity = {"train_tokens": len(tokens.split("train")), "val_tokens": len(tokens.split("val")),
                "vocab_size": tokens.vocab_size, "fingerprint": (data.read_marker(Path(data_dir)) or {}).get(
                    "fingerprint")}
    plan = Plan(config, hp, tokens, Path(out), world, device, precision, accumulation, spec, identity)
    _find_resume_point(plan, resume)
    return plan


def _accumulation(hp: Resolved, config: TrainConfig, world: World) -> int:
    per_step = config.micro_batch_size * world.world_size
    if hp.batch_size % per_step:
        lower = hp.batch_size // per_step * per_step
        nearby = f"{lower} or {lower + per_step}" if lower else f"{per_step}"
        raise UserError(f"batch_size {hp.batch_size} is not divisible by micro_batch_size "
                        f"{config.micro_batch_size} x {world.world_size} process(es) = {per_step}: use "
                        f"--batch-size {nearby}, or change --micro-batch-size")
    return hp.batch_size // per_step


def _precision(requested: str, device: torch.device) -> str:
    if requested == "auto":
        return "bf16" if device.type == "cuda" else "fp32"
    if requested == "fp16" and device.type != "cuda":
        raise UserError("precision fp16 (with loss scaling) needs a CUDA device; use fp32 or bf16 on the CPU")
    if requested == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UserError(f"{torch.cuda.get_device_name(device)} has no bf16: use --precision fp16")
    return requested


def model_spec(config: TrainConfig, tokens: TokenData) -> ModelSpec:
    """The model the settings describe: a preset, our model folder, or a transformers model."""
    overrides = dict(config.model_overrides)
    if "vocab_size" in overrides:
        raise UserError("set the vocabulary with --vocab-size, not in model_overrides")
    if config.init is None:
        model_config = preset(config.model, **overrides)
        vocab = config.vocab_size or model_config.vocab_size or padded_vocab(tokens.vocab_size)
        model_config = preset(config.model, **{**overrides, "vocab_size": vocab})
        return ModelSpec("preset", vocab, model_config.max_position_embeddings, model_config)
    not_dropout = sorted(set(overrides) - DROPOUT_FIELDS)
    if not_dropout:
        raise UserError(f"init {config.init}: the architecture comes from that model, so model_overrides may "
                        f"only change {', '.join(sorted(DROPOUT_FIELDS))} (got {', '.join(not_dropout)})")
    spec = _init_spec(config.init, config.hf_init(), overrides)
    if config.vocab_size is not None and config.vocab_size != spec.vocab_size:
        raise UserError(f"init {config.init} has {spec.vocab_size:,} embedding rows; --vocab-size "
                        f"{config.vocab_size} applies to new models only: drop it")
    return spec


def _init_spec(init: str, hf_name: str | None, overrides: dict) -> ModelSpec:
    if hf_name is None:
        from textbooks.model.io import load_model_config, resolve_model_folder, tokenizer_folder

        folder = resolve_model_folder(Path(init))
        model_config = _with_dropouts(load_model_config(folder), overrides)
        return ModelSpec("folder", model_config.vocab_size, model_config.max_position_embeddings, model_config,
                         str(folder), tokenizer_folder(folder))
    from textbooks.train.hf_causal import inspect_hf

    info = inspect_hf(hf_name)
    local = Path(hf_name) if Path(hf_name).is_dir() else None
    tokenizer_dir = local if local is not None and (local / "tokenizer.json").is_file() else None
    if info.model_type == "phi":
        from transformers import AutoConfig

        from textbooks.model.hf import from_hf_config

        model_config = _with_dropouts(from_hf_config(AutoConfig.from_pretrained(hf_name)), overrides)
        return ModelSpec("hf-phi", model_config.vocab_size, model_config.max_position_embeddings, model_config,
                         hf_name, tokenizer_dir)
    if overrides:
        raise UserError(f"init {init}: model_overrides apply to phi models; set the dropouts of a "
                        f"{info.model_type} model in its config.json")
    return ModelSpec("hf", info.vocab_size, info.max_positions, None, hf_name, tokenizer_dir)


def _with_dropouts(model_config: ModelConfig, overrides: dict) -> ModelConfig:
    try:
        return ModelConfig(**{**model_config.model_dump(), **overrides})
    except ValueError as error:
        raise UserError(f"model_overrides {overrides}: {error}") from None


def _check_batch_fits_device(config: TrainConfig, hp: Resolved, spec: ModelSpec, device: torch.device) -> None:
    """A paper model with its phase's batch from the paper is not a default for the CPU: the flag is asked for
    rather than a smaller batch chosen here, since a batch picked by the machine would make the same settings
    train differently elsewhere (and a run resumed on a GPU change batch half-way)."""
    if device.type != "cpu" or spec.kind != "preset" or config.model not in PAPER_PRESETS or config.batch_size:
        return
    flops = 6 * spec.config.num_parameters() * hp.batch_size * config.seq_len
    where = "--device cpu" if config.device == "cpu" else "no CUDA device here"
    raise UserError(f"{where}: --model {config.model} with the paper's {config.phase} batch of {hp.batch_size} x "
                    f"{config.seq_len} tokens ({flops:.1e} FLOPs a step) is not a CPU default. Set --batch-size "
                    f"(and --micro-batch-size) to train it on the CPU anyway, or choose a CPU size: --model tiny "
                    f"or --model small")


def _check_fits(config: TrainConfig, spec: ModelSpec, tokens: TokenData, world: World) -> None:
    """The tokenizer, the window length and the token counts against the model and each other."""
    if tokens.vocab_size > spec.vocab_size:
        hint = (f"set --vocab-size {padded_vocab(tokens.vocab_size)} or more" if spec.kind == "preset"
                else "tokenize the data with this model's tokenizer")
        raise UserError(f"the tokenizer of the token data ({tokens.tokenizer_dir}) has {tokens.vocab_size:,} "
                        f"entries but the model has only {spec.vocab_size:,} embedding rows: {hint}")
    if spec.tokenizer_dir is not None:
        _check_same_tokenizer(tokens.tokenizer_dir, spec.tokenizer_dir, config.init)
    if spec.max_positions is not None and config.seq_len > spec.max_positions:
        raise UserError(f"seq_len {config.seq_len} is longer than the model's max_position_embeddings "
                        f"{spec.max_positions}: use --seq-len {spec.max_positions} or less")
    train_tokens, val_tokens = len(tokens.split("train")), len(tokens.split("val"))
    if window_count(train_tokens, config.seq_len) < 1:
        raise UserError(f"the train split has {train_tokens:,} tokens, fewer than one window of seq_len "
                        f"{config.seq_len} + 1: use a smaller --seq-len or more data")
    if window_count(val_tokens, config.seq_len) < world.world_size:
        raise UserError(f"the val split has {val_tokens:,} tokens, fewer than {world.world_size} window(s) of "
                        f"seq_len {config.seq_len} + 1 (one per process): use a smaller --seq-len or a larger "
                        f"validation share when tokenizing")


def _check_same_tokenizer(data_tokenizer: Path, model_tokenizer: Path, init: str | None) -> None:
    """Finetuning on ids from another tokenizer would train on noise: compare the two vocabularies."""
    from tokenizers import Tokenizer

    paths = [Path(data_tokenizer) / "tokenizer.json", Path(model_tokenizer) / "tokenizer.json"]
    if not all(path.is_file() for path in paths):
        return
    if Tokenizer.from_file(str(paths[0])).get_vocab() != Tokenizer.from_file(str(paths[1])).get_vocab():
        raise UserError(f"the token data was made with another tokenizer ({paths[0].parent}) than the model in "
                        f"{init} ({paths[1].parent}): tokenize the data with the model's tokenizer")


def _find_resume_point(plan: Plan, resume: bool) -> None:
    """The checkpoint to continue from; a refusal when there is one but no --resume, or when it does not fit."""
    found = checkpoint.complete_checkpoints(plan.out)
    if not found:
        return
    step, folder = found[-1]
    if not resume:
        raise UserError(f"{plan.out} already has checkpoints (the newest is step {step}): pass --resume to "
                        f"continue, or choose another --out")
    state = checkpoint.read_trainer_json(folder)
    if state.get("world_size") != plan.world.world_size and not is_sharded(folder):
        raise UserError(f"{folder} was written by a run of {state.get('world_size')} process(es); this one has "
                        f"{plan.world.world_size}: resume with torchrun --nproc_per_node "
                        f"{state.get('world_size')} (same world size), or choose another --out (a run that "
                        f"writes --checkpoint-format sharded can resume on another world size)")
    changed = settings_changes(state.get("config", {}), plan.config.model_dump(mode="json"))
    if changed:
        raise UserError(f"{plan.out} was trained with other settings; changed since {folder.name}: "
                        f"{'; '.join(changed)}. Resume with the same settings, or choose another --out")
    if state.get("data") != plan.data_identity:
        raise UserError(f"the token data differs from the data {folder.name} was trained on "
                        f"({state.get('data')} then, {plan.data_identity} now): resume with the same --input")
    plan.resume_from, plan.resume_state = folder, state


def settings_changes(before: dict, now: dict) -> list[str]:
    """`key: old -> new` for each setting that differs (run-only settings may change)."""
    keys = sorted((set(before) | set(now)) - RUN_ONLY_SETTINGS)
    return [f"{key}: {before.get(key)!r} -> {now.get(key)!r}" for key in keys if before.get(key) != now.get(key)]
