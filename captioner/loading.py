"""`load_captioner(spec)`: the built-in model, a VisionGPT2 checkpoint, a model folder or a hub id.

Nothing from a model runs as code: checkpoints are read with `torch.load(..., weights_only=True)` or
from safetensors, every `from_pretrained` gets `trust_remote_code=False`, and a folder whose configs
name code (`auto_map`) is refused before transformers sees it. Every file is checked before it is
read (files.py), every config is read through a typed schema (config.py), and every size a config or
a key names is checked against what the weights actually hold before any memory is spent on it.
Every failure raises `ModelLoadError` with one message meant for a person.
"""

from __future__ import annotations

import json
import math
import os
import pickle
import re
import stat
import zipfile
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, NamedTuple

import torch

from captioner.config import (
    GENERATION_SCHEMA, ConfigError, Spec, VisionGPT2Config, VISIONGPT2_SCHEMA, decoding_from_generation_config, read_fields,
)  # fmt: skip
from captioner.files import FileRefused, check_regular_file, describe_path, read_regular_file
from captioner.models.base import CaptionModel, ModelInfo

BUILTIN_DIR = Path(__file__).parent / "builtin"
PROJECT_DIR = Path(__file__).resolve().parent.parent  # where the original instructions put captioner.pt
DEFAULT_HUB_MODEL = "nlpconnect/vit-gpt2-image-captioning"
GPT2_TOKENIZER = "gpt2"
END_OF_TEXT = "<|endoftext|>"
HEAD_SIZE = 64  # the seed model's head size: heads cannot be read from the shapes
CALIBRATION_FILE = "calibration.json"  # out-of-world calibration beside a model's weights (decoding/confidence.py)
GENERATION_CONFIG_FILE = "generation_config.json"  # Hugging Face's decoding defaults, for both families
HUB_TIMEOUT = 2.0  # seconds the hub has to answer before we say it did not

# Caps read from the file system before a file is read (README "Limits and safety").
MAX_CONFIG_BYTES = 1_000_000
MAX_TOKENIZER_BYTES = 64_000_000
MAX_CHECKPOINT_BYTES = 8_000_000_000
MAX_JSON_DEPTH = 32
MAX_IMAGE_SIDE = 2048  # a preprocessor's resize target

VISIONGPT2_WEIGHTS = ("model.safetensors", "captioner.safetensors", "captioner.pt", "pytorch_model.bin")
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
TOKENIZER_FILES = ("tokenizer_config.json", "special_tokens_map.json", "tokenizer.json", "vocab.json", "merges.txt",
                   "added_tokens.json")  # fmt: skip
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ModelLoadError(Exception):
    """A model could not be loaded; the message says why in plain words."""


def load_captioner(spec: str = "builtin", *, dtype: str | torch.dtype = "float32") -> CaptionModel:
    """Load a captioner from `builtin`, a `.pt`/`.safetensors` file, a folder, or a hub id."""
    torch_dtype = _parse_dtype(dtype)
    spec = str(spec).strip()
    if not spec:
        raise ModelLoadError("No model given: use 'builtin', a path to a checkpoint or folder, or a hub id.")
    if spec == "builtin":
        if not (BUILTIN_DIR / "config.json").exists():
            raise ModelLoadError(f"The built-in model is missing from {BUILTIN_DIR}; reinstall the package.")
        return _load_visiongpt2_dir(BUILTIN_DIR, torch_dtype, name="builtin")
    path = Path(spec).expanduser()
    if os.path.lexists(path):
        return _load_path(path, torch_dtype)
    if _HUB_ID.match(spec) and not spec.startswith((".", "/", "~")) and not spec.endswith(CHECKPOINT_SUFFIXES):
        return _load_hub_model(spec, torch_dtype)
    raise ModelLoadError(f"No such file or directory: {spec}")


