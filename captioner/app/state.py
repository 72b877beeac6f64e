"""What the Streamlit app keeps between reruns: the only module of `captioner` that imports Streamlit.

- One model per spec per process (`st.cache_resource`), shared by every session; a lock per model
  makes concurrent sessions take turns on it, so inference is safe and never oversubscribes the CPU.
- Encoder outputs cached per (model, image digest): moving a decoding slider only re-runs decoding.
- The chosen image and model live in `st.session_state`, so they survive page switches.
- The shared sidebar (model picker, image input) and widgets used by several pages.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import streamlit as st
from PIL import Image

from captioner.archives import ArchiveError, read_image_archive
from captioner.config import MAX_NEW_TOKENS, MAX_NUM_BEAMS, STRATEGIES, DecodingConfig
from captioner.decoding import DecodeResult, EncodedImage, decode, encode_image
from captioner.app.gallery import Example, example_images
from captioner.images import ImageLoadError, load_image
from captioner.loading import DEFAULT_HUB_MODEL, ModelLoadError, load_captioner, load_default_captioner
from captioner.models.base import CaptionModel
from captioner.app.views import BatchRow, display_image, thumbnail_uri

log = logging.getLogger(__name__)

DEFAULT_SPEC = "default"
IMAGE_TYPES = ["jpg", "jpeg", "png", "webp", "gif", "bmp"]
PREVIEW_SIDE = 512
# Widget keys with these prefixes keep their values when the user visits another page.
KEPT_PREFIXES = ("dec.", "cmp.", "xpl.", "batch.opt.")
MODEL_BOUND_PREFIXES = ("dec.", "cmp.", "xpl.")  # defaults come from the model: reset when it changes


# -- the model ----------------------------------------------------------------------------------
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


@st.cache_resource(max_entries=2, show_spinner=False)
def _load_model(spec: str) -> LoadedModel:
    model = load_default_captioner() if spec == DEFAULT_SPEC else load_captioner(spec)
    return LoadedModel(model, spec, f"{spec}#{uuid.uuid4().hex[:8]}", threading.Lock())


def _load_error_message(spec: str, error: BaseException) -> str:
    shown = "the default model" if spec == DEFAULT_SPEC else spec
    if isinstance(error, ModelLoadError):
        return f"Could not load {shown}: {error}"
    if isinstance(error, MemoryError):
        return f"Could not load {shown}: it does not fit in the memory available."
    return f"Could not load {shown}: {type(error).__name__}: {str(error)[:300]}"


def current_model() -> LoadedModel | None:
    """This session's model (loading it on first use); None, with the reason in session state, if none loads."""
    spec = st.session_state.setdefault("model_spec", DEFAULT_SPEC)
    try:
        with st.spinner("Loading the model…"):
            return _load_model(spec)
    except Exception as e:  # a model that loaded before can fail now (file removed, evicted and reloaded)
        log.exception("loading %s failed", spec)
        st.session_state["model_error"] = _load_error_message(spec, e)
        if spec != DEFAULT_SPEC:
            st.session_state["model_spec"] = DEFAULT_SPEC
            return current_model()
        return None


def switch_model(spec: str) -> bool:
    """Load `spec` and make it this session's model; on failure keep the old one and say why."""
    spec = spec.strip()
    if not spec:
        st.session_state["model_error"] = "Type a hub id or a path first."
        return False
    try:
        with st.spinner(f"Loading {spec}…"):
            _load_model(spec)
    except Exception as e:
        log.exception("loading %s failed", spec)
        st.session_state["model_error"] = _load_error_message(spec, e) + " The app keeps using the model it had."
        return False
    if spec != st.session_state.get("model_spec"):
        for key in [k for k in st.session_state if str(k).startswith(MODEL_BOUND_PREFIXES)]:
            del st.session_state[key]
    st.session_state["model_spec"] = spec
    st.session_state.pop("model_error", None)
    return True


