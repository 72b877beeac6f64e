"""`python -m captioner.world.evaluate builtin [--scenes 1000] [--renderer second] [--json out.json]`: measure a captioner on the scene world.

Greedy captions of scenes from the EVAL seed range (never used in training), drawn by the first
renderer (`render.py`, the one training draws with) or by the second (`second.py`, independent code
that training never sees), scored by:

- fact precision / recall, pooled over all scenes: share of stated facts that are true of the
  image (checked against `all_true_facts`, so a true relation the references do not state is not
  an error) and share of the required facts (`scene_facts`) that are stated;
- exact match against any of the three reference captions; corpus BLEU-4 and CIDEr-D;
- attention localisation: for every generated colour or shape word, the cross-attention map of
  the step that produced it (one decoder layer, heads averaged, class token dropped) has its peak
  in some patch; the word is a hit when that patch's pixel cell overlaps (at least one pixel) the
  mask of an object the word's mention describes (same size, colour and shape). Words of
  mentions that describe no object in the scene count as misses. Reported per layer and for the
  best layer; a stricter variant (the cell is at least half covered by the object) is reported too;
- bf16 agreement: share of scenes whose greedy token ids in bfloat16 equal those in float32;
- captions that stopped at the token limit instead of ending, captions flagged out of world (the
  model's calibration, `decoding/confidence.py`), and the mean confidence.

The decoding is greedy with the model's default settings (`--generation-config FILE` applies a
Hugging Face generation_config.json's settings explicitly).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch

from captioner.config import DecodingConfig
from captioner.decoding import caption_image
from captioner.models.base import CaptionModel
from captioner.metrics import cider_d, corpus_bleu4, exact_match
from captioner.world import (
    all_true_facts,
    example_with_masks,
    mask_cells,
    match_mentions_to_objects,
    parse_caption,
    reference_captions,
    scene_facts,
    split_seeds,
)

GREEDY = DecodingConfig(strategy="greedy", max_new_tokens=32, num_alternatives=1, output_attentions=True)
# settings of a generation_config.json that map one to one onto DecodingConfig
GENERATION_KEYS = ("max_new_tokens", "no_repeat_ngram_size", "repetition_penalty", "length_penalty", "num_beams")


def second_example(seed: int, image_size: int = 64):
    """(image, scene, object masks) of the second renderer (imported here only: training never loads it)."""
    from captioner.world.second import make_second_example

    return make_second_example(seed)


def training_look_example(seed: int, image_size: int = 64):
    """(image, scene, object masks) in training's randomised looks (augment.py), e.g. of VAL seeds."""
    from captioner.world.augment import training_example

    return training_example(seed)


RENDERERS = {"first": example_with_masks, "second": second_example, "training-look": training_look_example}


def read_generation_config(path: str | Path | None) -> dict[str, Any] | None:
    """A generation_config.json's settings (None without a path)."""
    return json.loads(Path(path).read_text()) if path else None


def greedy_config(model: CaptionModel, generation_config: dict[str, Any] | None = None) -> DecodingConfig:
    """Greedy decoding with the model's defaults (limit, processors), or a generation_config's settings."""
    base = model.default_decoding
    config = GREEDY.with_(
        max_new_tokens=min(32, base.max_new_tokens),
        no_repeat_ngram_size=base.no_repeat_ngram_size,
        repetition_penalty=base.repetition_penalty,
    )
    if generation_config:
        config = config.with_(**{k: generation_config[k] for k in GENERATION_KEYS if k in generation_config})
    return config.with_(strategy="greedy", max_new_tokens=min(config.max_new_tokens, model.max_new_tokens_limit))


