"""The Streamlit app's part of the package: session state and caching (state.py), what pages draw (views.py), the gallery."""