def _load_path(path: Path, dtype: torch.dtype) -> CaptionModel:
    """A folder or a checkpoint file; anything else (a FIFO, a device, a broken link) is named and refused."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        mode = 0
    if stat.S_ISDIR(mode):
        return _load_directory(path, dtype)
    if stat.S_ISREG(mode):
        return _load_visiongpt2_file(path, dtype)
    raise ModelLoadError(f"{path} is {describe_path(path)}, not a model file or folder.")


def _parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if dtype not in table:
        raise ModelLoadError(f"Unknown dtype {dtype!r}: use float32 or bfloat16.")
    return table[dtype]


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]


# -- files and configs --------------------------------------------------------------------------
def _checked_file(path: Path, max_bytes: int, what: str) -> Path:
    try:
        return check_regular_file(path, max_bytes, what)
    except FileRefused as e:
        raise ModelLoadError(str(e)) from None


def read_json_file(path: Path, max_bytes: int = MAX_CONFIG_BYTES) -> dict[str, Any]:
    """A config file's JSON object: a regular file within `max_bytes`, strict JSON (no NaN), nested at most
    MAX_JSON_DEPTH levels, naming no code to run (`auto_map`). Anything else is a ModelLoadError naming the file."""
    try:
        data = read_regular_file(path, max_bytes, "a config file")
    except FileRefused as e:
        raise ModelLoadError(str(e)) from None
    try:
        obj = json.loads(data, parse_constant=_refuse_json_constant)
    except RecursionError:
        raise ModelLoadError(f"{path} is nested too deeply; the limit is {MAX_JSON_DEPTH} levels.") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ModelLoadError(f"{path} is not valid JSON: {_short(e)}") from None
    if not isinstance(obj, dict):
        raise ModelLoadError(f"{path} does not hold a JSON object.")
    if _json_depth(obj) > MAX_JSON_DEPTH:
        raise ModelLoadError(f"{path} is nested too deeply; the limit is {MAX_JSON_DEPTH} levels.")
    _refuse_model_code(path, obj)
    return obj


def _refuse_json_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def _json_depth(obj: Any) -> int:
    deepest, stack = 0, [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if depth <= MAX_JSON_DEPTH:
                stack += [(child, depth + 1) for child in (item.values() if isinstance(item, dict) else item)]
    return deepest


def _refuse_model_code(path: Path, obj: Mapping[str, Any]) -> None:
    """Refuse a config that asks transformers to import code shipped with the model (`auto_map`)."""
    stack: list[Any] = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("auto_map"):
                modules = sorted({s.split("--")[-1].rsplit(".", 1)[0] + ".py" for s in _strings(item["auto_map"]) if "." in s})
                raise ModelLoadError(
                    f"Refused {path.parent}: {path.name} asks to run code shipped with the model (auto_map"
                    + (f": {', '.join(modules)}" if modules else "")
                    + "). Models are only loaded as data; nothing from the folder was run."
                )
            stack += list(item.values())
        elif isinstance(item, list):
            stack += item


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)


def _read_fields(values: Mapping[str, Any], schema: Mapping[str, Spec], source: Path | str, prefix: str = "") -> dict[str, Any]:
    """`config.read_fields`, with a failure turned into a ModelLoadError naming the file and the field."""
    try:
        return read_fields(values, schema)
    except ConfigError as e:
        raise ModelLoadError(f"{source}: {prefix}{e}.") from None


# -- reading weights safely ---------------------------------------------------------------------
def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a `.pt` (weights only, memory-mapped) or `.safetensors` file, or a ModelLoadError.

    Every tensor must be a dense floating-point tensor (the seed file's `attn.mask` buffers excepted).
    """
    if _checked_file(path, MAX_CHECKPOINT_BYTES, "a checkpoint").stat().st_size == 0:
        raise ModelLoadError(f"{path.name} is empty.")
    state = _read_safetensors(path) if path.suffix == ".safetensors" else _read_torch_file(path)
    _refuse_unusable_tensors(state, path.name)
    return state


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError, TypeError) as e:
        raise ModelLoadError(f"{path.name} is not a readable safetensors file (truncated or corrupt): {_short(e)}") from None


def _read_torch_file(path: Path) -> dict[str, torch.Tensor]:
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True, mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as e:
        if "Weights only load failed" in str(e) or "Unsupported global" in str(e):
            raise ModelLoadError(
                f"Refused to load {path.name}: it is a pickle that needs code to run, and checkpoints are "
                "only loaded as plain weights. Nothing from the file was executed. Save the model's "
                "state_dict (or use safetensors) instead."
            ) from None
        raise ModelLoadError(f"{path.name} is not a PyTorch checkpoint (truncated or corrupt).") from None
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError, TypeError, KeyError, IndexError, MemoryError) as e:
        raise ModelLoadError(f"{path.name} is not a PyTorch checkpoint (truncated or corrupt): {_short(e)}") from None
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise ModelLoadError(f"{path.name} holds no state dict (a mapping of names to tensors).")
    return obj


def _refuse_unusable_tensors(state: Mapping[str, torch.Tensor], source: str) -> None:
    for name, t in state.items():
        if name.endswith(".attn.mask"):
            continue  # the seed file's causal-mask buffers: checked for shape, then dropped
        if t.layout != torch.strided:
            raise ModelLoadError(f"Refused {source}: {name} is a {str(t.layout).replace('torch.', '')} tensor; weights must be dense.")
        if not t.is_floating_point():
            raise ModelLoadError(
                f"Refused {source}: {name} holds {str(t.dtype).replace('torch.', '')} values; weights must be "
                "floating point (float32, bfloat16 or float16)."
            )


