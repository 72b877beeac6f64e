"""A corpus of hostile and awkward inputs, each with the outcome we expect.

Files are generated, not committed: ``build_corpus(dir)`` writes every case in a second or two and returns
:class:`Case` objects that say what each file is and what loading it must give, so the same corpus drives the
tests of ``load_image``, ``read_image_archive``, the CLI and the Streamlit pages. ``MODEL_CASES`` do the same
for model files and folders handed to ``load_captioner``.

    python -m tests.corpus OUT_DIR      # writes the files and prints the table

Modules: ``case`` (the records), ``encoders`` and ``zips`` (files built by hand), ``special_paths``,
``readable_images`` and ``hostile_images`` (the image cases), ``archive_cases``, ``build`` (writing them),
``model_files`` and ``model_cases``.
"""

from tests.corpus.archive_cases import ARCHIVE_CASES
from tests.corpus.build import CASES, IMAGE_CASES, build_archive_corpus, build_corpus, build_image_corpus
from tests.corpus.case import Case, ModelCase
from tests.corpus.model_cases import MODEL_CASES, build_model_corpus

__all__ = [
    "ARCHIVE_CASES",
    "CASES",
    "IMAGE_CASES",
    "MODEL_CASES",
    "Case",
    "ModelCase",
    "build_archive_corpus",
    "build_corpus",
    "build_image_corpus",
    "build_model_corpus",
]
