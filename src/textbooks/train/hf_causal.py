"""Any transformers causal LM behind our model's training interface: `forward(input_ids, targets)` gives
`(logits, loss)`.

This is how the paper's finetuning stage (CodeExercises, section 2.3) is applied to base models other than
phi-1: `textbooks train --phase finetune --init hf:bigcode/starcoderbase-1b ...`. Phi models are converted to
our own model instead (`textbooks.model.hf.import_hf`); everything else trains as transformers builds it, and
its checkpoints are `save_pretrained` folders that `AutoModelForCausalLM.from_pretrained` loads.

The loss is computed here from the logits, with targets already shifted by the data loader, so it is the same
next-token loss over the same positions as our model's.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from textbooks.errors import UserError
from textbooks.store import hub

PREFIX = "hf."  # the adapter's own name for the wrapped model in its state dict


@dataclass(frozen=True)
class HFModelInfo:
    """What a transformers config says, read before any weights are loaded."""

    model_type: str
    vocab_size: int
    max_positions: int | None


def inspect_hf(name_or_path: str) -> HFModelInfo:
    """The model type, vocabulary and longest sequence of a transformers model folder or hub name."""
    from transformers import AutoConfig

    if not Path(name_or_path).is_dir():
        hub.prepare()
    try:
        config = AutoConfig.from_pretrained(name_or_path)
    except (OSError, ValueError) as error:
        raise UserError(f"init hf:{name_or_path}: no transformers model config there ({error}); pass a folder "
                        f"written by save_pretrained or a hub name") from None
    return HFModelInfo(model_type=config.model_type, vocab_size=config.vocab_size,
                       max_positions=getattr(config, "max_position_embeddings", None))


class CausalLM(nn.Module):
    """A transformers `AutoModelForCausalLM` with our training interface."""

    def __init__(self, hf_model: nn.Module) -> None:
        super().__init__()
        self.hf = hf_model

    @classmethod
    def load(cls, name_or_path: str | Path) -> CausalLM:
        """The model in fp32 (autocast gives the training precision), ready to train."""
        from transformers import AutoModelForCausalLM

        try:
            model = AutoModelForCausalLM.from_pretrained(str(name_or_path), dtype=torch.float32)
        except (OSError, ValueError) as error:
            raise UserError(f"could not load a causal LM from {name_or_path}: {error}") from None
        return cls(model)

    def forward(self, input_ids: torch.Tensor, targets: torch.Tensor | None = None) -> Any:
        logits = self.hf(input_ids=input_ids, use_cache=False).logits
        if targets is None:
            return logits
        loss = F.cross_entropy(logits.float().view(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-100)
        return logits, loss

    def decoder_blocks(self) -> list[nn.Module]:
        """The blocks transformers itself never splits across devices (`_no_split_modules`)."""
        names = set(getattr(self.hf, "_no_split_modules", None) or ())
        blocks = [module for module in self.hf.modules() if type(module).__name__ in names]
        if not blocks:
            raise UserError(f"{type(self.hf).__name__} names no decoder blocks (_no_split_modules); train it "
                            f"without --fsdp and --compile")
        return blocks

    def num_parameters(self) -> int:
        return sum(parameter.numel() for parameter in self.parameters())

    def flops_per_token(self, seq_len: int) -> float:
        """6 x matmul weights + the attention term, as `Phi.flops_per_token` counts them."""
        embedding = self.hf.get_input_embeddings().weight
        output = self.hf.get_output_embeddings()
        weights = self.num_parameters() - embedding.numel()
        if output is not None and output.weight is embedding:  # tied: the lookup table is also the output matmul
            weights += embedding.numel()
        config = self.hf.config
        return 6 * weights + 12 * config.num_hidden_layers * config.hidden_size * seq_len

    def save(self, folder: Path, state: dict[str, torch.Tensor] | None = None,
             tokenizer_dir: Path | None = None) -> None:
        """A `save_pretrained` folder (from `state`, the adapter's full state dict, when given) with the
        tokenizer's files beside the weights, where `AutoTokenizer.from_pretrained` looks for them."""
        weights = None if state is None else {name[len(PREFIX):]: tensor for name, tensor in state.items()}
        self.hf.save_pretrained(str(folder), state_dict=weights)
        if tokenizer_dir is not None:
            for item in Path(tokenizer_dir).iterdir():
                if item.is_file():
                    shutil.copy2(item, Path(folder) / item.name)
