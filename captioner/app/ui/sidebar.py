"""The sidebar every page shares: the page links (each carrying its page's URL), the model picker with
what is loaded, and the image input (examples as a thumbnail grid, an upload or a camera photo)."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from typing import Any

import streamlit as st
from PIL import Image
from captioner.app.ui import keys
from captioner.app.ui.frame import page_guard
from captioner.app.ui.image import CAMERA, EXAMPLE, IMAGE_TYPES, UPLOAD, gallery, input_key, on_file, picked_image
from captioner.app.ui.image import select_example, selected_image
from captioner.app.ui.model import HUB_KIND, MODEL_KINDS, PATH_KIND, LoadedModel, current_model, format_count, kind_of
from captioner.app.ui.model import model_notes, on_load_model
from captioner.app.ui.url import apply_url_settings, restore_from_url, url_params
from captioner.images import SUPPORTED_FORMATS_TEXT
from captioner.loading import DEFAULT_HUB_MODEL
from captioner.app.views.help_text import BUILTIN_SHORT
from captioner.app.views.images import png_bytes
from captioner.app.views.text import markdown_escape, shorten


def _model_picker() -> None:
    """The kind of model, its hub id or path, and the Load button; the last load's error and the cache's notes."""
    sb = st.sidebar
    st.session_state.setdefault(keys.MODEL_HUB, DEFAULT_HUB_MODEL)
    st.session_state.setdefault(keys.MODEL_KIND, kind_of(st.session_state[keys.MODEL_SPEC]))
    kind = sb.radio("Model", MODEL_KINDS, key=keys.MODEL_KIND, horizontal=True, label_visibility="collapsed")
    if kind == HUB_KIND:
        sb.text_input("Hub id", key=keys.MODEL_HUB)
    elif kind == PATH_KIND:
        sb.text_input("Path to a captioner.pt or a model folder", key=keys.MODEL_PATH)
    sb.button("Load model", key=keys.MODEL_LOAD, width="stretch", on_click=on_load_model)
    if st.session_state.get(keys.MODEL_ERROR):
        sb.error(markdown_escape(st.session_state[keys.MODEL_ERROR]))
    for note in model_notes():
        sb.info(markdown_escape(note), icon=":material/memory:")


def model_sidebar() -> LoadedModel | None:
    """Model picker and what is loaded; returns the model in use."""
    sb = st.sidebar
    sb.subheader("Model")
    with sb:
        lm = current_model()
    _model_picker()
    if lm is None:
        return None
    info = lm.model.info
    if lm.fell_back:
        sb.warning(f"Using the built-in model: {markdown_escape(info.reason)}.")
    lines = [
        f"In use: **{markdown_escape(info.name)}** · {markdown_escape(info.family)}",
        f"{format_count(info.num_parameters)} parameters · {info.dtype}",
        f"from {markdown_escape(shorten(info.source, 80))}",
    ]
    if info.reason and not lm.fell_back:
        lines.append(f"Why this model: {markdown_escape(info.reason)}")
    sb.caption("  \n".join(lines))
    if lm.is_builtin:
        sb.caption(BUILTIN_SHORT)
    return lm


@st.cache_data(show_spinner=False)
def _gallery_css() -> str:
    """Each example's thumbnail as the background of its button; the chosen one (primary) outlined."""
    rules = [
        '[class*="st-key-gallery-"] button {aspect-ratio: 1 / 1; height: auto; min-height: 0; padding: 0;'
        " background-size: cover; background-position: center; image-rendering: pixelated; color: transparent;}",
        '[class*="st-key-gallery-"] button p {color: transparent;}',
        '[class*="st-key-gallery-"] button[data-testid="stBaseButton-primary"]'
        " {outline: 3px solid #3563c9; outline-offset: 2px;}",
    ]
    for i, ex in enumerate(gallery()):
        thumb = Image.open(io.BytesIO(ex.data)).convert("RGB")
        thumb.thumbnail((96, 96))
        data = base64.b64encode(png_bytes(thumb)).decode()
        rules.append(f".st-key-gallery-{i} button {{background-image: url(data:image/png;base64,{data});}}")
    return "<style>" + "\n".join(rules) + "</style>"


def _gallery_grid() -> None:
    """The examples as clickable thumbnails; the one in use is outlined."""
    sb = st.sidebar
    picked = picked_image()
    chosen = picked.name if picked is not None and picked.source == EXAMPLE else None
    sb.html(_gallery_css())
    columns = sb.columns(4, gap="small")
    for i, ex in enumerate(gallery()):
        columns[i % 4].button(
            f"Example {i + 1}",
            key=keys.GALLERY_BUTTON.format(i),
            on_click=select_example,
            args=(ex.name,),
            type="primary" if ex.name == chosen else "secondary",
            help=ex.name,
            width="stretch",
        )


def image_sidebar() -> None:
    """Image input shared by the single-image pages: examples, upload or camera."""
    sb = st.sidebar
    sb.subheader("Image")
    source = sb.radio(
        "Image from", ("Examples", "Upload", "Camera"), key=keys.IMAGE_SOURCE, horizontal=True, label_visibility="collapsed"
    )
    selected_image()
    if source == "Examples":
        _gallery_grid()
    elif source == "Upload":
        sb.file_uploader(
            "Upload an image",
            type=IMAGE_TYPES,
            key=input_key(UPLOAD),
            on_change=on_file,
            args=(UPLOAD,),
            help=f"{SUPPORTED_FORMATS_TEXT}, up to 25 MB",
        )
    else:
        sb.camera_input("Take a photo", key=input_key(CAMERA), on_change=on_file, args=(CAMERA,))
    if st.session_state.get(keys.IMAGE_ERROR):
        sb.error(markdown_escape(st.session_state[keys.IMAGE_ERROR]))
    picked = selected_image()
    if picked is not None:
        w, h = picked.image.size
        sb.image(picked.preview, caption=f"{markdown_escape(picked.name)} · {w}×{h}", width="stretch")


def page_links(pages: Sequence[Any], lm: LoadedModel | None) -> None:
    """The app's navigation: a link per page, carrying what that page's URL holds."""
    for p in pages:
        st.page_link(p, label=p.title, icon=p.icon, width="stretch", query_params=url_params(p.title, lm))
    st.divider()


def sidebar(page: Any, pages: Sequence[Any]) -> LoadedModel | None:
    """The sidebar every page shares: page links, the model, and the image (not on the Batch page,
    which takes its own files). A link's settings are applied once the model is known. Returns the model."""
    lm = None
    nav = st.sidebar.container(key="page-links")
    with page_guard("setting up the sidebar"):
        restore_from_url(page.title)
        lm = model_sidebar()
        if lm is not None:
            apply_url_settings(lm)
        if page.title in keys.PAGES_WITH_AN_IMAGE:
            image_sidebar()
    with nav:
        page_links(pages, lm)
    return lm
