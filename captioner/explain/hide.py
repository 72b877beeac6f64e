"""Hide a region: blank grid cells of the image, caption it again, and mark the words that changed."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from PIL import Image

from captioner.config import DecodingConfig
from captioner.decoding import caption_image
from captioner.decoding.results import Caption
from captioner.explain.masking import mask_cells
from captioner.explain.occlusion import default_grid
from captioner.models.base import CaptionModel


@dataclass
class HiddenRegions:
    """The caption before and after hiding cells, word by word with the changed words marked."""

    original: Caption
    hidden: Caption
    image: Image.Image  # the image with the cells blanked
    cells: list[tuple[int, int]]
    grid: tuple[int, int]
    fill: str
    original_changed: list[bool]  # per word of the original caption: dropped or replaced
    hidden_changed: list[bool]  # per word of the new caption: added or replaced

    @property
    def changed(self) -> bool:
        return self.original.token_ids != self.hidden.token_ids

    def to_dict(self) -> dict:
        return {
            "cells": [list(c) for c in self.cells],
            "grid": list(self.grid),
            "fill": self.fill,
            "original": self.original.text,
            "hidden": self.hidden.text,
            "original_changed": self.original_changed,
            "hidden_changed": self.hidden_changed,
        }


def changed_words(old: list[str], new: list[str]) -> tuple[list[bool], list[bool]]:
    """Per word of each caption, whether it is outside the longest common runs of the two."""
    old_changed, new_changed = [True] * len(old), [True] * len(new)
    for a, b, n in difflib.SequenceMatcher(a=old, b=new, autojunk=False).get_matching_blocks():
        old_changed[a : a + n] = [False] * n
        new_changed[b : b + n] = [False] * n
    return old_changed, new_changed


def hide_regions(
    model: CaptionModel,
    image: Image.Image,
    cells: Iterable[tuple[int, int]],
    fill: str = "mean",
    config: DecodingConfig | None = None,
    grid: tuple[int, int] | None = None,
) -> HiddenRegions:
    """Caption `image` as it is and with `cells` of `grid` (default: occlusion's grid) blanked by `fill`."""
    grid = default_grid(model) if grid is None else tuple(grid)
    cells = [tuple(c) for c in cells]
    config = model.default_decoding if config is None else config
    masked = mask_cells(image, cells, grid, fill)
    original = caption_image(model, image, [config])[0].best
    hidden = original if not cells else caption_image(model, masked, [config])[0].best
    old, new = changed_words(original.text.split(), hidden.text.split())
    return HiddenRegions(original, hidden, masked, cells, grid, fill, old, new)
