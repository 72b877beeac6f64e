"""The app's Streamlit part: what a session keeps between reruns, and the widgets the pages share.

One idea per module: `keys` (every session key, URL parameter and page name), `model` (the shared
model cache and the picker's loading), `image` (the selected image), `decode` (cached decoding),
`controls` (decoding widgets), `url` (a link or a reload opens the same view), `batch`, `frame`
(what wraps every page), `sidebar`, and each page's own widgets (`compare`, `explain`,
`explain_methods`, `hide_view`, `question`, `models_page`). Only this package and the pages import
Streamlit (tests/unit/test_import_rules.py).
"""
