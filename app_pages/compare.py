"""Compare: greedy, beam search, top-k and top-p sampling (and your own settings) on the same image."""

import json

import streamlit as st
from captioner.app.ui import compare, decode, frame, keys
from captioner.app.views.compare import (
    beams_table,
    compare_note,
    comparison_table,
    every_caption_table,
    samples_table,
    with_units,
)
from captioner.app.views.records import comparison_record
from captioner.app.views.tables import csv_bytes, readable
from captioner.app.views.text import markdown_escape
from captioner.app.views.tokens import token_prob_figure

st.title("Compare decoding strategies")
frame.how_to_read(keys.COMPARE)
with frame.page_guard("comparing decoding strategies"):
    lm, picked = frame.require_model_and_image()
    values = compare.compare_controls(lm.model)
    compare.add_configuration_panel(lm.model)
    configs = compare.compare_configs(lm.model, values)
    decoded = decode.decode_configs(lm, picked, configs)
    for failed in decoded.failures:
        st.error(markdown_escape(failed.error))
    results = decoded.results
    if not results:
        st.stop()

    st.subheader("Side by side")
    seconds = max(r.timings.get("decode", 0.0) for r in results)
    together = f"were decoded together in one batched call of {seconds:.2f} s" if len(results) > 1 else "was decoded"
    st.caption(
        f"{len(results)} configurations {together}."
        + (" Shown from the cache: the time is from when they were computed." if decoded.shown_before else "")
    )
    st.table(readable(with_units(comparison_table(results))), border="horizontal")
    st.caption(compare_note(configs[0].length_penalty))
    left, right, _ = st.columns([1, 1, 2])
    frame.download("Every caption (CSV)", csv_bytes(every_caption_table(results)), "comparison.csv", where=left)
    record = json.dumps(comparison_record(results, lm.model.info, picked.name), indent=2)
    frame.download("Everything (JSON)", record, "comparison.json", where=right)

    st.subheader("Token probabilities")
    st.plotly_chart(token_prob_figure(compare.chart_picker(results)))
    st.subheader("Samples")
    st.table(readable(with_units(samples_table(results))), border="horizontal")
    st.subheader("All beams")
    st.table(readable(with_units(beams_table(results))), border="horizontal")
    decoded.mark_shown()
