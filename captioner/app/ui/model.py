"""The models the app serves: one per spec per process, in the budgeted `ModelCache` shared by every
session, each with a lock the sessions take turns on (so inference is safe and never oversubscribes the
CPU); the session's own model, and what the sidebar's picker loads."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
from PIL import Image

from captioner.app import settings
from captioner.app.model_text import DEFAULT_SPEC, load_error_line
from captioner.app.ui import keys
from captioner.app.ui.controls import forget
from captioner.app.ui.model_budget import budget_bytes
from captioner.config import STRATEGIES, DecodingConfig
from captioner.decoding import DecodeResult, EncodedImage, decode, encode_image
from captioner.loading import BUILTIN_DIR, load_captioner, load_default_captioner, spec_kind
from captioner.models.base import CaptionModel
from captioner.models.cache import ModelCache, weights_location
from captioner.app.views.text import markdown_escape, shorten

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A model shared by all sessions, with the lock they take turns on."""

    model: CaptionModel
    spec: str  # what was asked for: DEFAULT_SPEC, "builtin", a hub id or a path
    key: str  # unique per load: keys the encoding cache
    lock: threading.Lock

    def encode(self, image: Image.Image) -> EncodedImage:
        with self.lock:
            return encode_image(self.model, image)

    def decode(self, encoded: EncodedImage, configs: Sequence[DecodingConfig]) -> list[DecodeResult]:
        with self.lock:
            return decode(self.model, encoded, list(configs))

    @property
    def fell_back(self) -> bool:
        """The default model was asked for and the built-in one is serving instead."""
        return self.spec == DEFAULT_SPEC and self.model.info.fell_back

    @property
    def is_builtin(self) -> bool:
        source = Path(self.model.info.source)
        return self.model.info.name == "builtin" or BUILTIN_DIR.resolve() in source.resolve().parents

    @property
    def token_limit(self) -> int:
        return settings.token_limit(self.model.max_new_tokens_limit)


def _warm_up(model: CaptionModel) -> None:
    """Run each strategy once on a blank image, so the first caption a user asks for is not the slow one."""
    steps = min(3, model.max_new_tokens_limit)
    configs = [DecodingConfig(strategy=s, max_new_tokens=steps, num_beams=2, top_k=2, num_return_sequences=1) for s in STRATEGIES]
    try:
        decode(model, encode_image(model, Image.new("RGB", (64, 64), "gray")), configs)
    except Exception:  # the model still loads: the first caption will say what is wrong
        log.exception("warming up %s failed", model.info.name)


_READY: set[str] = set()  # the specs this process has loaded and warmed up


def _load_spec(spec: str, dtype: str = "float32") -> CaptionModel:
    model = load_default_captioner(dtype) if spec == DEFAULT_SPEC else load_captioner(spec, dtype=dtype)
    _warm_up(model)
    _READY.add(spec)
    return model


def model_ready() -> bool:
    """This session's model is loaded in this process (else the first run loads it, which takes seconds)."""
    return st.session_state.get(keys.MODEL_SPEC, DEFAULT_SPEC) in _READY


@st.cache_resource(show_spinner=False)
def model_cache() -> tuple[ModelCache, dict[str, LoadedModel]]:
    """The process's loaded models within the memory budget (shared by all sessions), and each one's
    LoadedModel (its lock and encoding-cache key), kept for as long as the cache holds the model."""
    return ModelCache(budget_bytes(), loader=_load_spec, locate=_weights_of), {}


def _weights_of(spec: str) -> Path | None:
    """Where the cache finds a spec's weights to size them before loading (the default model: measured after)."""
    return None if spec == DEFAULT_SPEC else weights_location(spec)


_REGISTRY_LOCK = threading.Lock()


def shared_model(spec: str) -> LoadedModel:
    """`spec` from the model cache (loading it, and unloading the least recently used, as needed);
    what was unloaded goes to this session's notes (`model_notes`)."""
    cache, loaded = model_cache()
    model = cache.get(spec, on_note=st.session_state.setdefault(keys.MODEL_NOTES, []).append)  # this load's evictions only
    with _REGISTRY_LOCK:  # one LoadedModel (one lock) per model, whichever session asks first
        cached = {s for s, _, _ in cache.cached()}
        for gone in [s for s in loaded if s not in cached]:
            del loaded[gone]
        if spec not in loaded or loaded[spec].model is not model:
            loaded[spec] = LoadedModel(model, spec, f"{spec}#{uuid.uuid4().hex[:8]}", threading.Lock())
        return loaded[spec]


