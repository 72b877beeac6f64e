"""Weights as data: state dicts from `.pt` (weights only) or safetensors files, their shapes, layer ranges.

Nothing in a weights file runs as code: `.pt` files are read with `torch.load(..., weights_only=True)`
(memory-mapped when they are zips), safetensors with its own reader, and every tensor must be dense
floating point before anything is built from it.
"""

from __future__ import annotations

import pickle
import re
import zipfile
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

from captioner.loading.checkpoints import Checkpoint, unwrap_training_save
from captioner.loading.errors import ModelLoadError, checked_file, name_list, one_line
from captioner.models.base import dtype_name

MAX_CHECKPOINT_BYTES = 8_000_000_000  # README "Limits and safety"
# The weight files a folder may hold, in the order they are looked for.
VISIONGPT2_WEIGHT_FILES = ("model.safetensors", "captioner.safetensors", "captioner.pt", "pytorch_model.bin")
HF_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
HF_WEIGHT_INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
MASK_SUFFIX = ".attn.mask"  # the seed file's causal-mask buffers: checked for shape, then dropped


def read_checkpoint(path: Path) -> Checkpoint:
    """The weights of a `.pt` (weights only, memory-mapped) or `.safetensors` file, out of any training
    wrapper and prefixes (checkpoints.py), or a ModelLoadError.

    Every tensor must be a dense floating-point tensor (the seed file's `attn.mask` buffers excepted).
    """
    if checked_file(path, MAX_CHECKPOINT_BYTES, "a checkpoint").stat().st_size == 0:
        raise ModelLoadError(f"{path.name} is empty.")
    raw = read_safetensors(path) if path.suffix == ".safetensors" else load_torch_object(path)
    checkpoint = unwrap_training_save(raw, path.name)
    refuse_unusable_tensors(checkpoint.state, path.name)
    return checkpoint


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """`read_checkpoint(path)`'s tensors, named as the model names them."""
    return read_checkpoint(path).state


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as e:
        raise ModelLoadError(f"{path.name} is not a readable safetensors file (truncated or corrupt): {one_line(e)}") from None


def load_torch_object(path: Path) -> Any:
    """What a `.pt` file holds, read with `weights_only=True` (nothing in it runs); a zip is memory-mapped."""
    try:
        return torch.load(str(path), map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as e:
        if "Weights only load failed" in str(e) or "Unsupported global" in str(e):
            raise ModelLoadError(
                f"Refused to load {path.name}: it is a pickle that needs code to run, and checkpoints are "
                "only loaded as plain weights. Nothing from the file was executed. Save the model's "
                "state_dict (or use safetensors) instead."
            ) from None
        raise ModelLoadError(f"{path.name} is not a PyTorch checkpoint (truncated or corrupt).") from None
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError, TypeError, KeyError, IndexError, MemoryError) as e:
        raise ModelLoadError(f"{path.name} is not a PyTorch checkpoint (truncated or corrupt): {one_line(e)}") from None


def refuse_unusable_tensors(state: Mapping[str, torch.Tensor], source: str) -> None:
    """Every tensor (causal-mask buffers aside) is dense and floating point."""
    for name, t in state.items():
        if name.endswith(MASK_SUFFIX):
            continue
        if t.layout != torch.strided:
            raise ModelLoadError(f"Refused {source}: {name} is a {dtype_name(t.layout)} tensor; weights must be dense.")
        if not t.is_floating_point():
            raise ModelLoadError(
                f"Refused {source}: {name} holds {dtype_name(t.dtype)} values; weights must be "
                "floating point (float32, bfloat16 or float16)."
            )


def tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in a weights file: read from a safetensors header, or a mapped `.pt`."""
    checked_file(path, MAX_CHECKPOINT_BYTES, "a checkpoint")
    if path.suffix != ".safetensors":
        # transformers reads these names as they are: no prefix is stripped here
        state = unwrap_training_save(load_torch_object(path), path.name, strip_prefixes=False).state
        return {k: tuple(v.shape) for k, v in state.items()}
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ModelLoadError(f"{path.name} is not a readable safetensors file (truncated or corrupt): {one_line(e)}") from None


def layer_indices(keys: Iterable[str], prefix: str) -> set[int]:
    """The layer numbers i of keys `prefix` + "i." (e.g. prefix "transformer.h.")."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return {int(m.group(1)) for k in keys if (m := pattern.match(k))}


def layer_range_problem(found: set[int], what: str) -> str | None:
    """Why the layers `found` are not 0..n-1 (a layer with no weights is an error, not a layer)."""
    if not found:
        return f"the weights hold no {what} layers"
    missing = sorted(set(range(max(found) + 1)) - found)
    if not missing:
        return None
    if len(missing) == 1:
        gap = f"layer {missing[0]} has"
    elif len(missing) == missing[-1] - missing[0] + 1:
        gap = f"layers {missing[0]} to {missing[-1]} have"
    else:
        gap = f"layers {name_list([str(i) for i in missing])} have"
    return f"{what} layer {max(found)} has weights but {gap} none (a layer with no weights is an error)"
