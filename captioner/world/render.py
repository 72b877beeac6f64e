"""The scene world: sampling and rendering of simple coloured shapes.

A scene holds 1 to 3 flat shapes on a muted background. Layouts are sampled
so that every pair of objects is clearly apart along one axis (one is clearly
left of / right of / above / below the other), which keeps the captions of
`captions.py` unambiguous. Everything is deterministic given the scene seed.

`Variety` holds the sampler's and renderer's ranges: the default is the world as evaluated,
`TRAINING_VARIETY` the wider ranges training draws from (sizes, any rotation, more backgrounds,
brighter and darker, other anti-aliasing) so that the model learns the world, not these pixels.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageDraw

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross")
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (245, 140, 20),
    "yellow": (240, 220, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 230),
    "purple": (150, 50, 200),
    "white": (248, 248, 248),
    "black": (20, 20, 20),
}
SIZES: tuple[str, ...] = ("small", "big")

# Radius (half the width of a circle) as a fraction of the image size.
SIZE_RADIUS: dict[str, float] = {"small": 0.086, "big": 0.156}  # 5.5 px, 10 px at 64 px
EXTENT = 1.2  # every shape fits in a circle of EXTENT * radius
GAP = 2.0 / 64  # minimum free space between the extents of two objects
AXIS_RATIO = 2.5  # a relation holds when |d_main| >= AXIS_RATIO * |d_other| (<= 22 deg off-axis)
MAX_ANGLE = 15.0  # degrees of rotation for shapes other than circles
SUPERSAMPLE = 4  # objects are drawn at 4x and box-filtered down (antialiasing)
PIXEL_NOISE = 3.0  # std of the per-pixel Gaussian noise, in 0..255 units

BACKGROUND_KINDS: tuple[str, ...] = ("plain", "hgradient", "vgradient", "noise", "stripes")
# training only: gradients along any direction, noise of any grain, per-pixel noise
EXTRA_BACKGROUND_KINDS: tuple[str, ...] = ("dgradient", "grain", "speckle")

Rng = random.Random | np.random.Generator | int | None


@dataclass(frozen=True)
class SceneObject:
    """One shape: its attributes and geometry in pixels (y grows downwards)."""

    shape: str
    colour: str
    size: str
    cx: float
    cy: float
    radius: float
    angle: float  # degrees, counter-clockwise

    @property
    def attributes(self) -> tuple[str, str, str]:
        """(size, colour, shape): what a caption says about the object."""
        return (self.size, self.colour, self.shape)


@dataclass(frozen=True)
class Background:
    """Background kind and its parameters (muted colours, far from object colours)."""

    kind: str  # one of BACKGROUND_KINDS
    colour: tuple[int, int, int]
    colour2: tuple[int, int, int]  # end colour of gradients; unused otherwise
    amplitude: float = 0.0  # noise / stripes amplitude
    period: float = 0.0  # stripes period in pixels
    noise_seed: int = 0
    grid: int = 5  # noise: cells of the smooth noise field


@dataclass(frozen=True)
class Variety:
    """Ranges the sampler draws from and how objects are anti-aliased."""

    size_jitter: float = 0.05  # radius = nominal * U(1 - j, 1 + j)
    max_angle: float = MAX_ANGLE  # degrees, shapes other than circles
    background_kinds: tuple[str, ...] = BACKGROUND_KINDS
    level: tuple[float, float] = (100, 160)  # background brightness range
    tint: float = 12  # per-channel spread around the level
    amplitude: tuple[float, float] = (8, 14)  # noise / stripes amplitude
    supersample: tuple[int, ...] = (SUPERSAMPLE,)  # drawn at k x and box-filtered (1: aliased)
    colour_jitter: float = 0.0  # per channel, around the named colour


TRAINING_VARIETY = Variety(
    size_jitter=0.25,
    max_angle=180.0,
    background_kinds=BACKGROUND_KINDS + EXTRA_BACKGROUND_KINDS,
    level=(85, 175),
    tint=18,
    amplitude=(4, 22),
    supersample=(1, 2, 4),
    colour_jitter=14,
)


@dataclass(frozen=True)
class Scene:
    """A full scene description; `render_scene` turns it into an image."""

    objects: tuple[SceneObject, ...]
    background: Background
    image_size: int
    seed: int
    supersample: int = SUPERSAMPLE
    colours: tuple[tuple[int, int, int], ...] = field(default=(), compare=False)  # drawn colours (default: named)


# ----------------------------------------------------------------------------
# geometry of relations


def relation(a: SceneObject, b: SceneObject) -> str | None:
    """The clear spatial relation "a REL b", or None when the pair is diagonal.

    REL is one of "left of", "right of", "above", "below".
    """
    dx, dy = b.cx - a.cx, b.cy - a.cy
    if abs(dx) >= AXIS_RATIO * abs(dy):
        return "left of" if dx > 0 else "right of"
    if abs(dy) >= AXIS_RATIO * abs(dx):
        return "above" if dy > 0 else "below"
    return None


def precedes(a: SceneObject, b: SceneObject) -> bool:
    """True when a comes before b in reading order: a is left of or above b."""
    return relation(a, b) in ("left of", "above")


def reading_order(objects: tuple[SceneObject, ...] | list[SceneObject]) -> list[int] | None:
    """Indices of the objects sorted so that each one is left of or above all later ones.

    Returns None when some pair has no clear relation or the "precedes"
    relation has a cycle (then no such order exists).
    """
    n = len(objects)
    wins = [0] * n
    for i in range(n):
        for j in range(n):
            if i != j:
                if relation(objects[i], objects[j]) is None:
                    return None
                wins[i] += precedes(objects[i], objects[j])
    order = sorted(range(n), key=lambda i: -wins[i])
    # a tournament is acyclic iff its win counts are n-1, n-2, ..., 0
    if sorted(wins, reverse=True) != list(range(n - 1, -1, -1)):
        return None
    return order


# ----------------------------------------------------------------------------
# sampling


def _seed_from(rng: Rng) -> int:
    if rng is None:
        return random.randrange(2**31)
    if isinstance(rng, (int, np.integer)):
        return int(rng)
    if isinstance(rng, random.Random):
        return rng.randrange(2**31)
    return int(rng.integers(2**31))


def _sample_background(r: random.Random, v: Variety) -> Background:
    kind = r.choice(v.background_kinds)

    def muted(level: float) -> tuple[int, int, int]:
        return tuple(int(round(level + r.uniform(-v.tint, v.tint))) for _ in range(3))  # type: ignore[return-value]

    lo, hi = v.level
    level = r.uniform(lo, hi)
    level2 = level + r.choice((-1, 1)) * r.uniform(25, 40)
    level2 = min(max(level2, lo - 5), hi + 5)
    background = Background(
        kind=kind,
        colour=muted(level),
        colour2=muted(level2),
        amplitude=r.uniform(*v.amplitude) if kind in ("noise", "stripes", "grain", "speckle") else 0.0,
        period=r.uniform(5, 10) if kind == "stripes" else 0.0,
        noise_seed=r.randrange(2**31),
    )
    if kind == "grain":
        background = Background(**{**background.__dict__, "grid": r.randint(3, 16)})
    return background


def _sample_attributes(r: random.Random, n: int) -> list[tuple[str, str, str]]:
    """Attributes of n objects; with some chance two (or three) are identical."""
    while True:
        attrs = [(r.choice(SIZES), r.choice(list(COLOURS)), r.choice(SHAPES)) for _ in range(n)]
        if n >= 2 and r.random() < 0.2:
            attrs[1] = attrs[0]
            if n == 3 and r.random() < 0.3:
                attrs[2] = attrs[0]
        elif len(set(attrs)) < n:
            continue  # accidental duplicates would skew the counts
        if n == 3 and sum(a[0] == "big" for a in attrs) > 1:
            continue  # three objects only fit with at most one big one
        return attrs


def _layout_ok(objects: list[SceneObject], image_size: int) -> bool:
    gap = GAP * image_size
    for i, a in enumerate(objects):
        for b in objects[i + 1 :]:
            if math.hypot(a.cx - b.cx, a.cy - b.cy) < EXTENT * (a.radius + b.radius) + gap:
                return False
    return reading_order(objects) is not None


def sample_scene(rng: Rng = None, image_size: int = 64, variety: Variety = Variety()) -> Scene:
    """Sample a scene of 1 to 3 non-overlapping objects; deterministic given the seed.

    `rng` may be an int seed, a `random.Random`, a numpy `Generator` (one seed is
    drawn from it) or None (random). `variety` widens the ranges (training).
    """
    v = variety
    seed = _seed_from(rng)
    r = random.Random(seed)
    n = r.choice((1, 2, 2, 3, 3))
    attrs = _sample_attributes(r, n)
    while True:
        objects = []
        for size, colour, shape in attrs:
            radius = SIZE_RADIUS[size] * image_size * r.uniform(1 - v.size_jitter, 1 + v.size_jitter)
            lo = EXTENT * radius + 1
            hi = image_size - lo
            objects.append(
                SceneObject(
                    shape=shape,
                    colour=colour,
                    size=size,
                    cx=round(r.uniform(lo, hi), 2),
                    cy=round(r.uniform(lo, hi), 2),
                    radius=round(radius, 2),
                    angle=0.0 if shape == "circle" else round(r.uniform(-v.max_angle, v.max_angle), 1),
                )
            )
        if _layout_ok(objects, image_size):
            break
    background = _sample_background(r, v)
    if v == Variety():
        return Scene(objects=tuple(objects), background=background, image_size=image_size, seed=seed)
    colours = tuple(
        tuple(int(min(255, max(0, c + r.uniform(-v.colour_jitter, v.colour_jitter)))) for c in COLOURS[o.colour]) for o in objects
    )
    return Scene(tuple(objects), background, image_size, seed, r.choice(v.supersample), colours)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------
# rendering


def _polygon(obj: SceneObject) -> list[tuple[float, float]]:
    """Outline of a non-circle shape in pixel coordinates (unit shape scaled by radius)."""
    if obj.shape == "square":
        s = 0.82
        pts = [(-s, -s), (s, -s), (s, s), (-s, s)]
    elif obj.shape == "triangle":
        # equilateral, pointing up, centroid at the centre
        pts = [(1.2 * math.cos(math.radians(a)), -1.2 * math.sin(math.radians(a))) for a in (90, 210, 330)]
    elif obj.shape == "star":
        pts = []
        for k in range(10):
            rad = 1.2 if k % 2 == 0 else 0.5
            a = math.radians(90 + 36 * k)
            pts.append((rad * math.cos(a), -rad * math.sin(a)))
    elif obj.shape == "cross":
        w, l = 0.36, 1.05
        pts = [(-w, -l), (w, -l), (w, -w), (l, -w), (l, w), (w, w), (w, l), (-w, l), (-w, w), (-l, w), (-l, -w), (-w, -w)]
    else:
        raise ValueError(f"unknown shape {obj.shape!r}")
    c, s_ = math.cos(math.radians(obj.angle)), math.sin(math.radians(obj.angle))
    # rotate counter-clockwise on screen (y points down)
    return [(obj.cx + obj.radius * (x * c + y * s_), obj.cy + obj.radius * (-x * s_ + y * c)) for x, y in pts]


def object_alpha(obj: SceneObject, image_size: int, supersample: int = SUPERSAMPLE) -> np.ndarray:
    """Antialiased coverage in [0, 1] of one object, shape (H, W) float32."""
    k = supersample
    canvas = Image.new("L", (image_size * k, image_size * k), 0)
    draw = ImageDraw.Draw(canvas)
    if obj.shape == "circle":
        r = obj.radius
        draw.ellipse([(obj.cx - r) * k, (obj.cy - r) * k, (obj.cx + r) * k - 1, (obj.cy + r) * k - 1], fill=255)
    else:
        draw.polygon([(x * k, y * k) for x, y in _polygon(obj)], fill=255)
    small = canvas.resize((image_size, image_size), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32) / 255.0


def _background(bg: Background, size: int) -> np.ndarray:
    c1 = np.array(bg.colour, dtype=np.float32)
    c2 = np.array(bg.colour2, dtype=np.float32)
    t = (np.arange(size, dtype=np.float32) + 0.5) / size
    img = np.broadcast_to(c1, (size, size, 3)).astype(np.float32)
    if bg.kind == "hgradient":
        img = c1 + (c2 - c1) * t[None, :, None]
    elif bg.kind == "vgradient":
        img = c1 + (c2 - c1) * t[:, None, None]
    elif bg.kind == "dgradient":
        angle = bg.noise_seed % 360 * math.pi / 180
        yy, xx = np.meshgrid(t, t, indexing="ij")
        along = np.clip((xx - 0.5) * math.cos(angle) + (yy - 0.5) * math.sin(angle) + 0.5, 0, 1)
        img = c1 + (c2 - c1) * along[:, :, None]
    elif bg.kind == "speckle":
        img = img + np.random.default_rng(bg.noise_seed).normal(0, bg.amplitude / 3, (size, size, 1)).astype(np.float32)
    elif bg.kind in ("noise", "grain"):
        grid = np.random.default_rng(bg.noise_seed).uniform(-1, 1, (bg.grid, bg.grid)).astype(np.float32)
        smooth = Image.fromarray(grid, mode="F").resize((size, size), Image.Resampling.BICUBIC)
        img = img + bg.amplitude * np.clip(np.asarray(smooth), -1, 1)[:, :, None]
    elif bg.kind == "stripes":
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        diag = (xx + yy) if bg.noise_seed % 2 else (xx - yy)
        img = img + bg.amplitude * np.sin(2 * np.pi * diag / bg.period)[:, :, None]
    return img


def render_scene(scene: Scene) -> Image.Image:
    """Render the scene as an RGB image of image_size x image_size pixels."""
    size = scene.image_size
    img = _background(scene.background, size)
    colours = scene.colours or tuple(COLOURS[o.colour] for o in scene.objects)
    for obj, colour in zip(scene.objects, colours):
        alpha = object_alpha(obj, size, scene.supersample)[:, :, None]
        img = img * (1 - alpha) + np.array(colour, dtype=np.float32) * alpha
    noise = np.random.default_rng(scene.seed).normal(0.0, PIXEL_NOISE, img.shape)
    return Image.fromarray(np.clip(np.rint(img + noise), 0, 255).astype(np.uint8), mode="RGB")


def object_masks(scene: Scene) -> list[np.ndarray]:
    """Boolean (H, W) masks of the pixels each object covers (at least half), in scene order."""
    return [object_alpha(obj, scene.image_size, scene.supersample) >= 0.5 for obj in scene.objects]


def mask_cells(mask: np.ndarray, rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """Per patch cell of a (H, W) boolean mask: (any pixel covered, share of pixels covered), each (rows, cols).

    Training's attention targets and the evaluation's attention hits both use this."""
    h, w = mask.shape
    if h % rows == 0 and w % cols == 0:
        share = mask.reshape(rows, h // rows, cols, w // cols).mean(axis=(1, 3), dtype=np.float32)
        return share > 0, share
    share = np.zeros((rows, cols), dtype=np.float32)
    for r in range(rows):
        for c in range(cols):
            share[r, c] = mask[r * h // rows : (r + 1) * h // rows, c * w // cols : (c + 1) * w // cols].mean()
    return share > 0, share
