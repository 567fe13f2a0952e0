"""The `train` step: token data in, a run folder out (checkpoints, best/, log.jsonl, summary.json).

    - stage: train
      input: tokens          # a `tokenize` step's folder
      model: tiny
      max_steps: 300
    - stage: train
      name: finetune
      input: exercise-tokens
      phase: finetune        # the paper's finetuning defaults
      init: "@train"         # the model of an earlier step

A killed training continues from its last complete checkpoint when run again with the same settings (the
runner's fingerprint says so); a finished one is skipped. A training run is precious: outside a recipe, other
settings are refused rather than discarding it (`--resume` refuses them too, naming what changed).
"""

from __future__ import annotations

from pathlib import Path

from textbooks.pipeline.step import Context, SettingError, Step
from textbooks.train.config import RUN_ONLY_SETTINGS, TrainConfig


class TrainStep(Step):
    name = "train"
    Config = TrainConfig
    takes = ("tokens",)
    makes = "model"
    input_help = "a token data folder written by `textbooks tokenize`"
    outputs = ("checkpoints", "best", "log.jsonl", "summary.json", ".best.*", "tensorboard", "wandb")
    precious = True
    unfingerprinted = RUN_ONLY_SETTINGS
    config: TrainConfig

    @classmethod
    def check(cls, config: TrainConfig) -> None:
        from textbooks.model.config import PRESETS

        if config.init is None and config.model not in PRESETS:
            raise SettingError("model", f"unknown model preset {config.model!r}; expected one of: "
                                        f"{', '.join(PRESETS)}")

    def run(self, ctx: Context) -> dict:
        from textbooks.train.trainer import train

        resume = ctx.resuming or ctx.resume_requested
        return train(self.config, Path(str(self.input)), ctx.out, say=ctx.say, resume=resume)
