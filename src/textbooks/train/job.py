"""The `train` recipe step: token data in, a run folder out (checkpoints, best/, log.jsonl, summary.json).

    - stage: train
      input: tokens          # a `tokenize` step's folder
      model: tiny
      max_steps: 300
    - stage: train
      name: finetune
      input: exercise-tokens
      phase: finetune        # the paper's finetuning defaults
      init: "@train"         # the model of an earlier step

A recipe re-run continues a killed training from its last checkpoint; a finished one is skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textbooks.jobs import Job, Say, input_fingerprint, register_job
from textbooks.train.config import HF_INIT_PREFIX, RUN_ONLY_SETTINGS, TrainConfig


@register_job
class TrainJob(Job):
    name = "train"
    Config = TrainConfig
    summary = "pretrain or finetune a phi model (or finetune any transformers causal LM) on token data"
    input_help = "a token data folder written by `textbooks tokenize`"
    unfingerprinted = RUN_ONLY_SETTINGS

    def _config(self) -> TrainConfig:
        """The settings with an `@step` init resolved to that step's folder."""
        init = self.config.init
        if init is None:
            return self.config
        if init.startswith(HF_INIT_PREFIX):
            resolved = HF_INIT_PREFIX + self.resolve(init[len(HF_INIT_PREFIX):])
        else:
            resolved = self.resolve(init)
        return self.config.model_copy(update={"init": resolved})

    def fingerprint(self) -> Any:
        """The token data's identity and, when training starts from a local model, that model's."""
        init = self._config().init
        if init is None:
            return super().fingerprint()
        local = init.removeprefix(HF_INIT_PREFIX)
        return [super().fingerprint(), input_fingerprint(local)]

    def run(self, out: Path, say: Say) -> dict:
        from textbooks.train.trainer import train

        return train(self._config(), Path(self.input), out, say=say, resume=self.resume)
