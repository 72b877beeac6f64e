"""Caption: one caption, every token coloured by how sure the model was, with all decoding settings."""

import json

import streamlit as st

from captioner.app import state, views

st.title("Caption")
with state.page_guard("captioning the image"):
    lm, picked = state.require_model_and_image()
    controls, output = st.columns([1, 2], gap="large")
    with controls:
        st.subheader("Decoding")
        config = state.decoding_controls(lm.model)
    result = state.decode_image(lm, picked, [config.with_(output_attentions=False)])[0]
    caption = result.best
    with output:
        st.image(views.display_image(picked.preview, 384), caption=picked.name)
        st.subheader(caption.text or "(empty caption)")
        st.markdown(views.tokens_html(caption, end_token=True), unsafe_allow_html=True)
        st.caption("Each token's background shows its probability: red unlikely, green certain. Hover for the value.")
        t = result.timings
        cols = st.columns(4)
        cols[0].metric("Encode", f"{(t.get('preprocess', 0) + t.get('encode', 0)) * 1000:.0f} ms")
        cols[1].metric("Decode", f"{t.get('decode', 0) * 1000:.0f} ms")
        cols[2].metric("Log-prob", f"{caption.logprob:.2f}")
        cols[3].metric("Tokens", len(caption.tokens))
        record = json.dumps(views.caption_record(result, lm.model.info, picked.name), indent=2)
        st.download_button("Download JSON", record, file_name="caption.json", mime="application/json",
                           on_click="ignore", icon=":material/download:")
        with st.expander("Result as JSON (copy button at the top right)"):
            st.code(record, language="json")