def format_count(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return str(n)


# -- images -------------------------------------------------------------------------------------
@dataclass
class SelectedImage:
    """The image every page works on."""

    name: str
    digest: str  # sha256 of the file's bytes (first 16 hex digits)
    image: Image.Image  # RGB, full size: what the model sees
    source: str  # "example", "upload" or "camera"
    preview: Image.Image  # longer side PREVIEW_SIDE: what the pages draw (heatmaps included)


def select_image(name: str, data: bytes, source: str) -> bool:
    """Decode and select an image; a bad file leaves the selection as it was and records why."""
    try:
        image = load_image(data)
    except ImageLoadError as e:
        st.session_state["image_error"] = f"Could not use {name}: {e}"
        return False
    digest = hashlib.sha256(data).hexdigest()[:16]
    st.session_state["image"] = SelectedImage(name, digest, image, source, display_image(image, PREVIEW_SIDE))
    st.session_state.pop("image_error", None)
    return True


@st.cache_data(show_spinner=False)
def gallery() -> list[Example]:
    return example_images()


def _select_example(i: int) -> None:
    ex = gallery()[i]
    select_image(ex.name, ex.data, "example")


def _on_upload() -> None:
    f = st.session_state.get("img.upload")
    if f is not None:
        select_image(f.name, f.getvalue(), "upload")


def _on_camera() -> None:
    f = st.session_state.get("img.camera")
    if f is not None:
        select_image("camera photo", f.getvalue(), "camera")


def selected_image() -> SelectedImage | None:
    """The image chosen in the sidebar (the first example until the user picks one)."""
    if "image" not in st.session_state and "image_error" not in st.session_state and gallery():
        _select_example(0)
    return st.session_state.get("image")


# -- cached encoding and decoding ---------------------------------------------------------------
@st.cache_resource(max_entries=16, show_spinner=False)
def _encoded(model_key: str, digest: str, _lm: LoadedModel, _image: Image.Image) -> EncodedImage:
    return _lm.encode(_image)


@st.cache_resource(max_entries=12, show_spinner=False)
def _decoded(model_key: str, digest: str, configs_key: str, _lm: LoadedModel, _image: Image.Image,
             _configs: tuple[DecodingConfig, ...]) -> list[DecodeResult]:
    return _lm.decode(_encoded(model_key, digest, _lm, _image), _configs)


def decode_image(lm: LoadedModel, picked: SelectedImage, configs: Sequence[DecodingConfig]) -> list[DecodeResult]:
    """Decode all `configs` on the picked image in one engine call; encoding and results are cached."""
    configs = tuple(c.validate() for c in configs)
    key = json.dumps([c.to_dict() for c in configs], sort_keys=True, default=str)
    with st.spinner("Captioning…"):
        return _decoded(lm.key, picked.digest, key, lm, picked.image, configs)


# -- decoding controls --------------------------------------------------------------------------
def _clamp(v: float, lo: float, hi: float) -> float:
    return min(max(v, lo), hi)


def _control_defaults(model: CaptionModel) -> dict[str, Any]:
    d = model.default_decoding
    return {
        "strategy": d.strategy,
        "max_new_tokens": int(_clamp(d.max_new_tokens, 1, MAX_NEW_TOKENS)),
        "num_beams": int(_clamp(d.num_beams, 1, MAX_NUM_BEAMS)),
        "length_penalty": float(_clamp(round(d.length_penalty, 1), -1.0, 3.0)),
        "temperature": float(_clamp(round(d.temperature, 2), 0.05, 2.0)),
        "top_k": int(_clamp(d.top_k, 0, 200)),
        "top_p": float(_clamp(round(d.top_p, 2), 0.05, 1.0)),
        "repetition_penalty": float(_clamp(round(d.repetition_penalty, 2), 0.5, 2.0)),
        "no_repeat_ngram_size": int(_clamp(d.no_repeat_ngram_size, 0, 6)),
        "seed": int(d.seed or 0),
    }


def config_from_state(model: CaptionModel, prefix: str = "dec.") -> DecodingConfig:
    """The decoding settings stored under `prefix` (the model's defaults where none are stored)."""
    values = {k: st.session_state.get(prefix + k, v) for k, v in _control_defaults(model).items()}
    return model.default_decoding.with_(**values, num_return_sequences=1)


def decoding_controls(model: CaptionModel, prefix: str = "dec.", live: bool = True) -> DecodingConfig:
    """Widgets for every decoding setting, starting at the model's defaults.

    `live`: grey out the settings the chosen strategy ignores (off inside forms, which rerun on submit).
    """
    for k, v in _control_defaults(model).items():
        st.session_state.setdefault(prefix + k, v)
    names = {"greedy": "Greedy", "beam": "Beam search", "sample": "Sampling"}
    strategy = st.selectbox("Strategy", STRATEGIES, key=prefix + "strategy", format_func=names.get)
    not_beam = live and strategy != "beam"
    not_sample = live and strategy != "sample"
    st.slider("Max new tokens", 1, MAX_NEW_TOKENS, key=prefix + "max_new_tokens")
    st.slider("Beams", 1, MAX_NUM_BEAMS, key=prefix + "num_beams", disabled=not_beam)
    st.slider("Length penalty", -1.0, 3.0, step=0.1, key=prefix + "length_penalty", disabled=not_beam,
              help="Beam score = sum of log-probs / length ** penalty: above 0 favours longer captions.")
    st.slider("Temperature", 0.05, 2.0, step=0.05, key=prefix + "temperature", disabled=not_sample)
    st.slider("Top-k", 0, 200, key=prefix + "top_k", disabled=not_sample, help="0 = off")
    st.slider("Top-p", 0.05, 1.0, step=0.05, key=prefix + "top_p", disabled=not_sample, help="1.0 = off")
    st.slider("Repetition penalty", 0.5, 2.0, step=0.05, key=prefix + "repetition_penalty", help="1.0 = off")
    st.slider("No-repeat n-gram size", 0, 6, key=prefix + "no_repeat_ngram_size", help="0 = off")
    st.number_input("Seed", 0, 2**31 - 1, step=1, key=prefix + "seed", disabled=not_sample)
    return config_from_state(model, prefix)


def keep_widget_values() -> None:
    """Re-store page widgets' values so Streamlit does not drop them when another page is shown."""
    for key in list(st.session_state):
        if str(key).startswith(KEPT_PREFIXES):
            st.session_state[key] = st.session_state[key]


# -- batch --------------------------------------------------------------------------------------
def expand_uploads(files: Sequence[tuple[str, bytes]]) -> tuple[list[tuple[str, bytes]], list[BatchRow]]:
    """Files and zip archives -> image files to caption, and rows for what could not be used."""
    items, problems = [], []
    for name, data in files:
        if name.lower().endswith(".zip"):
            try:
                contents = read_image_archive(data)
            except ArchiveError as e:
                problems.append(BatchRow(name, problem=str(e)))
                continue
            items += [(f"{name}/{inner}", content) for inner, content in contents.images]
            problems += [BatchRow(f"{name}/{inner}", problem=why) for inner, why in contents.skipped]
        else:
            items.append((name, data))
    return items, problems


def caption_batch(lm: LoadedModel, items: Sequence[tuple[str, bytes]], config: DecodingConfig,
                  on_progress: Callable[[int, str], None] | None = None) -> list[BatchRow]:
    """Caption each file in turn; a file that fails gets its reason and the others go on."""
    config = config.with_(output_attentions=False, num_alternatives=1).validate()
    rows = []
    for i, (name, data) in enumerate(items):
        if on_progress:
            on_progress(i, name)
        try:
            image = load_image(data)
            t0 = time.perf_counter()
            result = lm.decode(lm.encode(image), [config])[0]
            seconds = time.perf_counter() - t0
            best = result.best
            rows.append(BatchRow(name, best.text, best.score, best.logprob, seconds, thumbnail_uri(image)))
        except ImageLoadError as e:
            rows.append(BatchRow(name, problem=str(e)))
        except Exception as e:  # one broken image must not stop the batch
            log.exception("captioning %s failed", name)
            rows.append(BatchRow(name, problem=f"could not be captioned: {type(e).__name__}"))
    if on_progress:
        on_progress(len(items), "")
    return rows


# -- page frame ---------------------------------------------------------------------------------
@contextlib.contextmanager
def page_guard(doing: str = "showing this page") -> Iterator[None]:
    """Turn any error raised inside into an st.error message: no traceback ever reaches the page."""
    try:
        yield
    except (ImageLoadError, ModelLoadError, ArchiveError, ValueError) as e:
        st.error(str(e))
    except MemoryError:
        st.error(f"Ran out of memory while {doing}. Try a smaller image or fewer beams and samples.")
    except Exception as e:
        log.exception("error while %s", doing)
        st.error(f"Something went wrong while {doing} ({type(e).__name__}). The app is still usable: "
                 "try other settings or another image.")


def require_model_and_image() -> tuple[LoadedModel, SelectedImage]:
    """The session's model and image, or a message and a stop when either is missing."""
    lm = current_model()
    if lm is None:
        st.error(st.session_state.get("model_error", "No model is loaded."))
        st.stop()
    if st.session_state.get("image_error"):
        st.error(st.session_state["image_error"])
    picked = selected_image()
    if picked is None:
        st.info("Choose an image in the sidebar: upload one, take a photo, or pick an example.")
        st.stop()
    return lm, picked


# -- sidebar ------------------------------------------------------------------------------------
MODEL_KINDS = ("Default", "Built-in", "Hugging Face hub", "Local path")


def model_sidebar() -> None:
    """Model picker and what is loaded."""
    sb = st.sidebar
    sb.subheader("Model")
    st.session_state.setdefault("model.hub", DEFAULT_HUB_MODEL)
    kind = sb.radio("Model", MODEL_KINDS, key="model.kind", horizontal=True, label_visibility="collapsed")
    spec = {"Default": DEFAULT_SPEC, "Built-in": "builtin"}.get(kind, "")
    if kind == "Hugging Face hub":
        spec = sb.text_input("Hub id", key="model.hub")
    elif kind == "Local path":
        spec = sb.text_input("Path to a captioner.pt or a model folder", key="model.path")
    if sb.button("Load model", key="model.load", width="stretch"):
        switch_model(spec)
    lm = current_model()
    if st.session_state.get("model_error"):
        sb.error(st.session_state["model_error"])
    if lm is None:
        return
    info = lm.model.info
    if lm.fell_back:
        sb.warning(f"Using the built-in model: {info.reason}.")
    lines = [
        f"**{info.name}** · {info.family}",
        f"{format_count(info.num_parameters)} parameters · {info.dtype}",
        f"from `{info.source}`",
    ]
    if info.reason and not lm.fell_back:
        lines.append(f"Why this model: {info.reason}")
    sb.caption("  \n".join(lines))


def image_sidebar() -> None:
    """Image input shared by the single-image pages: examples, upload or camera."""
    sb = st.sidebar
    sb.subheader("Image")
    source = sb.radio("Image from", ("Examples", "Upload", "Camera"), key="img.source", horizontal=True,
                      label_visibility="collapsed")
    if source == "Examples":
        examples = gallery()
        cols = sb.columns(3)
        for i, ex in enumerate(examples):
            with cols[i % 3]:
                st.image(ex.data, width="stretch")
                st.button(f"#{i + 1}", key=f"img.example.{i}", on_click=_select_example, args=(i,),
                          width="stretch")
    elif source == "Upload":
        sb.file_uploader("Upload an image", type=IMAGE_TYPES, key="img.upload", on_change=_on_upload)
    else:
        sb.camera_input("Take a photo", key="img.camera", on_change=_on_camera)
    picked = selected_image()
    if picked is not None:
        w, h = picked.image.size
        sb.image(picked.preview, caption=f"{picked.name} · {w}×{h}", width="stretch")
    if st.session_state.get("image_error"):
        sb.error(st.session_state["image_error"])


def sidebar(page_title: str) -> None:
    """The sidebar every page shares (the Batch page takes its own files, so no image input there)."""
    with page_guard("setting up the sidebar"):
        model_sidebar()
        if page_title != "Batch":
            image_sidebar()
