"""What the Streamlit app keeps between reruns: the only module of `captioner` that imports Streamlit.

- One model per spec per process, in the budgeted `ModelCache` (`model_cache`), shared by every session; a lock per model
  makes concurrent sessions take turns on it, so inference is safe and never oversubscribes the CPU.
- Encoder outputs cached per (model, image digest): moving a decoding slider only re-runs decoding.
- The chosen image, model and settings live in `st.session_state`, so they survive page switches,
  and in the URL (`st.query_params`), so a link or a reload opens the same view.
- The shared sidebar (model picker, image input) and the widgets several pages use.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import logging
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import streamlit as st
from PIL import Image
from streamlit.runtime.scriptrunner import get_script_run_ctx

from captioner.app import model_budget, model_compare, notes, question, settings
from captioner.app.gallery import Example, example_images
from captioner.app.model_text import load_error_line
from captioner.app.views.help_text import BUILTIN_SHORT, HOW_TO_READ
from captioner.app.views.images import display_image, png_bytes
from captioner.app.views.text import config_label, head_text, layer_text, markdown_escape, shorten
from captioner.archives import ArchiveError
from captioner.batch.items import BatchItem, expand_uploads
from captioner.batch.rows import DEFAULT_BATCH_SIZE, CaptionRow, caption_items, chunks
from captioner.config import STRATEGIES, DecodingConfig
from captioner.decoding import Caption, DecodeResult, EncodedImage, decode, encode_image
from captioner.images import IMAGE_EXTENSIONS, SUPPORTED_FORMATS_TEXT, ImageLoadError, load_image
from captioner.loading import BUILTIN_DIR, DEFAULT_HUB_MODEL, ModelLoadError, load_captioner, load_default_captioner, spec_kind
from captioner.models.base import CaptionModel
from captioner.models.cache import ModelCache, weights_location

log = logging.getLogger(__name__)

from captioner.app.model_text import DEFAULT_SPEC

# What the uploaders accept: the extensions load_image reads (one list for widgets, messages and loading).
IMAGE_TYPES = sorted({ext.lstrip(".") for ext in IMAGE_EXTENSIONS})
PREVIEW_SIDE = 512
# Widget keys with these prefixes keep their values when the user visits another page.
KEPT_PREFIXES = ("dec.", "cmp.", "xpl.", "batch.opt.", "model.hub", "model.path", "mdl.")
MODEL_BOUND_PREFIXES = ("dec.", "cmp.", "xpl.")  # defaults come from the model: reset when it changes
COMPARE_ADDED = "compare_added"  # the Compare page's added configurations: settings dicts with a label
UPLOAD_PARAM = "own_image"  # in a URL: the view was of an uploaded image or photo (which a link cannot carry)
SHOWN_RESULTS = "results.shown"  # the Decoded.key of every result this session has drawn


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
    return st.session_state.get("model_spec", DEFAULT_SPEC) in _READY


@st.cache_resource(show_spinner=False)
def model_cache() -> tuple[ModelCache, dict[str, LoadedModel]]:
    """The process's loaded models within the memory budget (shared by all sessions), and each one's
    LoadedModel (its lock and encoding-cache key), kept for as long as the cache holds the model."""
    return ModelCache(model_budget.budget_bytes(), loader=_load_spec, locate=_weights_of), {}


def _weights_of(spec: str) -> Path | None:
    """Where the cache finds a spec's weights to size them before loading (the default model: measured after)."""
    return None if spec == DEFAULT_SPEC else weights_location(spec)


_REGISTRY_LOCK = threading.Lock()


def _load_model(spec: str) -> LoadedModel:
    """`spec` from the model cache (loading it, and unloading the least recently used, as needed);
    what was unloaded goes to this session's notes (`model_notes`)."""
    cache, loaded = model_cache()
    model = cache.get(spec, on_note=st.session_state.setdefault("model.notes", []).append)  # this load's evictions only
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
            return _load_model(spec), ""
    except Exception as e:
        log.exception("loading %s failed", spec)
        return None, load_error_line(spec, e)


def model_notes() -> list[str]:
    """What the model cache unloaded for this session's loads since the last call (shown once)."""
    return st.session_state.pop("model.notes", [])


def _spinner_text(spec: str) -> str:
    if spec == DEFAULT_SPEC:
        return "Loading the model…"
    shown = markdown_escape(shorten(spec, 60))
    if spec_kind(spec) != "hub":
        return f"Loading {shown}…"
    return f"Loading {shown} from the Hugging Face hub (a first download can take minutes)…"


def current_model() -> LoadedModel | None:
    """This session's model (loading it on first use); None, with the reason in session state, if none loads."""
    spec = st.session_state.setdefault("model_spec", DEFAULT_SPEC)
    try:
        with st.spinner(_spinner_text(spec)):
            return _load_model(spec)
    except Exception as e:  # a model that loaded before can fail now (file removed, evicted and reloaded)
        log.exception("loading %s failed", spec)
        st.session_state["model_error"] = load_error_line(spec, e)
        if spec != DEFAULT_SPEC:
            _use_spec(DEFAULT_SPEC)
            return current_model()
        return None


MODEL_KINDS = ("Default", "Built-in", "Hugging Face hub", "Local path")


def _kind_of(spec: str) -> str:
    if spec == DEFAULT_SPEC:
        return "Default"
    if spec == "builtin":
        return "Built-in"
    return "Hugging Face hub" if spec_kind(spec) == "hub" else "Local path"


def _use_spec(spec: str) -> None:
    """Make `spec` the session's model and the picker show it (call before the picker is drawn)."""
    st.session_state["model_spec"] = spec
    kind = _kind_of(spec)
    st.session_state["model.kind"] = kind
    if kind == "Hugging Face hub":
        st.session_state["model.hub"] = spec
    elif kind == "Local path":
        st.session_state["model.path"] = spec


