"""Command line: `python -m captioner IMAGE... [options]` prints one caption (or JSON line) per image.

Whatever goes wrong ends in a one-line message on stderr, never a traceback: a model that cannot be
loaded or settings out of range stop the run (exit status 2); an image that cannot be read or
captioned is named, and the next image is captioned (exit status 1 at the end).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Sequence

from captioner.cli_options import add_decoding_options, add_model_options, decoding_from_args
from captioner.config import DecodingConfig
from captioner.errors import one_line, unforeseen_line
from captioner.files import escape_name

EXPLAIN_METHODS = ("attention", "relevance", "gradcam", "occlusion")  # captioner.explain.METHODS, without importing torch


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m captioner", description="Caption images with a ViT + GPT-2 captioner.")
    p.add_argument("images", nargs="+", help="image files to caption")
    p.add_argument("--prefix", default=None, help="start every caption with this text and continue from it")
    p.add_argument(
        "--json", action="store_true", help="print JSON Lines: one object per image (beam searches: with their beam_tree)"
    )
    p.add_argument(
        "--explain",
        choices=EXPLAIN_METHODS,
        default=None,
        help="also explain each word of the best caption (per-word maps over the patch grid; captioner.explain)",
    )
    add_model_options(p)
    add_decoding_options(p)
    return p


def json_line(record: dict[str, Any]) -> str:
    """One line of strict JSON: a NaN or an infinity is an error, never written as a bare NaN."""
    return json.dumps(record, allow_nan=False)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Imports are deferred so that `--help` and argument errors answer at once.
    from captioner.decoding.prefix import prefix_ids
    from captioner.loading import ModelLoadError, load_captioner, load_default_captioner

    try:
        model = load_captioner(args.model, dtype=args.dtype) if args.model else load_default_captioner(args.dtype)
        config, notice = decoding_from_args(args, model.default_decoding).within_limit(model.max_new_tokens_limit)
        prefix = prefix_ids(model, args.prefix)
    except (ModelLoadError, ValueError) as e:
        print(f"error: {_one_line(e)}", file=sys.stderr)
        return 2
    except Exception as e:  # a failure nobody foresaw still gets one line, not a traceback
        print(f"error: the model could not be loaded: {unforeseen_line(e, limit=500)}", file=sys.stderr)
        return 2
    print(f"model: {model.info.name}" + (f" ({model.info.reason})" if model.info.reason else ""), file=sys.stderr)
    for note in [*model.info.notes, *([notice] if notice else [])]:
        print(f"note: {note}", file=sys.stderr)
    if args.explain:
        from captioner.explain import check_explainable

        try:
            check_explainable(model)
        except ValueError as e:
            print(f"error: --explain: {e}", file=sys.stderr)
            return 2
    failures = sum(not _caption_one(model, path, config, args.json, prefix, args.explain) for path in args.images)
    return 1 if failures else 0


def _caption_one(
    model: Any, image_path: str, config: DecodingConfig, as_json: bool, prefix: list[int], explain: str | None = None
) -> bool:
    """Caption one image and print it; any error is printed as one line naming the file. True if captioned."""
    from captioner.decoding import caption_image
    from captioner.images import ImageLoadError, load_image

    shown = escape_name(image_path)  # a name's bytes that are not UTF-8 as \xNN: any UTF-8 stdout prints it
    try:
        image = load_image(image_path)
        result = caption_image(model, image, [config], prefix)[0]
        explanation = None
        if explain:
            from captioner.explain import explain as explain_caption

            explanation = explain_caption(model, image, result.best, explain)
        if as_json:
            record = {
                "image": shown,
                **result.best.to_dict(),
                "timings": result.timings,
                "model": model.info.name,
                "decoding": result.config.to_dict(),
            }
            if len(result.captions) > 1:
                record["sequences"] = [c.to_dict() for c in result.captions]
            if result.beam_tree is not None:
                record["beam_tree"] = result.beam_tree.to_dict()
            if explanation is not None:
                record["explanation"] = explanation.to_dict()
            lines = [json_line(record)]
        else:
            lines = [f"{shown}\t{c.text}" for c in result.captions]
            if explanation is not None:
                lines += [_explained_word(w, explanation.grid) for w in explanation.words]
    except ImageLoadError as e:
        print(f"error: {shown}: {_one_line(e)}", file=sys.stderr)
        return False
    except Exception as e:  # the engine, the model or the JSON encoder: named, and the next image goes on
        print(f"error: {shown}: captioning failed: {unforeseen_line(e, limit=500)}", file=sys.stderr)
        return False
    for line in lines:
        print(line, flush=True)
    return True


def _explained_word(word: Any, grid: tuple[int, int]) -> str:
    """'  word: strongest at row r, col c of the rows x cols grid' (1-based), and the flag for an unsupported word."""
    r, c = divmod(int(word.map.argmax()), grid[1])
    flag = (
        ""
        if word.supported is not False
        else (" (no single region: several together)" if word.spread else " (not supported by the image)")
    )
    return f"  {word.word}: strongest at row {r + 1}, col {c + 1} of {grid[0]}x{grid[1]}{flag}"


def _one_line(e: BaseException) -> str:
    return one_line(e, limit=500)


if __name__ == "__main__":
    sys.exit(main())
