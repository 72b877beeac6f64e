"""Render scene-world examples to a folder: ``python -m captioner.world OUT_DIR -n 16``.

Writes ``scene_<seed>.png`` per scene, ``captions.jsonl`` (seed, file,
references, facts) and, with ``--grid``, one upscaled contact sheet.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image

from .captions import scene_facts
from .dataset import EVAL_SEED_OFFSET, make_examples


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    ap = argparse.ArgumentParser(prog="python -m captioner.world", description=__doc__)
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("-n", "--count", type=int, default=16, help="number of scenes")
    ap.add_argument("--start", type=int, default=EVAL_SEED_OFFSET, help="first seed (default: evaluation split)")
    ap.add_argument("--image-size", type=int, default=64)
    ap.add_argument("--scale", type=int, default=1, help="nearest-neighbour upscaling of the saved PNGs")
    ap.add_argument("--grid", action="store_true", help="also write grid.png (8 per row, 4x upscaled)")
    args = ap.parse_args(argv)

    args.out_dir.mkdir(parents=True, exist_ok=True)
    images = []
    with open(args.out_dir / "captions.jsonl", "w") as f:
        seeds = range(args.start, args.start + args.count)
        for seed, (image, scene, refs) in zip(seeds, make_examples(seeds, args.image_size)):
            name = f"scene_{seed}.png"
            big = image.resize((image.width * args.scale,) * 2, Image.Resampling.NEAREST) if args.scale > 1 else image
            big.save(args.out_dir / name)
            facts = sorted(scene_facts(scene), key=repr)
            f.write(json.dumps({"seed": seed, "file": name, "references": refs, "facts": facts}) + "\n")
            images.append(image)
    if args.grid and images:
        cell, pad, cols = args.image_size * 4, 4, 8
        rows = (len(images) + cols - 1) // cols
        grid = Image.new("RGB", (cols * (cell + pad) - pad, rows * (cell + pad) - pad), "white")
        for k, image in enumerate(images):
            grid.paste(
                image.resize((cell, cell), Image.Resampling.NEAREST), ((k % cols) * (cell + pad), (k // cols) * (cell + pad))
            )
        grid.save(args.out_dir / "grid.png")
    print(f"wrote {len(images)} scenes to {args.out_dir}")


if __name__ == "__main__":
    main()
