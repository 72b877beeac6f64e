"""Command line: `python -m captioner IMAGE... [options]` prints one caption (or JSON line) per image."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Sequence

from captioner.config import STRATEGIES, DecodingConfig


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m captioner", description="Caption images with a ViT + GPT-2 captioner.")
    p.add_argument("images", nargs="+", help="image files to caption")
    p.add_argument("--model", default=None, help="builtin, a .pt/.safetensors file, a model directory or a hub id (default: resolved automatically)")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--strategy", choices=STRATEGIES, default=None)
    p.add_argument("--num-beams", type=int)
    p.add_argument("--length-penalty", type=float)
    p.add_argument("--top-k", type=int)
    p.add_argument("--top-p", type=float)
    p.add_argument("--temperature", type=float)
    p.add_argument("--repetition-penalty", type=float)
    p.add_argument("--no-repeat-ngram-size", type=int)
    p.add_argument("--min-new-tokens", type=int)
    p.add_argument("--max-new-tokens", type=int)
    p.add_argument("--num-return-sequences", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--json", action="store_true", help="print JSON Lines: one object per image")
    return p


def decoding_from_args(args: argparse.Namespace, defaults: DecodingConfig) -> DecodingConfig:
    """The model's defaults with every option the user gave."""
    names = [
        "strategy", "num_beams", "length_penalty", "top_k", "top_p", "temperature", "repetition_penalty",
        "no_repeat_ngram_size", "min_new_tokens", "max_new_tokens", "num_return_sequences", "seed",
    ]
    changes = {n: getattr(args, n) for n in names if getattr(args, n) is not None}
    return defaults.with_(**changes, output_attentions=False).validate()


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Imports are deferred so that `--help` and argument errors answer at once.
    from captioner.decoding import caption_image
    from captioner.images import ImageLoadError, load_image
    from captioner.loading import ModelLoadError, load_captioner, load_default_captioner

    try:
        model = load_captioner(args.model, dtype=args.dtype) if args.model else load_default_captioner(args.dtype)
        config = decoding_from_args(args, model.default_decoding)
    except (ModelLoadError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not args.json:
        print(f"model: {model.info.name}" + (f" ({model.info.reason})" if model.info.reason else ""), file=sys.stderr)

    failures = 0
    for image_path in args.images:
        try:
            image = load_image(image_path)
        except ImageLoadError as e:
            failures += 1
            print(f"error: {image_path}: {e}", file=sys.stderr)
            continue
        result = caption_image(model, image, [config])[0]
        if args.json:
            record = {"image": image_path, **result.best.to_dict(), "timings": result.timings, "model": model.info.name}
            if len(result.captions) > 1:
                record["sequences"] = [c.to_dict() for c in result.captions]
            print(json.dumps(record), flush=True)
        else:
            for c in result.captions:
                print(f"{image_path}\t{c.text}", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
