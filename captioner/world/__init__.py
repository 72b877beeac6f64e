"""The built-in scene world: rendered shapes with ground-truth captions, facts and masks."""

from .captions import (
    VOCABULARY,
    Fact,
    all_true_facts,
    fact_scores,
    has_identical_objects,
    reference_captions,
    relation_fact,
    scene_facts,
)
from .dataset import (
    EVAL_SEED_OFFSET,
    TRAIN_SEED_OFFSET,
    VAL_SEED_OFFSET,
    example_with_masks,
    make_example,
    make_examples,
    split_seeds,
)
from .parser import Mention, ParsedCaption, match_mentions_to_objects, parse_caption
from .render import (
    COLOURS,
    SHAPES,
    SIZES,
    Background,
    Scene,
    SceneObject,
    mask_cells,
    object_masks,
    relation,
    render_scene,
    sample_scene,
)

__all__ = [
    "COLOURS",
    "SHAPES",
    "SIZES",
    "VOCABULARY",
    "EVAL_SEED_OFFSET",
    "TRAIN_SEED_OFFSET",
    "VAL_SEED_OFFSET",
    "Background",
    "Fact",
    "Mention",
    "ParsedCaption",
    "Scene",
    "SceneObject",
    "all_true_facts",
    "build_tokenizer",
    "example_with_masks",
    "fact_scores",
    "has_identical_objects",
    "make_example",
    "make_examples",
    "mask_cells",
    "match_mentions_to_objects",
    "object_masks",
    "parse_caption",
    "reference_captions",
    "relation",
    "relation_fact",
    "render_scene",
    "sample_scene",
    "save_tokenizer",
    "scene_facts",
    "split_seeds",
]


def __getattr__(name: str):
    """Import the tokenizer (and transformers) only when it is asked for."""
    if name in ("build_tokenizer", "save_tokenizer"):
        from . import tokenizer

        return getattr(tokenizer, name)
    raise AttributeError(name)
