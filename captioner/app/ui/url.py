"""The URL holds the view (`st.query_params`): the model, the example image and each page's settings that
differ from their defaults, so a link or a reload opens the same view and Back restores the last one.
Whatever a link asks for is fitted to the loaded model, with a note for each value changed or ignored."""

from __future__ import annotations

from typing import Any

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from captioner.app import compare_links, model_compare, settings
from captioner.app.model_text import DEFAULT_SPEC
from captioner.app.ui import keys, question
from captioner.app.ui.controls import decoding_setup, decoding_values, forget, vocab_size
from captioner.app.ui.image import EXAMPLE, first_example, picked_image, select_example
from captioner.app.ui.model import LoadedModel, use_spec
from captioner.app.ui.models_page import models_page_state
from captioner.models.base import CaptionModel
from captioner.app.views.text import markdown_escape, shorten


def _history_navigation() -> bool:
    """This run was started by the browser's Back or Forward (the URL changed to an earlier view)."""
    return bool(getattr(get_script_run_ctx(), "is_history_navigation", False))


def _image_from_url(params: dict[str, str], history: bool) -> list[str]:
    """Select the link's example image (the first example on Back to a view without one); notes on what could not be."""
    name, picked, first = params.get(keys.IMAGE_PARAM), picked_image(), first_example()
    if name and not select_example(name):
        return [f"The link's image “{shorten(name, 60)}” is not one of the examples: showing the first example."]
    if params.get(keys.UPLOAD_PARAM) and not history and first is not None:
        return [
            "This link was made with an image of its sender's own (an upload or a photo), which does not "
            f"travel in a link: showing the example {first.name} instead. Upload the image to see it."
        ]
    if not name and history and picked is not None and picked.source == EXAMPLE and first is not None:
        select_example(first.name)
    return []


def restore_from_url(page: str) -> None:
    """Take the model and example image from the URL: once per session (a shared link, a reload), and
    again on Back / Forward, where the page's settings missing from the URL go back to their defaults.
    The settings themselves wait for the model (`apply_url_settings`), whose limits they must fit."""
    history = _history_navigation()
    if st.session_state.get(keys.URL_RESTORED) and not history:
        return
    st.session_state[keys.URL_RESTORED] = True
    params = st.query_params.to_dict()
    spec = params.get(keys.MODEL_PARAM, "").strip() or DEFAULT_SPEC
    if spec != st.session_state.get(keys.MODEL_SPEC, DEFAULT_SPEC):
        forget(keys.MODEL_BOUND_PREFIXES)
        use_spec(spec)
    if history:
        forget(keys.PAGE_STATE.get(page, ()))
    notes = _image_from_url(params, history)
    st.session_state[keys.URL_PENDING] = {**params, keys.COMPARE_ADD_PARAM: st.query_params.get_all(keys.COMPARE_ADD_PARAM)}
    models_page, more = model_compare.from_params(
        {**params, model_compare.MODELS_PARAM: st.query_params.get_all(model_compare.MODELS_PARAM)}
    )
    st.session_state.update({keys.MODELS_PAGE + k: v for k, v in models_page.items()})
    st.session_state[keys.URL_NOTES] = notes + more


def _explain_from_params(params: dict[str, Any], model: CaptionModel) -> tuple[dict[str, Any], list[str]]:
    values, notes = settings.from_params(params, (settings.OPACITY,))
    attention, more = settings.attention_from_params(params, {"layer": model.num_layers, "head": model.num_heads})
    method, more_method = settings.method_from_params(params)
    more += more_method
    if method:
        values["method"] = method
    word = settings.whole_number(str(params.get(keys.WORD_PARAM, "")))
    if word:
        values["word"] = word - 1
    if params.get(keys.PREFIX_PARAM):  # a forced prefix (ui/question.py)
        ids, more_prefix = question.prefix_from_param(str(params[keys.PREFIX_PARAM]))
        more += more_prefix
        if ids is not None:
            values["prefix"] = question.prefix_to_param(ids)
    return {**values, **attention}, notes + more


def _added_from_params(pending: dict[str, Any], model: CaptionModel) -> tuple[list[dict[str, Any]], list[str]]:
    """The Compare page's added configurations in a link, fitted to `model`."""
    ranges, defaults = decoding_setup(model)
    added, notes = [], []
    for raw in pending.get(keys.COMPARE_ADD_PARAM, []):
        record, more = compare_links.added_from_param(raw, defaults, model.max_new_tokens_limit, ranges)
        notes += more
        if record is not None:
            added.append(record)
    return added, notes


