"""Images that are not scenes of the world, for training the model to say it does not know.

Training pairs each of these with the caption of a random training scene (drawn anew at every
step), so on such images the model learns no preference among the world's captions: its caption is
still fluent and ends, but its token probabilities are low, and the confidence of
`decoding/confidence.py` falls below the calibrated threshold. The kinds: noise of any grain, flat
colours, empty world backgrounds, gradients of any colours, colour blocks, world shapes on foreign
backgrounds (white, black, saturated, textured), overlapping "dead leaves" (a photograph-like
texture) and text. The tests measure the flag on non-scenes made by other code (tests/nonscenes.py).
"""

from __future__ import annotations

import math
import random

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from .augment import damage
from .render import TRAINING_VARIETY, object_alpha, render_scene, sample_scene

SIZE = 64
KINDS: tuple[str, ...] = ("noise", "flat", "empty", "gradient", "blocks", "foreign", "leaves", "text")


def _colour(r: random.Random) -> tuple[int, int, int]:
    return (r.randrange(256), r.randrange(256), r.randrange(256))


def _vivid(r: random.Random) -> tuple[int, int, int]:
    """A colour no scene background has: near white, near black or saturated."""
    pick = r.random()
    if pick < 0.3:
        return tuple(r.randint(215, 255) for _ in range(3))  # type: ignore[return-value]
    if pick < 0.5:
        return tuple(r.randint(0, 50) for _ in range(3))  # type: ignore[return-value]
    hi, lo = r.randint(150, 255), r.randint(0, 70)
    channels = [hi, lo, r.randint(lo, hi)]
    r.shuffle(channels)
    return tuple(channels)  # type: ignore[return-value]


def _noise(r: random.Random, rng: np.random.Generator) -> Image.Image:
    grain = r.choice((1, 1, 2, 4, 8, 16))
    cells = rng.integers(0, 256, (SIZE // grain, SIZE // grain, 3), dtype=np.uint8)
    if r.random() < 0.3:
        cells[:] = cells[:, :, :1]  # grey noise
    resample = r.choice((Image.Resampling.NEAREST, Image.Resampling.BILINEAR, Image.Resampling.BICUBIC))
    return Image.fromarray(cells, mode="RGB").resize((SIZE, SIZE), resample)


def _gradient(r: random.Random) -> Image.Image:
    a, b = np.array(_colour(r), np.float32), np.array(_colour(r), np.float32)
    t = (np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) + 0.5) / SIZE
    angle = r.uniform(0, 2 * math.pi)
    if r.random() < 0.7:
        along = (t[1] - 0.5) * math.cos(angle) + (t[0] - 0.5) * math.sin(angle) + 0.5
    else:
        along = np.hypot(t[1] - r.random(), t[0] - r.random())
    pixels = a + (b - a) * np.clip(along, 0, 1)[..., None]
    return Image.fromarray(pixels.astype(np.uint8), mode="RGB")


def _blocks(r: random.Random) -> Image.Image:
    image = Image.new("RGB", (SIZE, SIZE), _vivid(r))
    draw = ImageDraw.Draw(image)
    parts = r.randint(2, 6)
    vertical = r.random() < 0.5
    for k in range(1, parts):
        edge = k * SIZE // parts
        box = (0, edge, SIZE, SIZE) if vertical else (edge, 0, SIZE, SIZE)
        draw.rectangle(box, fill=_vivid(r) if r.random() < 0.7 else _colour(r))
    return image


def _leaves(r: random.Random, size: int = SIZE) -> Image.Image:
    image = Image.new("RGB", (size, size), _colour(r))
    draw = ImageDraw.Draw(image)
    scale = r.uniform(0.05, 0.5) * size
    for _ in range(r.randint(15, 150)):
        x, y, w = r.uniform(0, size), r.uniform(0, size), scale * r.uniform(0.2, 1.0)
        h = w * r.uniform(0.3, 1.5)
        shape = (x - w, y - h, x + w, y + h)
        (draw.ellipse if r.random() < 0.6 else draw.rectangle)(shape, fill=_colour(r))
    return image.filter(ImageFilter.GaussianBlur(r.uniform(0, 1.5)))


def _foreign(r: random.Random, rng: np.random.Generator) -> Image.Image:
    """World shapes drawn by the first renderer on a background no scene has."""
    scene = sample_scene(r.randrange(2**31), SIZE, TRAINING_VARIETY)
    pick = r.random()
    if pick < 0.5:
        back = Image.new("RGB", (SIZE, SIZE), _vivid(r))
    elif pick < 0.75:
        back = _leaves(r)
    else:
        back = _noise(r, rng)
    pixels = np.asarray(back, dtype=np.float32)
    for obj, colour in zip(scene.objects, scene.colours):
        alpha = object_alpha(obj, SIZE, scene.supersample)[..., None]
        pixels = pixels * (1 - alpha) + np.array(colour, np.float32) * alpha
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")


def _text(r: random.Random) -> Image.Image:
    big = 4 * SIZE
    image = Image.new("RGB", (big, big), _colour(r) if r.random() < 0.5 else _vivid(r))
    draw = ImageDraw.Draw(image)
    letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 "
    ink = _colour(r)
    for _ in range(r.randint(1, 8)):
        font = ImageFont.load_default(size=r.randint(18, 90))
        words = "".join(r.choice(letters) for _ in range(r.randint(2, 14)))
        draw.text(
            (r.uniform(-20, big * 0.7), r.uniform(-20, big * 0.9)), words, fill=ink if r.random() < 0.7 else _colour(r), font=font
        )
    return image.resize((SIZE, SIZE), Image.Resampling.BICUBIC)


def outlier_image(seed: int) -> Image.Image:
    """One 64 px non-scene image for a seed (kinds in turn, details random)."""
    r = random.Random(f"outlier-{seed}")
    rng = np.random.default_rng(r.randrange(2**31))
    kind = KINDS[seed % len(KINDS)]
    if kind == "noise":
        image = _noise(r, rng)
    elif kind == "flat":
        image = Image.new("RGB", (SIZE, SIZE), _colour(r))
    elif kind == "empty":
        scene = sample_scene(r.randrange(2**31), SIZE, TRAINING_VARIETY)
        image = render_scene(type(scene)((), scene.background, SIZE, scene.seed))
    elif kind == "gradient":
        image = _gradient(r)
    elif kind == "blocks":
        image = _blocks(r)
    elif kind == "foreign":
        image = _foreign(r, rng)
    elif kind == "leaves":
        image = _leaves(r)
    else:
        image = _text(r)
    # An empty scene with a horizontal gradient renders as a single row (render_scene broadcasts it
    # over the objects it blends in); it is stretched to a full image here, after the damage.
    return damage(image, r).resize((SIZE, SIZE), Image.Resampling.BICUBIC)
