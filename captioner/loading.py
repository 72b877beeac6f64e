"""`load_captioner(spec)`: the built-in model, a VisionGPT2 checkpoint, a model directory or a hub id.

Checkpoints are read with `torch.load(..., weights_only=True)` or from safetensors, never by plain
unpickling: a file that needs code to load is refused and nothing in it runs. Every failure raises
`ModelLoadError` with a message meant for a person.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import zipfile
from pathlib import Path
from typing import Any, Callable, NamedTuple

import torch

from captioner.config import VisionGPT2Config
from captioner.models.base import CaptionModel, ModelInfo

BUILTIN_DIR = Path(__file__).parent / "builtin"
DEFAULT_HUB_MODEL = "nlpconnect/vit-gpt2-image-captioning"
GPT2_TOKENIZER = "gpt2"
HEAD_SIZE = 64  # the seed model's head size: heads cannot be read from the shapes
CALIBRATION_FILE = "calibration.json"  # out-of-world calibration beside a model's weights (decoding/confidence.py)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ModelLoadError(Exception):
    """A model could not be loaded; the message says why in plain words."""


def load_captioner(spec: str = "builtin", *, dtype: str | torch.dtype = "float32") -> CaptionModel:
    """Load a captioner from `builtin`, a `.pt`/`.safetensors` file, a directory, or a hub id."""
    torch_dtype = _parse_dtype(dtype)
    spec = str(spec).strip()
    if not spec:
        raise ModelLoadError("No model given: use 'builtin', a path to a checkpoint or directory, or a hub id.")
    if spec == "builtin":
        if not (BUILTIN_DIR / "config.json").exists():
            raise ModelLoadError(f"The built-in model is missing from {BUILTIN_DIR}; reinstall the package.")
        return _load_visiongpt2_dir(BUILTIN_DIR, torch_dtype, name="builtin")
    path = Path(spec).expanduser()
    if path.is_file():
        return _load_visiongpt2_file(path, torch_dtype)
    if path.is_dir():
        return _load_directory(path, torch_dtype)
    if _HUB_ID.match(spec) and not spec.startswith((".", "/", "~")) and not spec.endswith((".pt", ".pth", ".safetensors")):
        return _load_hf(spec, torch_dtype)
    raise ModelLoadError(f"No such file or directory: {spec}")


def _parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    table = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
    if dtype not in table:
        raise ModelLoadError(f"Unknown dtype {dtype!r}: use float32 or bfloat16.")
    return table[dtype]


# -- reading weights safely ---------------------------------------------------------------------
def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a `.pt` (weights only) or `.safetensors` file, or a ModelLoadError."""
    if path.stat().st_size == 0:
        raise ModelLoadError(f"{path.name} is empty.")
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise ModelLoadError(f"{path.name} is not a readable safetensors file (truncated or corrupt): {e}") from None
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
    except (RuntimeError, EOFError, OSError, ValueError, AttributeError, TypeError, KeyError, IndexError) as e:
        raise ModelLoadError(f"{path.name} is not a PyTorch checkpoint (truncated or corrupt): {_short(e)}") from None
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelLoadError(f"{path.name} holds no state dict (a mapping of names to tensors).")
    return obj


def _short(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:200]