def convert_dtype(
    model: torch.nn.Module, dtype: torch.dtype, release_source: bool = False, check_finite: str | None = None
) -> torch.nn.Module:
    """`model.to(dtype)` for floating-point tensors, one tensor at a time; tied tensors stay tied.

    With `release_source`, after each conversion the pages of the old tensor that belong to a file
    mapping (a checkpoint opened with mmap) are dropped from this process (`release_file_pages`).
    Peak memory is then the converted model plus one tensor, rather than the converted model plus
    the whole file.

    With `check_finite` (the weights' source, for the message), every parameter must be floating point
    and every floating tensor finite once converted: the weights are checked in the same pass, so a
    mapped file's pages are read once. A NaN or infinite value raises ModelLoadError naming the tensor.
    """
    release = release_file_pages() if release_source else None
    names = {id(t): n for n, t in [*model.named_parameters(), *model.named_buffers()]}
    done: dict[int, torch.Tensor] = {}
    for module in model.modules():
        for table in (module._parameters, module._buffers):
            for name, old in list(table.items()):
                if old is None:
                    continue
                if id(old) not in done:
                    done[id(old)] = _converted(old, dtype, release)
                    if check_finite is not None:
                        _check_weight(done[id(old)], names.get(id(old), name), table is module._parameters, check_finite)
                table[name] = done[id(old)]
    return model


def _converted(old: torch.Tensor, dtype: torch.dtype, release: Callable[[torch.Tensor], None] | None) -> torch.Tensor:
    if not old.is_floating_point() or old.dtype == dtype:
        return old
    data = old.detach().to(dtype)
    new = torch.nn.Parameter(data, requires_grad=old.requires_grad) if isinstance(old, torch.nn.Parameter) else data
    if release is not None:
        release(old)
    return new


def _check_weight(t: torch.Tensor, name: str, is_parameter: bool, source: str) -> None:
    if is_parameter and (not t.is_floating_point() or t.layout != torch.strided):
        raise ModelLoadError(f"Refused {source}: {name} holds {str(t.dtype).replace('torch.', '')} values; weights must be floating point.")
    if t.is_floating_point() and not _all_finite(t):
        raise ModelLoadError(f"Refused {source}: its weights hold NaN or infinite values, first in {name}.")


def _all_finite(t: torch.Tensor) -> bool:
    """Whether every value is finite: then so is the largest magnitude, as NaN and infinities carry
    through the max (one reduction, no bool copy of a whole embedding)."""
    return t.numel() == 0 or math.isfinite(float(torch.linalg.vector_norm(t.detach(), float("inf"))))


