"""What wraps every page: errors as one message instead of a traceback, the reading guide, the model and
image a page needs before it can draw anything, and its download buttons."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import streamlit as st
from captioner.app.ui import keys
from captioner.app.ui.image import SelectedImage, selected_image
from captioner.app.ui.model import LoadedModel, current_model
from captioner.archives import ArchiveError
from captioner.images import ImageLoadError
from captioner.loading import ModelLoadError
from captioner.app.views.help_text import HOW_TO_READ
from captioner.app.views.text import markdown_escape

log = logging.getLogger(__name__)


@contextlib.contextmanager
def page_guard(doing: str = "showing this page") -> Iterator[None]:
    """Turn any error raised inside into an st.error message: no traceback ever reaches the page."""
    try:
        yield
    except (ImageLoadError, ModelLoadError, ArchiveError, ValueError) as e:
        st.error(markdown_escape(str(e)))  # messages name files and models the user chose
    except MemoryError:
        st.error(f"Ran out of memory while {doing}. Try a smaller image or fewer beams and samples.")
    except Exception as e:
        log.exception("error while %s", doing)
        st.error(
            f"Something went wrong while {doing} ({type(e).__name__}). The app is still usable: "
            "try other settings or another image."
        )


def how_to_read(page: str) -> None:
    """The page's short, collapsible reading guide (`page`: one of keys.PAGES)."""
    with st.expander("How to read this", icon=":material/help:"):
        st.markdown(HOW_TO_READ[page.lower()])


def require_model() -> LoadedModel:
    """The session's model, or a message and a stop when none loads."""
    lm = current_model()
    if lm is None:
        st.error(markdown_escape(st.session_state.get(keys.MODEL_ERROR, "No model is loaded.")))
        st.stop()
    return lm


def require_image() -> SelectedImage:
    """The session's image, or a message and a stop when there is none."""
    picked = selected_image()
    if picked is None:
        st.info("Choose an image in the sidebar: upload one, take a photo, or pick an example.")
        st.stop()
    return picked


def require_model_and_image() -> tuple[LoadedModel, SelectedImage]:
    """The session's model and image, or a message and a stop when either is missing."""
    lm = require_model()
    return lm, require_image()


MIME_TYPES = {"csv": "text/csv", "json": "application/json", "png": "image/png"}


def download(
    label: str, data: str | bytes, file_name: str, where: Any = st, icon: str = ":material/download:", key: str | None = None
) -> None:
    """A download button (in `where`: a column, or the page) that does not rerun the page; the file's type from its name."""
    mime = MIME_TYPES[file_name.rsplit(".", 1)[-1]]
    where.download_button(label, data, file_name=file_name, mime=mime, on_click="ignore", icon=icon, key=key)