def apply_url_settings(lm: LoadedModel) -> None:
    """The link's settings, fitted to the loaded model (a note for each value changed or ignored)."""
    pending = st.session_state.pop(keys.URL_PENDING, None)
    if pending is None:
        return
    model = lm.model
    ranges, _ = decoding_setup(model)
    dec, notes = settings.from_params(pending, ranges)
    strategy, more = settings.strategy_from_params(pending)
    dec.update({keys.STRATEGY: strategy} if strategy else {})
    cmp, more_cmp = settings.from_params(pending, settings.compare_ranges(vocab_size(model)))
    xpl, more_xpl = _explain_from_params(pending, model)
    added, more_add = _added_from_params(pending, model)
    if "word" in xpl:
        st.session_state.pop(keys.WORD_TEXT, None)  # the link names the word by its place
    for prefix, values in ((keys.DECODING, dec), (keys.COMPARE_SLIDERS, cmp), (keys.EXPLAIN_PICKS, xpl)):
        for k, v in values.items():
            st.session_state[prefix + k] = v
    if added:
        st.session_state[keys.COMPARE_ADDED] = added
    st.session_state.setdefault(keys.URL_NOTES, []).extend(notes + more_add + more + more_cmp + more_xpl)


def _explain_params() -> dict[str, str]:
    state = st.session_state
    params = settings.attention_to_params(
        {k: state.get(keys.EXPLAIN_PICKS + k, v) for k, v in settings.ATTENTION_DEFAULTS.items()}
    )
    if state.get(keys.METHOD, settings.EXPLAIN_METHOD_DEFAULT) != settings.EXPLAIN_METHOD_DEFAULT:
        params[settings.METHOD_PARAM] = state[keys.METHOD]
    if state.get(keys.WORD, 0):
        params[keys.WORD_PARAM] = str(state[keys.WORD] + 1)
    opacity = state.get(keys.OPACITY, settings.OPACITY_DEFAULT)
    if opacity != settings.OPACITY_DEFAULT:
        params[settings.OPACITY.url_name] = settings.format_value(opacity)
    if state.get(keys.PREFIX):
        params[keys.PREFIX_PARAM] = state[keys.PREFIX]
    return params


def _compare_params(model: CaptionModel) -> dict[str, str | list[str]]:
    _, defaults = decoding_setup(model)
    vocab = vocab_size(model)
    compare_defaults = settings.compare_defaults(model.default_decoding, vocab)
    values = {name: st.session_state.get(keys.COMPARE_SLIDERS + name, v) for name, v in compare_defaults.items()}
    params: dict[str, str | list[str]] = {**settings.to_params(values, compare_defaults, settings.compare_ranges(vocab))}
    added = [
        compare_links.added_to_param(a["label"], {k: v for k, v in a.items() if k != "label"}, defaults)
        for a in st.session_state.get(keys.COMPARE_ADDED, [])
    ]
    if added:
        params[keys.COMPARE_ADD_PARAM] = added
    return params


def _where_params(page: str) -> dict[str, str | list[str]]:
    """The model and the image: what every page's URL carries (the Batch page takes no image)."""
    params: dict[str, str | list[str]] = {}
    spec = st.session_state.get(keys.MODEL_SPEC, DEFAULT_SPEC)
    if spec != DEFAULT_SPEC:
        params[keys.MODEL_PARAM] = spec
    picked, first = picked_image(), first_example()
    if page not in keys.PAGES_WITH_AN_IMAGE or picked is None:
        return params
    if picked.source == EXAMPLE and (first is None or picked.name != first.name):
        params[keys.IMAGE_PARAM] = picked.name
    elif picked.source != EXAMPLE:
        params[keys.UPLOAD_PARAM] = "1"  # the image cannot travel: whoever opens the link is told so
    return params


def url_params(page: str, lm: LoadedModel | None) -> dict[str, str | list[str]]:
    """What the URL of `page` carries: the model, the example image, and the page's settings that differ
    from their defaults (Explain and Batch carry the Caption page's settings, which they use)."""
    params = _where_params(page)
    if page == keys.MODELS:
        params.update(model_compare.to_params(*models_page_state()))
    if lm is None:
        return params
    if page in keys.PAGES_WITH_CAPTION_SETTINGS:
        ranges, defaults = decoding_setup(lm.model)
        params.update(settings.to_params(decoding_values(lm.model), defaults, ranges, choices=(keys.STRATEGY,)))
    if page == keys.COMPARE:
        params.update(_compare_params(lm.model))
    if page == keys.EXPLAIN:
        params.update(_explain_params())
    return params


def write_url(page: str, lm: LoadedModel | None) -> None:
    """Put this view in the URL (only when it changed: each change is a step in the browser's history)."""
    params = url_params(page, lm)
    current = {k: st.query_params.get_all(k) for k in st.query_params}
    if current != {k: v if isinstance(v, list) else [v] for k, v in params.items()}:
        st.query_params.from_dict(params)


def show_url_notes() -> None:
    """What a link asked for that could not be used as it was (shown once)."""
    for note in st.session_state.pop(keys.URL_NOTES, []):
        st.info(markdown_escape(note), icon=":material/link:")