def release_file_pages() -> Callable[[torch.Tensor], None]:
    """A function that drops this process's copy of the pages wholly inside a tensor, when they belong to a
    file mapping (madvise MADV_DONTNEED): the file is untouched and would be read again if needed.

    Pages of anonymous memory are left alone: dropping them would zero data that another view may still
    read. The file mappings are listed once (psutil's memory maps), at the first tensor handed over, so
    that a load that converts nothing never pays for listing them.
    """
    import ctypes
    import mmap

    files: list[tuple[int, int]] | None = None
    advice = getattr(mmap, "MADV_DONTNEED", None)
    libc = ctypes.CDLL(None, use_errno=True) if advice is not None else None
    page = mmap.PAGESIZE

    def release(t: torch.Tensor) -> None:
        nonlocal files
        start, end = t.data_ptr(), t.data_ptr() + t.numel() * t.element_size()
        first, last = -(-start // page) * page, end // page * page
        if libc is None or last <= first or not t.is_contiguous():
            return
        if files is None:
            files = _file_mappings()
        if any(lo <= first and last <= hi for lo, hi in files):
            libc.madvise(ctypes.c_void_p(first), ctypes.c_size_t(last - first), advice)

    return release


def _file_mappings() -> list[tuple[int, int]]:
    """(start, end) addresses of this process's memory mapped from files."""
    import psutil

    try:
        maps = psutil.Process().memory_maps(grouped=False)
        return [tuple(int(v, 16) for v in m.addr.split("-")) for m in maps if m.path.startswith("/")]
    except (psutil.Error, OSError, ValueError, AttributeError):
        return []


def _list(items: list[str], n: int = 8) -> str:
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def _layer_indices(keys: Iterable[str], prefix: str) -> set[int]:
    """The layer numbers i of keys `prefix` + "i." (e.g. prefix "transformer.h.")."""
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    return {int(m.group(1)) for k in keys if (m := pattern.match(k))}


def _layer_range_problem(found: set[int], what: str) -> str | None:
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
        gap = f"layers {_list([str(i) for i in missing])} have"
    return f"{what} layer {max(found)} has weights but {gap} none (a layer with no weights is an error)"


# -- VisionGPT2 ---------------------------------------------------------------------------------
_SHAPE_FIELDS = ("vocab_size", "embed_dim", "seq_len", "depth", "mlp_ratio", "image_size", "patch_size")


def infer_visiongpt2_config(state: Mapping[str, torch.Tensor], num_heads: int | None = None) -> VisionGPT2Config:
    """Read a VisionGPT2 config off the shapes of a seed-layout state dict.

    The depth is the number of layers that hold weights, and must be 0..n-1 for both the encoder's
    `blocks.i` and the decoder's `transformer.h.i`; the widths come from the tensors themselves, so
    nothing is sized beyond what the file holds.
    """
    _require_seed_keys(state)
    wte, wpe, pos, patch = (state[k] for k in ("transformer.wte.weight", "transformer.wpe.weight", "pos_embed", "patch_embed.proj.weight"))
    vocab, dim = wte.shape
    n_tokens, patch_size = pos.shape[1], patch.shape[-1]
    grid = int(round((n_tokens - 1) ** 0.5))
    fc = state.get("transformer.h.0.mlp.c_fc.weight")
    heads = num_heads or max(1, dim // HEAD_SIZE)
    decoder_layers, encoder_layers = _layer_indices(state, "transformer.h."), _layer_indices(state, "blocks.")
    problems = [p for p in (_layer_range_problem(decoder_layers, "decoder"), _layer_range_problem(encoder_layers, "encoder")) if p]
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
        vocab_size=vocab, embed_dim=dim, num_heads=heads, seq_len=wpe.shape[0], depth=len(decoder_layers),
        mlp_ratio=fc.shape[0] // dim if fc is not None else 4, image_size=grid * patch_size, patch_size=patch_size,
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
        raise ModelLoadError(f"Shapes fit no VisionGPT2 config: {_list(wrong)} (width {dim}).")


def _visiongpt2_config(state: Mapping[str, torch.Tensor], declared: Mapping[str, Any], source: Path | None) -> VisionGPT2Config:
    """The config read off the weights, with a config.json's fields: typed, and agreeing with the shapes."""
    fields = _read_fields(declared, VISIONGPT2_SCHEMA, source) if source is not None else {}
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


def build_visiongpt2(state: dict[str, torch.Tensor], config: VisionGPT2Config):
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


def _state_dict_problems(state: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], config: VisionGPT2Config) -> list[str]:
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(k for k in set(state) - set(expected) if not k.endswith(".attn.mask"))
    wrong = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    T = config.seq_len
    wrong += [f"{k} {tuple(t.shape)} (expected {(1, 1, T, T)})" for k, t in state.items()
              if k.endswith(".attn.mask") and tuple(t.shape) != (1, 1, T, T)]  # fmt: skip
    named = [("missing keys", missing), ("unexpected keys", unexpected), ("wrong shapes", wrong)]
    return [f"{what}: {_list(items)}" for what, items in named if items]


def _load_visiongpt2_file(path: Path, dtype: torch.dtype, config_dict: dict | None = None, name: str = ""):
    from captioner.models.visiongpt2 import VisionGPT2Captioner

    if path.suffix not in CHECKPOINT_SUFFIXES:
        raise ModelLoadError(f"{path.name} is not a checkpoint file: expected a .pt or .safetensors file.")
    config_path = path.parent / "config.json"
    if config_dict is None and os.path.lexists(config_path):
        config_dict = read_json_file(config_path)
    state = read_state_dict(path)
    config = _visiongpt2_config(state, config_dict or {}, config_path if config_dict else None)
    tokenizer = load_tokenizer(path.parent)
    _use_end_of_text(config, tokenizer)
    model = build_visiongpt2(state, config)
    # A .pt zip is memory-mapped (read_state_dict): pages of the file that a conversion has read are
    # handed back at once, so that the file and the converted copy are never resident together.
    del state
    model = convert_dtype(model, dtype, release_source=True, check_finite=path.name)
    info = ModelInfo(
        name=name or path.name, family="visiongpt2", source=str(path), num_parameters=model.num_parameters(),
        dtype=str(dtype).replace("torch.", ""),
    )
    if not (config_dict or {}).get("num_heads"):
        heads = f"{config.num_heads} head" + ("s" if config.num_heads != 1 else "")
        info.notes.append(f"{heads} assumed (head size {HEAD_SIZE}): put a config.json with num_heads beside the weights if that is wrong")
    captioner = VisionGPT2Captioner(model, tokenizer, info)
    _apply_folder_defaults(captioner, path.parent)
    return captioner


def _load_visiongpt2_dir(path: Path, dtype: torch.dtype, name: str = "", config_dict: dict | None = None):
    config_dict = read_json_file(path / "config.json") if config_dict is None else config_dict
    for weights in VISIONGPT2_WEIGHTS:
        if os.path.lexists(path / weights):
            return _load_visiongpt2_file(path / weights, dtype, config_dict, name=name or path.name)
    raise ModelLoadError(f"{path} has a config.json but no weights ({' or '.join(VISIONGPT2_WEIGHTS[:3])}).")


def _load_directory(path: Path, dtype: torch.dtype):
    config_file = path / "config.json"
    if not os.path.lexists(config_file):
        for weights in ("captioner.pt", "model.safetensors"):
            if os.path.lexists(path / weights):
                return _load_visiongpt2_file(path / weights, dtype)
        raise ModelLoadError(
            f"{path} is not a model folder: it has no config.json (and no captioner.pt or model.safetensors)."
        )
    config = read_json_file(config_file)
    from captioner.loading_blip_git import is_blip_or_git, load_blip_git_dir

    if is_blip_or_git(config):
        return load_blip_git_dir(path, dtype)
    if config.get("model_type") == "vision-encoder-decoder":
        return _load_hf_dir(path, dtype)
    if config.get("architecture") == "VisionGPT2" or any(os.path.lexists(path / w) for w in VISIONGPT2_WEIGHTS):
        return _load_visiongpt2_dir(path, dtype, config_dict=config)
    kind = config.get("model_type") if isinstance(config.get("model_type"), str) else "unknown"
    raise ModelLoadError(f"{config_file} describes a {kind} model; expected a VisionGPT2, a vision-encoder-decoder, a BLIP or a GIT model.")


def _apply_folder_defaults(model: CaptionModel, folder: Path) -> None:
    """What a model folder says beside the weights: decoding defaults (generation_config.json), the
    out-of-world calibration (calibration.json); and max_new_tokens within the model's positions."""
    limit = model.max_new_tokens_limit
    gen_file = folder / GENERATION_CONFIG_FILE
    if os.path.lexists(gen_file) and model.info.family == "visiongpt2":
        values = read_json_file(gen_file)
        _read_fields(values, GENERATION_SCHEMA, gen_file)
        try:
            model.default_decoding = decoding_from_generation_config(values, model.default_decoding, limit)
        except ConfigError as e:
            raise ModelLoadError(f"{gen_file}: {e}.") from None
    model.default_decoding = model.default_decoding.within_limit(limit)[0]
    if os.path.lexists(folder / CALIBRATION_FILE) and model.info.family == "visiongpt2":
        model.calibration = read_json_file(folder / CALIBRATION_FILE)


# -- tokenizers ---------------------------------------------------------------------------------
def load_tokenizer(folder: Path):
    """The tokenizer saved in `folder`, else GPT-2's from the local Hugging Face cache (or the hub).

    Accepted layouts: `save_pretrained` output (tokenizer_config.json with tokenizer.json or vocab.json +
    merges.txt, with or without special_tokens_map.json), or a tokenizer.json alone.
    """
    present = _tokenizer_files(folder)
    if not present:
        folder = _gpt2_tokenizer_folder(folder)
        present = _tokenizer_files(folder)
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    try:
        if "tokenizer_config.json" in present:
            return AutoTokenizer.from_pretrained(str(folder), trust_remote_code=False, local_files_only=True)
        if "tokenizer.json" in present:
            return PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"))
    except ModelLoadError:
        raise
    except Exception as e:  # a broken tokenizer file can fail in many ways inside tokenizers
        raise ModelLoadError(f"The tokenizer in {folder} could not be read: {_short(e)}") from None
    raise ModelLoadError(f"{folder} has {', '.join(present)} but no tokenizer.json or tokenizer_config.json to read them with.")


def _tokenizer_files(folder: Path) -> list[str]:
    """The tokenizer files present in `folder`, each checked: regular, within its cap, JSON ones read."""
    present = [name for name in TOKENIZER_FILES if os.path.lexists(folder / name)]
    for name in present:
        if name.endswith("_config.json") or name in ("special_tokens_map.json", "added_tokens.json"):
            read_json_file(folder / name, MAX_TOKENIZER_BYTES)  # a long added-tokens list can pass 1 MB
        else:
            _checked_file(folder / name, MAX_TOKENIZER_BYTES, "a tokenizer file")
    return present


def _gpt2_tokenizer_folder(beside: Path) -> Path:
    def complete(snapshot: Path) -> bool:
        return (snapshot / "tokenizer.json").exists() or ((snapshot / "vocab.json").exists() and (snapshot / "merges.txt").exists())

    try:
        return hub_snapshot(GPT2_TOKENIZER, [*TOKENIZER_FILES, "config.json"], complete)
    except ModelLoadError as e:
        raise ModelLoadError(
            f"No tokenizer beside the checkpoint in {beside} (looked for tokenizer_config.json and tokenizer.json), and GPT-2's "
            f"tokenizer is neither in the local Hugging Face cache nor reachable on the hub: {e} Put the tokenizer "
            "files next to the weights (GPT-2's tokenizer's save_pretrained(folder) writes them)."
        ) from None


def end_of_text_id(tokenizer: Any) -> int:
    """The id that starts and ends a caption: `<|endoftext|>` if the vocabulary has it, else eos, else bos.

    GPT-2's tokenizer has unk = bos = eos = `<|endoftext|>` (id 50256), and that is fine.
    """
    vocab = tokenizer.get_vocab()
    for token in (END_OF_TEXT, getattr(tokenizer, "eos_token", None), getattr(tokenizer, "bos_token", None)):
        if isinstance(token, str) and token in vocab:
            return int(vocab[token])
    raise ModelLoadError(f"The tokenizer has no end-of-text token: neither {END_OF_TEXT} nor an eos or bos token it knows.")


def _use_end_of_text(config: VisionGPT2Config, tokenizer: Any) -> None:
    """The tokenizer's end-of-text token plays the role of GPT-2's id 50256."""
    token_id = end_of_text_id(tokenizer)
    if token_id >= config.vocab_size:
        raise ModelLoadError(f"The tokenizer's end token id {token_id} is outside the model's vocabulary ({config.vocab_size}).")
    config.bos_token_id = config.eos_token_id = config.pad_token_id = token_id


# -- Hugging Face -------------------------------------------------------------------------------
class HFSizes(NamedTuple):
    """What a vision-encoder-decoder config.json says about its sizes, checked for types and ranges."""

    encoder: dict[str, Any]
    decoder: dict[str, Any]


_HF_ENCODER_SCHEMA = {
    "model_type": Spec("choice", choices=("vit", "deit")),
    "hidden_size": Spec("int", 1, 16_384), "num_hidden_layers": Spec("int", 1, 256),
    "num_attention_heads": Spec("int", 1, 1_024), "intermediate_size": Spec("int", 1, 131_072),
    "image_size": Spec("int", 1, MAX_IMAGE_SIDE), "patch_size": Spec("int", 1, MAX_IMAGE_SIDE),
    "num_channels": Spec("int", 1, 16),
}  # fmt: skip
_HF_DECODER_SCHEMA = {
    "model_type": Spec("choice", choices=("gpt2",)),
    "n_layer": Spec("int", 1, 256), "n_head": Spec("int", 1, 1_024), "n_embd": Spec("int", 1, 16_384),
    "n_positions": Spec("int", 2, 65_536), "vocab_size": Spec("int", 1, 1_000_000),
    "n_inner": Spec("int", 1, 131_072, nullable=True),
}  # fmt: skip
_HF_DEFAULTS = {"encoder": {"model_type": "vit", "image_size": 224, "patch_size": 16, "num_channels": 3},
                "decoder": {"n_inner": None}}  # fmt: skip


def _hf_sizes(config: Mapping[str, Any], path: Path) -> HFSizes:
    """The encoder's and decoder's sizes from config.json, typed; the decoder must be GPT-2."""
    parts = {}
    for part, schema in (("encoder", _HF_ENCODER_SCHEMA), ("decoder", _HF_DECODER_SCHEMA)):
        sub = config.get(part)
        if not isinstance(sub, dict):
            raise ModelLoadError(f"{path}: {part} must be a mapping (the {part}'s config), not {type(sub).__name__}.")
        fields = {**_HF_DEFAULTS[part], **_read_fields(sub, schema, path, prefix=f"{part}.")}
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


def _check_decoder_type(config: Mapping[str, Any], path: Path) -> None:
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
        ("encoder.embeddings.patch_embeddings.projection.weight",
         (e["hidden_size"], e["num_channels"], e["patch_size"], e["patch_size"]), "encoder.hidden_size, encoder.patch_size"),
        ("encoder.embeddings.position_embeddings", (1, grid * grid + extra, e["hidden_size"]), "encoder.image_size"),
        ("encoder.encoder.layer.0.intermediate.dense.weight", (e["intermediate_size"], e["hidden_size"]), "encoder.intermediate_size"),
    ]  # fmt: skip


