"""The Explain page's methods: the picker with its trust line, per-word maps cached per (model, image,
caption, method) with a progress bar for the slow methods, the flag for words no region supports, and
the JSON export that names the method."""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
import streamlit as st
from captioner.app.settings import EXPLAIN_METHOD_DEFAULT as DEFAULT_METHOD
from captioner.app.trust import trust_line
from captioner.app.ui import keys
from captioner.app.ui.frame import download
from captioner.decoding import Caption
from captioner.explain import METHODS, Explanation, check_explainable, explain
from captioner.explain.occlusion import TOLERANCE
from captioner.app.views.text import markdown_escape

SLOW_METHODS = ("relevance", "occlusion")
SCALE_WORDS = {"attention": "attention"}  # what the heat scale measures; the other methods' maps are shares of evidence
METHOD_LABELS = {"attention": "Raw attention", "relevance": "Relevance", "gradcam": "Grad-CAM", "occlusion": "Occlusion"}
METHOD_WORK = {
    "attention": "the cross-attention the decoder paid to each patch",
    "relevance": "gradient-weighted cross-attention through the encoder's attention rollout (one backward pass)",
    "gradcam": "Grad-CAM on the last layer's cross-attention (one backward pass)",
    "occlusion": "how much each word's probability drops when a cell of the image is blanked (one pass per cell)",
}


def method_picker() -> str:
    """The method radio (raw attention by default) with its one-line trust figure; returns the method."""
    if st.session_state.get(keys.METHOD) not in METHODS:
        st.session_state[keys.METHOD] = DEFAULT_METHOD
    method = st.radio(
        "Explanation method",
        METHODS,
        key=keys.METHOD,
        horizontal=True,
        format_func=METHOD_LABELS.get,
        help="What each word's map shows: " + "; ".join(f"{METHOD_LABELS[m]}: {METHOD_WORK[m]}" for m in METHODS),
    )
    st.caption(f"**How far to trust it:** {trust_line(method)}")
    return method


CACHED_EXPLANATIONS = 16


@st.cache_resource(show_spinner=False)
def _explanations() -> tuple[OrderedDict[tuple, Explanation], threading.Lock]:
    """Explanations per (model, image, caption, method), shared by all sessions, the oldest dropped first. Not
    st.cache_resource on the computation itself: its progress bar would be replayed into a layout that is gone."""
    return OrderedDict(), threading.Lock()


def explanation(lm: Any, picked: Any, caption: Caption, method: str) -> Explanation | None:
    """`method`'s maps of `caption` on the picked image: from the cache, else computed with a progress bar;
    None (said on the page) when the model's family has no explanation methods: the page shows raw attention."""
    try:
        check_explainable(lm.model)
    except ValueError as e:
        st.info(f"{markdown_escape(str(e))} Shown instead: raw cross-attention.", icon=":material/info:")
        return None
    cache, cache_lock = _explanations()
    key = (lm.key, picked.digest, tuple(caption.token_ids), method)
    with cache_lock:
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
    bar = st.progress(0.0, text=f"{METHOD_LABELS[method]}: {METHOD_WORK[method]}…") if method in SLOW_METHODS else None

    def progress(fraction: float) -> None:
        if bar is not None:
            bar.progress(min(max(fraction, 0.0), 1.0), text=f"{METHOD_LABELS[method]}: {fraction:.0%}")

    try:
        with lm.lock:
            result = explain(
                lm.model, picked.image, caption, method=method, **({"progress": progress} if method == "occlusion" else {})
            )
    finally:
        if bar is not None:
            bar.empty()
    with cache_lock:
        cache[key] = result
        while len(cache) > CACHED_EXPLANATIONS:
            cache.popitem(last=False)
    return result


def scale_word(method: str) -> str:
    return SCALE_WORDS.get(method, "evidence")


def explanation_maps(result: Explanation) -> list[tuple[str, np.ndarray]]:
    return [(w.word, w.map) for w in result.words]


def unsupported_flag(method: str, result: Explanation | None) -> None:
    """Say which words no single region supports, telling apart those the whole image carries (only occlusion can tell)."""
    if result is not None and result.unsupported:
        spread = set(result.spread)
        together = [w for w in result.unsupported if w in spread]
        from_text = [w for w in result.unsupported if w not in spread]
        if together:
            st.info(
                f"Carried by several regions at once: {_quoted(together)}. Blanking any one cell of the occlusion "
                f"grid lowers them by less than {TOLERANCE} nats, blanking the whole image lowers them: no single "
                "place carries them (an object larger than one cell, or a word read from several objects).",
                icon=":material/grid_view:",
            )
        if from_text:
            st.warning(
                f"Not supported by the image: {_quoted(from_text)}. Even with the whole image blanked their "
                f"log-probability drops by less than {TOLERANCE} nats: the model says them from the caption so far.",
                icon=":material/help:",
            )
    elif method != "occlusion":
        st.caption("Only occlusion can tell whether a word is supported by any region of the image.")


def _quoted(words: Sequence[str]) -> str:
    return ", ".join(f"“{markdown_escape(w)}”" for w in words)


def attention_record(caption: Caption, maps: Sequence[tuple[str, np.ndarray]], layer: Any, head: Any) -> dict[str, Any]:
    """The raw-attention maps the page shows, in the shape of `Explanation.to_dict`."""
    grid = list(maps[0][1].shape) if maps else []
    return {
        "method": "attention",
        "grid": grid,
        "caption": caption.text,
        "tokens": list(caption.tokens),
        "settings": {"layer": layer, "head": head},
        "unsupported": [],
        "words": [{"word": w, "map": np.round(m / max(float(m.sum()), 1e-12), 6).tolist()} for w, m in maps],
    }


def json_download(record: dict[str, Any], method: str) -> None:
    download(
        "Download the maps (JSON)",
        json.dumps(record, indent=1, default=str),
        f"explanation-{method}.json",
        icon=":material/data_object:",
        key=keys.EXPLAIN_JSON,
    )
