"""`load_captioner(spec)`, the entry point: which kind of spec (spec.py), then which model family.

Nothing from a model runs as code: checkpoints are read with `torch.load(..., weights_only=True)` or
from safetensors, every `from_pretrained` gets `trust_remote_code=False`, and a folder whose configs
name code (`auto_map`) is refused before transformers sees it. Every file is checked before it is
read (files.py), every config is read through a typed schema (captioner.config), and every size a config or
a key names is checked against what the weights actually hold before any memory is spent on it.
Every failure raises `ModelLoadError` with one message meant for a person.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from captioner.files import describe_path
from captioner.loading.blip_git import is_blip_or_git, load_blip_git_folder
from captioner.loading.config_files import read_json_file
from captioner.loading.dtype import parse_dtype
from captioner.loading.errors import ModelLoadError
from captioner.loading.hf import HF_FAMILY, load_hf_folder
from captioner.loading.hub import hub_snapshot
from captioner.loading.spec import BUILTIN, spec_kind
from captioner.loading.visiongpt2 import load_visiongpt2_file, load_visiongpt2_folder, visiongpt2_weights_in
from captioner.loading.weights import HF_WEIGHT_FILES, HF_WEIGHT_INDEX_FILES, VISIONGPT2_WEIGHT_FILES
from captioner.models.base import CaptionModel

BUILTIN_DIR = Path(__file__).parent.parent / "builtin"


def load_captioner(spec: str = BUILTIN, *, dtype: str | torch.dtype = "float32") -> CaptionModel:
    """Load a captioner from `builtin`, a `.pt`/`.safetensors` file, a folder, or a hub id."""
    torch_dtype = parse_dtype(dtype)
    spec = str(spec).strip()
    kind = spec_kind(spec)
    path = Path(spec).expanduser()
    if kind == "empty":
        raise ModelLoadError("No model given: use 'builtin', a path to a checkpoint or folder, or a hub id.")
    if kind == "builtin":
        if not (BUILTIN_DIR / "config.json").exists():
            raise ModelLoadError(f"The built-in model is missing from {BUILTIN_DIR}; reinstall the package.")
        return load_visiongpt2_folder(BUILTIN_DIR, torch_dtype, name=BUILTIN)
    if kind == "folder":
        return load_model_folder(path, torch_dtype)
    if kind == "file":
        return load_visiongpt2_file(path, torch_dtype)
    if kind == "other":
        raise ModelLoadError(f"{path} is {describe_path(path)}, not a model file or folder.")
    if kind == "hub":
        return load_hub_model(spec, torch_dtype)
    raise ModelLoadError(f"No such file or directory: {spec}")


def load_model_folder(folder: Path, dtype: torch.dtype) -> CaptionModel:
    """A model folder of either family, told apart by its config.json (VisionGPT2 weights alone load too)."""
    config_file = folder / "config.json"
    weights = visiongpt2_weights_in(folder)
    if not os.path.lexists(config_file):
        if weights is None:
            raise ModelLoadError(
                f"{folder} is not a model folder: it has no config.json (and no {' or '.join(VISIONGPT2_WEIGHT_FILES)})."
            )
        return load_visiongpt2_file(weights, dtype)
    config = read_json_file(config_file)
    if is_blip_or_git(config):
        return load_blip_git_folder(folder, dtype)
    if config.get("model_type") == HF_FAMILY:
        return load_hf_folder(folder, dtype)
    if config.get("architecture") == "VisionGPT2" or weights is not None:
        return load_visiongpt2_folder(folder, dtype, config=config)
    kind = config.get("model_type") if isinstance(config.get("model_type"), str) else "unknown"
    raise ModelLoadError(
        f"{config_file} describes a {kind} model; expected a VisionGPT2, a vision-encoder-decoder, a BLIP or a GIT model."
    )


def load_hub_model(repo_id: str, dtype: torch.dtype) -> CaptionModel:
    """A vision-encoder-decoder, BLIP or GIT model from the hub: the cached snapshot, else downloaded in time."""
    folder = hub_snapshot(repo_id, None, _hub_snapshot_complete)
    if is_blip_or_git(read_json_file(folder / "config.json")):
        return load_blip_git_folder(folder, dtype, name=repo_id)
    return load_hf_folder(folder, dtype, name=repo_id)


def _hub_snapshot_complete(snapshot: Path) -> bool:
    return (snapshot / "config.json").exists() and any(
        (snapshot / n).exists() for n in (*HF_WEIGHT_FILES, *HF_WEIGHT_INDEX_FILES)
    )