def _check_hf_weights_fit(sizes: HFSizes, shapes: Mapping[str, tuple[int, ...]], path: Path) -> None:
    """Every size config.json names matches what the weights hold, before transformers builds anything."""
    for prefix, field, what in (("decoder.transformer.h.", "decoder.n_layer", "decoder"),
                                ("encoder.encoder.layer.", "encoder.num_hidden_layers", "encoder")):  # fmt: skip
        found = _layer_indices(shapes, prefix)
        declared = sizes.decoder["n_layer"] if what == "decoder" else sizes.encoder["num_hidden_layers"]
        problem = _layer_range_problem(found, what)
        if problem:
            raise ModelLoadError(f"{path.parent}: {problem}.")
        if len(found) != declared:
            raise ModelLoadError(f"{path}: {field} is {declared}, but the weights hold {len(found)} {what} layers.")
    for key, expected, fields in _hf_expected_shapes(sizes):
        if key not in shapes:
            raise ModelLoadError(f"{path.parent}: the weights lack {key}.")
        if tuple(shapes[key]) != expected:
            raise ModelLoadError(f"{path}: {fields} imply {key} of shape {expected}, but the weights hold {tuple(shapes[key])}.")


def _hf_weight_shapes(folder: Path) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in a Hugging Face folder's weights, read from the headers (or a mapped .bin)."""
    index = next((folder / n for n in ("model.safetensors.index.json", "pytorch_model.bin.index.json") if os.path.lexists(folder / n)), None)
    if index is not None:
        weight_map = read_json_file(index).get("weight_map")
        shards = sorted(set(weight_map.values())) if isinstance(weight_map, dict) else []
        if not shards or not all(isinstance(s, str) and s == Path(s).name for s in shards):
            raise ModelLoadError(f"{index}: weight_map must map tensor names to shard files in the same folder.")
        files = [folder / s for s in shards]
    else:
        files = [folder / n for n in ("model.safetensors", "pytorch_model.bin") if os.path.lexists(folder / n)][:1]
    if not files:
        raise ModelLoadError(f"{folder} has no weights (model.safetensors or pytorch_model.bin).")
    shapes: dict[str, tuple[int, ...]] = {}
    for file in files:
        shapes.update(_tensor_shapes(file))
    return shapes