def _spec_from_picker() -> str:
    kind = st.session_state.get("model.kind", "Default")
    if kind == "Hugging Face hub":
        return str(st.session_state.get("model.hub", "")).strip()
    if kind == "Local path":
        return str(st.session_state.get("model.path", "")).strip()
    return DEFAULT_SPEC if kind == "Default" else "builtin"


def _in_use_name(spec: str) -> str:
    """How the sidebar names the model a session keeps: 'the default model (builtin)', or its spec."""
    if spec != DEFAULT_SPEC:
        return spec
    try:
        return f"the default model ({_load_model(spec).model.info.name})"
    except Exception:  # it failed to load as well: the message says so elsewhere
        return "the default model"


def _on_load_model() -> None:
    """The Load button: load the picked model; on failure keep the old one, say why once, and show it in the picker."""
    spec = _spec_from_picker()
    in_use = st.session_state.get("model_spec", DEFAULT_SPEC)
    if not spec:
        st.session_state["model_error"] = "Type a hub id or a path first."
        return
    try:
        with st.spinner(_spinner_text(spec)):
            _load_model(spec)
    except Exception as e:
        log.exception("loading %s failed", spec)
        kept = shorten(_in_use_name(in_use), 60)
        # The picker keeps the kind and the text as typed, so a typo is fixed in place.
        st.session_state["model_error"] = f"{load_error_line(spec, e)} The app keeps using {kept}."
        return
    if spec != in_use:
        _forget(MODEL_BOUND_PREFIXES)
    _use_spec(spec)
    st.session_state.pop("model_error", None)


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


def select_example(name: str) -> bool:
    for ex in gallery():
        if ex.name == name:
            return select_image(ex.name, ex.data, "example")
    return False


def _on_file(kind: str) -> None:
    """An upload or a camera photo arrived: use it, or say why not and empty the widget (the old image stays)."""
    key = _input_key(kind)
    f = st.session_state.get(key)
    if f is not None and not select_image(f.name if kind == "upload" else "camera photo", f.getvalue(), kind):
        st.session_state[f"img.{kind}.generation"] = st.session_state.get(f"img.{kind}.generation", 0) + 1


def _input_key(kind: str) -> str:
    """The upload / camera widget's key: a new key after a refused file, so the widget shows empty again."""
    return f"img.{kind}.{st.session_state.get(f'img.{kind}.generation', 0)}"


def selected_image() -> SelectedImage | None:
    """The image chosen in the sidebar (the first example until the user picks one)."""
    if "image" not in st.session_state and gallery():
        first = gallery()[0]
        select_image(first.name, first.data, "example")
    return st.session_state.get("image")


# -- cached encoding and decoding ---------------------------------------------------------------
@st.cache_resource(max_entries=16, show_spinner=False)
def _encoded(model_key: str, digest: str, _lm: LoadedModel, _image: Image.Image, _ran: list) -> EncodedImage:
    _ran.append("encode")
    return _lm.encode(_image)


@st.cache_resource(max_entries=24, show_spinner=False)
def _decoded(
    model_key: str,
    digest: str,
    configs_key: str,
    _lm: LoadedModel,
    _image: Image.Image,
    _configs: tuple[DecodingConfig, ...],
    _ran: list,
) -> list[DecodeResult]:
    _ran.append("decode")
    return _lm.decode(_encoded(model_key, digest, _lm, _image, _ran), _configs)


@dataclass
class Outcome:
    """One configuration's result, or the message saying why it has none."""

    config: DecodingConfig
    result: DecodeResult | None = None
    error: str = ""


class DecodeError(ValueError):
    """A configuration could not be decoded; the message is written for the page."""


@dataclass
class Decoded:
    """What decoding some configurations on the picked image gave, and whether it came from the cache."""

    outcomes: list[Outcome] = field(default_factory=list)
    from_cache: bool = False  # nothing was decoded now: the results (and their times) are from an earlier run
    encoded_now: bool = True  # the image was encoded in this run (else its encode time is from an earlier one)
    key: str = ""  # the model, image and settings: what `mark_shown` records
    reference: Caption | None = None  # the model's own decoding of the image (`decode_with_reference`)

    @property
    def shown_before(self) -> bool:
        """This session has shown these results before: a cache hit the user can recognise as such (a first
        visit's results come from a cache warmed by another session or an interrupted run, and are new here)."""
        return self.from_cache and self.key in st.session_state.get(SHOWN_RESULTS, set())

    def mark_shown(self) -> None:
        """Call once the page has drawn the results."""
        st.session_state.setdefault(SHOWN_RESULTS, set()).add(self.key)

    @property
    def results(self) -> list[DecodeResult]:
        return [o.result for o in self.outcomes if o.result is not None]

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.result is None]

    def only(self) -> DecodeResult:
        """The single configuration's result; its error as a message otherwise."""
        if self.outcomes[0].result is None:
            raise DecodeError(self.outcomes[0].error)
        return self.outcomes[0].result


def _failure_text(config: DecodingConfig, error: BaseException) -> str:
    what = f"“{config_label(config)}”"
    if isinstance(error, ValueError):
        return f"{what}: {error}"
    if isinstance(error, MemoryError):
        return f"{what} ran out of memory: try fewer beams or samples."
    return f"{what} could not be decoded ({type(error).__name__})."


def _run_decode(
    lm: LoadedModel, picked: SelectedImage, configs: Sequence[DecodingConfig]
) -> tuple[list[DecodeResult], list, str]:
    """The results (cached), what ran now ("encode", "decode"), and the cache key."""
    key = json.dumps([c.to_dict() for c in configs], sort_keys=True, default=str)
    ran: list = []
    results = _decoded(lm.key, picked.digest, key, lm, picked.image, tuple(configs), ran)
    return results, ran, f"{lm.key}|{picked.digest}|{key}"


