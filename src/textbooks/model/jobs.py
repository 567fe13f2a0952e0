"""The `export-hf` recipe step: a training run's best (else newest) checkpoint as a transformers folder.

    - stage: export-hf       # input: the train step before it (its best checkpoint, else the newest)

On the command line it is `textbooks export-hf CKPT OUT` (see `textbooks.cli`).
"""

from __future__ import annotations

from pathlib import Path

from textbooks.jobs import Job, Say, register_job
from textbooks.stage import StageConfig


class ExportConfig(StageConfig):
    """No settings: the input says which model, and the export is exact."""


@register_job
class ExportHF(Job):
    name = "export-hf"
    Config = ExportConfig
    summary = "write a model or training run as a folder transformers.PhiForCausalLM.from_pretrained loads"
    input_help = "a model folder or a training run folder"
    own_command = False

    def run(self, out: Path, say: Say) -> dict:
        from textbooks.model.hf import export_checkpoint
        from textbooks.model.io import resolve_model_folder

        source = resolve_model_folder(Path(self.input))
        export_checkpoint(source, out)
        say(f"{self.name}: {source} -> {out} (transformers.PhiForCausalLM.from_pretrained loads it)")
        return {"source": str(source)}
