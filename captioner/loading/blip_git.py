"""Loading BLIP captioning and GIT folders (a local folder or a hub snapshot), with the loader's rules.

Before transformers reads anything: every JSON file is read through `read_json_file` (regular file,
size cap, strict JSON, no `auto_map`), the sizes config.json names are typed and checked against the
shapes the weights hold (read from the safetensors headers), the image processor must resize to the
encoder's image size, and the tokenizer must be in the folder. Then `from_pretrained` reads the
folder with trust_remote_code=False, and the weights are converted to the asked dtype and checked finite.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from captioner.config import Spec
from captioner.loading.config_files import (
    GENERATION_CONFIG_FILE,
    apply_folder_defaults,
    read_generation_config,
    read_json_file,
    typed_fields,
)
from captioner.loading.errors import ModelLoadError, checked_file
from captioner.loading.hf import MAX_IMAGE_SIDE, check_image_processor, hf_weight_shapes
from captioner.loading.tokenizers import MAX_TOKENIZER_BYTES, _tokenizer_files, load_tokenizer
from captioner.loading.weights import layer_indices, layer_range_problem
from captioner.models.base import CaptionModel

_SIZE = Spec("int", 1, 131_072)
_TEXT_SCHEMA = {
    "vocab_size": Spec("int", 1, 1_000_000),
    "hidden_size": _SIZE,
    "num_hidden_layers": Spec("int", 1, 256),
    "num_attention_heads": Spec("int", 1, 1_024),
    "intermediate_size": _SIZE,
    "max_position_embeddings": Spec("int", 2, 65_536),
}
_VISION_SCHEMA = {
    "hidden_size": _SIZE,
    "num_hidden_layers": Spec("int", 1, 256),
    "num_attention_heads": Spec("int", 1, 1_024),
    "intermediate_size": _SIZE,
    "image_size": Spec("int", 1, MAX_IMAGE_SIDE),
    "patch_size": Spec("int", 1, MAX_IMAGE_SIDE),
    "num_channels": Spec("int", 1, 16),
}
_JSON_FILES = ("generation_config.json", "processor_config.json", "preprocessor_config.json", "image_processor_config.json")


@dataclass(frozen=True)
class Family:
    """What differs between the families: where config.json keeps the sizes, and the weights' key names."""

    model_type: str
    architecture: str  # the transformers class that captions
    text_part: str | None  # config.json's text sub-config ("text_config"), or None when the sizes are top-level
    text_layers: str  # key prefix of the text layers
    vision_layers: str
    expected_shapes: Callable[[dict, dict], list[tuple[str, tuple[int, ...], str]]]  # (text, vision) sizes -> keys


def _blip_shapes(t: dict, v: dict) -> list[tuple[str, tuple[int, ...], str]]:
    grid = v["image_size"] // v["patch_size"]
    return [
        (
            "text_decoder.bert.embeddings.word_embeddings.weight",
            (t["vocab_size"], t["hidden_size"]),
            "text_config.vocab_size, hidden_size",
        ),
        (
            "text_decoder.bert.embeddings.position_embeddings.weight",
            (t["max_position_embeddings"], t["hidden_size"]),
            "text_config.max_position_embeddings",
        ),
        (
            "text_decoder.bert.encoder.layer.0.intermediate.dense.weight",
            (t["intermediate_size"], t["hidden_size"]),
            "text_config.intermediate_size",
        ),
        (
            "text_decoder.bert.encoder.layer.0.crossattention.self.key.weight",
            (t["hidden_size"], v["hidden_size"]),
            "vision_config.hidden_size",
        ),
        (
            "vision_model.embeddings.patch_embedding.weight",
            (v["hidden_size"], v["num_channels"], v["patch_size"], v["patch_size"]),
            "vision_config.hidden_size, patch_size",
        ),
        ("vision_model.embeddings.position_embedding", (1, grid * grid + 1, v["hidden_size"]), "vision_config.image_size"),
        (
            "vision_model.encoder.layers.0.mlp.fc1.weight",
            (v["intermediate_size"], v["hidden_size"]),
            "vision_config.intermediate_size",
        ),
    ]


def _git_shapes(t: dict, v: dict) -> list[tuple[str, tuple[int, ...], str]]:
    grid = v["image_size"] // v["patch_size"]
    vis = "git.image_encoder.vision_model."
    return [
        ("git.embeddings.word_embeddings.weight", (t["vocab_size"], t["hidden_size"]), "vocab_size, hidden_size"),
        (
            "git.embeddings.position_embeddings.weight",
            (t["max_position_embeddings"], t["hidden_size"]),
            "max_position_embeddings",
        ),
        ("git.encoder.layer.0.intermediate.dense.weight", (t["intermediate_size"], t["hidden_size"]), "intermediate_size"),
        ("git.visual_projection.visual_projection.0.weight", (t["hidden_size"], v["hidden_size"]), "vision_config.hidden_size"),
        (
            vis + "embeddings.patch_embedding.weight",
            (v["hidden_size"], v["num_channels"], v["patch_size"], v["patch_size"]),
            "vision_config.hidden_size, patch_size",
        ),
        (vis + "embeddings.position_embedding.weight", (grid * grid + 1, v["hidden_size"]), "vision_config.image_size"),
        (vis + "encoder.layers.0.mlp.fc1.weight", (v["intermediate_size"], v["hidden_size"]), "vision_config.intermediate_size"),
        ("output.weight", (t["vocab_size"], t["hidden_size"]), "vocab_size"),
    ]


FAMILIES = {
    "blip": Family(
        "blip",
        "BlipForConditionalGeneration",
        "text_config",
        "text_decoder.bert.encoder.layer.",
        "vision_model.encoder.layers.",
        _blip_shapes,
    ),
    "git": Family(
        "git", "GitForCausalLM", None, "git.encoder.layer.", "git.image_encoder.vision_model.encoder.layers.", _git_shapes
    ),
}