def decode_configs(lm: LoadedModel, picked: SelectedImage, configs: Sequence[DecodingConfig]) -> Decoded:
    """Decode `configs` on the picked image in one batched engine call (cached); if that call fails,
    decode each alone, so a failing configuration gets its own message and the others still show."""
    outcomes = [Outcome(c) for c in configs]
    valid = []
    for o in outcomes:
        try:
            o.config = o.config.validate()
            valid.append(o)
        except ValueError as e:
            o.error = _failure_text(o.config, e)
    if not valid:
        return Decoded(outcomes)
    with st.spinner("Captioning…"):
        try:
            results, ran, key = _run_decode(lm, picked, [o.config for o in valid])
            for o, r in zip(valid, results):
                o.result = r
            return Decoded(outcomes, "decode" not in ran, "encode" in ran, key)
        except MemoryError:
            raise
        except Exception:
            log.exception("decoding %d configurations together failed; decoding each alone", len(valid))
        for o in valid:
            try:
                o.result = _run_decode(lm, picked, [o.config])[0][0]
            except Exception as e:
                log.exception("decoding %s failed", config_label(o.config))
                o.error = _failure_text(o.config, e)
    return Decoded(outcomes)


def default_config(model: CaptionModel) -> DecodingConfig:
    """The settings the Caption page starts at: the model's own (what the CLI uses with no options)."""
    _, defaults = _decoding_setup(model)
    return settings.config_with(model.default_decoding, defaults).with_(num_return_sequences=1)


def _caption_settings(config: DecodingConfig) -> dict[str, Any]:
    """What decides which caption comes out (not its label or what else is recorded)."""
    return {k: v for k, v in config.to_dict().items() if k not in ("label", "output_attentions", "num_alternatives")}


def decode_with_reference(lm: LoadedModel, picked: SelectedImage, config: DecodingConfig) -> Decoded:
    """`config` decoded on the picked image, with `reference` set to the model's own decoding of it (in the
    same batched call when the settings differ): what the out-of-world flag judges the image by."""
    reference = default_config(lm.model).with_(output_attentions=False, num_alternatives=1)
    try:
        same = _caption_settings(reference.validate()) == _caption_settings(config.validate())
    except ValueError:  # decode_configs says what is wrong with the settings
        same = True
    decoded = decode_configs(lm, picked, [config] if same else [config, reference])
    if same:
        decoded.reference = decoded.outcomes[0].result.best if decoded.outcomes[0].result else None
    else:
        ref = decoded.outcomes.pop()
        decoded.reference = ref.result.best if ref.result else None
    return decoded


# -- decoding controls --------------------------------------------------------------------------
def _prepare(prefix: str, ranges: Sequence[settings.Range], defaults: dict[str, Any]) -> None:
    """Make every stored value valid for its widget (a default where missing, snapped where out of range)."""
    current = {r.name: st.session_state.get(prefix + r.name, defaults[r.name]) for r in ranges}
    for name, value in settings.snap_all(current, tuple(ranges), defaults).items():
        if st.session_state.get(prefix + name) != value or prefix + name not in st.session_state:
            st.session_state[prefix + name] = value
    if "strategy" in defaults and st.session_state.get(prefix + "strategy") not in STRATEGIES:
        st.session_state[prefix + "strategy"] = defaults["strategy"]


def vocab_size(model: CaptionModel) -> int:
    """How many tokens the model's tokenizer knows (0 when it cannot say)."""
    try:
        return len(model.tokenizer)
    except TypeError:
        return 0


def _decoding_setup(model: CaptionModel) -> tuple[tuple[settings.Range, ...], dict[str, Any]]:
    limit, vocab = model.max_new_tokens_limit, vocab_size(model)
    return (
        settings.decoding_ranges(limit, model.default_decoding, vocab),
        settings.decoding_defaults(model.default_decoding, limit, vocab),
    )


def decoding_values(model: CaptionModel, prefix: str = "dec.") -> dict[str, Any]:
    """The decoding settings stored under `prefix`, valid for `model` (its defaults where none are stored)."""
    ranges, defaults = _decoding_setup(model)
    _prepare(prefix, ranges, defaults)
    return {k: st.session_state[prefix + k] for k in defaults}


def caption_config(model: CaptionModel) -> DecodingConfig:
    """The Caption page's settings as a DecodingConfig (Explain and Batch use them too)."""
    return settings.config_with(model.default_decoding, decoding_values(model)).with_(num_return_sequences=1)


def decoding_controls(model: CaptionModel, prefix: str = "dec.", columns: int = 1) -> dict[str, Any]:
    """Widgets for every decoding setting (in `columns` columns), starting at the model's defaults; the
    settings a strategy ignores are greyed out. Returns the values."""
    ranges, defaults = _decoding_setup(model)
    _prepare(prefix, ranges, defaults)
    strategy = st.selectbox("Strategy", STRATEGIES, key=prefix + "strategy", format_func=settings.STRATEGY_NAMES.get)
    cells = st.columns(columns) if columns > 1 else [st.container()]
    for i, r in enumerate(ranges):
        cell, off = cells[i % len(cells)], strategy not in r.applies_to
        helptext = f"{r.help} This model holds {r.hi}." if r.name == "max_new_tokens" else r.help
        if r.name == "seed":
            with cell:
                seed_input(r, prefix, off)
        else:
            cell.slider(r.label, r.lo, r.hi, step=r.step, key=prefix + r.name, disabled=off, help=helptext)
    return {k: st.session_state[prefix + k] for k in defaults}


SEED_TEXT, SEED_PROBLEM = "seed.text", "seed.problem"  # under a controls prefix: the box's text, why it was refused


def _on_seed_text(r: settings.Range, prefix: str) -> None:
    """The seed box changed: a whole number in range becomes the seed; anything else is refused, said, and undone."""
    typed = str(st.session_state.get(prefix + SEED_TEXT, "")).strip()
    number = settings.whole_number(typed.replace(",", "").replace("_", ""))
    if number is not None and number <= r.hi:
        st.session_state[prefix + r.name] = number
        st.session_state.pop(prefix + SEED_PROBLEM, None)
        return
    st.session_state[prefix + SEED_PROBLEM] = (
        f"“{shorten(typed, 30)}” is not a whole number from 0 to 2^64 − 1 ({int(r.hi):,}): "
        f"the seed stays {st.session_state.get(prefix + r.name, 0)}."
    )


