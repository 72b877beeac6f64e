"""Held-out images that are not scenes of the built-in model's world: what the out-of-world flag is measured on.

Written apart from the training's non-scenes (`outliers.py`), and never used in training (a test
checks it), so the flag is measured on images the model has not been shaped on: noise, gradients,
text, world-like shapes on white and on photograph-like textures, synthetic "photographs". The
tests add the images of the hostile corpus (tests/corpus/) that load.

    python -m captioner.world.nonscenes [MODEL] [--count 40]   # flag and token-limit shares per kind
"""

from __future__ import annotations

import argparse
import io
import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WORLD_COLOURS = [
    (220, 30, 30),
    (245, 140, 20),
    (240, 220, 40),
    (40, 170, 60),
    (40, 80, 230),
    (150, 50, 200),
    (248, 248, 248),
    (20, 20, 20),
]
SENTENCES = [
    "Meeting moved to Thursday at 10",
    "INVOICE No. 4471",
    "The quick brown fox jumps over the lazy dog",
    "Total: 12.50 EUR",
    "Chapter 3",
    "EXIT",
    "Hello world",
    "Lorem ipsum dolor sit amet",
]


def _size(rng: np.random.Generator) -> tuple[int, int]:
    return int(rng.integers(48, 400)), int(rng.integers(48, 400))


def noise(rng: np.random.Generator) -> Image.Image:
    w, h = _size(rng)
    if rng.random() < 0.5:
        return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    grey = np.clip(rng.normal(128, rng.uniform(10, 80), (h, w, 1)), 0, 255).astype(np.uint8)
    return Image.fromarray(np.repeat(grey, 3, axis=2))


def gradient(rng: np.random.Generator) -> Image.Image:
    w, h = _size(rng)
    a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ys, xs = np.mgrid[0:h, 0:w]
    t = (xs / w if rng.random() < 0.5 else ys / h)[..., None]
    return Image.fromarray((a + (b - a) * t).astype(np.uint8))


def _font(px: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=px)


def text(rng: np.random.Generator) -> Image.Image:
    w, h = int(rng.integers(120, 500)), int(rng.integers(60, 300))
    paper = (255, 255, 255) if rng.random() < 0.6 else tuple(int(c) for c in rng.integers(0, 256, 3))
    image = Image.new("RGB", (w, h), paper)
    draw = ImageDraw.Draw(image)
    y = 4
    while y < h:
        px = int(rng.integers(12, 40))
        ink = (0, 0, 0) if paper == (255, 255, 255) else tuple(int(c) for c in rng.integers(0, 256, 3))
        draw.text((4, y), SENTENCES[int(rng.integers(len(SENTENCES)))], fill=ink, font=_font(px))
        y += px + 6
    return image


def _world_shapes(draw: ImageDraw.ImageDraw, rng: np.random.Generator, w: int, h: int) -> None:
    for _ in range(int(rng.integers(1, 4))):
        colour = WORLD_COLOURS[int(rng.integers(len(WORLD_COLOURS)))]
        r = min(w, h) * rng.uniform(0.06, 0.18)
        x, y = rng.uniform(r, w - r), rng.uniform(r, h - r)
        kind = int(rng.integers(3))
        if kind == 0:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
        elif kind == 1:
            draw.rectangle((x - r, y - r, x + r, y + r), fill=colour)
        else:
            draw.regular_polygon((x, y, r), 3, rotation=float(rng.uniform(0, 360)), fill=colour)


def shapes_on_white(rng: np.random.Generator) -> Image.Image:
    w, h = _size(rng)
    image = Image.new("RGB", (w, h), tuple(int(c) for c in rng.integers(235, 256, 3)))
    _world_shapes(ImageDraw.Draw(image), rng, w, h)
    return image


