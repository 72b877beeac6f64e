"""Image-captioning explorer: caption an image, compare decoding strategies, see why each word came out.

Run with `streamlit run streamlit_app.py`. The pages live in app_pages/ (not `pages/`: Streamlit
would treat that folder as a legacy multipage app on a fresh server's first request); everything
they compute comes from the `captioner` package.
"""

import streamlit as st

from captioner.app import state

st.set_page_config(page_title="Captioner explorer", page_icon="🖼️", layout="wide")

pages = [
    st.Page("app_pages/caption.py", title="Caption", icon=":material/subtitles:", default=True),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("app_pages/models.py", title="Models", icon=":material/view_column:"),
    st.Page("app_pages/explain.py", title="Explain", icon=":material/visibility:"),
    st.Page("app_pages/batch.py", title="Batch", icon=":material/photo_library:"),
]
# The sidebar draws the page links itself: each link carries its page's URL state (model, image,
# settings), so moving between pages is one step in the browser's history and Back restores it.
page = st.navigation(pages, position="hidden")
state.keep_widget_values()
model = state.sidebar(page, pages)
state.write_url(page.title, model)
state.show_url_notes()
page.run()
