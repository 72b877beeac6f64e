"""Image-captioning explorer: caption an image, compare decoding strategies, see why each word came out.

Run with `streamlit run streamlit_app.py`. The pages live in app_pages/ (not `pages/`: Streamlit
would treat that folder as a legacy multipage app on a fresh server's first request); everything
they compute comes from the `captioner` package.
"""

import sys

import streamlit as st

st.set_page_config(page_title="Captioner explorer", page_icon="🖼️", layout="wide")
starting = st.empty()
STARTING = "Starting up: loading the model and warming it up (a fresh server takes a few seconds)…"
if "captioner.app.ui.sidebar" not in sys.modules:  # a fresh server: importing torch and the model code takes seconds
    starting.info(STARTING, icon=":material/hourglass_top:")

from captioner.app.ui import controls, keys, model, sidebar, url  # noqa: E402  (after the frame: this import is the slow part)

pages = [
    st.Page(keys.CAPTION_PAGE_FILE, title=keys.CAPTION, icon=":material/subtitles:", default=True),
    st.Page("app_pages/compare.py", title=keys.COMPARE, icon=":material/compare_arrows:"),
    st.Page("app_pages/models.py", title=keys.MODELS, icon=":material/view_column:"),
    st.Page("app_pages/explain.py", title=keys.EXPLAIN, icon=":material/visibility:"),
    st.Page("app_pages/batch.py", title=keys.BATCH, icon=":material/photo_library:"),
]
# The sidebar draws the page links itself: each link carries its page's URL state (model, image,
# settings), so moving between pages is one step in the browser's history and Back restores it.
page = st.navigation(pages, position="hidden")
controls.keep_widget_values()
if not model.model_ready():  # a fresh server loads and warms the model first: show the frame at once
    starting.info(STARTING, icon=":material/hourglass_top:")
lm = sidebar.sidebar(page, pages)
starting.empty()
url.write_url(page.title, lm)
url.show_url_notes()
page.run()