def seed_input(r: settings.Range, prefix: str, disabled: bool) -> None:
    """The seed as a text box: Streamlit's number box reads "1e3" as 1 and "3.7" as 3 without a word, and
    stops at 2^53; seeds go to 2^64 - 1 and must be typed exactly."""
    seed = st.session_state[prefix + r.name]
    if st.session_state.get(prefix + SEED_TEXT) != str(seed):  # a refused text goes back to the seed in use
        st.session_state[prefix + SEED_TEXT] = str(seed)
    st.text_input(
        r.label,
        key=prefix + SEED_TEXT,
        disabled=disabled,
        help=f"{r.help} A whole number, 0 to 2^64 − 1.",
        on_change=_on_seed_text,
        args=(r, prefix),
    )
    problem = st.session_state.pop(prefix + SEED_PROBLEM, None)
    if problem:
        st.error(markdown_escape(problem), icon=":material/error:")


def keep_widget_values() -> None:
    """Re-store page widgets' values so Streamlit does not drop them when another page is shown."""
    for key in list(st.session_state):
        if str(key).startswith(KEPT_PREFIXES):
            st.session_state[key] = st.session_state[key]


# -- Compare ------------------------------------------------------------------------------------
def compare_controls(model: CaptionModel) -> dict[str, Any]:
    """The Compare page's four sliders in a row; returns their values."""
    ranges = settings.compare_ranges(vocab_size(model))
    defaults = settings.compare_defaults(model.default_decoding, vocab_size(model))
    _prepare("cmp.", ranges, defaults)
    for column, r in zip(st.columns(len(ranges)), ranges):
        column.slider(r.label, r.lo, r.hi, step=r.step, key="cmp." + r.name)
    return {r.name: st.session_state["cmp." + r.name] for r in ranges}


def compare_configs(model: CaptionModel, values: dict[str, Any]) -> list[DecodingConfig]:
    """Greedy, beam, top-k and top-p with the page's sliders, then the added configurations; names unique."""
    base = model.default_decoding.with_(output_attentions=False, num_alternatives=1, seed=0)
    base = base.with_(max_new_tokens=min(base.max_new_tokens, settings.token_limit(model.max_new_tokens_limit)))
    samples = values["samples"]
    configs = [
        base.with_(strategy="greedy", label="greedy"),
        base.with_(strategy="beam", num_beams=values["beams"], num_return_sequences=1, label=f"beam ({values['beams']})"),
        base.with_(
            strategy="sample", top_k=values["top_k"], top_p=1.0, num_return_sequences=samples, label=f"top-k ({values['top_k']})"
        ),
        base.with_(
            strategy="sample",
            top_k=0,
            top_p=values["top_p"],
            num_return_sequences=samples,
            seed=1,
            label=f"top-p ({values['top_p']:g})",
        ),  # its own seed: the two rows do not share their draws
    ]
    ranges, defaults = _decoding_setup(model)
    for added in st.session_state.get(COMPARE_ADDED, []):
        valid = settings.snap_all(added, ranges, defaults)
        config = settings.config_with(base, {**valid, "strategy": added.get("strategy", "greedy")})
        n = samples if config.strategy == "sample" else 1
        configs.append(config.with_(num_return_sequences=n, label=added["label"]))
    taken: set[str] = set()
    for i, c in enumerate(configs):
        label, k = c.label, 2
        while label in taken:
            label, k = f"{c.label} ({k})", k + 1
        taken.add(label)
        configs[i] = c.with_(label=label)
    return configs


def _on_add_configuration() -> None:
    """The Add button: store the form's settings under a unique name and clear the name field."""
    added = st.session_state.setdefault(COMPARE_ADDED, [])
    names = {"strategy", *(r.name for r in settings.DECODING_RANGES)}
    values = {name: st.session_state["cmp.new." + name] for name in names if "cmp.new." + name in st.session_state}
    typed = str(st.session_state.get("cmp.new.label", "")).strip()[:60]
    label = typed or f"mine {len(added) + 1}: {config_label(settings.config_with(DecodingConfig(), values))}"
    added.append({**values, "label": label})
    st.session_state["cmp.new.label"] = ""


def _on_remove_configuration(index: int) -> None:
    added = st.session_state.get(COMPARE_ADDED, [])
    if 0 <= index < len(added):
        added.pop(index)


CHART_LINES = 6  # the token-probability chart shows this many configurations at first (a picker adds more)


def chart_picker(results: Sequence[DecodeResult]) -> list[DecodeResult]:
    """The results the token-probability chart draws: all when few, else the ones picked (first CHART_LINES)."""
    if len(results) <= CHART_LINES:
        return list(results)
    labels = [config_label(r.config) for r in results]
    if not set(st.session_state.get("cmp.chart", [])) <= set(labels):
        st.session_state.pop("cmp.chart")
    shown = st.multiselect(
        "Lines in the chart",
        labels,
        default=labels[:CHART_LINES],
        key="cmp.chart",
        help="Many lines at once are hard to tell apart: pick the ones to compare.",
    )
    return [r for r, label in zip(results, labels) if label in shown]


def add_configuration_panel(model: CaptionModel) -> None:
    """The expander where users add configurations of their own and remove them. Its label stays the same,
    so it stays open after Add and Remove (a new label would be a new, closed expander)."""
    added = st.session_state.setdefault(COMPARE_ADDED, [])
    with st.expander("Add your own configuration", expanded=bool(added), icon=":material/add_circle:"):
        st.caption(f"{notes.plural(len(added), 'configuration')} added.")
        st.text_input("Name", placeholder="e.g. hot sampling", key="cmp.new.label", max_chars=60)
        decoding_controls(model, prefix="cmp.new.", columns=3)
        st.button("Add to the comparison", key="compare.add", on_click=_on_add_configuration, icon=":material/add:")
        for i, entry in enumerate(added):
            left, right = st.columns([4, 1], vertical_alignment="center")
            left.markdown(markdown_escape(entry["label"]))
            right.button("Remove", key=f"compare.remove.{i}", on_click=_on_remove_configuration, args=(i,))