# -- VisionGPT2 ---------------------------------------------------------------------------------
def infer_visiongpt2_config(state: dict[str, torch.Tensor], num_heads: int | None = None) -> VisionGPT2Config:
    """Read a VisionGPT2 config off the shapes of a seed-layout state dict."""
    required = ["transformer.wte.weight", "transformer.wpe.weight", "pos_embed", "patch_embed.proj.weight"]
    missing = [k for k in required if k not in state]
    if missing:
        raise ModelLoadError(
            "This is not a VisionGPT2 checkpoint: missing " + ", ".join(missing) + ". "
            f"It has {len(state)} tensors, e.g. {', '.join(list(state)[:4])}."
        )
    vocab, dim = state["transformer.wte.weight"].shape
    seq_len = state["transformer.wpe.weight"].shape[0]
    depth = 1 + max((int(m.group(1)) for k in state if (m := re.match(r"transformer\.h\.(\d+)\.", k))), default=-1)
    patch = state["patch_embed.proj.weight"].shape[-1]
    n_tokens = state["pos_embed"].shape[1]
    grid = int(round((n_tokens - 1) ** 0.5))
    fc = state.get("transformer.h.0.mlp.c_fc.weight")
    mlp_ratio = fc.shape[0] // dim if fc is not None else 4
    heads = num_heads or max(1, dim // HEAD_SIZE)
    problems = []
    if grid * grid + 1 != n_tokens:
        problems.append(f"pos_embed has {n_tokens} tokens, not a square grid plus a class token")
    if dim % heads:
        problems.append(f"width {dim} is not divisible into {heads} heads")
    if depth < 1:
        problems.append("no decoder blocks (transformer.h.*)")
    if problems:
        raise ModelLoadError("Shapes fit no VisionGPT2 config: " + "; ".join(problems) + ".")
    return VisionGPT2Config(
        vocab_size=vocab, embed_dim=dim, num_heads=heads, seq_len=seq_len, depth=depth,
        mlp_ratio=mlp_ratio, image_size=grid * patch, patch_size=patch,
    )


def build_visiongpt2(state: dict[str, torch.Tensor], config: VisionGPT2Config):
    """A VisionGPT2 holding `state`; missing, unexpected or misshapen keys are named in the error."""
    from captioner.models.visiongpt2 import VisionGPT2

    with torch.device("meta"):
        model = VisionGPT2(config)
    state = dict(state)
    if "lm_head.weight" not in state and "transformer.wte.weight" in state:
        state["lm_head.weight"] = state["transformer.wte.weight"]
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(k for k in set(state) - set(expected) if not k.endswith(".attn.mask"))
    wrong = [
        f"{k} {tuple(state[k].shape)} (expected {tuple(v.shape)})"
        for k, v in expected.items()
        if k in state and tuple(state[k].shape) != tuple(v.shape)
    ]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"missing keys: {_list(missing)}")
        if unexpected:
            parts.append(f"unexpected keys: {_list(unexpected)}")
        if wrong:
            parts.append(f"wrong shapes: {_list(wrong)}")
        raise ModelLoadError(
            "The checkpoint does not match a VisionGPT2 model. " + "; ".join(parts) + ". "
            f"Inferred config: depth {config.depth}, width {config.embed_dim}, heads {config.num_heads}, "
            f"vocabulary {config.vocab_size}, text length {config.seq_len}, image {config.image_size}px / "
            f"patch {config.patch_size}."
        )
    model.load_state_dict(state, assign=True)
    model.lm_head.weight = model.transformer.wte.weight  # `assign` replaced the tied parameter
    return model.eval()


def convert_dtype(model: torch.nn.Module, dtype: torch.dtype, release_source: bool = False) -> torch.nn.Module:
    """`model.to(dtype)` for floating-point tensors, one tensor at a time; tied tensors stay tied.

    With `release_source`, after each conversion the pages of the old tensor that belong to a file
    mapping (a checkpoint opened with mmap) are dropped from this process (`release_file_pages`).
    Peak memory is then the converted model plus one tensor, rather than the converted model plus
    the whole file.
    """
    release = release_file_pages() if release_source else None
    converted: dict[int, torch.Tensor] = {}
    for module in model.modules():
        for table in (module._parameters, module._buffers):
            for name, old in list(table.items()):
                if old is None or not old.is_floating_point() or old.dtype == dtype:
                    continue
                new = converted.get(id(old))
                if new is None:
                    data = old.detach().to(dtype)
                    new = torch.nn.Parameter(data, requires_grad=old.requires_grad) if isinstance(old, torch.nn.Parameter) else data
                    converted[id(old)] = new
                    if release is not None:
                        release(old)
                table[name] = new
    return model


