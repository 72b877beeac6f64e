"""Hugging Face vision-encoder-decoder folders (ViT or DeiT encoder, GPT-2 decoder), from disk or the hub.

Every file is checked before transformers reads it: config.json typed, its decoder GPT-2, every size
it names matched against the weights' headers, the image processor typed and sized to the encoder,
the tokenizer checked; then transformers loads the folder with `trust_remote_code=False`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, NamedTuple

import torch

from captioner.config import Spec
from captioner.loading.config_files import (
    GENERATION_CONFIG_FILE,
    apply_folder_defaults,
    read_generation_config,
    read_json_file,
    typed_fields,
)
from captioner.loading.dtype import convert_dtype
from captioner.loading.errors import ModelLoadError, one_line
from captioner.loading.tokenizers import load_tokenizer
from captioner.loading.weights import HF_WEIGHT_FILES, HF_WEIGHT_INDEX_FILES, layer_indices, layer_range_problem, tensor_shapes

if TYPE_CHECKING:  # imported when a model is built: transformers is not needed to import the loader
    from captioner.models.hf import HFVisionEncoderDecoderCaptioner

MAX_IMAGE_SIDE = 2048  # a preprocessor's resize target
HF_FAMILY = "vision-encoder-decoder"  # config.json's model_type


class HFSizes(NamedTuple):
    """What a vision-encoder-decoder config.json says about its sizes, checked for types and ranges."""

    encoder: dict[str, Any]
    decoder: dict[str, Any]


_HF_ENCODER_SCHEMA = {
    "model_type": Spec("choice", choices=("vit", "deit")),
    "hidden_size": Spec("int", 1, 16_384),
    "num_hidden_layers": Spec("int", 1, 256),
    "num_attention_heads": Spec("int", 1, 1_024),
    "intermediate_size": Spec("int", 1, 131_072),
    "image_size": Spec("int", 1, MAX_IMAGE_SIDE),
    "patch_size": Spec("int", 1, MAX_IMAGE_SIDE),
    "num_channels": Spec("int", 1, 16),
}
_HF_DECODER_SCHEMA = {
    "n_layer": Spec("int", 1, 256),
    "n_head": Spec("int", 1, 1_024),
    "n_embd": Spec("int", 1, 16_384),
    "n_positions": Spec("int", 2, 65_536),
    "vocab_size": Spec("int", 1, 1_000_000),
    "n_inner": Spec("int", 1, 131_072, nullable=True),
}
_HF_DEFAULTS = {
    "encoder": {"model_type": "vit", "image_size": 224, "patch_size": 16, "num_channels": 3},
    "decoder": {"n_inner": None},
}


def hf_sizes(config: Mapping[str, Any], path: Path) -> HFSizes:
    """The encoder's and decoder's sizes from config.json, typed; the decoder must be GPT-2."""
    parts = {}
    for part, schema in (("encoder", _HF_ENCODER_SCHEMA), ("decoder", _HF_DECODER_SCHEMA)):
        sub = config.get(part)
        if not isinstance(sub, dict):
            raise ModelLoadError(f"{path}: {part} must be a mapping (the {part}'s config), not {type(sub).__name__}.")
        fields = {**_HF_DEFAULTS[part], **typed_fields(sub, schema, path, prefix=f"{part}.")}
        missing = [f"{part}.{k}" for k in schema if k not in fields]
        if missing:
            raise ModelLoadError(f"{path}: {', '.join(missing)} missing.")
        parts[part] = fields
    enc, dec = parts["encoder"], parts["decoder"]
    if dec["n_embd"] % dec["n_head"]:
        raise ModelLoadError(f"{path}: decoder.n_head ({dec['n_head']}) must divide decoder.n_embd ({dec['n_embd']}).")
    if enc["hidden_size"] % enc["num_attention_heads"]:
        raise ModelLoadError(f"{path}: encoder.num_attention_heads must divide encoder.hidden_size ({enc['hidden_size']}).")
    return HFSizes(enc, dec)


def check_decoder_type(config: Mapping[str, Any], path: Path) -> None:
    """The one check of the decoder's type: GPT-2 (what the shared decoding step runs)."""
    decoder_type = config.get("decoder", {}).get("model_type") if isinstance(config.get("decoder"), dict) else None
    if decoder_type != "gpt2":
        raise ModelLoadError(f"{path}: only GPT-2 decoders are supported; this model's decoder is {decoder_type!r}.")


