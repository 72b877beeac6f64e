"""Model files and folders a user may hand to ``load_captioner``, each with the message it must get.

Loading each must end in a ModelLoadError whose message contains ``message_contains``, with no code from the
folder run (the auto_map cases ship a .py that would write RAN beside itself)."""

from __future__ import annotations

from pathlib import Path

from tests.corpus.case import ModelCase
from tests.corpus.hf_model_cases import HF_MODEL_CASES
from tests.corpus.seed_model_cases import SEED_MODEL_CASES

MODEL_CASES: list[ModelCase] = SEED_MODEL_CASES + HF_MODEL_CASES
assert len({c.name for c in MODEL_CASES}) == len(MODEL_CASES), "model case names must be unique"


def build_model_corpus(directory: str | Path) -> list[tuple[ModelCase, Path]]:
    """Write every model case in its own folder under ``directory``; return (case, spec to load)."""
    built = []
    for case in MODEL_CASES:
        folder = Path(directory) / case.name
        folder.mkdir(parents=True, exist_ok=True)
        built.append((case, case.build(folder)))
    return built
