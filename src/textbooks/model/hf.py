"""Exact interop with transformers' `PhiForCausalLM`: our state dict already uses its names, so export and import
are a config translation plus a copy of tensors (parity is tested on fp32 logits both ways, `tests/test_hf.py`).

    textbooks export-hf runs/x hf/x                  # export_checkpoint: best/ or the newest complete checkpoint
    textbooks import-hf microsoft/phi-1 --out m/phi1  # import_to_folder: a hub name (online) or a local folder

A config our model cannot represent (grouped keys, q/k LayerNorm, scaled rotary, tied embeddings, another
activation) is refused by name rather than imported into a model that would compute something else.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors.torch import save_file

from textbooks.errors import UserError
from textbooks.model.config import ModelConfig
from textbooks.model.io import META, load_model, resolve_model_folder, save_model, tokenizer_folder
from textbooks.model.phi import Phi
from textbooks.store.atomic import atomic_file, atomic_folder

if TYPE_CHECKING:  # transformers is imported where it is used: it takes seconds, and training does not need it
    from transformers import PhiConfig

# Both names are the tanh-approximation GELU, which is what our MLP computes.
ACTIVATIONS = ("gelu_new", "gelu_pytorch_tanh")
END_OF_TEXT = "<|endoftext|>"  # CodeGen's document separator, bos and eos in phi-1's tokenizer
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json")
HUB_NAME = re.compile(r"[\w.-]+(/[\w.-]+)?")
HUB_FILES = ["*.json", "*.safetensors", "*.txt", "*.model"]


def to_hf_config(config: ModelConfig, tokenizer: Any = None) -> PhiConfig:
    """transformers' `PhiConfig` for `config`; bos/eos ids come from `tokenizer` (a transformers tokenizer)."""
    from transformers import PhiConfig

    if config.vocab_size is None:
        raise UserError("the model config has no vocab_size; set it from the tokenizer before exporting")
    return PhiConfig(
        architectures=["PhiForCausalLM"],
        vocab_size=config.vocab_size,
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_attention_heads,
        max_position_embeddings=config.max_position_embeddings,
        # transformers 5 reads rotary settings from rope_parameters only (rope_theta and partial_rotary_factor
        # at the top level are folded into it on construction, but not on every path that sets attributes).
        rope_parameters={"rope_type": "default", "rope_theta": config.rope_theta,
                         "partial_rotary_factor": config.partial_rotary_factor},
        hidden_act="gelu_new",
        layer_norm_eps=config.layer_norm_eps,
        resid_pdrop=config.resid_pdrop,
        embd_pdrop=config.embd_pdrop,
        attention_dropout=config.attention_dropout,
        initializer_range=config.initializer_range,
        tie_word_embeddings=False,
        qk_layernorm=False,
        # PhiConfig's defaults (1 and 2) are not phi-1's; without a tokenizer the ids are unknown.
        bos_token_id=getattr(tokenizer, "bos_token_id", None),
        eos_token_id=getattr(tokenizer, "eos_token_id", None),
    )