def release_file_pages() -> Callable[[torch.Tensor], None]:
    """A function that drops this process's copy of the pages wholly inside a tensor, when they belong to a
    file mapping (madvise MADV_DONTNEED): the file is untouched and would be read again if needed.

    Pages of anonymous memory are left alone: dropping them would zero data that another view may still
    read. The file mappings are read from /proc/self/maps once, when this is called (none elsewhere).
    """
    import ctypes
    import mmap

    files: list[tuple[int, int]] = []
    try:
        for line in Path("/proc/self/maps").read_text().splitlines():
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].startswith("/"):
                lo, hi = (int(v, 16) for v in fields[0].split("-"))
                files.append((lo, hi))
    except OSError:
        pass
    libc = ctypes.CDLL(None, use_errno=True) if files else None
    page = mmap.PAGESIZE

    def release(t: torch.Tensor) -> None:
        start, end = t.data_ptr(), t.data_ptr() + t.numel() * t.element_size()
        first, last = -(-start // page) * page, end // page * page
        if libc is None or last <= first or not t.is_contiguous():
            return
        if any(lo <= first and last <= hi for lo, hi in files):
            libc.madvise(ctypes.c_void_p(first), ctypes.c_size_t(last - first), 4)  # MADV_DONTNEED

    return release


def _list(items: list[str], n: int = 8) -> str:
    more = f" and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def _load_visiongpt2_file(path: Path, dtype: torch.dtype, config_dict: dict | None = None, name: str = ""):
    from captioner.models.visiongpt2 import VisionGPT2Captioner

    if path.suffix not in (".pt", ".pth", ".bin", ".safetensors", ".ckpt"):
        raise ModelLoadError(f"{path.name} is not a checkpoint file: expected a .pt or .safetensors file.")
    state = read_state_dict(path)
    if config_dict is None:
        config_dict = _read_json(path.parent / "config.json") if (path.parent / "config.json").exists() else {}
    inferred = infer_visiongpt2_config(state, config_dict.get("num_heads"))
    config = VisionGPT2Config.from_dict({**inferred.to_dict(), **config_dict}) if config_dict else inferred
    tokenizer = load_tokenizer_beside(path.parent)
    _set_special_tokens(config, tokenizer)
    model = build_visiongpt2(state, config)
    # A .pt zip is memory-mapped (read_state_dict): pages of the file that a conversion has read are
    # handed back at once, so that the file and the converted copy are never resident together.
    del state
    model = convert_dtype(model, dtype, release_source=True)
    info = ModelInfo(
        name=name or path.name,
        family="visiongpt2",
        source=str(path),
        num_parameters=model.num_parameters(),
        dtype=str(dtype).replace("torch.", ""),
    )
    return VisionGPT2Captioner(model, tokenizer, info)


def _load_visiongpt2_dir(path: Path, dtype: torch.dtype, name: str = ""):
    config_dict = _read_json(path / "config.json")
    for weights in ("model.safetensors", "captioner.safetensors", "captioner.pt", "pytorch_model.bin"):
        if (path / weights).exists():
            model = _load_visiongpt2_file(path / weights, dtype, config_dict, name=name or path.name)
            if (path / CALIBRATION_FILE).exists():
                model.calibration = _read_json(path / CALIBRATION_FILE)
            return model
    raise ModelLoadError(f"{path} has a config.json but no weights (model.safetensors or captioner.pt).")


def _load_directory(path: Path, dtype: torch.dtype):
    config_file = path / "config.json"
    if not config_file.exists():
        for weights in ("captioner.pt", "model.safetensors"):
            if (path / weights).exists():
                return _load_visiongpt2_file(path / weights, dtype)
        raise ModelLoadError(
            f"{path} is not a model directory: it has no config.json (and no captioner.pt or model.safetensors)."
        )
    config = _read_json(config_file)
    if config.get("architecture") == "VisionGPT2":
        return _load_visiongpt2_dir(path, dtype)
    if config.get("model_type") == "vision-encoder-decoder":
        return _load_hf(str(path), dtype)
    raise ModelLoadError(
        f"{config_file} describes a {config.get('model_type') or 'unknown'} model; "
        "expected a VisionGPT2 or a vision-encoder-decoder model."
    )


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{path} is not valid JSON: {_short(e)}") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} does not hold a JSON object.")
    return data


def load_tokenizer_beside(folder: Path):
    """The tokenizer saved beside a checkpoint, else GPT-2's BPE (local cache or hub)."""
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    try:
        if (folder / "tokenizer_config.json").exists():
            return AutoTokenizer.from_pretrained(str(folder))
        if (folder / "tokenizer.json").exists():
            return PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"))
    except Exception as e:  # a broken tokenizer file can fail in many ways inside tokenizers
        raise ModelLoadError(f"The tokenizer in {folder} could not be read: {_short(e)}") from None
    try:
        return AutoTokenizer.from_pretrained(GPT2_TOKENIZER)
    except Exception:
        raise ModelLoadError(
            "No tokenizer beside the checkpoint, and GPT-2's tokenizer is neither in the local Hugging Face "
            "cache nor reachable on the hub. Put a tokenizer.json (or a saved tokenizer) next to the weights."
        ) from None


