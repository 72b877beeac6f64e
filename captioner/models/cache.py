"""Several loaded models in one session, within a memory budget: least recently used evicted first.

A model's memory is its parameter and buffer bytes (each storage once: tied weights count once). Before
a model is loaded, its size is estimated from its weight files (safetensors headers give every tensor's
element count; other files count by size), so that models are evicted before the load rather than
after it, and a model that cannot fit is refused before any memory is spent on it.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict, deque
from pathlib import Path
from typing import Callable

import torch

from captioner.files import format_bytes
from captioner.models.base import CaptionModel

BUDGET_ENV = "CAPTIONER_MODEL_BUDGET_MB"
# Streamlit Community Cloud gives an app about 2.7 GB. Two full-size models in bfloat16 take at most ~1 GB
# (ViT-GPT2 0.48 GB, BLIP base 0.45 GB, GIT base 0.35 GB: python -m captioner.bench.model_sizes), which
# leaves room for torch, Streamlit and the images; BLIP large (0.89 GB in bfloat16) fits beside a smaller one.
DEFAULT_BUDGET_BYTES = 1_500_000_000
MAX_NOTES = 100  # evictions remembered by the cache (each session hears its own through get(on_note=...))
_ELEMENT_BYTES = {"float32": 4, "bfloat16": 2}
_WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")


class ModelDoesNotFit(Exception):
    """A model is larger than the whole budget; the message says so in one line."""


def default_budget_bytes() -> int:
    """CAPTIONER_MODEL_BUDGET_MB (megabytes) when set to a positive number, else DEFAULT_BUDGET_BYTES."""
    value = os.environ.get(BUDGET_ENV, "").strip()
    try:
        megabytes = float(value)
    except ValueError:
        return DEFAULT_BUDGET_BYTES
    return int(megabytes * 1e6) if megabytes > 0 and megabytes != float("inf") else DEFAULT_BUDGET_BYTES


def model_bytes(model: CaptionModel) -> int:
    """Bytes of a loaded model's parameters and buffers, each storage counted once."""
    module = getattr(model, "model", None)
    if not isinstance(module, torch.nn.Module):
        return 0
    seen: dict[int, int] = {}
    for t in [*module.parameters(), *module.buffers()]:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = max(seen.get(storage.data_ptr(), 0), storage.nbytes())
    return sum(seen.values())


def estimate_bytes(folder_or_file: Path, dtype: str) -> int | None:
    """The bytes a model's weights will take in `dtype`, from its weight files; None if there are none."""
    files = (
        [folder_or_file]
        if folder_or_file.is_file()
        else sorted(p for p in folder_or_file.glob("*") if p.suffix in _WEIGHT_SUFFIXES and p.is_file())
    )
    if not files:
        return None
    per_element = _ELEMENT_BYTES.get(dtype, 4)
    total = 0
    for file in files:
        if file.suffix == ".safetensors":
            from safetensors import safe_open

            try:
                with safe_open(str(file), framework="pt") as f:
                    total += sum(_numel(f.get_slice(k).get_shape()) for k in f.keys()) * per_element
                continue
            except Exception:  # unreadable: the loader will say why; count it by size
                pass
        total += file.stat().st_size * per_element // 4  # assumed float32 on disk
    return total


def _numel(shape: list[int]) -> int:
    n = 1
    for side in shape:
        n *= side
    return n


class ModelCache:
    """Loaded models by (spec, dtype), within `budget_bytes`; the least recently used go first.

    `get` returns a cached model or loads one; `notes` lists what was evicted and why, newest last.
    """

    def __init__(
        self,
        budget_bytes: int | None = None,
        loader: Callable[..., CaptionModel] | None = None,
        locate: Callable[[str], Path | None] | None = None,
    ):
        self.budget_bytes = default_budget_bytes() if budget_bytes is None else int(budget_bytes)
        self._loader = loader
        self._locate = locate or weights_location
        self._models: OrderedDict[tuple[str, str], tuple[CaptionModel, int]] = OrderedDict()
        self.notes: deque[str] = deque(maxlen=MAX_NOTES)  # the newest evictions, for whoever looks
        self._lock = threading.Lock()
        self._loading: dict[tuple[str, str], threading.Lock] = {}

    def _used_bytes(self) -> int:
        return sum(size for _, size in self._models.values())

    def cached(self) -> list[tuple[str, str, int]]:
        """(spec, dtype, bytes) of every cached model, least recently used first (a copy, safe beside loads)."""
        with self._lock:
            return [(spec, dtype, size) for (spec, dtype), (_, size) in self._models.items()]

    def get(self, spec: str, dtype: str = "float32", on_note: Callable[[str], None] | None = None) -> CaptionModel:
        """The model `spec` in `dtype`: from the cache, or loaded after evicting what it needs room for;
        `on_note` hears what this call evicted (and only this call).

        A load runs outside the cache's lock (one load per model at a time), so a slow load or download never
        holds up the others' cached models. Raises ModelDoesNotFit when the model alone is larger than the
        budget (ModelLoadError when it cannot be loaded at all)."""
        key = (spec, dtype)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key][0]
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:
            with self._lock:
                if key in self._models:  # another session loaded it meanwhile
                    self._models.move_to_end(key)
                    return self._models[key][0]
                location = self._locate(spec)
                estimate = estimate_bytes(location, dtype) if location is not None else None
                if estimate is not None:
                    self._refuse_if_too_large(spec, dtype, estimate)
                    self._make_room(estimate, spec, on_note)
            model = self._load(spec, dtype)
            size = model_bytes(model)
            with self._lock:
                self._refuse_if_too_large(spec, dtype, size)
                self._make_room(size, spec, on_note)
                self._models[key] = (model, size)
            return model

    def _load(self, spec: str, dtype: str) -> CaptionModel:
        if self._loader is None:
            from captioner.loading import load_captioner

            return load_captioner(spec, dtype=dtype)
        return self._loader(spec, dtype=dtype)

    def _refuse_if_too_large(self, spec: str, dtype: str, size: int) -> None:
        if size > self.budget_bytes:
            hint = " (bfloat16 halves it)" if dtype == "float32" else ""
            raise ModelDoesNotFit(
                f"{spec} needs {format_bytes(size)} in {dtype}{hint}, more than the whole model budget of "
                f"{format_bytes(self.budget_bytes)}; raise {BUDGET_ENV} to load it."
            )

    def _make_room(self, size: int, for_spec: str, on_note: Callable[[str], None] | None = None) -> None:
        while self._models and self._used_bytes() + size > self.budget_bytes:
            (old_spec, old_dtype), (_, old_size) = self._models.popitem(last=False)
            note = (
                f"Unloaded {old_spec} ({old_dtype}, {format_bytes(old_size)}), the least recently used model, to "
                f"make room for {for_spec} within the {format_bytes(self.budget_bytes)} model budget."
            )
            self.notes.append(note)
            if on_note is not None:
                on_note(note)


def weights_location(spec: str) -> Path | None:
    """Where a spec's weights are on this machine, without asking the hub: the built-in model's folder, a
    local file or folder, or a hub id's cached snapshot; None when unknown (then the size is measured after loading)."""
    from captioner.loading import BUILTIN_DIR, spec_kind
    from captioner.loading.hub import cached_snapshot

    kind = spec_kind(spec)
    if kind == "builtin":
        return BUILTIN_DIR
    if kind in ("file", "folder"):
        return Path(spec).expanduser()
    if kind == "hub":
        return cached_snapshot(spec)
    return None