def evaluate_model(
    model: CaptionModel,
    seeds: Iterable[int],
    *,
    attention: bool = True,
    bf16_model: CaptionModel | None = None,
    image_size: int = 64,
    progress: bool = False,
    renderer: str = "first",
    config: DecodingConfig | None = None,
    records: bool = False,
) -> dict[str, Any]:
    """Greedy-caption the scenes of `seeds` and return every metric (see module docstring).

    `records=True` adds "records": per scene, the caption, its token probabilities and entropies,
    whether it hit the limit and whether it matched a reference (what calibration reads)."""
    seeds = list(seeds)
    config = (config or greedy_config(model)).with_(output_attentions=attention)
    examples_of = RENDERERS[renderer]
    hyps, refs = [], []
    n_exact = stated = stated_true = required = required_stated = 0
    prec_scene, rec_scene = [], []
    layers = model.num_layers
    hits = np.zeros(layers, dtype=np.int64)
    strict_hits = np.zeros(layers, dtype=np.int64)
    n_words = 0
    bf16_same = hit_limit = flagged = 0
    confidences, per_scene = [], []
    examples = []
    iterator: Iterable[int] = seeds
    if progress:
        from tqdm import tqdm

        iterator = tqdm(seeds, desc="evaluate", unit="scene", leave=False)
    t0 = time.perf_counter()
    for seed in iterator:
        image, scene, masks = examples_of(seed, image_size)
        references = reference_captions(scene)
        caption = caption_image(model, image, config)[0].best
        text = caption.text
        hit_limit += caption.hit_limit
        flagged += bool(caption.out_of_world)
        confidences.append(caption.confidence)
        hyps.append(text)
        refs.append(references)
        n_exact += exact_match(text, references)
        if records:
            per_scene.append(
                {
                    "seed": seed,
                    "caption": text,
                    "token_probs": caption.token_probs,
                    "entropies": caption.entropies,
                    "hit_limit": caption.hit_limit,
                    "exact": bool(exact_match(text, references)),
                }
            )
        parsed = parse_caption(text)
        pred, true, ok = set(parsed.facts), set(scene_facts(scene)), set(all_true_facts(scene))
        stated += len(pred)
        stated_true += len(pred & ok)
        required += len(true)
        required_stated += len(pred & true)
        prec_scene.append(len(pred & ok) / len(pred) if pred else float(not true))
        rec_scene.append(len(pred & true) / len(true) if true else 1.0)
        if len(examples) < 10:
            examples.append({"seed": seed, "caption": text, "references": references})
        if attention and caption.attentions is not None:
            rows, cols = caption.attentions.shape[-2:]
            cells = [mask_cells(m, rows, cols) for m in masks]
            for word, objects in match_mentions_to_objects(parsed, scene):
                if word >= len(caption.attentions):
                    continue
                n_words += 1
                if not objects:
                    continue
                covered = np.logical_or.reduce([cells[k][0] for k in objects])
                share = np.maximum.reduce([cells[k][1] for k in objects])
                maps = caption.attentions[word].mean(axis=1)  # (layers, rows, cols)
                for layer in range(layers):
                    r, c = np.unravel_index(int(np.argmax(maps[layer])), (rows, cols))
                    hits[layer] += bool(covered[r, c])
                    strict_hits[layer] += bool(share[r, c] >= 0.5)
        if bf16_model is not None:
            other = caption_image(bf16_model, image, config.with_(output_attentions=False))[0].best
            bf16_same += other.token_ids == caption.token_ids
    n = len(seeds)
    result: dict[str, Any] = {
        "scenes": n,
        "seeds": [seeds[0], seeds[-1]] if seeds else [],
        "fact_precision": stated_true / stated if stated else 0.0,
        "fact_recall": required_stated / required if required else 1.0,
        "fact_precision_mean_per_scene": float(np.mean(prec_scene)) if n else 0.0,
        "fact_recall_mean_per_scene": float(np.mean(rec_scene)) if n else 0.0,
        "exact_match": n_exact / n if n else 0.0,
        "bleu4": corpus_bleu4(hyps, refs) if n else 0.0,
        "cider_d": cider_d(hyps, refs) if n else 0.0,
        "hit_limit": hit_limit / n if n else 0.0,
        "out_of_world": flagged / n if n else 0.0,
        "calibrated": model.calibration is not None,
        "confidence_mean": float(np.mean(confidences)) if n else 0.0,
        "confidence_p01": float(np.quantile(confidences, 0.01)) if n else 0.0,
        "renderer": renderer,
        "decoding": {k: getattr(config, k) for k in GENERATION_KEYS},
        "seconds": time.perf_counter() - t0,
        "examples": examples,
    }
    if attention:
        per_layer = (hits / n_words).tolist() if n_words else [0.0] * layers
        strict = (strict_hits / n_words).tolist() if n_words else [0.0] * layers
        best = int(np.argmax(per_layer)) if per_layer else 0
        result.update(
            attention_words=n_words,
            attention_per_layer=per_layer,
            attention_best_layer=best,
            attention_best=per_layer[best] if per_layer else 0.0,
            attention_strict_per_layer=strict,
            attention_strict_best=max(strict) if strict else 0.0,
        )
    if bf16_model is not None:
        result["bf16_identical"] = bf16_same / n if n else 0.0
    if records:
        result["records"] = per_scene
    return result


