"""The `export-hf` step: a training run's best (else newest) checkpoint as a transformers folder, with a model card.

    - stage: export-hf       # input: the train step before it (its best checkpoint, else the newest)
      eval: ["@eval"]        # optional: evaluations whose figures go in the card (README.md)

On the command line: `textbooks export-hf CHECKPOINT OUT [--eval EVAL ...] [--license mit]`. The card
(`textbooks.model.card`) makes the folder ready to upload to the Hugging Face Hub as it is.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from textbooks.errors import UserError
from textbooks.pipeline.refs import EvaluationInput
from textbooks.pipeline.step import Context, Step, StepConfig


class ExportConfig(StepConfig):
    """The input says which model, and the export is exact; the settings only fill in the model card."""

    eval: list[EvaluationInput] = Field(default_factory=list,
                                        description="Evaluations of this model (textbooks eval folders, or a run "
                                                    "folder holding them) whose pass@k and solution loss go in the "
                                                    "model card and its model-index.")
    license: str | None = Field(None, description="The license of the weights in the card's metadata, a Hub "
                                                  "identifier such as apache-2.0 or mit (default: not stated).")


class ExportStep(Step):
    name = "export-hf"
    Config = ExportConfig
    takes = ("model",)
    makes = "model"
    input_help = "a model folder, or a training run folder (its best, else newest, checkpoint)"
    outputs = ("config.json", "generation_config.json", "model.safetensors", "tokenizer*", "special_tokens_map.json",
               "vocab.json", "merges.txt", "README.md")
    cli_input = "CHECKPOINT"
    cli_out = "OUT"
    config: ExportConfig

    def run(self, ctx: Context) -> dict:
        from textbooks.model.card import evaluations
        from textbooks.model.hf import export_checkpoint
        from textbooks.model.io import resolve_model_folder

        for folder in self.config.eval:  # before the export: a wrong path is a refusal, not a card without figures
            if not evaluations([Path(folder)]):
                raise UserError(f"{self.name}: --eval {folder} holds no evaluation (no summary.json of a textbooks "
                                "eval, in it or in the step folders inside it)")
        source = resolve_model_folder(Path(str(self.input)))
        export_checkpoint(source, ctx.out)
        ctx.say(f"{self.name}: {source} -> {ctx.out} (transformers.PhiForCausalLM.from_pretrained loads it)")
        return {"source": str(source)}

    def write_card(self, ctx: Context, stats: dict) -> None:
        from textbooks.model.card import write_model_card

        write_model_card(ctx.out, Path(stats["source"]), [Path(path) for path in self.config.eval],
                         self.config.license)