# -- Explain ------------------------------------------------------------------------------------
def attention_controls(model: CaptionModel, attention: bool = True) -> tuple[int | str, int | str, float]:
    """Layer, head and opacity pickers in a row (layer and head off unless the maps are raw `attention`);
    returns (layer, head, opacity)."""
    layers = [settings.LAYER_MEAN, *range(model.num_layers)]
    heads = [settings.HEAD_MEAN, settings.HEAD_MAX, *range(model.num_heads)]
    if st.session_state.get("xpl.layer", settings.LAYER_MEAN) not in layers:
        st.session_state["xpl.layer"] = settings.LAYER_MEAN
    if st.session_state.get("xpl.head", settings.HEAD_MEAN) not in heads:
        st.session_state["xpl.head"] = settings.HEAD_MEAN
    st.session_state.setdefault("xpl.layer", settings.LAYER_MEAN)
    st.session_state.setdefault("xpl.head", settings.HEAD_MEAN)
    _prepare("xpl.", (settings.OPACITY,), {"opacity": settings.OPACITY_DEFAULT})
    c1, c2, c3 = st.columns(3)
    off = None if attention else "Layer and heads choose among raw attention's maps."
    layer = c1.selectbox("Layer", layers, key="xpl.layer", format_func=layer_text, disabled=not attention, help=off)
    head = c2.selectbox("Heads", heads, key="xpl.head", format_func=head_text, disabled=not attention, help=off)
    opacity = c3.slider(
        settings.OPACITY.label, 0.0, 1.0, step=settings.OPACITY.step, key="xpl.opacity", help=settings.OPACITY.help
    )
    return layer, head, opacity


def word_picker(words: Sequence[str]) -> int:
    """A row of the caption's words; returns the index of the one to show large. The choice follows the
    word, not its place, when the caption changes (another image or setting), and the first word otherwise."""
    index, chosen = st.session_state.get("xpl.word", 0), st.session_state.get("xpl.word.text")
    if chosen is not None and not (0 <= index < len(words) and words[index] == chosen):
        index = words.index(chosen) if chosen in words else 0
    st.session_state["xpl.word"] = index if 0 <= index < len(words) else 0
    st.session_state["xpl.word.text"] = words[st.session_state["xpl.word"]]
    return st.radio(
        "Show one word large",
        range(len(words)),
        key="xpl.word",
        horizontal=True,
        format_func=lambda i: f"{i + 1}. {markdown_escape(words[i])}",
        on_change=_on_word,
        args=(list(words),),
    )


def _on_word(words: list[str]) -> None:
    st.session_state["xpl.word.text"] = words[st.session_state["xpl.word"]]


# -- the URL: a link or a reload opens the same view -------------------------------------------
# Per page, the session keys its URL speaks for (what Back in the browser restores).
PAGE_STATE = {
    "Caption": ("dec.",),
    "Explain": ("dec.", "xpl."),
    "Batch": ("dec.",),
    "Compare": ("cmp.", COMPARE_ADDED),
    "Models": ("mdl.",),
}


def _history_navigation() -> bool:
    """This run was started by the browser's Back or Forward (the URL changed to an earlier view)."""
    return bool(getattr(get_script_run_ctx(), "is_history_navigation", False))


def restore_from_url(page: str) -> None:
    """Take the model and example image from the URL: once per session (a shared link, a reload), and
    again on Back / Forward, where the page's settings missing from the URL go back to their defaults.
    The settings themselves wait for the model (`apply_url_settings`), whose limits they must fit."""
    history = _history_navigation()
    if st.session_state.get("url.restored") and not history:
        return
    st.session_state["url.restored"] = True
    params = st.query_params.to_dict()
    notes = []
    spec = params.get("model", "").strip() or DEFAULT_SPEC
    if spec != st.session_state.get("model_spec", DEFAULT_SPEC):
        _forget(MODEL_BOUND_PREFIXES)
        _use_spec(spec)
    if history:
        _forget(PAGE_STATE.get(page, ()))
    name = params.get("image")
    picked = st.session_state.get("image")
    if name and not select_example(name):
        notes.append(f"The link's image “{shorten(name, 60)}” is not one of the examples: showing the first example.")
    elif params.get(UPLOAD_PARAM) and not history and gallery():
        notes.append(
            "This link was made with an image of its sender's own (an upload or a photo), which does not "
            f"travel in a link: showing the example {gallery()[0].name} instead. Upload the image to see it."
        )
    elif not name and history and picked is not None and picked.source == "example" and gallery():
        select_example(gallery()[0].name)
    st.session_state["url.pending"] = {**params, "compare_add": st.query_params.get_all("compare_add")}
    models_page, more = model_compare.from_params({**params, "models": st.query_params.get_all("models")})
    st.session_state.update({"mdl." + k: v for k, v in models_page.items()})
    st.session_state["url.notes"] = notes + more


def _forget(prefixes: Sequence[str]) -> None:
    for key in [k for k in st.session_state if str(k).startswith(tuple(prefixes))]:
        del st.session_state[key]


def _explain_from_params(params: dict[str, Any], model: CaptionModel) -> tuple[dict[str, Any], list[str]]:
    values, notes = settings.from_params(params, (settings.OPACITY,))
    attention, more = settings.attention_from_params(params, {"layer": model.num_layers, "head": model.num_heads})
    if params.get("method"):
        method, more_method = settings.method_from_params(params)
        more += more_method
        if method:
            values["method"] = method
    word = settings.whole_number(str(params.get("word", "")))
    if word:
        values["word"] = word - 1
    if params.get("prefix"):  # a forced prefix (app/question.py)
        ids, more_prefix = question.prefix_from_param(str(params["prefix"]))
        more += more_prefix
        if ids is not None:
            values["prefix"] = question.prefix_to_param(ids)
    return {**values, **attention}, notes + more