def _tensor_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    _checked_file(path, MAX_CHECKPOINT_BYTES, "a checkpoint")
    if path.suffix != ".safetensors":
        return {k: tuple(v.shape) for k, v in _read_torch_file(path).items()}
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise ModelLoadError(f"{path.name} is not a readable safetensors file (truncated or corrupt): {_short(e)}") from None


_HF_PREPROCESSOR_SCHEMA = {
    "do_resize": Spec("bool"), "do_rescale": Spec("bool"), "do_normalize": Spec("bool"),
    "rescale_factor": Spec("float", 0.0, 1.0, above=True), "resample": Spec("int", 0, 5),
    "image_mean": Spec("floats", -1e3, 1e3, length=3), "image_std": Spec("floats", 1e-6, 1e3, length=3),
}  # fmt: skip
_SIDE = Spec("int", 1, MAX_IMAGE_SIDE)


def _check_preprocessor(folder: Path, image_size: int) -> None:
    """The image processor's settings are typed, and it resizes to the encoder's own image size."""
    path = folder / "preprocessor_config.json"
    if not os.path.lexists(path):
        raise ModelLoadError(f"{folder} has no preprocessor_config.json (how images are resized and normalised).")
    config = read_json_file(path)
    _read_fields(config, _HF_PREPROCESSOR_SCHEMA, path)
    if config.get("do_resize") is False:
        raise ModelLoadError(f"{path}: do_resize is false, but the encoder takes {image_size} x {image_size} images only.")
    size = config.get("size")
    sides = _read_fields(size, {k: _SIDE for k in size}, path, "size.") if isinstance(size, dict) else _read_fields(config, {"size": _SIDE}, path)
    for name, side in sides.items():
        if side != image_size:
            where = "size" if name == "size" else f"size.{name}"
            raise ModelLoadError(f"{path}: {where} is {side}, but the encoder takes {image_size} x {image_size} images (encoder.image_size).")


