"""Decoding on the picked image, cached: encoder outputs per (model, image), results per (model, image,
settings), so moving a decoding slider only re-runs decoding and going back to earlier settings runs
nothing. A configuration that fails gets its own message; the others still show."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import streamlit as st
from PIL import Image
from captioner.app.ui import keys
from captioner.app.ui.controls import default_config
from captioner.app.ui.image import SelectedImage
from captioner.app.ui.model import LoadedModel
from captioner.config import DecodingConfig
from captioner.decoding import Caption, DecodeResult, EncodedImage
from captioner.models.base import CaptionModel
from captioner.app.views.text import config_label

log = logging.getLogger(__name__)


def configs_key(configs: Sequence[DecodingConfig]) -> str:
    """The cache key of some decoding settings, in order: each config's own key, with its label (the
    cached results show it)."""
    return "[" + ", ".join(c.cache_key(label=c.label) for c in configs) + "]"


@st.cache_resource(max_entries=16, show_spinner=False)
def _encoded(model_key: str, digest: str, _lm: LoadedModel, _image: Image.Image, _ran: list) -> EncodedImage:
    _ran.append("encode")
    return _lm.encode(_image)


@st.cache_resource(max_entries=24, show_spinner=False)
def _decoded(
    model_key: str,
    digest: str,
    settings_key: str,
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
        return self.from_cache and self.key in st.session_state.get(keys.SHOWN_RESULTS, set())

    def mark_shown(self) -> None:
        """Call once the page has drawn the results."""
        st.session_state.setdefault(keys.SHOWN_RESULTS, set()).add(self.key)

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
    key = configs_key(configs)
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


def reference_config(model: CaptionModel) -> DecodingConfig:
    """The model's own decoding, as the out-of-world flag judges an image by it."""
    return default_config(model).with_(output_attentions=False, num_alternatives=1)


def caption_settings(config: DecodingConfig) -> dict[str, Any]:
    """What decides which caption comes out (not its label or what else is recorded)."""
    return {k: v for k, v in config.to_dict().items() if k not in ("label", "output_attentions", "num_alternatives")}


def decode_with_reference(lm: LoadedModel, picked: SelectedImage, config: DecodingConfig) -> Decoded:
    """`config` decoded on the picked image, with `reference` set to the model's own decoding of it (in the
    same batched call when the settings differ): what the out-of-world flag judges the image by."""
    reference = reference_config(lm.model)
    try:
        same = caption_settings(reference.validate()) == caption_settings(config.validate())
    except ValueError:  # decode_configs says what is wrong with the settings
        same = True
    decoded = decode_configs(lm, picked, [config] if same else [config, reference])
    if same:
        decoded.reference = decoded.outcomes[0].result.best if decoded.outcomes[0].result else None
    else:
        ref = decoded.outcomes.pop()
        decoded.reference = ref.result.best if ref.result else None
    return decoded
