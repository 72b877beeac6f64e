"""Examples of the scene world: (image, scene, reference captions) per seed.

Seed ranges keep the splits apart: training uses seeds TRAIN_SEED_OFFSET + i
for i < 10_000_000, validation VAL_SEED_OFFSET + i, evaluation
EVAL_SEED_OFFSET + i, so evaluation scenes are never seen in training.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from PIL import Image

from .captions import reference_captions
from .render import Scene, object_masks, render_scene, sample_scene

TRAIN_SEED_OFFSET = 0
VAL_SEED_OFFSET = 10_000_000
EVAL_SEED_OFFSET = 20_000_000
SPLIT_OFFSETS = {"train": TRAIN_SEED_OFFSET, "val": VAL_SEED_OFFSET, "eval": EVAL_SEED_OFFSET}


def split_seeds(split: str, count: int, start: int = 0) -> range:
    """Seeds `start .. start+count-1` of a split ("train", "val" or "eval")."""
    if start + count > VAL_SEED_OFFSET - TRAIN_SEED_OFFSET:
        raise ValueError("a split holds at most 10_000_000 seeds")
    offset = SPLIT_OFFSETS[split]
    return range(offset + start, offset + start + count)


def make_example(seed: int, image_size: int = 64) -> tuple[Image.Image, Scene, list[str]]:
    """One (image, scene, references) triple for a seed."""
    scene = sample_scene(seed, image_size)
    return render_scene(scene), scene, reference_captions(scene)


def example_with_masks(seed: int, image_size: int = 64) -> tuple[Image.Image, Scene, list]:
    """(image, scene, object masks) of the first renderer for a seed."""
    image, scene, _ = make_example(seed, image_size)
    return image, scene, object_masks(scene)


def make_examples(seeds: Iterable[int], image_size: int = 64) -> Iterator[tuple[Image.Image, Scene, list[str]]]:
    """Lazily yield (image, scene, references) for each seed."""
    for seed in seeds:
        yield make_example(seed, image_size)
