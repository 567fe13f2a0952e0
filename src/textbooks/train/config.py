"""The trainer's settings: one typed config for both stages of the paper, whose fields are recipe keys and flags.

The optimisation settings default to the phase's values from the paper (section 2.3), so `phase: finetune`
alone gives phi-1's finetuning run (the setting is `phase` because `stage` names a recipe step's kind)::

    pretrain: lr 1e-3, warm-up 750, weight decay 0.1,  batch 1024 x 2048 tokens, 36,000 steps
    finetune: lr 1e-4, warm-up 50,  weight decay 0.01, batch 256 x 2048 tokens,  6,000 steps

What the paper leaves open (betas, eps, clipping, final LR) takes common values: AdamW (0.9, 0.95), eps 1e-8,
gradient norm clipped at 1.0, linear decay to 0. Without a GPU the paper's models (`phi-1`, the default, and
`phi-1-small`) do not take the paper's batch as a default: a run asks for `batch_size` instead (train/plan.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field

from textbooks.model.config import PRESETS
from textbooks.pipeline.refs import ModelInput
from textbooks.pipeline.step import StepConfig

Phase = Literal["pretrain", "finetune"]

PHASE_DEFAULTS: dict[str, dict[str, float | int]] = {
    "pretrain": {"lr": 1e-3, "warmup_steps": 750, "weight_decay": 0.1, "batch_size": 1024, "max_steps": 36_000},
    "finetune": {"lr": 1e-4, "warmup_steps": 50, "weight_decay": 0.01, "batch_size": 256, "max_steps": 6_000},
}

# Settings that change how a run goes about its work, not what it computes: they may differ on --resume and
# are left out of the step's fingerprint.
RUN_ONLY_SETTINGS = frozenset({"compile", "activation_checkpointing", "checkpoint_every", "checkpoint_format",
                               "keep_checkpoints", "log"})

HF_INIT_PREFIX = "hf:"
# The paper's models: on a CPU their phase's batch (1024 or 256 x 2048 tokens) is not taken as a default.
PAPER_PRESETS = frozenset({"phi-1", "phi-1-small"})


@dataclass(frozen=True)
class Resolved:
    """The optimisation settings after the phase's defaults are filled in."""

    lr: float
    warmup_steps: int
    weight_decay: float
    batch_size: int
    max_steps: int
    decay_steps: int
    eval_every: int


