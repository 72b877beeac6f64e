"""The model to use when none is named, and why: CAPTIONER_MODEL; a checkpoint here or in the project
folder; the hub model, cached or answering; the built-in model."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import torch

from captioner.loading.errors import ModelLoadError
from captioner.loading.hub import HUB_TIMEOUT, cached_snapshot, hub_answers
from captioner.loading.load import load_captioner
from captioner.loading.spec import BUILTIN
from captioner.models.base import CaptionModel

DEFAULT_HUB_MODEL = "nlpconnect/vit-gpt2-image-captioning"
PROJECT_DIR = Path(__file__).resolve().parents[2]  # where the original instructions put captioner.pt


class DefaultModel(NamedTuple):
    """The model to use when none is named, and why."""

    spec: str
    reason: str
    fell_back: bool = False  # the built-in model, because nothing better was found


def resolve_default_model(timeout: float = HUB_TIMEOUT) -> DefaultModel:
    """Which model to use when none is named, and why: CAPTIONER_MODEL; a captioner.pt (or
    model.safetensors + config.json) in the current directory or the project folder; the hub model,
    cached or answering; the built-in model."""
    env = os.environ.get("CAPTIONER_MODEL", "").strip()
    if env:
        return DefaultModel(env, "named by the CAPTIONER_MODEL environment variable")
    found = _checkpoint_in_project()
    if found is not None:
        return found
    if _in_local_hf_cache(DEFAULT_HUB_MODEL):
        return DefaultModel(DEFAULT_HUB_MODEL, "found in the local Hugging Face cache")
    if hub_answers(DEFAULT_HUB_MODEL, timeout):
        return DefaultModel(DEFAULT_HUB_MODEL, "the Hugging Face hub answered")
    return DefaultModel(
        BUILTIN,
        f"no captioner.pt here, and {DEFAULT_HUB_MODEL} is not cached locally and the hub did not answer, "
        "so the built-in model is used",
        True,
    )


def _checkpoint_in_project() -> DefaultModel | None:
    """A captioner.pt, or model.safetensors + config.json, in the current directory or the project folder."""
    places = [(Path.cwd(), "the current directory"), (PROJECT_DIR, "the project folder")]
    for folder, where in places:
        if os.path.lexists(folder / "captioner.pt"):
            return DefaultModel(str(folder / "captioner.pt"), f"captioner.pt found in {where} ({folder})")
        if os.path.lexists(folder / "model.safetensors") and os.path.lexists(folder / "config.json"):
            return DefaultModel(str(folder), f"model.safetensors and config.json found in {where} ({folder})")
    return None


def _in_local_hf_cache(repo_id: str) -> bool:
    snapshot = cached_snapshot(repo_id)
    return snapshot is not None and (snapshot / "config.json").exists()


def load_default_captioner(dtype: str | torch.dtype = "float32") -> CaptionModel:
    """Resolve and load the default model; fall back to the built-in model if the choice fails."""
    spec, reason, fell_back = resolve_default_model()
    try:
        model = load_captioner(spec, dtype=dtype)
    except ModelLoadError as e:
        if spec == BUILTIN:
            raise
        model = load_captioner(BUILTIN, dtype=dtype)
        reason, fell_back = f"{spec} could not be loaded, so the built-in model is used: {e}", True
    model.info.reason, model.info.fell_back = reason, fell_back
    return model
