"""The Batch page's work: its uploads (kept while the user visits another page), the items to caption,
and the run itself, a chunk at a time with the batch command's own functions (`captioner.batch`).

A finished row is kept under the batch command's own key for "captioned with these settings":
`BatchRun.run_key` (the model's content and the settings) and `done_key` (the item's name and bytes),
so a stopped batch keeps what it did and the next run captions only the rest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import replace

import streamlit as st

from captioner.app import notes
from captioner.app.gallery import Example
from captioner.app.ui import keys
from captioner.app.ui.decode import caption_settings, reference_config
from captioner.app.ui.image import IMAGE_TYPES
from captioner.app.ui.model import LoadedModel
from captioner.batch.items import BatchItem, expand_uploads
from captioner.batch.rows import DEFAULT_BATCH_SIZE, BatchRun, CaptionRow, caption_items, chunks, done_key
from captioner.config import DecodingConfig
from captioner.app.views.text import markdown_escape, shorten

BATCH_THUMBNAIL_SIDE = 96


def batch_inputs(files: Sequence[tuple[str, bytes]], examples: Sequence[Example]) -> tuple[list[BatchItem], list[CaptionRow]]:
    """The uploaded files, (name, bytes) with zip archives opened, and the chosen examples: items to caption,
    and error rows for what cannot be used (the batch command's own reading of uploads, `captioner.batch.items`)."""
    uploads = list(files) + [(ex.name, ex.data) for ex in examples]
    items = expand_uploads(uploads)
    problems = [CaptionRow(item.name, status="error", error=item.problem) for item in items if item.problem]
    return [item for item in items if not item.problem], problems


def row_keys(lm: LoadedModel, config: DecodingConfig, items: Sequence[BatchItem]) -> list[str]:
    """Each item's key for "captioned with these settings": the batch command's run key and the item's identity."""
    run_key = BatchRun.of(lm.model, config).run_key
    return [f"{run_key}|{done_key(item.name, hashlib.sha256(item.data or b'').hexdigest()).hex()}" for item in items]


def batch_rows(lm: LoadedModel, items: Sequence[BatchItem], config: DecodingConfig) -> list[CaptionRow | None]:
    """Per item, its row if it has been captioned with these settings (None if not yet)."""
    done = st.session_state.get(keys.BATCH_DONE, {})
    return [done.get(key) for key in row_keys(lm, config, items)]


def batch_unsure(lm: LoadedModel, items: Sequence[BatchItem], config: DecodingConfig) -> set[str]:
    """The items whose caption is unsure because of the settings (the model's own decoding of them is not)."""
    unsure = st.session_state.get(keys.BATCH_UNSURE, set())
    return {item.name for item, key in zip(items, row_keys(lm, config, items)) if key in unsure}


def _kept_files_line(kept: list[tuple[str, bytes]]) -> None:
    names = ", ".join(markdown_escape(shorten(name, 40)) for name, _ in kept[:5])
    more = f" and {len(kept) - 5} more" if len(kept) > 5 else ""
    left, right = st.columns([4, 1], vertical_alignment="center")
    left.caption(f":material/inventory_2: Kept from your last visit: {notes.plural(len(kept), 'file')} ({names}{more}).")
    right.button("Let them go", key=keys.BATCH_FORGET, on_click=st.session_state.pop, args=(keys.BATCH_KEPT, None))


def batch_uploader() -> list[tuple[str, bytes]]:
    """The Batch page's uploader, and the files uploaded on earlier visits: Streamlit empties an uploader
    when its page is left, so what it held is kept here (with a button to let it go) and nothing is lost."""
    if keys.BATCH_FILES not in st.session_state and st.session_state.get(keys.BATCH_UPLOADS):  # back from another page
        kept = st.session_state.setdefault(keys.BATCH_KEPT, [])
        kept += [f for f in st.session_state.pop(keys.BATCH_UPLOADS) if f not in kept]
    files = st.file_uploader(
        "Images or zip archives", type=IMAGE_TYPES + ["zip"], accept_multiple_files=True, key=keys.BATCH_FILES
    )
    st.session_state[keys.BATCH_UPLOADS] = [(f.name, f.getvalue()) for f in files or []]
    kept = st.session_state.get(keys.BATCH_KEPT, [])
    if kept:
        _kept_files_line(kept)
    return kept + st.session_state.get(keys.BATCH_UPLOADS, [])


def _caption_chunk(
    lm: LoadedModel, chunk: list[tuple[str, BatchItem]], config: DecodingConfig, unsure: set[str]
) -> list[CaptionRow]:
    """One chunk's rows; where the settings are not the model's own, the out-of-world flag comes from the
    model's own decoding of the image (the flag judges the image), and the rows it differs on are `unsure`."""
    items = [item for _, item in chunk]
    rows = caption_items(lm.model, items, config, model_lock=lm.lock, thumbnail_side=BATCH_THUMBNAIL_SIDE)
    reference = reference_config(lm.model)
    if caption_settings(reference) == caption_settings(config.with_(num_return_sequences=1)):
        return rows
    own = caption_items(lm.model, items, reference, model_lock=lm.lock)
    for (key, _), row, mine in zip(chunk, own, rows):
        if row.ok and mine.ok and mine.out_of_world and not row.out_of_world:
            unsure.add(key)
    return [replace(mine, out_of_world=row.out_of_world) if row.ok and mine.ok else mine for row, mine in zip(own, rows)]


def run_batch(lm: LoadedModel, items: Sequence[BatchItem], config: DecodingConfig) -> None:
    """Caption the items that have no row yet, a chunk at a time, with a progress bar and a Stop button.

    Each chunk's rows are kept as they come, so a stopped (or interrupted) batch keeps what it did.
    Stop works as any click does during a run: Streamlit ends the run at its next update of the page,
    here the progress bar after each chunk.
    """
    done = st.session_state.setdefault(keys.BATCH_DONE, {})
    unsure = st.session_state.setdefault(keys.BATCH_UNSURE, set())
    by_key = dict(zip(row_keys(lm, config, items), items))
    for stale in [k for k in done if k not in by_key]:  # keep only the current batch's rows
        del done[stale]
        unsure.discard(stale)
    todo = [(k, item) for k, item in by_key.items() if k not in done]
    bar = st.progress(0.0, text=f"Captioning {notes.plural(len(todo), 'image')}…")
    stop = st.empty()
    stop.button("Stop", key=keys.BATCH_STOP, icon=":material/stop_circle:")
    finished = 0
    for chunk in chunks(todo, DEFAULT_BATCH_SIZE):
        for (key, _), row in zip(chunk, _caption_chunk(lm, chunk, config, unsure)):
            done[key] = row
        finished += len(chunk)
        name = markdown_escape(shorten(chunk[-1][1].name, 60))  # a file name is not Markdown
        bar.progress(finished / len(todo), text=f"{finished}/{len(todo)} · {name}")
    bar.empty()
    stop.empty()
