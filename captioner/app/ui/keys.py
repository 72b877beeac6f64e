"""Every name the app keeps things under, declared once: session-state keys (widget keys included), key
prefixes, URL parameters and page names. No Streamlit here; the rest of `ui/` and the pages use these.

A widget key under a prefix of KEPT_PREFIXES keeps its value when the user visits another page
(`controls.keep_widget_values`); one under MODEL_BOUND_PREFIXES starts at the model's defaults and is
reset when the model changes.
"""

from __future__ import annotations

# -- pages ----------------------------------------------------------------------------------------
CAPTION, COMPARE, MODELS, EXPLAIN, BATCH = "Caption", "Compare", "Models", "Explain", "Batch"
PAGES = (CAPTION, COMPARE, MODELS, EXPLAIN, BATCH)
CAPTION_PAGE_FILE = "app_pages/caption.py"  # the pages that use the Caption page's settings link to it
PAGES_WITH_AN_IMAGE = (CAPTION, COMPARE, MODELS, EXPLAIN)  # the Batch page takes its own files
PAGES_WITH_CAPTION_SETTINGS = (CAPTION, EXPLAIN, BATCH)

# -- prefixes -------------------------------------------------------------------------------------
DECODING = "dec."  # the Caption page's decoding settings (Explain and Batch use them too)
COMPARE_SLIDERS = "cmp."  # the Compare page's sliders and its own configurations
COMPARE_NEW = "cmp.new."  # the form for a configuration of the user's own
EXPLAIN_PICKS = "xpl."  # the Explain page's pickers
MODELS_PAGE = "mdl."  # the Models page's models and shared settings
BATCH_OPTIONS = "batch.opt."
MODEL_PICKER = "model."
KEPT_PREFIXES = (DECODING, COMPARE_SLIDERS, EXPLAIN_PICKS, BATCH_OPTIONS, "model.hub", "model.path", MODELS_PAGE)
MODEL_BOUND_PREFIXES = (DECODING, COMPARE_SLIDERS, EXPLAIN_PICKS)  # defaults come from the model

# -- the model ------------------------------------------------------------------------------------
MODEL_SPEC = "model_spec"  # the session's model: DEFAULT_SPEC, "builtin", a hub id or a path
MODEL_ERROR = "model_error"  # why the last load failed (shown in the sidebar)
MODEL_NOTES = MODEL_PICKER + "notes"  # what the model cache unloaded for this session's loads
MODEL_KIND = MODEL_PICKER + "kind"
MODEL_HUB = MODEL_PICKER + "hub"
MODEL_PATH = MODEL_PICKER + "path"
MODEL_LOAD = MODEL_PICKER + "load"

# -- the image ------------------------------------------------------------------------------------
IMAGE = "image"  # the SelectedImage every page works on
IMAGE_ERROR = "image_error"
IMAGE_SOURCE = "img.source"  # the sidebar's Examples / Upload / Camera switch
GALLERY_BUTTON = "gallery.{}"  # one per example (its CSS class is st-key-gallery-N)


def image_input(kind: str, generation: int) -> str:
    """The upload or camera widget's key: a new generation after a refused file shows the widget empty."""
    return f"img.{kind}.{generation}"


def image_input_generation(kind: str) -> str:
    return f"img.{kind}.generation"


# -- results --------------------------------------------------------------------------------------
SHOWN_RESULTS = "results.shown"  # the Decoded.key of every result this session has drawn

# -- decoding controls (under a prefix) ------------------------------------------------------------
STRATEGY = "strategy"
SEED_TEXT, SEED_PROBLEM = "seed.text", "seed.problem"  # the seed box's text, and why it was refused

# -- Compare --------------------------------------------------------------------------------------
COMPARE_ADDED = "compare_added"  # the added configurations: settings dicts with a label
COMPARE_NEW_LABEL = COMPARE_NEW + "label"
COMPARE_CHART = COMPARE_SLIDERS + "chart"  # the lines the token-probability chart draws
COMPARE_ADD = "compare.add"
COMPARE_REMOVE = "compare.remove.{}"

# -- Explain --------------------------------------------------------------------------------------
LAYER = EXPLAIN_PICKS + "layer"
HEAD = EXPLAIN_PICKS + "head"
OPACITY = EXPLAIN_PICKS + "opacity"
WORD = EXPLAIN_PICKS + "word"  # the index of the word shown large
WORD_TEXT = EXPLAIN_PICKS + "word.text"  # that word, so the choice follows it when the caption changes
METHOD = EXPLAIN_PICKS + "method"
PREFIX = EXPLAIN_PICKS + "prefix"  # a forced prefix as token ids ("35,36,2"), its URL form too
FORCE_STEP = EXPLAIN_PICKS + "force_step"
FORCE_ALT = EXPLAIN_PICKS + "force_alt"
FORCE_TEXT = EXPLAIN_PICKS + "force_text"
FORCED_RESULT = "question.decoded"  # the last forced caption, per session
FORCE_ERROR = "question.error"
FORCE_BUTTON, FORCE_CLEAR = "question.force", "question.clear"
HIDE_ROW = EXPLAIN_PICKS + "hide.row{}"  # one pills widget per row of the grid
HIDE_FILL = EXPLAIN_PICKS + "hide.fill"
EXPLAIN_JSON = "explain.download.json"

# -- Caption --------------------------------------------------------------------------------------
TREE_PRUNED = "tree.pruned"
TREE_CHART = "beam-tree"

# -- Batch ----------------------------------------------------------------------------------------
BATCH_EXAMPLES = BATCH_OPTIONS + "examples"
BATCH_REFERENCES = BATCH_OPTIONS + "refs"
BATCH_DONE = "batch.done"  # finished rows by run key and item
BATCH_UNSURE = "batch.unsure"  # the row keys whose out-of-world flag the settings made unsure
BATCH_UPLOADS = "batch.uploads"  # the files in the uploader now: (name, bytes) pairs
BATCH_KEPT = "batch.kept"  # files uploaded on an earlier visit (the uploader forgets them)
BATCH_FILES = "batch.files"
BATCH_FORGET, BATCH_STOP, BATCH_RUN = "batch.forget", "batch.stop", "batch.run"

# -- Models ---------------------------------------------------------------------------------------
MODELS_SPECS = MODELS_PAGE + "specs"
MODELS_SAME = MODELS_PAGE + "same"
MODELS_STRATEGY = MODELS_PAGE + STRATEGY
MODELS_CHART = MODELS_PAGE + "chart.{}"

# -- the URL --------------------------------------------------------------------------------------
URL_RESTORED = "url.restored"  # this session has read its URL once
URL_PENDING = "url.pending"  # the link's settings, waiting for the model they must fit
URL_NOTES = "url.notes"  # what a link asked for that could not be used as it was
MODEL_PARAM = "model"
IMAGE_PARAM = "image"
UPLOAD_PARAM = "own_image"  # the view was of an uploaded image or photo (which a link cannot carry)
COMPARE_ADD_PARAM = "compare_add"
WORD_PARAM = "word"
PREFIX_PARAM = "prefix"  # the method, layer, head and strategy parameters: settings.py reads and writes them
# Per page, the session keys its URL speaks for (what Back in the browser restores).
PAGE_STATE = {
    CAPTION: (DECODING,),
    EXPLAIN: (DECODING, EXPLAIN_PICKS),
    BATCH: (DECODING,),
    COMPARE: (COMPARE_SLIDERS, COMPARE_ADDED),
    MODELS: (MODELS_PAGE,),
}
