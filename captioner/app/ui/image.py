"""The image every page works on: an example, an upload or a camera photo, decoded once and kept in the
session with a preview the pages draw."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import streamlit as st
from PIL import Image
from captioner.app.gallery import Example, example_images
from captioner.app.ui import keys
from captioner.images import IMAGE_EXTENSIONS, ImageLoadError, load_image
from captioner.app.views.images import display_image

# What the uploaders accept: the extensions load_image reads (one list for widgets, messages and loading).
IMAGE_TYPES = sorted({ext.lstrip(".") for ext in IMAGE_EXTENSIONS})
PREVIEW_SIDE = 512
EXAMPLE, UPLOAD, CAMERA = "example", "upload", "camera"  # where a SelectedImage came from


@dataclass
class SelectedImage:
    """The image every page works on."""

    name: str
    digest: str  # sha256 of the file's bytes (first 16 hex digits)
    image: Image.Image  # RGB, full size: what the model sees
    source: str  # EXAMPLE, UPLOAD or CAMERA
    preview: Image.Image  # longer side PREVIEW_SIDE: what the pages draw (heatmaps included)


def select_image(name: str, data: bytes, source: str) -> bool:
    """Decode and select an image; a bad file leaves the selection as it was and records why."""
    try:
        image = load_image(data)
    except ImageLoadError as e:
        st.session_state[keys.IMAGE_ERROR] = f"Could not use {name}: {e}"
        return False
    digest = hashlib.sha256(data).hexdigest()[:16]
    st.session_state[keys.IMAGE] = SelectedImage(name, digest, image, source, display_image(image, PREVIEW_SIDE))
    st.session_state.pop(keys.IMAGE_ERROR, None)
    return True


@st.cache_data(show_spinner=False)
def gallery() -> list[Example]:
    """The example images, read once per process."""
    return example_images()


def first_example() -> Example | None:
    return gallery()[0] if gallery() else None


def select_example(name: str) -> bool:
    for ex in gallery():
        if ex.name == name:
            return select_image(ex.name, ex.data, EXAMPLE)
    return False


def on_file(kind: str) -> None:
    """An upload or a camera photo arrived: use it, or say why not and empty the widget (the old image stays)."""
    f = st.session_state.get(input_key(kind))
    if f is not None and not select_image(f.name if kind == UPLOAD else "camera photo", f.getvalue(), kind):
        generation = keys.image_input_generation(kind)
        st.session_state[generation] = st.session_state.get(generation, 0) + 1


def input_key(kind: str) -> str:
    """The upload / camera widget's key now: a new key after a refused file, so the widget shows empty again."""
    return keys.image_input(kind, st.session_state.get(keys.image_input_generation(kind), 0))


def picked_image() -> SelectedImage | None:
    """The selection as it is (None before the first page has run)."""
    return st.session_state.get(keys.IMAGE)


def selected_image() -> SelectedImage | None:
    """The image chosen in the sidebar (the first example until the user picks one)."""
    first = first_example()
    if keys.IMAGE not in st.session_state and first is not None:
        select_image(first.name, first.data, EXAMPLE)
    return picked_image()
