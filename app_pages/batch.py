"""Batch: caption many images (files or a zip) with the Caption page's settings, and score them against references."""

import streamlit as st

from captioner.app import notes
from captioner.app.ui import batch, controls, frame, image, keys
from captioner.batch.rows import score_rows
from captioner.app.views.batch import batch_columns_shown, batch_display, batch_table, row_seconds
from captioner.app.views.tables import csv_bytes
from captioner.app.views.text import config_label, markdown_escape, shorten
from captioner.batch.references_text import attach_references, parse_references

st.title("Batch captioning")
frame.how_to_read(keys.BATCH)
with frame.page_guard("captioning the batch"):
    lm = frame.require_model()
    files = batch.batch_uploader()
    use_examples = st.checkbox("Add the example images (with their reference captions)", key=keys.BATCH_EXAMPLES)
    refs_text = st.text_area(
        "Reference captions (optional): one line per image",
        key=keys.BATCH_REFERENCES,
        placeholder="cat.jpg: a cat on a sofa | a grey cat lying on a couch",
    )
    config = controls.caption_config(lm.model).with_(output_attentions=False, num_alternatives=1)
    st.caption(
        f"Decoding with the Caption page's settings: {markdown_escape(config_label(config))}, "
        f"up to {notes.plural(config.max_new_tokens, 'token')}. Your files and results stay here while you "
        "visit another page."
    )
    st.page_link(keys.CAPTION_PAGE_FILE, label="Change them on the Caption page", icon=":material/tune:")

    examples = image.gallery() if use_examples else []
    items, problems = batch.batch_inputs(files, examples)
    rows = batch.batch_rows(lm, items, config)
    todo = sum(row is None for row in rows)
    done = [row for row in rows if row is not None]
    captioned = [row for row in done if row.ok]
    failed = len(done) - len(captioned) + len(problems)
    if todo == len(items):
        label = f"Caption {notes.plural(todo, 'image')}" if items else "Caption the images"
    elif todo:
        label = f"Caption the other {notes.plural(todo, 'image')}"
    else:
        label = f"{notes.plural(len(captioned), 'image')} captioned" + (f", {failed} failed" if failed else "")
    if st.button(label, type="primary", disabled=not todo, key=keys.BATCH_RUN):
        batch.run_batch(lm, items, config)
        st.rerun()  # draw the page again with every row
    if todo and done:
        st.info(
            f"{len(captioned)} of {len(items)} images are captioned with these settings (stopped or changed); "
            f"press the button to caption the other {todo}."
        )
    if not done and not problems:
        st.stop()

    typed = parse_references(refs_text or "")
    shown, unmatched = attach_references(
        done + problems, typed, {ex.name: ex.references for ex in examples}, batch_names=[item.name for item in items]
    )
    if typed.problems or unmatched:
        st.warning("  \n".join(markdown_escape(line) for line in typed.problems + unmatched))
    bad = [row for row in shown if not row.ok]
    if bad:
        st.warning(
            f"{len(bad)} of {len(shown)} files got no caption:  \n"
            + "  \n".join(f"**{markdown_escape(shorten(row.path, 80))}**: {markdown_escape(str(row.error))}" for row in bad)
        )
    if not captioned:
        st.stop()
    shown, scores = score_rows(shown)
    if scores:
        c1, c2, c3 = st.columns(3)
        c1.metric("BLEU-4", f"{scores.bleu4:.3f}")
        c2.metric("CIDEr-D", f"{scores.cider_d:.3f}")
        c3.metric("Images with references", scores.images)
    changed = notes.changed_settings(config, controls.default_config(lm.model))
    table = batch_table(shown, batch.batch_unsure(lm, items, config), changed)
    seconds = sum(row_seconds(row) or 0.0 for row in shown if row.ok)
    st.caption(
        f"{notes.plural(len(captioned), 'image')} captioned in {seconds:.2f} s of model time"
        + (f" ({failed} failed)" if failed else "")
        + "; the CSV also has each one's time and log-probability."
    )
    st.dataframe(
        batch_display(table),
        hide_index=True,
        row_height=72,
        height="content",
        column_order=batch_columns_shown(table),
        column_config={
            "thumbnail": st.column_config.ImageColumn("image", width=72),
            "file": st.column_config.TextColumn(width=140),
            "caption": st.column_config.TextColumn(width=250),
            "references": st.column_config.TextColumn(width=250),
            "matches a reference": st.column_config.CheckboxColumn("exact", width=50),
        },
    )
    frame.download("Download results (CSV)", csv_bytes(table), "captions.csv")