def _pink_noise(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    """Colour noise with a 1/f spectrum: the statistics of natural photographs, (h, w, 3) in 0..255."""
    fy, fx = np.fft.fftfreq(h)[:, None], np.fft.rfftfreq(w)[None, :]
    falloff = 1.0 / np.maximum(np.hypot(fx, fy), 1.0 / max(w, h))
    channels = []
    for _ in range(3):
        spectrum = falloff * np.exp(2j * np.pi * rng.random(falloff.shape))
        field = np.fft.irfft2(spectrum, s=(h, w))
        channels.append((field - field.mean()) / (field.std() + 1e-9))
    base = rng.uniform(60, 190, 3)
    return np.clip(base + rng.uniform(25, 60) * np.stack(channels, axis=-1), 0, 255)


def shapes_on_texture(rng: np.random.Generator) -> Image.Image:
    w, h = _size(rng)
    image = Image.fromarray(_pink_noise(rng, w, h).astype(np.uint8))
    _world_shapes(ImageDraw.Draw(image), rng, w, h)
    return image


def photo_like(rng: np.random.Generator) -> Image.Image:
    """A synthetic landscape (sky, sun, hills with texture) or a 1/f colour field."""
    w, h = _size(rng)
    if rng.random() < 0.5:
        return Image.fromarray(_pink_noise(rng, w, h).astype(np.uint8))
    ys = np.linspace(0, 1, h)[:, None, None]
    sky = np.array([90, 150, 230]) * (1 - ys) + np.array([200, 220, 250]) * ys
    image = Image.fromarray(np.broadcast_to(sky, (h, w, 3)).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    sun = rng.uniform(0.05, 0.12) * w
    draw.ellipse((w * 0.7 - sun, h * 0.2 - sun, w * 0.7 + sun, h * 0.2 + sun), fill=(255, 230, 120))
    horizon = h * rng.uniform(0.45, 0.7)
    hill = [(x, horizon + h * 0.08 * math.sin(x / w * rng.uniform(3, 9))) for x in range(0, w + 8, 8)]
    draw.polygon([*hill, (w, h), (0, h)], fill=(70, 120, 50))
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, 10, (h, w, 3))
    buffer = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(buffer, "JPEG", quality=80)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


GENERATORS: dict[str, Callable[[np.random.Generator], Image.Image]] = {
    "noise": noise,
    "gradient": gradient,
    "text": text,
    "shapes on white": shapes_on_white,
    "shapes on texture": shapes_on_texture,
    "photo-like": photo_like,
}


def generated_nonscenes(count: int, seed: int = 0) -> list[tuple[str, Image.Image]]:
    """`count` images of each generated kind, as (kind, image); fixed by `seed`."""
    rng = np.random.default_rng(seed)
    return [(kind, make(rng)) for kind, make in GENERATORS.items() for _ in range(count)]


def measure(model, images: list[tuple[str, Image.Image]], config=None) -> dict[str, dict[str, float]]:
    """Per kind: images, share flagged out of world, share at the token limit, mean confidence."""
    from captioner.decoding import caption_image

    rows: dict[str, list] = {}
    for kind, image in images:
        caption = caption_image(model, image, config)[0].best
        rows.setdefault(kind, []).append((bool(caption.out_of_world), caption.hit_limit, caption.confidence, caption.text))
    return {
        kind: {
            "images": len(r),
            "flagged": float(np.mean([x[0] for x in r])),
            "hit_limit": float(np.mean([x[1] for x in r])),
            "confidence": float(np.mean([x[2] for x in r])),
            "example": r[0][3],
        }
        for kind, r in rows.items()
    }


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    from captioner.loading import load_captioner

    p = argparse.ArgumentParser(prog="python -m captioner.world.nonscenes", description=__doc__.split("\n")[0])
    p.add_argument("model", nargs="?", default="builtin")
    p.add_argument("--count", type=int, default=40, help="generated images per kind (default 40)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--generation-config", default=None, help="apply this generation_config.json's settings")
    args = p.parse_args(argv)
    from captioner.world.evaluate import greedy_config, read_generation_config

    model = load_captioner(args.model)
    config = greedy_config(model, read_generation_config(args.generation_config)).with_(output_attentions=False)
    result = measure(model, generated_nonscenes(args.count, args.seed), config)
    print(format_rates(result))
    if model.calibration is None:
        print("(the model has no calibration.json: nothing is flagged)")
    return result


def format_rates(result: dict[str, dict[str, float]]) -> str:
    """The table `main` prints (and the model card quotes)."""
    lines = [f"{'non-scenes':<18} {'images':>6} {'flagged':>8} {'at limit':>9} {'confidence':>10}", "-" * 55]
    for kind, r in result.items():
        lines.append(
            f"{kind:<18} {r['images']:>6} {100 * r['flagged']:>7.1f}% {100 * r['hit_limit']:>8.1f}% {r['confidence']:>10.3f}"
        )
    total = sum(r["images"] for r in result.values())
    flagged = sum(r["flagged"] * r["images"] for r in result.values()) / total
    limit = sum(r["hit_limit"] * r["images"] for r in result.values()) / total
    lines += ["-" * 55, f"{'all':<18} {total:>6} {100 * flagged:>7.1f}% {100 * limit:>8.1f}%"]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
