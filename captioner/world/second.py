"""A second, independent renderer of the scene world: the built-in model's hold-out.

The same world as `render.py` (1 to 3 objects of 5 shapes, 8 colours, 2 sizes, with the relations of
`render.relation`), sampled and drawn by other code, so that a model trained on the first renderer's
pixels is measured on the world rather than on one renderer:

- its own sampler: sizes spread +-20% around the two nominal sizes, any rotation, positions anywhere
  that keep every pair's relation clear, colours jittered around the named ones;
- PIL's own drawing (`ellipse`, `regular_polygon`, rotated rectangles and polygons), aliased, at a
  resolution between 64 and 512 px (sometimes drawn at twice that and reduced with Lanczos); the
  model's own preprocessing scales it;
- backgrounds of other kinds: flat, pixel noise, blurred blobs, linear gradients in any direction,
  radial gradients; then sometimes a blur, and JPEG compression at quality 60 to 95.

Training never uses this module (a test checks that `train.py` does not import it).
"""

from __future__ import annotations

import io
import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .render import COLOURS, SHAPES, SIZE_RADIUS, SIZES, Background, Scene, SceneObject, reading_order

MIN_SIZE, MAX_SIZE = 64, 512
SIZE_SPREAD = 0.2  # radius = nominal * U(0.8, 1.2)
REACH = 1.25  # every shape drawn here fits in a circle of REACH * radius
COLOUR_JITTER = 10  # per channel, 0..255 units
BACKGROUND_STYLES: tuple[str, ...] = ("flat", "pixel-noise", "blobs", "linear", "radial")


@dataclass(frozen=True)
class Look:
    """How one scene is drawn: everything besides the scene's content."""

    size: int  # pixels per side
    supersample: int  # 1: PIL's aliased drawing at `size`; 2: drawn at 2x, Lanczos-reduced
    style: str  # one of BACKGROUND_STYLES
    base: tuple[int, int, int]
    other: tuple[int, int, int]  # second colour of gradients
    direction: float  # radians, linear gradients; centre of radial ones is (fx, fy)
    fx: float
    fy: float
    amplitude: float  # pixel-noise std / blob amplitude
    blob_cells: int
    blur: float  # Gaussian blur radius in pixels of a 64 px image (0: none)
    jpeg_quality: int | None
    colours: tuple[tuple[int, int, int], ...]  # each object's drawn colour
    star_inner: float  # inner radius of stars, share of the outer one


def _muted(r: random.Random, level: float) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, level + r.uniform(-15, 15)))) for _ in range(3))  # type: ignore[return-value]


def _sample_objects(r: random.Random, size: int) -> tuple[SceneObject, ...]:
    n = r.choice((1, 2, 2, 3, 3))
    while True:
        kinds = [(r.choice(SIZES), r.choice(list(COLOURS)), r.choice(SHAPES)) for _ in range(n)]
        if n > 1 and r.random() < 0.2:
            kinds[n - 1] = kinds[0]  # a pair (or, rarely, three) that look alike
            if n == 3 and r.random() < 0.3:
                kinds[1] = kinds[0]
        elif len(set(kinds)) < n:
            continue
        if n == 3 and sum(k[0] == "big" for k in kinds) > 1:
            continue
        break
    for _ in range(10_000):
        objects = []
        for sz, colour, shape in kinds:
            radius = SIZE_RADIUS[sz] * size * r.uniform(1 - SIZE_SPREAD, 1 + SIZE_SPREAD)
            margin = REACH * radius + 1
            objects.append(
                SceneObject(
                    shape,
                    colour,
                    sz,
                    r.uniform(margin, size - margin),
                    r.uniform(margin, size - margin),
                    radius,
                    0.0 if shape == "circle" else r.uniform(0, 360),
                )
            )
        apart = all(
            math.dist((a.cx, a.cy), (b.cx, b.cy)) >= REACH * (a.radius + b.radius) + 2 * size / 64
            for i, a in enumerate(objects)
            for b in objects[i + 1 :]
        )
        if apart and reading_order(objects) is not None:
            return tuple(objects)
    raise RuntimeError("no layout found")  # pragma: no cover - never seen with the sizes above


def sample_second(seed: int) -> tuple[Scene, Look]:
    """The scene and how to draw it, for a seed (its own random stream, unlike `sample_scene`'s)."""
    r = random.Random(f"second-renderer-{seed}")
    size = r.randint(MIN_SIZE, MAX_SIZE)
    objects = _sample_objects(r, size)
    level = r.uniform(95, 165)
    far = min(max(level + r.choice((-1, 1)) * r.uniform(20, 45), 90), 170)
    style = r.choice(BACKGROUND_STYLES)
    look = Look(
        size=size,
        supersample=r.choice((1, 1, 2)),
        style=style,
        base=_muted(r, level),
        other=_muted(r, far),
        direction=r.uniform(0, 2 * math.pi),
        fx=r.uniform(0, 1),
        fy=r.uniform(0, 1),
        amplitude=r.uniform(3, 9) if style == "pixel-noise" else r.uniform(8, 20),
        blob_cells=r.randint(3, 12),
        blur=r.choice((0.0, 0.0, r.uniform(0.3, 0.9))),
        jpeg_quality=r.choice((None, r.randint(60, 95), r.randint(60, 95))),
        colours=tuple(
            tuple(int(min(255, max(0, c + r.uniform(-COLOUR_JITTER, COLOUR_JITTER)))) for c in COLOURS[o.colour])  # type: ignore[misc]
            for o in objects
        ),
        star_inner=r.uniform(0.38, 0.5),
    )
    background = Background(kind=f"second:{style}", colour=look.base, colour2=look.other)
    return Scene(objects, background, size, seed), look


