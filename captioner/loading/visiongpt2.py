"""VisionGPT2 checkpoints (the seed's `captioner.pt` layout, docs/checkpoint-format.md): the config read
off the weights' shapes, the model built from them, and a checkpoint file or folder loaded as a captioner.

Every size is read from the tensors themselves (a config.json beside them may only agree), so nothing
is sized beyond what the file holds; heads are not in the shapes, so head size 64 is assumed unless
a config.json names `num_heads`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import torch

from captioner.config import VISIONGPT2_SCHEMA, ConfigError, VisionGPT2Config
from captioner.loading.config_files import apply_folder_defaults, read_json_file, typed_fields
from captioner.loading.dtype import convert_dtype
from captioner.loading.errors import ModelLoadError, name_list
from captioner.loading.spec import CHECKPOINT_SUFFIXES
from captioner.loading.tokenizers import end_of_text_id, load_tokenizer, vocabulary_padding
from captioner.loading.weights import MASK_SUFFIX, VISIONGPT2_WEIGHT_FILES, layer_indices, layer_range_problem, read_checkpoint
from captioner.models.base import ModelInfo, dtype_name

if TYPE_CHECKING:  # imported when a model is built: timm is not needed to import the loader
    from captioner.models.visiongpt2 import VisionGPT2, VisionGPT2Captioner

HEAD_SIZE = 64  # the seed model's head size: heads cannot be read from the shapes

_SHAPE_FIELDS = ("vocab_size", "embed_dim", "seq_len", "depth", "mlp_ratio", "image_size", "patch_size")


def infer_visiongpt2_config(state: Mapping[str, torch.Tensor], num_heads: int | None = None) -> VisionGPT2Config:
    """Read a VisionGPT2 config off the shapes of a seed-layout state dict.

    The depth is the number of layers that hold weights, and must be 0..n-1 for both the encoder's
    `blocks.i` and the decoder's `transformer.h.i`; the widths come from the tensors themselves, so
    nothing is sized beyond what the file holds.
    """
    _require_seed_keys(state)
    wte, wpe, pos, patch = (
        state[k] for k in ("transformer.wte.weight", "transformer.wpe.weight", "pos_embed", "patch_embed.proj.weight")
    )
    vocab, dim = wte.shape
    n_tokens, patch_size = pos.shape[1], patch.shape[-1]
    grid = int(round((n_tokens - 1) ** 0.5))
    fc = state.get("transformer.h.0.mlp.c_fc.weight")
    heads = num_heads or max(1, dim // HEAD_SIZE)
    decoder_layers, encoder_layers = layer_indices(state, "transformer.h."), layer_indices(state, "blocks.")
    problems = [p for p in (layer_range_problem(decoder_layers, "decoder"), layer_range_problem(encoder_layers, "encoder")) if p]
    if not problems and len(decoder_layers) != len(encoder_layers):
        problems.append(f"{len(encoder_layers)} encoder blocks but {len(decoder_layers)} decoder blocks")
    if grid * grid + 1 != n_tokens:
        problems.append(f"pos_embed has {n_tokens} tokens, not a square grid plus a class token")
    if dim % heads:
        problems.append(f"width {dim} is not divisible into {heads} heads")
    if fc is not None and (fc.dim() != 2 or fc.shape[0] % dim):
        problems.append(f"transformer.h.0.mlp.c_fc.weight {tuple(fc.shape)} is not a multiple of the width {dim}")
    if wpe.shape[0] < 2:
        problems.append("transformer.wpe.weight has fewer than 2 positions")
    if problems:
        raise ModelLoadError("Shapes fit no VisionGPT2 config: " + "; ".join(problems) + ".")
    return VisionGPT2Config(
        vocab_size=vocab,
        embed_dim=dim,
        num_heads=heads,
        seq_len=wpe.shape[0],
        depth=len(decoder_layers),
        mlp_ratio=fc.shape[0] // dim if fc is not None else 4,
        image_size=grid * patch_size,
        patch_size=patch_size,
    )


def _require_seed_keys(state: Mapping[str, torch.Tensor]) -> None:
    """The four tensors the config is read from, present and of the seed's ranks."""
    ranks = {"transformer.wte.weight": 2, "transformer.wpe.weight": 2, "pos_embed": 3, "patch_embed.proj.weight": 4}
    missing = [k for k in ranks if k not in state]
    if missing:
        raise ModelLoadError(
            "This is not a VisionGPT2 checkpoint: missing " + ", ".join(missing) + ". "
            f"It has {len(state)} tensors, e.g. {', '.join(list(state)[:4])}."
        )
    wrong = [f"{k} {tuple(state[k].shape)}" for k, rank in ranks.items() if state[k].dim() != rank]
    dim = state["transformer.wte.weight"].shape[-1]
    if not wrong:
        wrong = [f"{k} {tuple(state[k].shape)}" for k in ranks if k != "patch_embed.proj.weight" and state[k].shape[-1] != dim]
        patch = state["patch_embed.proj.weight"].shape
        if patch[0] != dim or patch[1] != 3 or patch[2] != patch[3] or state["pos_embed"].shape[0] != 1:
            wrong.append(f"patch_embed.proj.weight {tuple(patch)}")
    if wrong:
        raise ModelLoadError(f"Shapes fit no VisionGPT2 config: {name_list(wrong)} (width {dim}).")