BARS = {"fact_precision": 0.95, "fact_recall": 0.95, "exact_match": 0.85, "attention_best": 0.80, "bf16_identical": 0.99}


def format_table(r: dict[str, Any]) -> str:
    """The plain-text table the command prints (and the model card quotes)."""
    lines = [f"{'metric':<34} {'value':>8}  bar", "-" * 52]

    def row(name: str, key: str, pct: bool = True) -> None:
        if key not in r:
            return
        v = r[key]
        value = f"{100 * v:7.1f}%" if pct else f"{v:8.3f}"
        bar = BARS.get(key)
        mark = "" if bar is None else (f">= {100 * bar:.0f}% " + ("ok" if v >= bar else "MISSED"))
        lines.append(f"{name:<34} {value:>8}  {mark}")

    row("fact precision (stated are true)", "fact_precision")
    row("fact recall (true are stated)", "fact_recall")
    row("exact match (any reference)", "exact_match")
    row("BLEU-4", "bleu4", pct=False)
    row("CIDEr-D", "cider_d", pct=False)
    if "attention_per_layer" in r:
        for i, v in enumerate(r["attention_per_layer"]):
            lines.append(f"{f'attention peak in object, layer {i}':<34} {100 * v:7.1f}%")
        row(f"attention, best layer ({r['attention_best_layer']})", "attention_best")
        row("attention strict (cell >= 50%)", "attention_strict_best")
    row("bf16 greedy identical to fp32", "bf16_identical")
    row("captions at the token limit", "hit_limit")
    if r.get("calibrated", True):
        row("flagged out of world", "out_of_world")
    row("confidence, mean", "confidence_mean", pct=False)
    lines.append("-" * 52)
    extra = f", {r['attention_words']} colour/shape words" if "attention_words" in r else ""
    renderer = r.get("renderer", "first")
    lines.append(f"{r['scenes']} eval scenes (seeds {r['seeds'][0]}..{r['seeds'][-1]}), {renderer} renderer{extra}")
    if "decoding" in r:
        settings = ", ".join(f"{k} {v}" for k, v in r["decoding"].items() if k != "num_beams")
        lines.append(f"greedy, {settings}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m captioner.world.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("model", nargs="?", default="builtin", help="builtin, a checkpoint, a directory (default builtin)")
    p.add_argument("--scenes", type=int, default=1000, help="number of eval scenes (default 1000)")
    p.add_argument("--start", type=int, default=0, help="first eval seed index (default 0)")
    p.add_argument("--json", default=None, help="write all numbers to this JSON file")
    p.add_argument("--no-bf16", action="store_true", help="skip the bfloat16 agreement check")
    p.add_argument("--no-attention", action="store_true", help="skip attention localisation")
    p.add_argument(
        "--renderer",
        choices=sorted(RENDERERS),
        default="first",
        help="first: the renderer training uses; second: independent code training never sees",
    )
    p.add_argument("--generation-config", default=None, help="apply this generation_config.json's settings")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)

    from captioner.loading import load_captioner

    torch.set_num_threads(args.threads)
    model = load_captioner(args.model)
    bf16 = None if args.no_bf16 else load_captioner(args.model, dtype="bfloat16")
    generation = read_generation_config(args.generation_config)
    result = evaluate_model(
        model,
        split_seeds("eval", args.scenes, args.start),
        attention=not args.no_attention,
        bf16_model=bf16,
        progress=True,
        renderer=args.renderer,
        config=greedy_config(model, generation),
    )
    result["model"] = args.model
    table = format_table(result)
    print(table)
    result["table"] = table
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return result


if __name__ == "__main__":
    main()
