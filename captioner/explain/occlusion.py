"""Occlusion: blank each cell of a grid, teacher-force the caption on every masked image, map each word's drop.

A word's map is the drop of its log-probability when a cell is blanked (positive part). A word whose
probability no cell lowers by more than `tolerance` nats is flagged as not supported by any region;
one more pass with every cell blanked tells those apart: a word the blank image lowers is carried by
several regions together (`spread`: a confident model often needs more than one cell hidden), one it
does not lower comes from the caption so far, not from the image.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

from captioner.explain.forward import CaptionLike, caption_tokens, token_logprobs
from captioner.explain.masking import all_cells, mask_cells
from captioner.explain.result import Explanation, WordExplanation, normalised, to_grid, word_groups
from captioner.models.base import CaptionModel

MAX_PATCH_GRID_CELLS = 64  # larger patch grids (a full-size model's 14x14) are occluded on a coarser grid
COARSE_GRID = (7, 7)
TOLERANCE = 0.01  # nats: a drop below this is no drop


def default_grid(model: CaptionModel) -> tuple[int, int]:
    """The patch grid when it is small, else 7x7."""
    rows, cols = model.grid
    return model.grid if rows * cols <= MAX_PATCH_GRID_CELLS else COARSE_GRID


def model_view(model: CaptionModel, image: Image.Image) -> Image.Image:
    """The image at the size the model sees, so that grid cells fall on patch boundaries."""
    h, w = model.image_size
    return image.convert("RGB").resize((w, h), Image.BICUBIC)


def explain_occlusion(
    model: CaptionModel,
    image: Image.Image,
    caption: CaptionLike,
    grid: tuple[int, int] | None = None,
    fill: str = "mean",
    tolerance: float = TOLERANCE,
    batch_size: int = 16,
    progress: Callable[[float], None] | None = None,
) -> Explanation:
    """Per-word drop maps over `grid` (default: `default_grid`), resampled onto the patch grid.

    `progress(fraction)` is called after each batch of masked images."""
    t0 = time.perf_counter()
    grid = default_grid(model) if grid is None else tuple(grid)
    cap = caption_tokens(model, caption)
    view = model_view(model, image)
    cells = all_cells(grid)
    whole = mask_cells(view, cells, grid, fill)
    base, blank = token_logprobs(model, model.preprocess([view, whole]), cap.ids).numpy()

    def hide(cell: tuple[int, int]) -> Image.Image:
        return mask_cells(view, [cell], grid, fill)

    drops = _cell_drops(model, cells, hide, cap.ids, base, batch_size, progress)
    words = [_word(model, w, idx, drops, grid, base, blank, tolerance) for w, idx in word_groups(cap.tokens, cap.finished)]
    return Explanation(
        "occlusion",
        model.grid,
        cap.text,
        cap.tokens,
        words,
        time.perf_counter() - t0,
        2 + len(cells),
        settings={"grid": list(grid), "fill": fill, "tolerance": tolerance},
    )


def _cell_drops(
    model: CaptionModel,
    cells: list[tuple[int, int]],
    hide: Callable[[tuple[int, int]], Image.Image],
    ids: Sequence[int],
    base: np.ndarray,
    batch_size: int,
    progress: Callable[[float], None] | None,
) -> np.ndarray:
    """(cells, tokens): each token's drop in log-probability when `hide(cell)` blanks one cell; the masked
    images are made `batch_size` at a time."""
    drops = np.empty((len(cells), len(ids)), dtype=np.float64)
    for start in range(0, len(cells), batch_size):
        masked = [hide(cell) for cell in cells[start : start + batch_size]]
        drops[start : start + len(masked)] = base - token_logprobs(model, model.preprocess(masked), ids).numpy()
        if progress is not None:
            progress((start + len(masked)) / len(cells))
    return drops


def _word(
    model: CaptionModel,
    word: str,
    idx: list[int],
    drops: np.ndarray,
    grid: tuple[int, int],
    base: np.ndarray,
    blank: np.ndarray,
    tolerance: float,
) -> WordExplanation:
    """One word's map (its tokens' drops summed, positive part, on the patch grid) and its support flags."""
    drop = drops[:, idx].sum(axis=1).reshape(grid)
    return WordExplanation(
        word,
        idx,
        normalised(to_grid(drop.clip(min=0), model.grid)),
        float(base[idx].sum()),
        supported=bool(drop.max() > tolerance),
        drops=drop.astype(np.float32),
        whole_image_drop=float((base[idx] - blank[idx]).sum()),
    )
