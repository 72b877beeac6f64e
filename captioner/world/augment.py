"""Training's randomised rendering: the first renderer with wider ranges, then image-level damage.

Each training seed gets its own look: PLAIN_SHARE of them the first renderer's plain look at 64 px
(the world as the first renderer's evaluation draws it); the others a resolution between 64 and
160 px (scaled to the model's size by the same bicubic resize as the model's preprocessing), the wider ranges of
`render.TRAINING_VARIETY` (sizes, any rotation, more backgrounds, aliased or anti-aliased edges,
jittered colours), then maybe a blur, pixel noise, a colour cast and JPEG compression. All of it is
the first renderer's code; the second renderer (`second.py`) stays a hold-out.
"""

from __future__ import annotations

import io
import random

import numpy as np
from PIL import Image, ImageFilter

from .render import TRAINING_VARIETY, Scene, object_masks, render_scene, sample_scene

MIN_SIZE, MAX_SIZE = 64, 160
PLAIN_SHARE = 0.3


def damage(image: Image.Image, r: random.Random) -> Image.Image:
    """Blur, noise, colour cast and JPEG, each with some chance; deterministic given `r`."""
    scale = image.width / 64
    if r.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(r.uniform(0.2, 0.9) * scale))
    pixels = np.asarray(image, dtype=np.float32)
    if r.random() < 0.5:
        gain = np.array([r.uniform(0.92, 1.08) for _ in range(3)], dtype=np.float32)
        pixels = pixels * gain + r.uniform(-10, 10)
    if r.random() < 0.3:
        noise = np.random.default_rng(r.randrange(2**31)).normal(0, r.uniform(1, 6), pixels.shape)
        pixels = pixels + noise.astype(np.float32)
    image = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8), mode="RGB")
    if r.random() < 0.5:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=r.randint(55, 95))
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return image


def training_example(seed: int) -> tuple[Image.Image, Scene, list[np.ndarray]]:
    """(image at its own resolution, scene, object masks) of one training seed, randomised."""
    r = random.Random(f"training-look-{seed}")
    if r.random() < PLAIN_SHARE:
        scene = sample_scene(seed)
        return render_scene(scene), scene, object_masks(scene)
    scene = sample_scene(seed, r.randint(MIN_SIZE, MAX_SIZE), TRAINING_VARIETY)
    return damage(render_scene(scene), r), scene, object_masks(scene)
