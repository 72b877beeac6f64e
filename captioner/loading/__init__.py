"""Loading captioners: `load_captioner(spec)` for the built-in model, a VisionGPT2 checkpoint file or
folder, a Hugging Face vision-encoder-decoder, BLIP or GIT folder, or a hub id; nothing from a model runs as code.

One module per idea: `spec` (what kind of spec), `load` (the entry point), `errors`, `config_files`,
`weights`, `dtype`, `tokenizers`, `visiongpt2`, `hf`, `blip_git`, `hub`, `default` (the model used when none is named).
"""

from captioner.loading.config_files import read_json_file
from captioner.loading.default import DEFAULT_HUB_MODEL, PROJECT_DIR, DefaultModel, load_default_captioner, resolve_default_model
from captioner.loading.dtype import convert_dtype, release_file_pages
from captioner.loading.errors import ModelLoadError
from captioner.loading.hub import hub_cache_dir, hub_offline, hub_snapshot
from captioner.loading.load import BUILTIN_DIR, load_captioner, load_model_folder
from captioner.loading.spec import spec_kind
from captioner.loading.tokenizers import end_of_text_id, load_tokenizer
from captioner.loading.visiongpt2 import build_visiongpt2, infer_visiongpt2_config
from captioner.loading.weights import read_state_dict

__all__ = [
    "BUILTIN_DIR",
    "DEFAULT_HUB_MODEL",
    "PROJECT_DIR",
    "DefaultModel",
    "ModelLoadError",
    "build_visiongpt2",
    "convert_dtype",
    "end_of_text_id",
    "hub_cache_dir",
    "hub_offline",
    "hub_snapshot",
    "infer_visiongpt2_config",
    "load_captioner",
    "load_default_captioner",
    "load_model_folder",
    "load_tokenizer",
    "read_json_file",
    "read_state_dict",
    "release_file_pages",
    "resolve_default_model",
    "spec_kind",
]
