"""The downloadable heatmap figure: a labelled PNG grid of the image and one overlay per word, drawn with
Pillow's own font (characters it lacks are replaced, never drawn as missing-glyph boxes)."""

from __future__ import annotations

import functools
import math
import unicodedata
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from captioner.app.settings import HEAD_MEAN, LAYER_MEAN
from captioner.app.views.colours import colorize
from captioner.app.views.explain import overlay
from captioner.app.views.images import display_image
from captioner.app.views.text import head_text, layer_text

HEATMAP_LEGEND = "little attention -> most (each map scaled to its own range)"
_NO_SUCH_CHARACTER = "\U0010fffd"  # a private-use code point: every font draws its missing-glyph box for it


@functools.lru_cache(maxsize=8)
def pillow_font(size: int) -> ImageFont.ImageFont:
    """Pillow's own font at `size` pixels (one size only before Pillow 10.1)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


@functools.lru_cache(maxsize=4096)
def _glyph(font: ImageFont.ImageFont, char: str) -> tuple[tuple[int, int], bytes]:
    mask = font.getmask(char)
    return mask.size, bytes(mask)


def missing_glyphs(text: str, font: ImageFont.ImageFont) -> list[str]:
    """The characters of `text` that `font` would draw as its missing-glyph box."""
    box = _glyph(font, _NO_SUCH_CHARACTER)
    return [c for c in dict.fromkeys(text) if not c.isspace() and _glyph(font, c) == box]


def drawable(text: str, font: ImageFont.ImageFont) -> str:
    """`text` with each character the font lacks (Pillow's own font has no arrows, accents or CJK) replaced by
    its unaccented letter, or "?" where it has none, so the PNG never shows a missing-glyph box."""
    missing = set(missing_glyphs(text, font))
    if not missing:
        return text
    plain = {c: unicodedata.normalize("NFKD", c).encode("ascii", "ignore").decode() for c in missing}
    return "".join((plain[c] or "?") if c in missing else c for c in text)


def _colour_bar(width: int, height: int = 12) -> Image.Image:
    ramp = np.tile(np.linspace(0, 1, width, dtype=np.float32), (height, 1))
    return Image.fromarray(colorize(ramp), "RGB")


@dataclass
class HeatmapGrid:
    """What the downloadable heatmap figure shows: the image, one overlay per word, and which attention."""

    image: Image.Image
    maps: Sequence[tuple[str, np.ndarray]]
    caption: str = ""
    layer: int | str = LAYER_MEAN
    head: int | str = HEAD_MEAN
    opacity: float = 0.6
    cols: int = 4
    tile: int = 200
    method: str = "attention"  # captioner.explain.METHODS: which explanation the maps are
    title_lines: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.title_lines = [f"“{self.caption}”"[:90]] if self.caption else []
        if self.method == "attention":
            self.title_lines.append(f"cross-attention: {layer_text(self.layer)}, {head_text(self.head)}")
        else:
            self.title_lines.append(f"method: {self.method}")


def heatmap_figure(grid: HeatmapGrid) -> Image.Image:
    """A labelled PNG grid: the image, then one overlay per word; the title says which layer and head."""
    panels = [("image", display_image(grid.image, grid.tile))]
    panels += [(f"“{w}”", overlay(grid.image, m, grid.tile, grid.opacity)) for w, m in grid.maps]
    cols = max(1, min(grid.cols, len(panels)))
    rows = math.ceil(len(panels) / cols)
    label_h, pad, head = 26, 8, 8 + 24 * len(grid.title_lines)
    cell_w, cell_h = grid.tile + pad, grid.tile + label_h + pad
    width = cols * cell_w + pad
    fig = Image.new("RGB", (width, head + rows * cell_h + pad + 40), "white")
    draw = ImageDraw.Draw(fig)
    for i, line in enumerate(grid.title_lines):
        draw.text((pad, 8 + 24 * i), drawable(line, pillow_font(18)), fill="black", font=pillow_font(18))
    for i, (label, panel) in enumerate(panels):
        x = pad + (i % cols) * cell_w
        y = head + pad + (i // cols) * cell_h
        fig.paste(panel, (x + (grid.tile - panel.width) // 2, y + (grid.tile - panel.height) // 2))
        draw.text((x, y + grid.tile + 4), drawable(label[:28], pillow_font(16)), fill="black", font=pillow_font(16))
    bar_y = head + rows * cell_h + pad + 6
    fig.paste(_colour_bar(min(240, width - 2 * pad)), (pad, bar_y))
    draw.text((pad, bar_y + 14), HEATMAP_LEGEND, fill="black", font=pillow_font(13))
    return fig


def heatmap_file_name(layer: int | str, head: int | str, method: str = "attention") -> str:
    """The PNG's file name: which layer and head (or which method) it shows."""
    if method != "attention":
        return f"heatmaps-{method}.png"
    return f"heatmaps-{layer_text(layer).replace(' ', '-')}-{head_text(head).replace(' ', '-')}.png"