_HF_JSON_FILES = ("generation_config.json", "processor_config.json", "image_processor_config.json")


def _load_hf_dir(folder: Path, dtype: torch.dtype, name: str = ""):
    """A VisionEncoderDecoderModel folder, every file checked before transformers reads it."""
    config_path = folder / "config.json"
    config = read_json_file(config_path)
    _check_decoder_type(config, config_path)
    sizes = _hf_sizes(config, config_path)
    for extra in _HF_JSON_FILES:
        if os.path.lexists(folder / extra):
            values = read_json_file(folder / extra)
            if extra == GENERATION_CONFIG_FILE:
                _read_fields(values, GENERATION_SCHEMA, folder / extra)
    _check_hf_weights_fit(sizes, _hf_weight_shapes(folder), config_path)
    _check_preprocessor(folder, sizes.encoder["image_size"])
    tokenizer = load_tokenizer(folder)
    model, processor = _read_hf_folder(folder, dtype, name or str(folder))
    from captioner.models.hf import HFVisionEncoderDecoderCaptioner

    try:
        captioner = HFVisionEncoderDecoderCaptioner(model, processor, tokenizer, source=name or str(folder))
    except ValueError as e:
        raise ModelLoadError(f"{folder}: {e}") from None
    _apply_folder_defaults(captioner, folder)
    return captioner


def _read_hf_folder(folder: Path, dtype: torch.dtype, name: str):
    from transformers import AutoImageProcessor, VisionEncoderDecoderModel

    try:
        # Loaded in the file's own dtype (the tensors stay views of the memory-mapped file), then converted
        # one tensor at a time, handing each one's file pages back: asking transformers for another dtype
        # keeps the whole file resident beside the converted copy (ViT-GPT2 fp32 -> bf16: 2.2 GB peak).
        model = VisionEncoderDecoderModel.from_pretrained(str(folder), dtype="auto", trust_remote_code=False, local_files_only=True)
        model = convert_dtype(model, dtype, release_source=True, check_finite=name)
        processor = AutoImageProcessor.from_pretrained(str(folder), trust_remote_code=False, local_files_only=True)
    except ModelLoadError:
        raise
    except (OSError, ValueError, KeyError, RuntimeError, TypeError, AttributeError, IndexError) as e:
        raise ModelLoadError(f"{name} is not a loadable vision-encoder-decoder model: {_short(e)}") from None
    return model, processor