def apply_url_settings(lm: LoadedModel) -> None:
    """The link's settings, fitted to the loaded model (a note for each value changed or ignored)."""
    pending = st.session_state.pop("url.pending", None)
    if pending is None:
        return
    model = lm.model
    ranges, defaults = _decoding_setup(model)
    dec, notes = settings.from_params(pending, ranges)
    strategy, more = settings.strategy_from_params(pending)
    dec.update({"strategy": strategy} if strategy else {})
    cmp, more_cmp = settings.from_params(pending, settings.compare_ranges(vocab_size(model)))
    xpl, more_xpl = _explain_from_params(pending, model)
    added = []
    for raw in pending.get("compare_add", []):
        record, more_add = settings.added_from_param(raw, defaults, model.max_new_tokens_limit, ranges)
        notes += more_add
        if record is not None:
            added.append(record)
    if "word" in xpl:
        st.session_state.pop("xpl.word.text", None)  # the link names the word by its place
    for prefix, values in (("dec.", dec), ("cmp.", cmp), ("xpl.", xpl)):
        for k, v in values.items():
            st.session_state[prefix + k] = v
    if added:
        st.session_state[COMPARE_ADDED] = added
    st.session_state.setdefault("url.notes", []).extend(notes + more + more_cmp + more_xpl)


def _explain_params() -> dict[str, str]:
    params = settings.attention_to_params(
        {k: st.session_state.get("xpl." + k, v) for k, v in settings.ATTENTION_DEFAULTS.items()}
    )
    if st.session_state.get("xpl.method", settings.EXPLAIN_METHOD_DEFAULT) != settings.EXPLAIN_METHOD_DEFAULT:
        params["method"] = st.session_state["xpl.method"]
    if st.session_state.get("xpl.word", 0):
        params["word"] = str(st.session_state["xpl.word"] + 1)
    opacity = st.session_state.get("xpl.opacity", settings.OPACITY_DEFAULT)
    if opacity != settings.OPACITY_DEFAULT:
        params["opacity"] = settings.format_value(opacity)
    if st.session_state.get(question.PREFIX_KEY):
        params["prefix"] = st.session_state[question.PREFIX_KEY]
    return params


def url_params(page: str, lm: LoadedModel | None) -> dict[str, str | list[str]]:
    """What the URL of `page` carries: the model, the example image, and the page's settings that differ
    from their defaults (Explain and Batch carry the Caption page's settings, which they use)."""
    params: dict[str, str | list[str]] = {}
    spec = st.session_state.get("model_spec", DEFAULT_SPEC)
    if spec != DEFAULT_SPEC:
        params["model"] = spec
    picked = st.session_state.get("image")
    first = gallery()[0].name if gallery() else None
    if page != "Batch" and picked is not None and picked.source == "example" and picked.name != first:
        params["image"] = picked.name
    elif page != "Batch" and picked is not None and picked.source != "example":
        params[UPLOAD_PARAM] = "1"  # the image cannot travel: whoever opens the link is told so
    if page == "Models":
        params.update(model_compare.to_params(*models_page_state()))
    if lm is None:
        return params
    ranges, defaults = _decoding_setup(lm.model)
    if page in ("Caption", "Explain", "Batch"):
        params.update(settings.to_params(decoding_values(lm.model), defaults, ranges, choices=("strategy",)))
    if page == "Compare":
        vocab = vocab_size(lm.model)
        compare_defaults = settings.compare_defaults(lm.model.default_decoding, vocab)
        values = {name: st.session_state.get("cmp." + name, v) for name, v in compare_defaults.items()}
        params.update(settings.to_params(values, compare_defaults, settings.compare_ranges(vocab)))
        added = [
            settings.added_to_param(a["label"], {k: v for k, v in a.items() if k != "label"}, defaults)
            for a in st.session_state.get(COMPARE_ADDED, [])
        ]
        if added:
            params["compare_add"] = added
    if page == "Explain":
        params.update(_explain_params())
    return params


def models_page_state() -> tuple[list[str], bool, dict[str, Any]]:
    """The Models page's models, its switch (same settings for all) and the shared settings, from the session."""
    specs, _ = model_compare.parse_specs(st.session_state.setdefault("mdl.specs", "\n".join(model_compare.DEFAULT_SPECS)))
    shared = {k: st.session_state.setdefault("mdl." + k, v) for k, v in model_compare.SHARED_DEFAULTS.items()}
    return specs, bool(st.session_state.setdefault("mdl.same", True)), shared


def write_url(page: str, lm: LoadedModel | None) -> None:
    """Put this view in the URL (only when it changed: each change is a step in the browser's history)."""
    params = url_params(page, lm)
    current = {k: st.query_params.get_all(k) for k in st.query_params}
    if current != {k: v if isinstance(v, list) else [v] for k, v in params.items()}:
        st.query_params.from_dict(params)


# -- batch --------------------------------------------------------------------------------------
BATCH_THUMBNAIL_SIDE = 96


def batch_inputs(files: Sequence[tuple[str, bytes]], examples: Sequence[Example]) -> tuple[list[BatchItem], list[CaptionRow]]:
    """The uploaded files, (name, bytes) with zip archives opened, and the chosen examples: items to caption,
    and error rows for what cannot be used (the batch command's own reading of uploads, `captioner.batch.items`)."""
    uploads = list(files) + [(ex.name, ex.data) for ex in examples]
    items = expand_uploads(uploads)
    problems = [CaptionRow(item.name, status="error", error=item.problem) for item in items if item.problem]
    return [item for item in items if not item.problem], problems


def _row_key(lm: LoadedModel, config: DecodingConfig, item: BatchItem) -> str:
    settings_key = json.dumps({k: v for k, v in config.to_dict().items() if k != "label"}, sort_keys=True, default=str)
    digest = hashlib.sha256(item.data or b"").hexdigest()[:16]
    return f"{lm.key}|{settings_key}|{item.name}|{digest}"


