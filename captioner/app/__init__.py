"""The Streamlit app's part of the package: `ui/` (the only part that imports Streamlit: session state,
caching and widgets), and beside it what needs no Streamlit: the controls as data (settings.py), what the
pages draw (views/, one module per page or concern), the notes beside a caption, the Models page's data,
the gallery."""
