"""The `export-hf` step: a training run's best (else newest) checkpoint as a transformers folder.

    - stage: export-hf       # input: the train step before it (its best checkpoint, else the newest)

On the command line: `textbooks export-hf CHECKPOINT OUT`.
"""

from __future__ import annotations

from pathlib import Path

from textbooks.pipeline.step import Context, Step, StepConfig


class ExportConfig(StepConfig):
    """No settings: the input says which model, and the export is exact."""


class ExportStep(Step):
    name = "export-hf"
    Config = ExportConfig
    takes = ("model",)
    makes = "model"
    input_help = "a model folder, or a training run folder (its best, else newest, checkpoint)"
    outputs = ("config.json", "generation_config.json", "model.safetensors", "tokenizer*", "special_tokens_map.json",
               "vocab.json", "merges.txt")
    cli_input = "CHECKPOINT"
    cli_out = "OUT"

    def run(self, ctx: Context) -> dict:
        from textbooks.model.hf import export_checkpoint
        from textbooks.model.io import resolve_model_folder

        source = resolve_model_folder(Path(str(self.input)))
        export_checkpoint(source, ctx.out)
        ctx.say(f"{self.name}: {source} -> {ctx.out} (transformers.PhiForCausalLM.from_pretrained loads it)")
        return {"source": str(source)}