def load_model(spec: str) -> tuple[LoadedModel | None, str]:
    """A model for the Models page, without making it the session's model; or None and one line on why not."""
    try:
        with st.spinner(_spinner_text(spec)):
            return shared_model(spec), ""
    except Exception as e:
        log.exception("loading %s failed", spec)
        return None, load_error_line(spec, e)


def model_notes() -> list[str]:
    """What the model cache unloaded for this session's loads since the last call (shown once)."""
    return st.session_state.pop(keys.MODEL_NOTES, [])


def _spinner_text(spec: str) -> str:
    if spec == DEFAULT_SPEC:
        return "Loading the model…"
    shown = markdown_escape(shorten(spec, 60))
    if spec_kind(spec) != "hub":
        return f"Loading {shown}…"
    return f"Loading {shown} from the Hugging Face hub (a first download can take minutes)…"


def current_model() -> LoadedModel | None:
    """This session's model (loading it on first use); None, with the reason in session state, if none loads."""
    spec = st.session_state.setdefault(keys.MODEL_SPEC, DEFAULT_SPEC)
    try:
        with st.spinner(_spinner_text(spec)):
            return shared_model(spec)
    except Exception as e:  # a model that loaded before can fail now (file removed, evicted and reloaded)
        log.exception("loading %s failed", spec)
        st.session_state[keys.MODEL_ERROR] = load_error_line(spec, e)
        if spec != DEFAULT_SPEC:
            use_spec(DEFAULT_SPEC)
            return current_model()
        return None


# -- the picker -----------------------------------------------------------------------------------
DEFAULT_KIND, BUILTIN_KIND, HUB_KIND, PATH_KIND = "Default", "Built-in", "Hugging Face hub", "Local path"
MODEL_KINDS = (DEFAULT_KIND, BUILTIN_KIND, HUB_KIND, PATH_KIND)


def kind_of(spec: str) -> str:
    """Which of the picker's MODEL_KINDS names `spec`."""
    if spec == DEFAULT_SPEC:
        return DEFAULT_KIND
    if spec == "builtin":
        return BUILTIN_KIND
    return HUB_KIND if spec_kind(spec) == "hub" else PATH_KIND


def use_spec(spec: str) -> None:
    """Make `spec` the session's model and the picker show it (call before the picker is drawn)."""
    st.session_state[keys.MODEL_SPEC] = spec
    kind = kind_of(spec)
    st.session_state[keys.MODEL_KIND] = kind
    if kind == HUB_KIND:
        st.session_state[keys.MODEL_HUB] = spec
    elif kind == PATH_KIND:
        st.session_state[keys.MODEL_PATH] = spec


def _spec_from_picker() -> str:
    kind = st.session_state.get(keys.MODEL_KIND, DEFAULT_KIND)
    if kind == HUB_KIND:
        return str(st.session_state.get(keys.MODEL_HUB, "")).strip()
    if kind == PATH_KIND:
        return str(st.session_state.get(keys.MODEL_PATH, "")).strip()
    return DEFAULT_SPEC if kind == DEFAULT_KIND else "builtin"


def _in_use_name(spec: str) -> str:
    """How the sidebar names the model a session keeps: 'the default model (builtin)', or its spec."""
    if spec != DEFAULT_SPEC:
        return spec
    try:
        return f"the default model ({shared_model(spec).model.info.name})"
    except Exception:  # it failed to load as well: the message says so elsewhere
        return "the default model"


def on_load_model() -> None:
    """The Load button: load the picked model; on failure keep the old one, say why once, and show it in the picker."""
    spec = _spec_from_picker()
    in_use = st.session_state.get(keys.MODEL_SPEC, DEFAULT_SPEC)
    if not spec:
        st.session_state[keys.MODEL_ERROR] = "Type a hub id or a path first."
        return
    try:
        with st.spinner(_spinner_text(spec)):
            shared_model(spec)
    except Exception as e:
        log.exception("loading %s failed", spec)
        kept = shorten(_in_use_name(in_use), 60)
        # The picker keeps the kind and the text as typed, so a typo is fixed in place.
        st.session_state[keys.MODEL_ERROR] = f"{load_error_line(spec, e)} The app keeps using {kept}."
        return
    if spec != in_use:
        forget(keys.MODEL_BOUND_PREFIXES)
    use_spec(spec)
    st.session_state.pop(keys.MODEL_ERROR, None)


def format_count(n: int) -> str:
    """A parameter count as people read it: 1.2 B, 350.0 M, 12.0 k."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return str(n)
