"""The Explain page's "Hide a region": pick cells of a grid over the image and a fill, and see the new
caption beside the old with the words that changed marked (captioner.explain.hide_regions)."""

from __future__ import annotations

import html
from typing import Any

import streamlit as st
from PIL import Image, ImageDraw
from captioner.app.ui import keys
from captioner.app.ui.decode import configs_key
from captioner.config import DecodingConfig
from captioner.explain import FILLS, HiddenRegions, default_grid, hide_regions
from captioner.explain.masking import cell_box
from captioner.app.views.images import display_image

FILL_LABELS = {"mean": "Mean colour", "blur": "Blur", "noise": "Noise"}
CHANGED_STYLE = "background:#ffd54f;color:#111;border-radius:4px;padding:1px 3px"


def numbered_grid(image: Image.Image, grid: tuple[int, int], cells: set[int], side: int = 384) -> Image.Image:
    """The image with the grid drawn, each cell numbered from 1, and the chosen cells shaded."""
    base = display_image(image, side).convert("RGB")
    shade = Image.new("RGBA", base.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(shade)
    rows, cols = grid
    for r in range(rows):
        for c in range(cols):
            n = r * cols + c
            box = cell_box((r, c), grid, base.size)
            draw.rectangle(box, fill=(20, 20, 20, 150) if n in cells else None, outline=(255, 255, 255, 200))
            draw.text((box[0] + 3, box[1] + 2), str(n + 1), fill=(255, 255, 255, 255), stroke_width=2, stroke_fill=(0, 0, 0, 255))
    return Image.alpha_composite(base.convert("RGBA"), shade).convert("RGB")


def marked_words(words: list[str], changed: list[bool]) -> str:
    """The caption's words as HTML, the changed ones highlighted."""
    return " ".join(
        f'<mark style="{CHANGED_STYLE}">{html.escape(w)}</mark>' if ch else html.escape(w) for w, ch in zip(words, changed)
    )


def cell_picker(grid: tuple[int, int]) -> list[int]:
    """One row of pills per row of the grid (cells numbered from 1, row by row); returns the chosen numbers."""
    rows, cols = grid
    st.markdown(f"Cells to hide ({rows}×{cols} grid, numbered as on the image)")
    chosen: list[int] = []
    for r in range(rows):
        numbers = list(range(r * cols, (r + 1) * cols))
        key = keys.HIDE_ROW.format(r)
        st.session_state[key] = [n for n in st.session_state.get(key) or [] if n in numbers]  # another grid's
        chosen += (
            st.pills(
                f"Row {r + 1}",
                numbers,
                selection_mode="multi",
                key=key,
                label_visibility="collapsed",
                format_func=lambda n: str(n + 1),
            )
            or []
        )
    return chosen


@st.cache_resource(max_entries=8, show_spinner=False)
def _hidden(
    model_key: str,
    digest: str,
    cells: tuple[tuple[int, int], ...],
    fill: str,
    grid: tuple[int, int],
    config_key: str,
    _lm: Any,
    _image: Image.Image,
    _config: DecodingConfig,
) -> HiddenRegions:
    with _lm.lock:
        return hide_regions(_lm.model, _image, cells, fill, _config, grid)


def hide_a_region(lm: Any, picked: Any, config: DecodingConfig) -> HiddenRegions | None:
    """The section: cell and fill pickers, the masked image, both captions. Returns the result (None: no cells)."""
    st.subheader("Hide a region")
    st.caption(
        "Which part of the picture makes it say what it says? Pick cells to blank out and a fill; the image "
        "is captioned again with the same settings."
    )
    grid = default_grid(lm.model)
    st.session_state.setdefault(keys.HIDE_FILL, FILLS[0])
    picture, pickers = st.columns([2, 3])
    with pickers:
        chosen = cell_picker(grid)
        fill = st.radio("Fill", FILLS, key=keys.HIDE_FILL, horizontal=True, format_func=FILL_LABELS.get)
    cells = tuple(sorted((n // grid[1], n % grid[1]) for n in chosen))
    if not cells:
        picture.image(numbered_grid(picked.preview, grid, set()), caption="Pick cells to hide them.")
        return None
    config_key = configs_key([config])
    with st.spinner("Captioning the image with the cells hidden…"):
        hidden = _hidden(lm.key, picked.digest, cells, fill, grid, config_key, lm, picked.image, config)
    picture.image(
        numbered_grid(hidden.image, grid, set()),
        caption=f"{len(cells)} cell{'s' * (len(cells) > 1)} hidden ({FILL_LABELS[fill].lower()})",
    )
    before, after = st.columns(2)
    with before:
        st.markdown("**Before**")
        st.markdown(marked_words(hidden.original.text.split(), hidden.original_changed), unsafe_allow_html=True)
    with after:
        st.markdown("**With the cells hidden**")
        st.markdown(marked_words(hidden.hidden.text.split(), hidden.hidden_changed), unsafe_allow_html=True)
    st.caption("Highlighted: the words that changed." if hidden.changed else "Hiding these cells changed no word.")
    return hidden
