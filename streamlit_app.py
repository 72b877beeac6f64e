"""Image-captioning explorer: caption an image, compare decoding strategies, see why each word came out.

Run with `streamlit run streamlit_app.py`. The pages live in pages/; everything they compute comes
from the `captioner` package.
"""

import streamlit as st

from captioner.app import state

st.set_page_config(page_title="Captioner explorer", page_icon="🖼️", layout="wide")

page = st.navigation(
    [
        st.Page("pages/caption.py", title="Caption", icon=":material/subtitles:", default=True),
        st.Page("pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
        st.Page("pages/explain.py", title="Explain", icon=":material/visibility:"),
        st.Page("pages/batch.py", title="Batch", icon=":material/photo_library:"),
    ]
)
state.keep_widget_values()
state.sidebar(page.title)
page.run()
