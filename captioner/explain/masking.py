"""Blank cells of a grid over an image: the masking shared by occlusion and "hide a region"."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from PIL import Image, ImageFilter

FILLS = ("mean", "blur", "noise")


def cell_box(cell: tuple[int, int], grid: tuple[int, int], size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Pixel box (left, top, right, bottom) of grid cell (row, col) on an image of `size` (width, height)."""
    (r, c), (rows, cols), (w, h) = cell, grid, size
    if not (0 <= r < rows and 0 <= c < cols):
        raise ValueError(f"cell {(r, c)} is outside the {rows}x{cols} grid.")
    return (round(c * w / cols), round(r * h / rows), round((c + 1) * w / cols), round((r + 1) * h / rows))


def parse_grid(text: str) -> tuple[int, int]:
    """'7x7' (or '7') -> (7, 7); 1..64 cells a side."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        rows, cols = (int(parts[0]), int(parts[-1])) if len(parts) <= 2 else (0, 0)
    except ValueError:
        rows = cols = 0
    if not (1 <= rows <= 64 and 1 <= cols <= 64):
        raise ValueError(f"grid must read like 7x7 (1 to 64 cells a side), not {text!r}.")
    return rows, cols


def mask_cells(
    image: Image.Image, cells: Iterable[tuple[int, int]], grid: tuple[int, int], fill: str = "mean", seed: int = 0
) -> Image.Image:
    """A copy of `image` with the given cells of a rows x cols grid blanked.

    fill "mean": the image's mean colour; "blur": the image blurred (a Gaussian as wide as a cell), so
    that a flat region stays as it is; "noise": uniform random colours (seeded)."""
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {', '.join(FILLS)}, not {fill!r}.")
    image = image.convert("RGB")
    cells = list(cells)
    if not cells:
        return image.copy()
    w, h = image.size
    if fill == "mean":
        colour = tuple(round(float(v)) for v in np.asarray(image, dtype=np.float64).reshape(-1, 3).mean(axis=0))
        source = Image.new("RGB", image.size, colour)
    elif fill == "blur":
        source = image.filter(ImageFilter.GaussianBlur(radius=max(1.0, min(w / grid[1], h / grid[0]) / 2)))
    else:
        pixels = np.random.default_rng([seed, 1]).integers(0, 256, (h, w, 3), dtype=np.uint8)
        source = Image.fromarray(pixels, "RGB")
    out = image.copy()
    for cell in cells:
        box = cell_box(cell, grid, image.size)
        out.paste(source.crop(box), box[:2])
    return out


def all_cells(grid: tuple[int, int]) -> list[tuple[int, int]]:
    return [(r, c) for r in range(grid[0]) for c in range(grid[1])]
