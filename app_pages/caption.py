"""Caption: one caption, every token coloured by how sure the model was, with all decoding settings."""

import json

import streamlit as st

from captioner.app import notes
from captioner.app.ui import controls, decode, frame, keys, question
from captioner.app.views.colours import token_legend_html
from captioner.app.views.help_text import BUILTIN_NOTE
from captioner.app.views.images import display_image
from captioner.app.views.records import caption_record
from captioner.app.views.text import markdown_escape, milliseconds
from captioner.app.views.tokens import tokens_html

st.title("Caption")
frame.how_to_read(keys.CAPTION)
with frame.page_guard("captioning the image"):
    lm, picked = frame.require_model_and_image()
    # The image and its caption first: on a phone the columns stack, and the controls come after them.
    output, settings_panel = st.columns([2, 1], gap="large")
    with settings_panel:
        st.subheader("Decoding")
        controls.decoding_controls(lm.model)
    config = controls.caption_config(lm.model).with_(output_attentions=False)
    decoded = decode.decode_with_reference(lm, picked, config)
    result = decoded.only()
    caption = result.best
    with output:
        if lm.is_builtin:
            st.info(BUILTIN_NOTE, icon=":material/category:")
        st.image(display_image(picked.preview, 384), caption=markdown_escape(picked.name))
        st.subheader(markdown_escape(caption.text) or "(empty caption)")
        for note in notes.caption_notes(
            caption, result.config, decoded.reference, controls.default_config(lm.model), lm.token_limit
        ):
            st.warning(note)
        st.markdown(tokens_html(caption, end_token=True), unsafe_allow_html=True)
        st.markdown(token_legend_html(), unsafe_allow_html=True)
        t = result.timings
        with st.container(horizontal=True, gap="medium", key="caption-figures"):
            encode = milliseconds(t.get("preprocess", 0) + t.get("encode", 0))
            if decoded.encoded_now:
                st.metric("Encode", encode, width="content")
            else:
                st.metric(
                    "Encode",
                    "cached",
                    width="content",
                    help=f"This image was encoded before (it took {encode}); only decoding ran now.",
                )
            st.metric("Decode", milliseconds(t.get("decode", 0)), width="content")
            st.metric(
                "Confidence",
                f"{caption.confidence:.2f}",
                width="content",
                help="Geometric mean of the tokens' probabilities: 1 = certain of every token.",
            )
            st.metric("Log-prob", f"{caption.logprob:.2f}", width="content")
            st.metric("Tokens", len(caption.tokens), width="content")
        question.beam_tree_section(result)
        if decoded.shown_before:
            st.caption(
                ":material/history: Shown from the cache: these settings were decoded before, and the times are from that run."
            )
        record = json.dumps(caption_record(result, lm.model.info, picked.name), indent=2)
        frame.download("Download JSON", record, "caption.json")
        with st.expander("Result as JSON (copy button at the top right)"):
            st.code(record, language="json")
        decoded.mark_shown()
