"""What the app shows, built from engine results: plain data (pandas frames, Plotly figures, PIL images,
strings), no Streamlit, so pages stay short and this is unit-tested. Importers name the module they use
(`from captioner.app.views import tokens`):

- `text`: escaping for Markdown, shortening, number formats, labels of tokens, layers, heads, configurations
- `help_text`: how to read each page, what the built-in model knows
- `colours`: the colour scales (token probabilities, attention) and their legends
- `images`: images scaled for display, as the model saw them, as PNG bytes
- `tokens`: a caption token by token (coloured HTML, probability and entropy figures, alternatives)
- `compare`: the Compare page's tables and note
- `tables`: any table for st.table (`readable`) and as CSV (`csv_bytes`)
- `records`: the JSON downloads
- `explain`: attention aggregated per word, overlays, the attention figure
- `heatmap_grid`: the downloadable PNG grid of heatmaps and its font handling
- `batch`: the Batch page's table
"""