def _backdrop(look: Look, rng: np.random.Generator) -> Image.Image:
    s = look.size
    base, other = np.array(look.base, np.float32), np.array(look.other, np.float32)
    yy, xx = (np.mgrid[0:s, 0:s].astype(np.float32) + 0.5) / s
    if look.style == "linear":
        t = (xx - 0.5) * math.cos(look.direction) + (yy - 0.5) * math.sin(look.direction) + 0.5
        pixels = base + (other - base) * np.clip(t, 0, 1)[..., None]
    elif look.style == "radial":
        t = np.hypot(xx - look.fx, yy - look.fy) / math.sqrt(2)
        pixels = base + (other - base) * t[..., None]
    elif look.style == "pixel-noise":
        pixels = base + rng.normal(0, look.amplitude, (s, s, 1)).astype(np.float32)
    elif look.style == "blobs":
        coarse = Image.fromarray(rng.uniform(-1, 1, (look.blob_cells, look.blob_cells)).astype(np.float32), mode="F")
        field = np.asarray(coarse.resize((s, s), Image.Resampling.BILINEAR))
        pixels = base + look.amplitude * field[..., None]
    else:
        pixels = np.broadcast_to(base, (s, s, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="RGB")


def _rotated(points: list[tuple[float, float]], obj: SceneObject, scale: float) -> list[tuple[float, float]]:
    """Unit outline points -> rotated by obj.angle, scaled by radius, moved to the centre (times `scale`)."""
    c, s = math.cos(math.radians(obj.angle)), math.sin(math.radians(obj.angle))
    return [((obj.cx + obj.radius * (x * c - y * s)) * scale, (obj.cy + obj.radius * (x * s + y * c)) * scale) for x, y in points]


def _draw_object(draw: ImageDraw.ImageDraw, obj: SceneObject, fill, scale: float, star_inner: float) -> None:
    cx, cy, rad = obj.cx * scale, obj.cy * scale, obj.radius * scale
    if obj.shape == "circle":
        draw.ellipse((cx - rad, cy - rad, cx + rad, cy + rad), fill=fill)
    elif obj.shape == "square":
        draw.regular_polygon((cx, cy, 0.85 * math.sqrt(2) * rad), 4, rotation=45 + obj.angle, fill=fill)
    elif obj.shape == "triangle":
        draw.regular_polygon((cx, cy, 1.25 * rad), 3, rotation=obj.angle, fill=fill)
    elif obj.shape == "star":
        tips = [
            (
                math.sin(k * math.pi / 5) * (1.2 if k % 2 == 0 else 1.2 * star_inner),
                -math.cos(k * math.pi / 5) * (1.2 if k % 2 == 0 else 1.2 * star_inner),
            )
            for k in range(10)
        ]
        draw.polygon(_rotated(tips, obj, scale), fill=fill)
    elif obj.shape == "cross":
        arm, half = 1.0, 0.33
        for w, h in ((arm, half), (half, arm)):  # two bars
            draw.polygon(_rotated([(-w, -h), (w, -h), (w, h), (-w, h)], obj, scale), fill=fill)
    else:
        raise ValueError(f"unknown shape {obj.shape!r}")


def render_second(scene: Scene, look: Look) -> Image.Image:
    """Draw the scene (RGB, look.size px square)."""
    rng = np.random.default_rng(scene.seed)
    image = _backdrop(look, rng)
    k = look.supersample
    if k > 1:
        image = image.resize((look.size * k,) * 2, Image.Resampling.NEAREST)
    draw = ImageDraw.Draw(image)
    for obj, colour in zip(scene.objects, look.colours):
        _draw_object(draw, obj, colour, k, look.star_inner)
    if k > 1:
        image = image.resize((look.size,) * 2, Image.Resampling.LANCZOS)
    if look.blur:
        image = image.filter(ImageFilter.GaussianBlur(look.blur * look.size / 64))
    if look.jpeg_quality is not None:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=look.jpeg_quality)
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return image


def second_masks(scene: Scene, look: Look) -> list[np.ndarray]:
    """Boolean (size, size) masks of the pixels each object covers, in scene order."""
    masks = []
    for obj in scene.objects:
        canvas = Image.new("L", (look.size, look.size), 0)
        _draw_object(ImageDraw.Draw(canvas), obj, 255, 1, look.star_inner)
        masks.append(np.asarray(canvas) > 127)
    return masks


def make_second_example(seed: int) -> tuple[Image.Image, Scene, list[np.ndarray]]:
    """(image, scene, object masks) for a seed, drawn by this renderer."""
    scene, look = sample_second(seed)
    return render_second(scene, look), scene, second_masks(scene, look)
