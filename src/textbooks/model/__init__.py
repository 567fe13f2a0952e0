"""The phi-1 architecture: config and presets, the PyTorch model, model folders, generation, transformers interop.

transformers itself is imported only when an interop function runs (it takes seconds to import).
"""

from textbooks.model.config import PRESETS, ModelConfig, padded_vocab, preset
from textbooks.model.generate import generate
from textbooks.model.hf import export_checkpoint, export_hf, from_hf_config, import_hf, import_to_folder, to_hf_config
from textbooks.model.io import load_model, load_model_config, resolve_model_folder, save_model, tokenizer_folder
from textbooks.model.phi import Phi

__all__ = [
    "PRESETS", "ModelConfig", "Phi", "export_checkpoint", "export_hf", "from_hf_config", "generate", "import_hf",
    "import_to_folder", "load_model", "load_model_config", "padded_vocab", "preset", "resolve_model_folder",
    "save_model", "to_hf_config", "tokenizer_folder",
]
