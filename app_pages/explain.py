"""Explain: per-step probabilities and entropy, the alternatives at each step, and where each word looked."""

import streamlit as st

from captioner.app import notes
from captioner.app.ui import controls, decode, explain, explain_methods, frame, hide_view, keys, question
from captioner.app.views.colours import heat_legend_html
from captioner.app.views.explain import attention_figure, overlay, word_maps
from captioner.app.views.heatmap_grid import HeatmapGrid, heatmap_figure, heatmap_file_name
from captioner.app.views.images import display_image, model_input, png_bytes
from captioner.app.views.text import config_label, head_text, layer_text, markdown_escape
from captioner.app.views.tokens import alternatives_table, step_figure, tokens_html

st.title("Explain a caption")
frame.how_to_read(keys.EXPLAIN)
with frame.page_guard("explaining the caption"):
    lm, picked = frame.require_model_and_image()
    config = controls.caption_config(lm.model).with_(output_attentions=True, num_alternatives=5)
    decoded = decode.decode_with_reference(lm, picked, config)
    result = decoded.only()
    caption = result.best
    for note in notes.caption_notes(caption, result.config, decoded.reference, controls.default_config(lm.model), lm.token_limit):
        st.warning(note)
    st.markdown(tokens_html(caption, end_token=True), unsafe_allow_html=True)
    st.caption(f"Decoded with the Caption page's settings ({config_label(config)}, up to {config.max_new_tokens} tokens).")
    st.page_link(keys.CAPTION_PAGE_FILE, label="Change them on the Caption page", icon=":material/tune:")

    st.subheader("Each step")
    st.plotly_chart(step_figure(caption))
    with st.expander("Top-5 alternatives at every step", expanded=True):
        st.dataframe(alternatives_table(caption), hide_index=True)
    question.force_a_word(lm, picked, config, caption)

    st.subheader("Where each word looked")
    method = explain_methods.method_picker()
    if method == "attention" and caption.attentions is None:
        st.info("This model does not report cross-attention, so there are no raw-attention heatmaps: pick another method.")
        st.stop()
    layer, head, opacity = explain.attention_controls(lm.model, attention=method == "attention")
    explained = None if method == "attention" else explain_methods.explanation(lm, picked, caption, method)
    maps = word_maps(caption, layer, head) if explained is None else explain_methods.explanation_maps(explained)
    if not maps:
        st.info("The caption has no words to show.")
        st.stop()
    explain_methods.unsupported_flag(method, explained)
    st.markdown(heat_legend_html(explain_methods.scale_word(method)), unsafe_allow_html=True)
    # One wrapping row, so the maps stay in caption order at every width (columns stack column by column).
    with st.container(key="heatmap-grid", horizontal=True, gap="small"):
        for word, amap in maps:
            st.image(overlay(picked.preview, amap, 192, opacity), caption=markdown_escape(word), width=150)

    chosen = explain.word_picker([word for word, _ in maps])
    word, amap = maps[chosen]
    original, attention = st.columns([2, 3], vertical_alignment="center")
    seen = model_input(picked.image, lm.model.image_size)
    original.image(
        display_image(seen, 448),
        caption=f"{markdown_escape(picked.name)}: what the model saw, resized to {seen.width}×{seen.height}",
    )
    how = f"{layer_text(layer)} · {head_text(head)}" if explained is None else explain_methods.METHOD_LABELS[method]
    attention.plotly_chart(
        attention_figure(picked.preview, amap, opacity, f"“{word}” · {how}", what=explain_methods.scale_word(method))
    )
    grid = HeatmapGrid(picked.preview, maps, caption.text, layer, head, opacity, method=method)
    exports = st.container(horizontal=True)
    with exports:
        frame.download(
            "Download the heatmap figure (PNG)", png_bytes(heatmap_figure(grid)), heatmap_file_name(layer, head, method)
        )
        record = explain_methods.attention_record(caption, maps, layer, head) if explained is None else explained.to_dict()
        explain_methods.json_download(record, method)

    hide_view.hide_a_region(lm, picked, config)
