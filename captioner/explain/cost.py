"""`python -m captioner.explain.cost [--reps 3]`: what an explanation costs against the caption itself.

The full-size VisionGPT2 with random weights (captioner/bench/contenders.py builds it as a user's
`captioner.pt`), one photo-like image, a caption of exactly 16 tokens (greedy, min = max new tokens).
Per repetition, interleaved: the caption (preprocess, encode, decode), then each method on that caption;
the medians' ratios to the caption's time are printed, with the targets (gradient <= 3x, occlusion
7x7 <= 10x). A benchmark module: it imports captioner.bench, which the runtime never does.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from captioner.config import DecodingConfig
from captioner.decoding import caption_image
from captioner.explain import explain

TARGETS = {"relevance": 3.0, "gradcam": 3.0, "occlusion": 10.0}


def photo(seed: int = 0) -> Image.Image:
    """A gradient background with a few filled shapes (as the throughput benchmark draws its inputs)."""
    rng = np.random.default_rng(seed)
    top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    ramp = np.linspace(0, 1, 240)[:, None, None]
    image = Image.fromarray((top * (1 - ramp) + bottom * ramp).repeat(320, axis=1).astype("uint8"), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        x, y, size = rng.integers(0, 260), rng.integers(0, 180), rng.integers(20, 60)
        draw.ellipse([x, y, x + size, y + size], fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
    return image


def measure(model, image: Image.Image, methods: Sequence[str], reps: int, tokens: int = 16) -> dict[str, list[float]]:
    """Seconds per repetition of the caption and of each method, interleaved."""
    config = DecodingConfig(strategy="greedy", max_new_tokens=tokens, min_new_tokens=tokens, num_alternatives=1)
    seconds: dict[str, list[float]] = {"caption": [], **{m: [] for m in methods}}
    caption = caption_image(model, image, [config])[0].best  # warm-up (one teacher-forced pass of each kind)
    explain(model, image, caption, "relevance")
    for _ in range(reps):
        t0 = time.perf_counter()
        caption = caption_image(model, image, [config])[0].best
        seconds["caption"].append(time.perf_counter() - t0)
        assert len(caption.token_ids) == tokens
        for m in methods:
            t0 = time.perf_counter()
            explain(model, image, caption, m, **({"grid": (7, 7)} if m == "occlusion" else {}))
            seconds[m].append(time.perf_counter() - t0)
    return seconds


def report(seconds: dict[str, list[float]]) -> list[str]:
    base = statistics.median(seconds["caption"])
    lines = [f"{'what':<24} {'median s':>9} {'x caption':>10}  target", f"{'caption (16 tokens)':<24} {base:9.3f} {1.0:10.2f}"]
    for m, values in seconds.items():
        if m == "caption":
            continue
        ratio = statistics.median(values) / base
        target = TARGETS.get(m)
        mark = "" if target is None else f"<= {target:g}x " + ("ok" if ratio <= target else "MISSED")
        name = "occlusion 7x7" if m == "occlusion" else m
        lines.append(f"{name:<24} {statistics.median(values):9.3f} {ratio:10.2f}  {mark}")
    return lines


def main(argv: Sequence[str] | None = None) -> list[str]:
    p = argparse.ArgumentParser(prog="python -m captioner.explain.cost", description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--methods", default="attention,relevance,gradcam,occlusion")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    from captioner.bench.contenders import save_seed_checkpoint, word_tokenizer
    from captioner.loading import load_captioner

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        save_seed_checkpoint(Path(scratch), word_tokenizer())
        model = load_captioner(str(Path(scratch) / "captioner.pt"))
    seconds = measure(model, photo(), args.methods.split(","), args.reps)
    lines = report(seconds)
    print("\n".join(lines))
    print(f"full-size VisionGPT2 (random weights), {args.threads} threads, {args.reps} interleaved repetitions, medians")
    return lines


if __name__ == "__main__":
    main()