def batch_rows(lm: LoadedModel, items: Sequence[BatchItem], config: DecodingConfig) -> list[CaptionRow | None]:
    """Per item, its row if it has been captioned with these settings (None if not yet)."""
    done = st.session_state.get("batch.done", {})
    return [done.get(_row_key(lm, config, item)) for item in items]


def batch_unsure(lm: LoadedModel, items: Sequence[BatchItem], config: DecodingConfig) -> set[str]:
    """The items whose caption is unsure because of the settings (the model's own decoding of them is not)."""
    unsure = st.session_state.get("batch.unsure", set())
    return {item.name for item in items if _row_key(lm, config, item) in unsure}


BATCH_UPLOADS = "batch.uploads"  # the files in the Batch uploader now: (name, bytes) pairs
BATCH_KEPT = "batch.kept"  # files uploaded on an earlier visit to the page (the uploader forgets them)


def batch_uploader() -> list[tuple[str, bytes]]:
    """The Batch page's uploader, and the files uploaded on earlier visits: Streamlit empties an uploader
    when its page is left, so what it held is kept here (with a button to let it go) and nothing is lost."""
    if "batch.files" not in st.session_state and st.session_state.get(BATCH_UPLOADS):  # back from another page
        kept = st.session_state.setdefault(BATCH_KEPT, [])
        kept += [f for f in st.session_state.pop(BATCH_UPLOADS) if f not in kept]
    files = st.file_uploader("Images or zip archives", type=IMAGE_TYPES + ["zip"], accept_multiple_files=True, key="batch.files")
    st.session_state[BATCH_UPLOADS] = [(f.name, f.getvalue()) for f in files or []]
    kept = st.session_state.get(BATCH_KEPT, [])
    if kept:
        names = ", ".join(markdown_escape(shorten(name, 40)) for name, _ in kept[:5])
        more = f" and {len(kept) - 5} more" if len(kept) > 5 else ""
        left, right = st.columns([4, 1], vertical_alignment="center")
        left.caption(f":material/inventory_2: Kept from your last visit: {notes.plural(len(kept), 'file')} ({names}{more}).")
        right.button("Let them go", key="batch.forget", on_click=st.session_state.pop, args=(BATCH_KEPT, None))
    return kept + st.session_state.get(BATCH_UPLOADS, [])


def run_batch(lm: LoadedModel, items: Sequence[BatchItem], config: DecodingConfig) -> None:
    """Caption the items that have no row yet, a chunk at a time, with a progress bar and a Stop button.

    Each chunk is captioned together by the batch command's function (`captioner.batch.rows`), and its
    rows are kept as they come, so a stopped (or interrupted) batch keeps what it did and the next run
    captions only the rest. Stop works as any click does during a run: Streamlit ends the run at its
    next update of the page, here the progress bar after each chunk.
    """
    done = st.session_state.setdefault("batch.done", {})
    unsure = st.session_state.setdefault("batch.unsure", set())
    keys = {_row_key(lm, config, item): item for item in items}
    for stale in [k for k in done if k not in keys]:  # keep only the current batch's rows
        del done[stale]
        unsure.discard(stale)
    todo = [(k, item) for k, item in keys.items() if k not in done]
    reference = default_config(lm.model).with_(output_attentions=False, num_alternatives=1)
    judge_apart = _caption_settings(reference) != _caption_settings(config.with_(num_return_sequences=1))
    bar = st.progress(0.0, text=f"Captioning {notes.plural(len(todo), 'image')}…")
    stop = st.empty()
    stop.button("Stop", key="batch.stop", icon=":material/stop_circle:")
    finished = 0
    for chunk in chunks(todo, DEFAULT_BATCH_SIZE):
        rows = caption_items(
            lm.model, [item for _, item in chunk], config, model_lock=lm.lock, thumbnail_side=BATCH_THUMBNAIL_SIDE
        )
        if judge_apart:  # the out-of-world flag judges the image: by the model's own decoding of it
            own = caption_items(lm.model, [item for _, item in chunk], reference, model_lock=lm.lock)
            for (key, _), row, mine in zip(chunk, own, list(rows)):
                if row.ok and mine.ok and mine.out_of_world and not row.out_of_world:
                    unsure.add(key)
            rows = [replace(mine, out_of_world=row.out_of_world) if row.ok and mine.ok else mine for row, mine in zip(own, rows)]
        for (key, _), row in zip(chunk, rows):
            done[key] = row
        finished += len(chunk)
        name = markdown_escape(shorten(chunk[-1][1].name, 60))  # a file name is not Markdown
        bar.progress(finished / len(todo), text=f"{finished}/{len(todo)} · {name}")
    bar.empty()
    stop.empty()


# -- page frame ---------------------------------------------------------------------------------
@contextlib.contextmanager
def page_guard(doing: str = "showing this page") -> Iterator[None]:
    """Turn any error raised inside into an st.error message: no traceback ever reaches the page."""
    try:
        yield
    except (ImageLoadError, ModelLoadError, ArchiveError, ValueError) as e:
        st.error(markdown_escape(str(e)))  # messages name files and models the user chose
    except MemoryError:
        st.error(f"Ran out of memory while {doing}. Try a smaller image or fewer beams and samples.")
    except Exception as e:
        log.exception("error while %s", doing)
        st.error(
            f"Something went wrong while {doing} ({type(e).__name__}). The app is still usable: "
            "try other settings or another image."
        )


def how_to_read(page: str) -> None:
    """The page's short, collapsible reading guide."""
    with st.expander("How to read this", icon=":material/help:"):
        st.markdown(HOW_TO_READ[page])


def show_url_notes() -> None:
    """What a link asked for that could not be used as it was (shown once)."""
    for note in st.session_state.pop("url.notes", []):
        st.info(markdown_escape(note), icon=":material/link:")