def config_from_weights(state: Mapping[str, torch.Tensor], declared: Mapping[str, Any], source: Path | None) -> VisionGPT2Config:
    """The config read off the weights, with a config.json's fields: typed, and agreeing with the shapes."""
    fields = typed_fields(declared, VISIONGPT2_SCHEMA, source) if source is not None else {}
    inferred = infer_visiongpt2_config(state)
    heads = fields.get("num_heads")
    if heads is not None and inferred.embed_dim % heads:
        raise ModelLoadError(f"{source}: num_heads ({heads}) must divide the width the weights hold ({inferred.embed_dim}).")
    for name in _SHAPE_FIELDS:
        if name in fields and fields[name] != getattr(inferred, name):
            raise ModelLoadError(f"{source}: {name} is {fields[name]}, but the weights hold {getattr(inferred, name)}.")
    token_ids = dict.fromkeys(("bos_token_id", "eos_token_id", "pad_token_id"), 0)  # set from the tokenizer
    try:
        return VisionGPT2Config.from_dict({**inferred.to_dict(), **fields, **token_ids})
    except ConfigError as e:
        raise ModelLoadError(f"{source or 'The inferred config'}: {e}.") from None


def build_visiongpt2(state: Mapping[str, torch.Tensor], config: VisionGPT2Config) -> VisionGPT2:
    """A VisionGPT2 holding `state`; missing, unexpected or misshapen keys are named in the error."""
    from captioner.models.visiongpt2 import VisionGPT2

    with torch.device("meta"):
        model = VisionGPT2(config)
    state = dict(state)
    if "lm_head.weight" not in state and "transformer.wte.weight" in state:
        state["lm_head.weight"] = state["transformer.wte.weight"]
    expected = model.state_dict()
    problems = _state_dict_problems(state, expected, config)
    if problems:
        raise ModelLoadError(
            "The checkpoint does not match a VisionGPT2 model. " + "; ".join(problems) + ". "
            f"Inferred config: depth {config.depth}, width {config.embed_dim}, heads {config.num_heads}, "
            f"vocabulary {config.vocab_size}, text length {config.seq_len}, image {config.image_size}px / "
            f"patch {config.patch_size}."
        )
    model.load_state_dict(state, assign=True)
    model.lm_head.weight = model.transformer.wte.weight  # `assign` replaced the tied parameter
    return model.eval()