def _load_hub_model(repo_id: str, dtype: torch.dtype):
    def complete(snapshot: Path) -> bool:
        return (snapshot / "config.json").exists() and any(
            (snapshot / n).exists() for n in ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")
        )

    folder = hub_snapshot(repo_id, None, complete)
    from captioner.loading_blip_git import is_blip_or_git, load_blip_git_dir

    if is_blip_or_git(read_json_file(folder / "config.json")):
        return load_blip_git_dir(folder, dtype, name=repo_id)
    return _load_hf_dir(folder, dtype, name=repo_id)


# -- the Hugging Face hub -----------------------------------------------------------------------
# The environment is read at each call (huggingface_hub reads it once, at import), so that a process
# that sets HF_HOME or HF_HUB_OFFLINE later is followed.
def hub_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set: the hub is never asked."""
    return any(os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on") for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def _hub_endpoint() -> str | None:
    return os.environ.get("HF_ENDPOINT") or None


def _cached_snapshot(repo_id: str) -> Path | None:
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, cache_dir=hub_cache_dir(), local_files_only=True))
    except Exception:  # not cached (LocalEntryNotFoundError), or a damaged cache entry
        return None


def _hub_model_info(repo_id: str, timeout: float):
    """The hub's record of `repo_id`, or one ModelLoadError that says why there is none."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        return HfApi(endpoint=_hub_endpoint()).model_info(repo_id, timeout=timeout)
    except GatedRepoError:
        raise ModelLoadError(f"{repo_id} is a gated model on the Hugging Face hub: log in and accept its terms first.") from None
    except RepositoryNotFoundError:
        raise ModelLoadError(f"There is no model {repo_id} on the Hugging Face hub (or it is private).") from None
    except Exception as e:
        where = _hub_endpoint() or "huggingface.co"
        raise ModelLoadError(f"The Hugging Face hub ({where}) did not answer within {timeout:g} s ({type(e).__name__}).") from None


def _hub_answers(repo_id: str, timeout: float) -> bool:
    """Whether the hub answers for `repo_id` within `timeout` seconds (never asked when offline)."""
    if hub_offline():
        return False
    try:
        _hub_model_info(repo_id, timeout)
        return True
    except ModelLoadError:
        return False


def hub_snapshot(repo_id: str, patterns: list[str] | None, complete: Callable[[Path], bool], timeout: float = HUB_TIMEOUT) -> Path:
    """A local folder with `repo_id`'s files: the cached snapshot when `complete`, else downloaded.

    Fails with one ModelLoadError, within `timeout` seconds when the hub does not answer.
    """
    from huggingface_hub import snapshot_download

    cached = _cached_snapshot(repo_id)
    if cached is not None and complete(cached):
        return cached
    if hub_offline():
        raise ModelLoadError(f"{repo_id} is not in the local Hugging Face cache ({hub_cache_dir()}), and HF_HUB_OFFLINE is set.")
    try:
        info = _hub_model_info(repo_id, timeout)
    except ModelLoadError as e:
        raise ModelLoadError(f"{repo_id} is not in the local Hugging Face cache, and it cannot be downloaded: {e}") from None
    if patterns is None:
        names = {s.rfilename for s in (info.siblings or [])}
        weights = "*.safetensors" if any(n.startswith("model.safetensors") for n in names) else "pytorch_model*.bin*"
        patterns = ["*.json", "*.txt", weights]
    try:
        folder = Path(snapshot_download(repo_id, cache_dir=hub_cache_dir(), allow_patterns=patterns, etag_timeout=timeout, endpoint=_hub_endpoint()))
    except Exception as e:
        raise ModelLoadError(f"{repo_id} could not be downloaded from the Hugging Face hub: {_short(e)}") from None
    if not complete(folder):
        raise ModelLoadError(f"{repo_id} on the Hugging Face hub lacks the files a captioner needs.")
    return folder


# -- the default model --------------------------------------------------------------------------
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
    if _hub_answers(DEFAULT_HUB_MODEL, timeout):
        return DefaultModel(DEFAULT_HUB_MODEL, "the Hugging Face hub answered")
    return DefaultModel(
        "builtin", f"no captioner.pt here, and {DEFAULT_HUB_MODEL} is not cached locally and the hub did not answer, "
        "so the built-in model is used", True,
    )  # fmt: skip


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
    snapshot = _cached_snapshot(repo_id)
    return snapshot is not None and (snapshot / "config.json").exists()


def load_default_captioner(dtype: str | torch.dtype = "float32") -> CaptionModel:
    """Resolve and load the default model; fall back to the built-in model if the choice fails."""
    spec, reason, fell_back = resolve_default_model()
    try:
        model = load_captioner(spec, dtype=dtype)
    except ModelLoadError as e:
        if spec == "builtin":
            raise
        model = load_captioner("builtin", dtype=dtype)
        reason, fell_back = f"{spec} could not be loaded, so the built-in model is used: {e}", True
    model.info.reason, model.info.fell_back = reason, fell_back
    return model