def _hf_expected_shapes(sizes: HFSizes) -> list[tuple[str, tuple[int, ...], str]]:
    """(weight key, shape the config implies, config fields it checks)."""
    e, d = sizes.encoder, sizes.decoder
    grid = e["image_size"] // e["patch_size"]
    extra = 2 if e["model_type"] == "deit" else 1  # class token (+ distillation token)
    return [
        ("decoder.transformer.wte.weight", (d["vocab_size"], d["n_embd"]), "decoder.vocab_size, decoder.n_embd"),
        ("decoder.transformer.wpe.weight", (d["n_positions"], d["n_embd"]), "decoder.n_positions"),
        ("decoder.transformer.h.0.mlp.c_fc.weight", (d["n_embd"], d["n_inner"] or 4 * d["n_embd"]), "decoder.n_inner"),
        (
            "encoder.embeddings.patch_embeddings.projection.weight",
            (e["hidden_size"], e["num_channels"], e["patch_size"], e["patch_size"]),
            "encoder.hidden_size, encoder.patch_size",
        ),
        ("encoder.embeddings.position_embeddings", (1, grid * grid + extra, e["hidden_size"]), "encoder.image_size"),
        (
            "encoder.encoder.layer.0.intermediate.dense.weight",
            (e["intermediate_size"], e["hidden_size"]),
            "encoder.intermediate_size",
        ),
    ]


def check_hf_weights_fit(sizes: HFSizes, shapes: Mapping[str, tuple[int, ...]], path: Path) -> None:
    """Every size config.json names matches what the weights hold, before transformers builds anything."""
    for prefix, field, what in (
        ("decoder.transformer.h.", "decoder.n_layer", "decoder"),
        ("encoder.encoder.layer.", "encoder.num_hidden_layers", "encoder"),
    ):
        found = layer_indices(shapes, prefix)
        declared = sizes.decoder["n_layer"] if what == "decoder" else sizes.encoder["num_hidden_layers"]
        problem = layer_range_problem(found, what)
        if problem:
            raise ModelLoadError(f"{path.parent}: {problem}.")
        if len(found) != declared:
            raise ModelLoadError(f"{path}: {field} is {declared}, but the weights hold {len(found)} {what} layers.")
    for key, expected, fields in _hf_expected_shapes(sizes):
        if key not in shapes:
            raise ModelLoadError(f"{path.parent}: the weights lack {key}.")
        if tuple(shapes[key]) != expected:
            raise ModelLoadError(f"{path}: {fields} imply {key} of shape {expected}, but the weights hold {tuple(shapes[key])}.")


def hf_weight_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in a Hugging Face folder's weights, read from the headers (or a mapped .bin)."""
    index = next((folder / n for n in HF_WEIGHT_INDEX_FILES if os.path.lexists(folder / n)), None)
    if index is not None:
        weight_map = read_json_file(index).get("weight_map")
        shards = sorted(set(weight_map.values())) if isinstance(weight_map, dict) else []
        if not shards or not all(isinstance(s, str) and s == Path(s).name for s in shards):
            raise ModelLoadError(f"{index}: weight_map must map tensor names to shard files in the same folder.")
        files = [folder / s for s in shards]
    else:
        files = [folder / n for n in HF_WEIGHT_FILES if os.path.lexists(folder / n)][:1]
    if not files:
        raise ModelLoadError(f"{folder} has no weights ({' or '.join(HF_WEIGHT_FILES)}).")
    shapes: dict[str, tuple[int, ...]] = {}
    for file in files:
        shapes.update(tensor_shapes(file))
    return shapes


# What an image processor may say, typed.
PREPROCESSOR_SCHEMA = {
    "do_resize": Spec("bool"),
    "do_rescale": Spec("bool"),
    "do_normalize": Spec("bool"),
    "do_center_crop": Spec("bool"),
    "rescale_factor": Spec("float", 0.0, 1.0, above=True),
    "resample": Spec("int", 0, 5),
    "image_mean": Spec("floats", -1e3, 1e3, length=3),
    "image_std": Spec("floats", 1e-6, 1e3, length=3),
}
IMAGE_SIDE = Spec("int", 1, MAX_IMAGE_SIDE)  # a resize target