def is_blip_or_git(config: Mapping[str, Any]) -> bool:
    """Whether a config.json describes a BLIP or GIT model."""
    return config.get("model_type") in FAMILIES


def load_blip_git_folder(folder: Path, dtype: torch.dtype, name: str = "") -> CaptionModel:
    """A BLIP captioning or GIT folder, every file checked before transformers reads it."""
    name = name or str(folder)
    config_path = folder / "config.json"
    config = read_json_file(config_path)
    family = FAMILIES[config["model_type"]]
    architectures = config.get("architectures")
    if isinstance(architectures, list) and architectures and family.architecture not in architectures:
        raise ModelLoadError(
            f"{config_path}: this is a {', '.join(map(str, architectures))}; only {family.architecture} captions images."
        )
    text, vision = _sizes(family, config, config_path)
    for extra in _JSON_FILES:
        if os.path.lexists(folder / extra):
            (read_generation_config if extra == GENERATION_CONFIG_FILE else read_json_file)(folder / extra)
    _check_weights_fit(family, text, vision, hf_weight_shapes(folder), config_path)
    _check_image_processor(folder, vision["image_size"])
    tokenizer = _folder_tokenizer(folder)
    model, processor = _read_folder(family, folder, dtype, name)
    from captioner.models.blip import BlipCaptioner
    from captioner.models.git import GitCaptioner

    try:
        captioner = (BlipCaptioner if family.model_type == "blip" else GitCaptioner)(model, processor, tokenizer, source=name)
    except ValueError as e:
        raise ModelLoadError(f"{name}: {e}") from None
    apply_folder_defaults(captioner, folder)
    return captioner


def _sizes(family: Family, config: Mapping[str, Any], path: Path) -> tuple[dict, dict]:
    """The text and vision sizes config.json names (transformers' defaults for those it leaves out), typed."""
    from transformers import BlipConfig, GitConfig

    defaults = (BlipConfig if family.model_type == "blip" else GitConfig)().to_dict()
    parts = []
    for part, schema in ((family.text_part, _TEXT_SCHEMA), ("vision_config", _VISION_SCHEMA)):
        values = config if part is None else config.get(part, {})
        if not isinstance(values, dict):
            raise ModelLoadError(f"{path}: {part} must be a mapping, not {type(values).__name__}.")
        base = {"num_channels": 3, **(defaults if part is None else defaults[part])}  # BLIP's vision config has none: RGB
        merged = {k: values.get(k, base.get(k)) for k in schema}
        parts.append(typed_fields(merged, schema, path, prefix="" if part is None else f"{part}."))
    for sizes, where in zip(parts, (family.text_part, "vision_config")):
        if sizes["hidden_size"] % sizes["num_attention_heads"]:
            prefix = f"{where}." if where else ""
            raise ModelLoadError(f"{path}: {prefix}num_attention_heads must divide {prefix}hidden_size ({sizes['hidden_size']}).")
    return parts[0], parts[1]


def _check_weights_fit(family: Family, text: dict, vision: dict, shapes: Mapping[str, tuple[int, ...]], path: Path) -> None:
    """Every size config.json names matches what the weights hold, before transformers builds anything."""
    for prefix, sizes, what in ((family.text_layers, text, "text"), (family.vision_layers, vision, "vision")):
        found = layer_indices(shapes, prefix)
        problem = layer_range_problem(found, what)
        if problem:
            raise ModelLoadError(f"{path.parent}: {problem}.")
        if len(found) != sizes["num_hidden_layers"]:
            raise ModelLoadError(
                f"{path}: num_hidden_layers of the {what} model is {sizes['num_hidden_layers']}, but the weights hold {len(found)} {what} layers."
            )
    for key, expected, fields in family.expected_shapes(text, vision):
        if key not in shapes:
            raise ModelLoadError(f"{path.parent}: the weights lack {key}.")
        if tuple(shapes[key]) != expected:
            raise ModelLoadError(f"{path}: {fields} imply {key} of shape {expected}, but the weights hold {tuple(shapes[key])}.")


def _check_image_processor(folder: Path, image_size: int) -> None:
    """The image processor's settings are typed, and it gives the encoder its own image size. It is
    preprocessor_config.json (the hub's layout) or processor_config.json's image_processor (today's save_pretrained)."""
    path = folder / "preprocessor_config.json"
    if os.path.lexists(path):
        config = read_json_file(path)
    elif os.path.lexists(folder / "processor_config.json") and isinstance(
        read_json_file(folder / "processor_config.json").get("image_processor"), dict
    ):
        path = folder / "processor_config.json"
        config = read_json_file(path)["image_processor"]
    else:
        raise ModelLoadError(f"{folder} has no preprocessor_config.json (how images are resized and normalised).")
    check_image_processor(config, path, image_size, "vision_config.image_size")


def _folder_tokenizer(folder: Path) -> Any:
    """The tokenizer saved in the folder (BLIP's and GIT's are BERT's WordPiece; there is no fallback)."""
    if os.path.lexists(folder / "vocab.txt"):
        checked_file(folder / "vocab.txt", MAX_TOKENIZER_BYTES, "a tokenizer file")
    if not _tokenizer_files(folder):
        raise ModelLoadError(
            f"{folder} has no tokenizer (tokenizer_config.json and tokenizer.json, as save_pretrained writes them)."
        )
    return load_tokenizer(folder)


def _read_folder(family: Family, folder: Path, dtype: torch.dtype, name: str):
    import transformers

    from captioner.loading.hf import read_transformers_folder

    return read_transformers_folder(getattr(transformers, family.architecture), folder, dtype, name, family.architecture)
