"""Soak check: caption many images in a row in one process and print resident memory over time.

python -m captioner.bench.soak [--model builtin] [--captions 200] [--every 20]
"""

from __future__ import annotations

import argparse
import gc
import sys
from dataclasses import dataclass

import psutil
from PIL import Image

from captioner.config import DecodingConfig
from captioner.decoding import caption_image
from captioner.models.base import CaptionModel

MB = 1024 * 1024


@dataclass
class SoakReport:
    rss_mb: list[tuple[int, float]]  # (captions done, resident MB)
    warm_mb: float  # after the warm-up captions
    final_mb: float

    @property
    def growth_mb(self) -> float:
        return self.final_mb - self.warm_mb


def soak_images(n: int) -> list[Image.Image]:
    """A few different pictures to cycle through (no external data needed)."""
    colours = [(200, 40, 40), (40, 160, 60), (30, 60, 220), (240, 220, 40), (120, 40, 160)]
    images = []
    for i in range(n):
        im = Image.new("RGB", (96 + 8 * (i % 5), 80), colours[i % len(colours)])
        im.paste(colours[(i + 2) % len(colours)], (10 + i % 30, 10, 40 + i % 30, 50))
        images.append(im)
    return images


def soak(model: CaptionModel, captions: int = 200, every: int = 20, warmup: int = 10, log=print) -> SoakReport:
    """Caption `captions` images with rotating strategies; sample RSS every `every` captions."""
    process = psutil.Process()
    images = soak_images(7)
    configs = [
        DecodingConfig(strategy="greedy"),
        DecodingConfig(strategy="beam", num_beams=4),
        DecodingConfig(strategy="sample", top_p=0.9, seed=1, num_return_sequences=2),
    ]
    samples, warm = [], 0.0
    for i in range(1, captions + 1):
        caption_image(model, images[i % len(images)], [configs[i % len(configs)]])
        if i == warmup:
            gc.collect()
            warm = process.memory_info().rss / MB
        if i % every == 0 or i == captions:
            gc.collect()
            rss = process.memory_info().rss / MB
            samples.append((i, rss))
            log(f"{i:5d} captions  RSS {rss:8.1f} MB")
    final = samples[-1][1]
    return SoakReport(samples, warm or samples[0][1], final)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m captioner.bench.soak", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="builtin")
    p.add_argument("--captions", type=int, default=200)
    p.add_argument("--every", type=int, default=20)
    args = p.parse_args(argv)
    from captioner.loading import ModelLoadError, load_captioner

    try:
        model = load_captioner(args.model)
    except ModelLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"model: {model.info.name}; RSS after load {psutil.Process().memory_info().rss / MB:.1f} MB")
    report = soak(model, args.captions, args.every)
    print(f"growth after warm-up: {report.growth_mb:+.1f} MB over {args.captions} captions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
