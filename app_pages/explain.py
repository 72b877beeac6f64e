"""Explain: per-step probabilities and entropy, the alternatives at each step, and where each word looked."""

import streamlit as st

from captioner.app import state, views

st.title("Explain a caption")
with state.page_guard("explaining the caption"):
    lm, picked = state.require_model_and_image()
    model = lm.model
    config = state.config_from_state(model).with_(output_attentions=True, num_alternatives=5)
    caption = state.decode_image(lm, picked, [config])[0].best
    st.markdown(views.tokens_html(caption, end_token=True), unsafe_allow_html=True)
    st.caption(f"Decoded with the Caption page's settings ({views.config_label(config)}, "
               f"up to {config.max_new_tokens} tokens). Change them there.")

    st.subheader("Each step")
    st.plotly_chart(views.step_figure(caption))
    with st.expander("Top-5 alternatives at every step", expanded=True):
        st.dataframe(views.alternatives_table(caption), hide_index=True)

    st.subheader("Where each word looked")
    if caption.attentions is None:
        st.info("This model does not report cross-attention, so there are no heatmaps.")
        st.stop()
    st.session_state.setdefault("xpl.layer", views.LAYER_MEAN)
    st.session_state.setdefault("xpl.head", views.HEAD_MEAN)
    c1, c2 = st.columns(2)
    layer = c1.selectbox("Layer", [views.LAYER_MEAN, *range(model.num_layers)], key="xpl.layer",
                         format_func=lambda v: v if isinstance(v, str) else f"layer {v + 1}")
    head = c2.selectbox("Heads", [views.HEAD_MEAN, views.HEAD_MAX, *range(model.num_heads)], key="xpl.head",
                        format_func=lambda v: v if isinstance(v, str) else f"head {v + 1}")
    maps = views.word_maps(caption, layer, head)
    if not maps:
        st.info("The caption has no words to show.")
        st.stop()
    with st.container(key="heatmap-grid"):
        columns = st.columns(min(6, len(maps)))
        for i, (word, amap) in enumerate(maps):
            columns[i % len(columns)].image(views.overlay(picked.preview, amap, 192), caption=word, width="stretch")

    if st.session_state.get("xpl.word", 0) >= len(maps):
        st.session_state["xpl.word"] = 0
    st.session_state.setdefault("xpl.word", 0)
    chosen = st.radio("Show one word large", range(len(maps)), key="xpl.word", horizontal=True,
                      format_func=lambda i: f"{i + 1}. {maps[i][0]}")
    word, amap = maps[chosen]
    st.image(views.overlay(picked.preview, amap, 512), caption=f"“{word}”")
    figure = views.heatmap_figure(picked.preview, maps, title=caption.text)
    st.download_button("Download the heatmap figure (PNG)", views.png_bytes(figure), file_name="heatmaps.png",
                       mime="image/png", on_click="ignore", icon=":material/download:")