def require_model() -> LoadedModel:
    """The session's model, or a message and a stop when none loads."""
    lm = current_model()
    if lm is None:
        st.error(markdown_escape(st.session_state.get("model_error", "No model is loaded.")))
        st.stop()
    return lm


def require_model_and_image() -> tuple[LoadedModel, SelectedImage]:
    """The session's model and image, or a message and a stop when either is missing."""
    lm = require_model()
    picked = selected_image()
    if picked is None:
        st.info("Choose an image in the sidebar: upload one, take a photo, or pick an example.")
        st.stop()
    return lm, picked


# -- sidebar ------------------------------------------------------------------------------------
def model_sidebar() -> LoadedModel | None:
    """Model picker and what is loaded; returns the model in use."""
    sb = st.sidebar
    sb.subheader("Model")
    with sb:
        lm = current_model()
    st.session_state.setdefault("model.hub", DEFAULT_HUB_MODEL)
    st.session_state.setdefault("model.kind", _kind_of(st.session_state["model_spec"]))
    kind = sb.radio("Model", MODEL_KINDS, key="model.kind", horizontal=True, label_visibility="collapsed")
    if kind == "Hugging Face hub":
        sb.text_input("Hub id", key="model.hub")
    elif kind == "Local path":
        sb.text_input("Path to a captioner.pt or a model folder", key="model.path")
    sb.button("Load model", key="model.load", width="stretch", on_click=_on_load_model)
    if st.session_state.get("model_error"):
        sb.error(markdown_escape(st.session_state["model_error"]))
    for note in model_notes():
        sb.info(markdown_escape(note), icon=":material/memory:")
    if lm is None:
        return None
    info = lm.model.info
    if lm.fell_back:
        sb.warning(f"Using the built-in model: {markdown_escape(info.reason)}.")
    lines = [
        f"In use: **{markdown_escape(info.name)}** · {markdown_escape(info.family)}",
        f"{format_count(info.num_parameters)} parameters · {info.dtype}",
        f"from {markdown_escape(shorten(info.source, 80))}",
    ]
    if info.reason and not lm.fell_back:
        lines.append(f"Why this model: {markdown_escape(info.reason)}")
    sb.caption("  \n".join(lines))
    if lm.is_builtin:
        sb.caption(BUILTIN_SHORT)
    return lm


@st.cache_data(show_spinner=False)
def _gallery_css() -> str:
    """Each example's thumbnail as the background of its button; the chosen one (primary) outlined."""
    rules = [
        '[class*="st-key-gallery-"] button {aspect-ratio: 1 / 1; height: auto; min-height: 0; padding: 0;'
        " background-size: cover; background-position: center; image-rendering: pixelated; color: transparent;}",
        '[class*="st-key-gallery-"] button p {color: transparent;}',
        '[class*="st-key-gallery-"] button[data-testid="stBaseButton-primary"]'
        " {outline: 3px solid #3563c9; outline-offset: 2px;}",
    ]
    for i, ex in enumerate(gallery()):
        thumb = Image.open(io.BytesIO(ex.data)).convert("RGB")
        thumb.thumbnail((96, 96))
        data = base64.b64encode(png_bytes(thumb)).decode()
        rules.append(f".st-key-gallery-{i} button {{background-image: url(data:image/png;base64,{data});}}")
    return "<style>" + "\n".join(rules) + "</style>"


def _gallery_grid() -> None:
    """The examples as clickable thumbnails; the one in use is outlined."""
    sb = st.sidebar
    picked = st.session_state.get("image")
    chosen = picked.name if picked is not None and picked.source == "example" else None
    sb.html(_gallery_css())
    columns = sb.columns(4, gap="small")
    for i, ex in enumerate(gallery()):
        columns[i % 4].button(
            f"Example {i + 1}",
            key=f"gallery.{i}",
            on_click=select_example,
            args=(ex.name,),
            type="primary" if ex.name == chosen else "secondary",
            help=ex.name,
            width="stretch",
        )


def image_sidebar() -> None:
    """Image input shared by the single-image pages: examples, upload or camera."""
    sb = st.sidebar
    sb.subheader("Image")
    source = sb.radio(
        "Image from", ("Examples", "Upload", "Camera"), key="img.source", horizontal=True, label_visibility="collapsed"
    )
    picked = selected_image()
    if source == "Examples":
        _gallery_grid()
    elif source == "Upload":
        sb.file_uploader(
            "Upload an image",
            type=IMAGE_TYPES,
            key=_input_key("upload"),
            on_change=_on_file,
            args=("upload",),
            help=f"{SUPPORTED_FORMATS_TEXT}, up to 25 MB",
        )
    else:
        sb.camera_input("Take a photo", key=_input_key("camera"), on_change=_on_file, args=("camera",))
    if st.session_state.get("image_error"):
        sb.error(markdown_escape(st.session_state["image_error"]))
    picked = selected_image()
    if picked is not None:
        w, h = picked.image.size
        sb.image(picked.preview, caption=f"{markdown_escape(picked.name)} · {w}×{h}", width="stretch")


def page_links(pages: Sequence[Any], lm: LoadedModel | None) -> None:
    """The app's navigation: a link per page, carrying what that page's URL holds."""
    for p in pages:
        st.page_link(p, label=p.title, icon=p.icon, width="stretch", query_params=url_params(p.title, lm))
    st.divider()


def sidebar(page: Any, pages: Sequence[Any]) -> LoadedModel | None:
    """The sidebar every page shares: page links, the model, and the image (not on the Batch page,
    which takes its own files). A link's settings are applied once the model is known. Returns the model."""
    lm = None
    nav = st.sidebar.container(key="page-links")
    with page_guard("setting up the sidebar"):
        restore_from_url(page.title)
        lm = model_sidebar()
        if lm is not None:
            apply_url_settings(lm)
        if page.title != "Batch":
            image_sidebar()
    with nav:
        page_links(pages, lm)
    return lm
