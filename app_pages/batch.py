"""Batch: caption many images (files or a zip) and score them against reference captions."""

import dataclasses

import streamlit as st

from captioner.app import state, views

st.title("Batch captioning")
with state.page_guard("captioning the batch"):
    lm = state.current_model()
    if lm is None:
        st.error(st.session_state.get("model_error", "No model is loaded."))
        st.stop()
    files = st.file_uploader("Images or zip archives", type=state.IMAGE_TYPES + ["zip"],
                             accept_multiple_files=True, key="batch.files")
    use_examples = st.checkbox("Add the example images (with their reference captions)", key="batch.opt.examples")
    refs_text = st.text_area("Reference captions (optional): one line per image", key="batch.opt.refs",
                             placeholder="cat.jpg: a cat on a sofa | a grey cat lying on a couch")
    strategy = st.radio("Decoding", ["greedy", "beam"], key="batch.opt.strategy", horizontal=True)

    uploads = [(f.name, f.getvalue()) for f in files or []]
    examples = state.gallery() if use_examples else []
    uploads += [(ex.name, ex.data) for ex in examples]
    if st.button("Caption the images", type="primary", disabled=not uploads, key="batch.run"):
        items, problems = state.expand_uploads(uploads)
        bar = st.progress(0.0, text="Starting…")
        on_progress = lambda i, name: bar.progress(i / max(len(items), 1), text=f"{i}/{len(items)} {name}")
        config = lm.model.default_decoding.with_(strategy=strategy)
        st.session_state["batch.rows"] = state.caption_batch(lm, items, config, on_progress) + problems
        bar.empty()

    rows = st.session_state.get("batch.rows")
    if rows:
        refs = {ex.name: list(ex.references) for ex in examples if ex.references}
        try:
            refs.update(views.parse_references(refs_text or ""))
        except ValueError as e:
            st.error(str(e))
        rows = [dataclasses.replace(r, references=tuple(views.references_for(r.name, refs))) for r in rows]
        bad = [r for r in rows if r.problem]
        if bad:
            st.warning(f"{len(bad)} of {len(rows)} files got no caption:  \n"
                       + "  \n".join(f"**{views.markdown_escape(r.name)}**: {r.problem}" for r in bad))
        scores = views.batch_metrics(rows)
        if scores:
            c1, c2, c3 = st.columns(3)
            c1.metric("BLEU-4", f"{scores['BLEU-4']:.3f}")
            c2.metric("CIDEr-D", f"{scores['CIDEr-D']:.3f}")
            c3.metric("Images with references", scores["images"])
        table = views.batch_table(rows)
        st.dataframe(table, hide_index=True, row_height=72,
                     column_config={"thumbnail": st.column_config.ImageColumn("image", width="small")})
        st.download_button("Download results (CSV)", views.csv_bytes(table), file_name="captions.csv",
                           mime="text/csv", on_click="ignore", icon=":material/download:")
