"""The Streamlit app's part of the package: session state and caching (state.py), what pages draw
(views/, one module per page or concern, no Streamlit), the gallery."""