class TrainConfig(StepConfig):
    """Settings of one training run (pretraining or finetuning)."""

    phase: Phase = Field("pretrain", description="Which of the paper's two training stages sets the defaults of "
                                                 "lr, warmup_steps, weight_decay, batch_size and max_steps.")
    lr: float | None = Field(None, gt=0, description="Peak learning rate; None: the phase's (1e-3 pretrain, "
                                                     "1e-4 finetune).")
    warmup_steps: int | None = Field(None, ge=0, description="Steps of linear warm-up; None: the phase's (750 / 50).")
    weight_decay: float | None = Field(None, ge=0, description="AdamW weight decay on matrices; None: the "
                                                               "phase's (0.1 / 0.01).")
    batch_size: int | None = Field(None, ge=1, description="Sequences per optimizer step over all processes; "
                                                           "None: the phase's (1024 / 256), except for a paper "
                                                           "model on the CPU, which needs it set.")
    max_steps: int | None = Field(None, ge=1, description="Optimizer steps to train; None: the phase's (36000 / 6000).")
    decay_steps: int | None = Field(None, ge=1, description="Step at which the linear decay reaches min_lr; "
                                                            "None: max_steps (phi-1-base stopped at 24000 of "
                                                            "a 36000-step schedule).")
    min_lr: float = Field(0.0, ge=0, description="Learning rate at the end of the decay.")
    seq_len: int = Field(2048, ge=1, description="Tokens per training window (packed, no padding).")
    micro_batch_size: int = Field(8, ge=1, description="Sequences per forward pass on each process; the rest of "
                                                       "batch_size is gradient accumulation.")
    model: str = Field("phi-1", description=f"Model preset, one of: {', '.join(PRESETS)} (ignored with init). "
                                            f"phi-1 and phi-1-small are the paper's 1.3B and 350M models: "
                                            f"without a GPU they need an explicit batch_size.")
    model_overrides: dict[str, Any] = Field(default_factory=dict,
                                            description="ModelConfig fields to change, e.g. num_hidden_layers=2 "
                                                        "or resid_pdrop=0 (with init: only the dropouts).")
    vocab_size: int | None = Field(None, ge=1, description="Embedding rows; None: the preset's, else the "
                                                           "tokenizer's rounded up to a multiple of 64.")
    init: ModelInput | None = Field(None, description="Start from a model folder or training run folder, or hf:NAME "
                                               "(a Phi model is converted; any other causal LM trains as is).")
    betas: tuple[float, float] = Field((0.9, 0.95), description="AdamW betas.")
    eps: float = Field(1e-8, gt=0, description="AdamW epsilon.")
    grad_clip: float = Field(1.0, ge=0, description="Clip the global gradient norm to this (0: no clipping).")
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto: bf16 autocast on CUDA, fp32 on CPU; fp16 adds loss scaling.")
    compile: bool = Field(False, description="Compile the model with torch.compile.")
    fsdp: bool = Field(False, description="Shard parameters, gradients and optimizer state (FSDP2) under torchrun.")
    activation_checkpointing: bool = Field(False, description="Recompute each decoder block's activations in the "
                                                              "backward pass instead of keeping them (less "
                                                              "memory; one more forward pass of each block).")
    checkpoint_format: Literal["full", "sharded"] = Field(
        "full", description="full: rank 0 gathers and writes the whole model and optimizer state; sharded: every "
                            "rank writes its own shards (torch.distributed.checkpoint), resumable on another "
                            "number of processes.")
    checkpoint_every: int = Field(1000, ge=1, description="Steps between checkpoints (one is also written at "
                                                          "the end).")
    keep_checkpoints: int = Field(2, ge=1, description="Newest checkpoints kept (best/ is kept besides).")
    eval_every: int | None = Field(None, ge=1, description="Steps between validations; None: "
                                                           "checkpoint_every.")
    eval_windows: int = Field(160, ge=1, description="Validation windows of seq_len tokens scored at each "
                                                     "evaluation, spread evenly over the val split (at most as "
                                                     "many as it has, rounded down to a multiple of the process "
                                                     "count); the set does not depend on micro_batch_size.")
    seed: int = Field(1337, description="Seed of the initialisation, the data order and dropout.")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: CUDA when available.")
    log: list[Literal["tensorboard", "wandb"]] = Field(
        default_factory=list, description="Also log each step to TensorBoard (OUT/tensorboard) or Weights & Biases "
                                          "(offline under OUT/wandb without an API key); OUT/log.jsonl is always "
                                          "written. Needs pip install 'textbooks[log]'.")

    def resolved(self) -> Resolved:
        """The phase's defaults filled in where a setting is None."""
        defaults = PHASE_DEFAULTS[self.phase]
        max_steps = int(self.max_steps if self.max_steps is not None else defaults["max_steps"])
        return Resolved(
            lr=float(self.lr if self.lr is not None else defaults["lr"]),
            warmup_steps=int(self.warmup_steps if self.warmup_steps is not None else defaults["warmup_steps"]),
            weight_decay=float(self.weight_decay if self.weight_decay is not None else defaults["weight_decay"]),
            batch_size=int(self.batch_size if self.batch_size is not None else defaults["batch_size"]),
            max_steps=max_steps,
            decay_steps=self.decay_steps if self.decay_steps is not None else max_steps,
            eval_every=self.eval_every if self.eval_every is not None else self.checkpoint_every,
        )

    def hf_init(self) -> str | None:
        """The name or path after `hf:` when the run starts from a transformers model, else None."""
        if self.init is not None and self.init.startswith(HF_INIT_PREFIX):
            return self.init[len(HF_INIT_PREFIX):]
        return None
