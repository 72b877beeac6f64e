"""Questions a user can put to a caption on the pages: force a word (Explain) and see the beam tree (Caption).

The runtime does the work (`decode(..., prefix=...)`, `DecodeResult.beam_tree`, `app/beam_tree.py`);
this file holds the widgets. A forced prefix lives in `keys.PREFIX` as token ids ("35,36,2"), which is
also its form in the URL (`prefix=35,36,2`), so a shared link opens the same what-if.
"""

from __future__ import annotations

from typing import Any

import streamlit as st
from captioner.app.beam_tree import beam_tree_figure
from captioner.app.ui import keys
from captioner.app.ui.decode import configs_key
from captioner.config import DecodingConfig
from captioner.decoding import Caption, DecodeResult, PrefixError, caption_image
from captioner.decoding.prefix import prefix_ids
from captioner.errors import unforeseen_line
from captioner.app.views.text import markdown_escape
from captioner.app.views.tokens import tokens_html

MAX_PREFIX_PARAM = 200  # token ids in a link; more than any model here holds


def prefix_from_param(raw: str) -> tuple[list[int] | None, list[str]]:
    """Token ids from a URL's `prefix=35,36,2`, or None and a note when it is not such a list."""
    parts = [p.strip() for p in raw.split(",")][: MAX_PREFIX_PARAM + 1]
    if not raw.strip() or len(parts) > MAX_PREFIX_PARAM or not all(p.isdigit() and len(p) <= 9 for p in parts):
        return None, [f"prefix={raw[:30]!r} is not a list of token ids: ignored."]
    return [int(p) for p in parts], []


def prefix_to_param(ids: list[int]) -> str:
    return ",".join(str(i) for i in ids)


def _decode_with_prefix(lm: Any, picked: Any, config: DecodingConfig, ids: list[int]) -> DecodeResult:
    """The caption continued from `ids`, kept per session (the same question is not decoded twice)."""
    store = st.session_state.setdefault(keys.FORCED_RESULT, {})
    key = f"{lm.key}|{picked.digest}|{configs_key([config])}|{prefix_to_param(ids)}"
    if key not in store:
        with st.spinner("Continuing the caption…"), lm.lock:
            store.clear()  # one what-if at a time: the last one asked
            store[key] = caption_image(lm.model, picked.image, [config], prefix=ids)[0]
    return store[key]


def _set_prefix(ids: list[int]) -> None:
    st.session_state[keys.PREFIX] = prefix_to_param(ids)


def _on_force(caption: Caption, model: Any) -> None:
    """The button: the caption up to the chosen step, then the chosen alternative or the typed words."""
    step = st.session_state.get(keys.FORCE_STEP, 0)
    typed = str(st.session_state.get(keys.FORCE_TEXT, "")).strip()
    st.session_state.pop(keys.FORCE_ERROR, None)
    if typed:
        try:
            ids = prefix_ids(model, typed)
        except PrefixError as e:
            st.session_state[keys.FORCE_ERROR] = str(e)
            return
    else:
        ids = [st.session_state.get(keys.FORCE_ALT, caption.token_ids[step])]
    _set_prefix(caption.token_ids[:step] + ids)


def _force_pickers(caption: Caption, model: Any) -> None:
    """The step, the alternative to say instead or the words to type, and the buttons."""
    tokens = caption.tokens
    if st.session_state.get(keys.FORCE_STEP, 0) >= len(tokens):
        st.session_state[keys.FORCE_STEP] = 0
    left, middle, right = st.columns([1, 1, 1])
    step = left.selectbox(
        "At step",
        list(range(len(tokens))),
        key=keys.FORCE_STEP,
        format_func=lambda t: f"{t + 1}: {tokens[t].strip() or tokens[t]!r}",
    )
    alternatives = [a for a in caption.alternatives[step] if a.id != caption.token_ids[step]]
    if alternatives:
        ids = [a.id for a in alternatives]
        if st.session_state.get(keys.FORCE_ALT) not in ids:
            st.session_state[keys.FORCE_ALT] = ids[0]
        texts = {a.id: f"{a.token.strip() or a.token!r} ({a.prob:.2f})" for a in alternatives}
        middle.selectbox("Say instead", ids, key=keys.FORCE_ALT, format_func=texts.get)
    right.text_input("Or type words", key=keys.FORCE_TEXT, max_chars=200, placeholder="e.g. big red")
    buttons = st.container(horizontal=True)
    buttons.button(
        "Continue from here", key=keys.FORCE_BUTTON, on_click=_on_force, args=(caption, model), icon=":material/call_split:"
    )
    buttons.button("Clear", key=keys.FORCE_CLEAR, on_click=lambda: st.session_state.pop(keys.PREFIX, None))


def _both_captions(caption: Caption, new: Caption, forced_text: str) -> None:
    original, forced = st.columns(2)
    with original:
        st.markdown("**Original**")
        st.markdown(tokens_html(caption, end_token=True), unsafe_allow_html=True)
        st.caption(f"log-prob {caption.logprob:.2f} · confidence {caption.confidence:.2f}")
    with forced:
        st.markdown(f"**Forced: “{markdown_escape(forced_text)}”**")
        st.markdown(tokens_html(new, end_token=True), unsafe_allow_html=True)
        st.caption(
            f"log-prob {new.logprob:.2f} · confidence {new.confidence:.2f} · the first {sum(new.forced)} tokens were forced"
        )


def force_a_word(lm: Any, picked: Any, config: DecodingConfig, caption: Caption) -> None:
    """Pick an alternative at a step (or type words), continue decoding from there, show both captions."""
    st.subheader("Force a word")
    st.caption(
        "What if the model had said something else at one step? The caption up to that step is kept, "
        "your word is forced, and decoding goes on with the same settings."
    )
    if not caption.tokens:
        st.info("The caption has no tokens to change.")
        return
    _force_pickers(caption, lm.model)
    if keys.FORCE_ERROR in st.session_state:
        st.error(st.session_state[keys.FORCE_ERROR])
    raw = st.session_state.get(keys.PREFIX)
    if not raw:
        return
    ids, notes = prefix_from_param(raw)
    if ids is None:
        st.warning(notes[0])
        return
    try:
        new = _decode_with_prefix(lm, picked, config, ids).best
    except PrefixError as e:
        st.error(f"The forced words cannot be used: {e}")
        return
    except Exception as e:  # the rest of the page stays usable; Clear takes the forced words away
        st.error(f"Decoding with the forced words failed: {markdown_escape(unforeseen_line(e))}")
        return
    _both_captions(caption, new, lm.model.decode_text(ids))


def beam_tree_section(result: DecodeResult) -> None:
    """The beam tree of a beam search, in an expander (nothing for other strategies)."""
    tree = result.beam_tree
    if tree is None:
        return
    with st.expander("The beam tree: what beam search kept and what it threw away"):
        st.caption(
            "Every candidate beam search scored, one column per step, best at the top. The returned beams are "
            "red (stars: where they ended); grey ones were pruned. Hover for the score before and after the "
            f"length penalty ({tree.length_penalty:g})."
        )
        show_pruned = st.toggle("Show pruned candidates", value=True, key=keys.TREE_PRUNED)
        st.plotly_chart(beam_tree_figure(tree, show_pruned=show_pruned), key=keys.TREE_CHART)