def from_hf_config(hf_config: Any) -> ModelConfig:
    """Our `ModelConfig` for a transformers Phi config; what our model cannot compute is a `UserError`."""
    _check_model_type(getattr(hf_config, "model_type", None))
    heads = hf_config.num_attention_heads
    rope = dict(getattr(hf_config, "rope_parameters", None) or {})
    refusals = {
        "qk_layernorm": (getattr(hf_config, "qk_layernorm", False), "true (LayerNorm on queries and keys)"),
        "num_key_value_heads": (getattr(hf_config, "num_key_value_heads", None) not in (None, heads),
                                f"{hf_config.num_key_value_heads} != num_attention_heads {heads} (grouped keys)"),
        "head_dim": (getattr(hf_config, "head_dim", None) not in (None, hf_config.hidden_size // heads),
                     f"{getattr(hf_config, 'head_dim', None)} != hidden_size / num_attention_heads"),
        "rope_parameters.rope_type": (rope.get("rope_type", "default") != "default",
                                      f"{rope.get('rope_type')!r} (scaled rotary embeddings)"),
        "tie_word_embeddings": (getattr(hf_config, "tie_word_embeddings", False), "true (lm_head tied)"),
        "hidden_act": (hf_config.hidden_act not in ACTIVATIONS,
                       f"{hf_config.hidden_act!r} (expected one of {', '.join(ACTIVATIONS)})"),
    }
    for field, (refused, why) in refusals.items():
        if refused:
            raise UserError(f"this phi model cannot be imported: {field} is {why}, which textbooks' model "
                            f"does not implement")
    try:
        return ModelConfig(
            vocab_size=hf_config.vocab_size,
            hidden_size=hf_config.hidden_size,
            intermediate_size=hf_config.intermediate_size,
            num_hidden_layers=hf_config.num_hidden_layers,
            num_attention_heads=heads,
            max_position_embeddings=hf_config.max_position_embeddings,
            partial_rotary_factor=rope.get("partial_rotary_factor", 0.5),
            rope_theta=rope.get("rope_theta", 10000.0),
            layer_norm_eps=hf_config.layer_norm_eps,
            embd_pdrop=hf_config.embd_pdrop,
            attention_dropout=hf_config.attention_dropout or 0.0,
            resid_pdrop=hf_config.resid_pdrop,
            initializer_range=hf_config.initializer_range,
        )
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        raise UserError(f"this phi config cannot be imported: {error}") from None


def _check_model_type(model_type: str | None) -> None:
    if model_type != "phi":
        raise UserError(f"model_type {model_type!r} is not supported: only phi models (PhiForCausalLM, "
                        f"model_type 'phi') can be imported")


def load_tokenizer(folder: Path) -> Any:
    """A transformers tokenizer from `folder` (a `save_pretrained` folder, or a bare tokenizer.json).

    A bare tokenizer.json does not say which token ends a document; phi-1's `<|endoftext|>` is taken when the
    vocabulary has it, so the exported config and generation config know their eos id.
    """
    from transformers import AutoTokenizer

    if not any((Path(folder) / name).is_file() for name in TOKENIZER_FILES):
        raise UserError(f"{folder} holds no tokenizer ({' or '.join(TOKENIZER_FILES)})")
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    if tokenizer.eos_token is None and END_OF_TEXT in tokenizer.get_vocab():
        tokenizer.eos_token = tokenizer.bos_token = END_OF_TEXT
    return tokenizer


def export_hf(model: Phi, out: Path, tokenizer_dir: Path | None = None) -> Path:
    """Write `model` (and its tokenizer) as a folder that `PhiForCausalLM.from_pretrained(out)` loads."""
    from transformers import GenerationConfig

    out = Path(out)
    tokenizer = load_tokenizer(Path(tokenizer_dir)) if tokenizer_dir is not None else None
    if tokenizer is not None and len(tokenizer) > model.config.vocab_size:
        raise UserError(f"the tokenizer in {tokenizer_dir} has {len(tokenizer):,} entries but the model only "
                        f"{model.config.vocab_size:,} embedding rows: pass the tokenizer it was trained with")
    hf_config = to_hf_config(model.config, tokenizer)
    hf_config.dtype = next(model.parameters()).dtype
    out.mkdir(parents=True, exist_ok=True)
    # weights and tokenizer first, config.json last: a folder without it does not look like a model to
    # from_pretrained, so a write that fails or is killed half-way never leaves a loadable-looking folder
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    with atomic_file(out / "model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out))
    GenerationConfig.from_model_config(hf_config).save_pretrained(str(out))
    hf_config.save_pretrained(str(out))
    return out


def _local_or_downloaded(path_or_name: str) -> Path:
    """A local folder as is; a hub name downloaded (config, safetensors weights, tokenizer files)."""
    path = Path(path_or_name).expanduser()
    if path.is_dir():
        return path
    if path.exists() or not HUB_NAME.fullmatch(path_or_name):
        raise UserError(f"{path_or_name} is not a model folder: pass a folder written by save_pretrained "
                        f"(config.json and model.safetensors) or a Hugging Face Hub name")
    from textbooks.store import hub

    offline = hub.prepare()  # offline, the download fails at once unless the cache has the model
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return Path(snapshot_download(path_or_name, allow_patterns=HUB_FILES))
    except (LocalEntryNotFoundError, RepositoryNotFoundError, HfHubHTTPError, OSError, ValueError) as error:
        raise UserError(f"{path_or_name} is neither a local folder nor a model that could be fetched from the "
                        f"Hugging Face Hub ({offline or type(error).__name__}): pass a local folder written by "
                        f"save_pretrained, or go online and check the name") from None


def import_hf(path_or_name: str) -> tuple[Phi, Path | None]:
    """Our fp32 model from a transformers Phi folder or hub name, and the folder holding its tokenizer files."""
    from transformers import PhiConfig, PhiForCausalLM

    folder = _local_or_downloaded(path_or_name)
    config_path = folder / "config.json"
    try:
        raw = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UserError(f"{config_path} is missing or unreadable ({error}); is {folder} a transformers "
                        f"model folder?") from None
    _check_model_type(raw.get("model_type"))  # before PhiConfig, which would read a gpt2 config without a word
    config = from_hf_config(PhiConfig.from_pretrained(str(folder)))
    try:
        hf_model, info = PhiForCausalLM.from_pretrained(str(folder), dtype=torch.float32, output_loading_info=True)
    except (OSError, ValueError, RuntimeError) as error:
        raise UserError(f"could not load the weights in {folder}: {error}") from None
    problems = {kind: keys for kind, keys in info.items() if keys and kind != "error_msgs"}
    if problems:
        raise UserError(f"the weights in {folder} do not match its config: {problems}")
    with torch.device("meta"):
        model = Phi(config)
    model.load_state_dict(hf_model.state_dict(), strict=True, assign=True)
    has_tokenizer = any((folder / name).is_file() for name in TOKENIZER_FILES)
    return model.eval(), folder if has_tokenizer else None


def export_checkpoint(path: Path, out: Path) -> Path:
    """`textbooks export-hf`: the model `path` names (a model or run folder) as a transformers folder."""
    folder = resolve_model_folder(Path(path))
    return export_hf(load_model(folder), Path(out), tokenizer_folder(folder))


def import_to_folder(path_or_name: str, out: Path) -> Path:
    """`textbooks import-hf`: a transformers Phi model as our model folder, tokenizer included.

    The tokenizer goes through transformers (load, `save_pretrained`) so that only its files are copied,
    not the weights and config that share its folder.
    """
    out = Path(out)
    if out.is_dir() and any(out.iterdir()) and not (out / META).is_file():
        raise UserError(f"import-hf: {out} holds other files; choose a new or empty folder for the model")
    model, tokenizer_source = import_hf(path_or_name)
    with tempfile.TemporaryDirectory() as scratch, atomic_folder(Path(out)) as folder:
        tokenizer_dir = None
        if tokenizer_source is not None:
            load_tokenizer(tokenizer_source).save_pretrained(scratch)
            tokenizer_dir = Path(scratch)
        save_model(model, folder, tokenizer_dir)
    return Path(out)


__all__ = ["export_checkpoint", "export_hf", "from_hf_config", "import_hf", "import_to_folder", "load_tokenizer",
           "to_hf_config"]