def _state_dict_problems(
    state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], config: VisionGPT2Config
) -> list[str]:
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(k for k in set(state) - set(expected) if not k.endswith(MASK_SUFFIX))
    wrong = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    T = config.seq_len
    wrong += [
        f"{k} {tuple(t.shape)} (expected {(1, 1, T, T)})"
        for k, t in state.items()
        if k.endswith(MASK_SUFFIX) and tuple(t.shape) != (1, 1, T, T)
    ]
    named = [("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong)]
    return [f"{what}: {name_list(items)}" for what, items in named if items]


def load_visiongpt2_file(
    path: Path, dtype: torch.dtype, *, name: str = "", config: Mapping[str, Any] | None = None
) -> VisionGPT2Captioner:
    """A VisionGPT2 checkpoint file as a captioner, with the tokenizer and config.json beside it
    (`config`: that config.json's values, when the caller has read them already)."""
    from captioner.models.visiongpt2 import VisionGPT2Captioner

    if path.suffix not in CHECKPOINT_SUFFIXES:
        raise ModelLoadError(f"{path.name} is not a checkpoint file: expected a .pt or .safetensors file.")
    config_path = path.parent / "config.json"
    if config is None and os.path.lexists(config_path):
        config = read_json_file(config_path)
    state, notes = read_checkpoint(path)
    model_config = config_from_weights(state, config or {}, config_path if config else None)
    tokenizer = load_tokenizer(path.parent)
    _use_end_of_text(model_config, tokenizer)
    padding = vocabulary_padding(tokenizer, model_config.vocab_size, path.parent)
    model = build_visiongpt2(state, model_config)
    # A .pt zip is memory-mapped (read_state_dict): pages of the file that a conversion has read are
    # handed back at once, so that the file and the converted copy are never resident together.
    del state
    model = convert_dtype(model, dtype, release_source=True, check_finite=path.name)
    info = ModelInfo(
        name=name or path.name,
        family="visiongpt2",
        source=str(path),
        num_parameters=model.num_parameters(),
        dtype=dtype_name(dtype),
        notes=[*notes, *([padding] if padding else [])],
    )
    if not (config or {}).get("num_heads"):
        heads = f"{model_config.num_heads} head" + ("s" if model_config.num_heads != 1 else "")
        info.notes.append(
            f"{heads} assumed (head size {HEAD_SIZE}): put a config.json with num_heads beside the weights if that is wrong"
        )
    captioner = VisionGPT2Captioner(model, tokenizer, info)
    apply_folder_defaults(captioner, path.parent)
    return captioner


def visiongpt2_weights_in(folder: Path) -> Path | None:
    """The first of VISIONGPT2_WEIGHT_FILES that `folder` holds."""
    return next((folder / n for n in VISIONGPT2_WEIGHT_FILES if os.path.lexists(folder / n)), None)


def load_visiongpt2_folder(
    folder: Path, dtype: torch.dtype, *, name: str = "", config: Mapping[str, Any] | None = None
) -> VisionGPT2Captioner:
    """A folder with a config.json and VisionGPT2 weights (one of VISIONGPT2_WEIGHT_FILES)."""
    config = read_json_file(folder / "config.json") if config is None else config
    weights = visiongpt2_weights_in(folder)
    if weights is None:
        raise ModelLoadError(f"{folder} has a config.json but no weights ({' or '.join(VISIONGPT2_WEIGHT_FILES)}).")
    return load_visiongpt2_file(weights, dtype, name=name or folder.name, config=config)


def _use_end_of_text(config: VisionGPT2Config, tokenizer: Any) -> None:
    """The tokenizer's end-of-text token plays the role of GPT-2's id 50256."""
    token_id = end_of_text_id(tokenizer)
    if token_id >= config.vocab_size:
        raise ModelLoadError(f"The tokenizer's end token id {token_id} is outside the model's vocabulary ({config.vocab_size}).")
    config.bos_token_id = config.eos_token_id = config.pad_token_id = token_id