def _set_special_tokens(config: VisionGPT2Config, tokenizer: Any) -> None:
    """The tokenizer's end-of-text token plays the role of GPT-2's id 50256."""
    token_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.bos_token_id
    if token_id is None:
        token_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    if token_id is None or token_id == tokenizer.unk_token_id:
        raise ModelLoadError("The tokenizer has no end-of-text token (<|endoftext|>).")
    if token_id >= config.vocab_size:
        raise ModelLoadError(f"The tokenizer's end token id {token_id} is outside the model's vocabulary ({config.vocab_size}).")
    config.bos_token_id = config.eos_token_id = config.pad_token_id = int(token_id)


# -- Hugging Face -------------------------------------------------------------------------------
def _load_hf(spec: str, dtype: torch.dtype):
    from captioner.models.hf import HFVisionEncoderDecoderCaptioner

    try:
        from transformers import AutoImageProcessor, AutoTokenizer, VisionEncoderDecoderModel

        # Loaded in the file's own dtype (the tensors stay views of the memory-mapped file), then converted
        # one tensor at a time, handing each one's file pages back: asking transformers for another dtype
        # keeps the whole file resident beside the converted copy (ViT-GPT2 fp32 -> bf16: 2.2 GB peak).
        model = VisionEncoderDecoderModel.from_pretrained(spec, dtype="auto")
        model = convert_dtype(model, dtype, release_source=True)
        processor = AutoImageProcessor.from_pretrained(spec)
        tokenizer = AutoTokenizer.from_pretrained(spec)
    except OSError as e:
        local = Path(spec).exists()
        where = "the directory" if local else "the Hugging Face hub (and it is not in the local cache)"
        raise ModelLoadError(f"Could not load {spec} from {where}: {_short(e)}") from None
    except (ValueError, KeyError, RuntimeError, TypeError) as e:
        raise ModelLoadError(f"{spec} is not a loadable vision-encoder-decoder model: {_short(e)}") from None
    try:
        return HFVisionEncoderDecoderCaptioner(model, processor, tokenizer, source=spec)
    except ValueError as e:
        raise ModelLoadError(str(e)) from None


# -- the default model --------------------------------------------------------------------------
class DefaultModel(NamedTuple):
    """The model to use when none is named, and why."""

    spec: str
    reason: str
    fell_back: bool = False  # the built-in model, because nothing better was found


def resolve_default_model(timeout: float = 2.0) -> DefaultModel:
    """Which model to use when none is named, and why."""
    env = os.environ.get("CAPTIONER_MODEL", "").strip()
    if env:
        return DefaultModel(env, "named by the CAPTIONER_MODEL environment variable")
    if _in_local_hf_cache(DEFAULT_HUB_MODEL):
        return DefaultModel(DEFAULT_HUB_MODEL, "found in the local Hugging Face cache")
    if _hub_answers(DEFAULT_HUB_MODEL, timeout):
        return DefaultModel(DEFAULT_HUB_MODEL, "the Hugging Face hub answered")
    return DefaultModel(
        "builtin", f"{DEFAULT_HUB_MODEL} is not cached locally and the hub did not answer, so the built-in model is used", True
    )


def _in_local_hf_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "config.json")
        return isinstance(found, str) and os.path.exists(found)
    except Exception:
        return False


def _hub_answers(repo_id: str, timeout: float) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    import urllib.request

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    try:
        req = urllib.request.Request(f"{endpoint}/api/models/{repo_id}", method="HEAD")
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return 200 <= response.status < 400
    except Exception:
        return False


def load_default_captioner(dtype: str | torch.dtype = "float32") -> CaptionModel:
    """Resolve and load the default model; fall back to the built-in model if the choice fails."""
    spec, reason, fell_back = resolve_default_model()
    try:
        model = load_captioner(spec, dtype=dtype)
    except ModelLoadError as e:
        if spec == "builtin":
            raise
        model = load_captioner("builtin", dtype=dtype)
        reason, fell_back = f"{spec} could not be loaded ({e}); fell back to the built-in model", True
    model.info.reason, model.info.fell_back = reason, fell_back
    return model