def check_preprocessor(folder: Path, image_size: int) -> None:
    """The folder's image processor (preprocessor_config.json) is typed and resizes to the encoder's size."""
    path = folder / "preprocessor_config.json"
    if not os.path.lexists(path):
        raise ModelLoadError(f"{folder} has no preprocessor_config.json (how images are resized and normalised).")
    config = read_json_file(path)
    if config.get("do_center_crop") and "crop_size" not in config:  # ViTImageProcessor then fails on every image
        raise ModelLoadError(f"{path}: do_center_crop is true but there is no crop_size (the side the encoder is given).")
    check_image_processor(config, path, image_size, "encoder.image_size")


def check_image_processor(config: Mapping[str, Any], path: Path, image_size: int, size_field: str) -> None:
    """An image processor's settings are typed, and the image it ends with (its resize target, or its
    crop when it crops after resizing, as CLIP's does) is the encoder's own `image_size` (`size_field`)."""
    typed_fields(config, PREPROCESSOR_SCHEMA, path)
    if config.get("do_resize") is False:
        raise ModelLoadError(f"{path}: do_resize is false, but the encoder takes {image_size} x {image_size} images only.")
    final = "crop_size" if config.get("do_center_crop") else "size"
    target = config.get(final)
    sides = (
        typed_fields(target, {k: IMAGE_SIDE for k in target}, path, f"{final}.")
        if isinstance(target, dict)
        else typed_fields(config, {final: IMAGE_SIDE}, path)
    )
    for side_name, side in sides.items():
        if side != image_size:
            where = final if side_name == final else f"{final}.{side_name}"
            raise ModelLoadError(
                f"{path}: {where} is {side}, but the encoder takes {image_size} x {image_size} images ({size_field})."
            )


_HF_JSON_FILES = ("generation_config.json", "processor_config.json", "image_processor_config.json")


def load_hf_folder(folder: Path, dtype: torch.dtype, *, name: str = "") -> HFVisionEncoderDecoderCaptioner:
    """A VisionEncoderDecoderModel folder, every file checked before transformers reads it."""
    config_path = folder / "config.json"
    config = read_json_file(config_path)
    check_decoder_type(config, config_path)
    sizes = hf_sizes(config, config_path)
    for extra in _HF_JSON_FILES:
        if os.path.lexists(folder / extra):
            (read_generation_config if extra == GENERATION_CONFIG_FILE else read_json_file)(folder / extra)
    check_hf_weights_fit(sizes, hf_weight_shapes(folder), config_path)
    check_preprocessor(folder, sizes.encoder["image_size"])
    tokenizer = load_tokenizer(folder)
    model, processor = _read_hf_folder(folder, dtype, name or str(folder))
    from captioner.models.hf import HFVisionEncoderDecoderCaptioner

    try:
        captioner = HFVisionEncoderDecoderCaptioner(model, processor, tokenizer, source=name or str(folder))
    except ValueError as e:
        raise ModelLoadError(f"{folder}: {e}") from None
    apply_folder_defaults(captioner, folder)
    return captioner


def _read_hf_folder(folder: Path, dtype: torch.dtype, name: str) -> tuple[Any, Any]:
    """transformers' model (converted to `dtype`, checked finite) and image processor from a checked folder."""
    from transformers import VisionEncoderDecoderModel

    return read_transformers_folder(VisionEncoderDecoderModel, folder, dtype, name, "vision-encoder-decoder")


def read_transformers_folder(model_class: Any, folder: Path, dtype: torch.dtype, name: str, kind: str) -> tuple[Any, Any]:
    """`model_class` (converted to `dtype`, checked finite) and its image processor from a checked folder; any
    failure is a ModelLoadError saying `name` is not a loadable `kind` model. Never runs the folder's code."""
    from transformers import AutoImageProcessor

    try:
        # Loaded in the file's own dtype (the tensors stay views of the memory-mapped file), then converted
        # one tensor at a time, handing each one's file pages back: asking transformers for another dtype
        # keeps the whole file resident beside the converted copy (ViT-GPT2 fp32 -> bf16: 2.2 GB peak).
        model = model_class.from_pretrained(str(folder), dtype="auto", trust_remote_code=False, local_files_only=True)
        model = convert_dtype(model, dtype, release_source=True, check_finite=name)
        processor = AutoImageProcessor.from_pretrained(str(folder), trust_remote_code=False, local_files_only=True)
    except ModelLoadError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError, TypeError, AttributeError, IndexError) as e:
        raise ModelLoadError(f"{name} is not a loadable {kind} model: {one_line(e)}") from None
    return model, processor
