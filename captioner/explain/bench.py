"""`python -m captioner.explain.bench [--scenes 30] [--write docs/explain.md]`: which explanation to trust.

On eval scenes of the built-in world, drawn by both renderers, with the objects' masks as ground truth,
for each model (the shipped built-in one, trained with an attention loss, and one of the same size and
recipe trained without it, `models/no_attention_loss/`) and each method:

- pointing game: the map's peak cell overlaps the mask of an object the word describes, per word kind
  (colour, shape, size words of the model's own greedy caption; a word whose mention fits no object
  counts as a miss);
- energy: the share of the map inside those objects' masks (the map spread evenly over each cell's pixels);
- deletion: the word's probability as the cells are blanked (the image's mean colour) in the method's
  order, most important first, 0 to all cells in `--steps` steps; the area under that curve over the
  word's own probability (lower: the map found what the word rests on), beside a random order.

This is a benchmark module: it reads captioner.world, which the runtime never imports.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from captioner.decoding import caption_image
from captioner.explain import METHODS, explain
from captioner.explain.forward import token_logprobs
from captioner.explain.masking import mask_cells as blank_cells
from captioner.explain.occlusion import model_view
from captioner.models.base import CaptionModel
from captioner.world import mask_cells, parse_caption, split_seeds
from captioner.world.evaluate import RENDERERS, greedy_config

NO_ATTENTION_LOSS = Path(__file__).parent / "models" / "no_attention_loss"
KINDS = ("colour", "shape", "size")


def described_words(text: str, scene: Any) -> list[tuple[int, str, tuple[int, ...]]]:
    """(word index, kind, objects the word's mention describes) for each colour, shape and size word."""
    out = []
    for m in parse_caption(text).mentions:
        objects = tuple(
            k
            for k, o in enumerate(scene.objects)
            if o.colour == m.colour and o.shape == m.shape and (m.size is None or o.size == m.size)
        )
        for index, kind in ((m.size_index, "size"), (m.colour_index, "colour"), (m.shape_index, "shape")):
            if index is not None:
                out.append((index, kind, objects))
    return out


def deletion_auc(
    model: CaptionModel, view, ids: list[int], tokens: list[int], orders: list[np.ndarray], grid: tuple[int, int], steps: int
) -> list[float]:
    """Per cell order: the area under the word's probability (tokens `tokens`) as cells are blanked in that
    order, over the unmasked probability (trapezoids over the blanked share 0..1)."""
    n = grid[0] * grid[1]
    counts = np.linspace(0, n, steps + 1).round().astype(int)
    cells = [(int(i) // grid[1], int(i) % grid[1]) for i in range(n)]
    images = [blank_cells(view, [cells[i] for i in order[:k]], grid, "mean") for order in orders for k in counts]
    logp = token_logprobs(model, model.preprocess(images), ids, batch_size=64)[:, tokens].sum(dim=1).double().exp().numpy()
    curves = logp.reshape(len(orders), steps + 1)
    x = counts / n
    return [float(np.trapezoid(c / max(c[0], 1e-12), x)) for c in curves]


def run_model(
    model: CaptionModel, renderer: str, seeds: Sequence[int], methods: Sequence[str], steps: int, seed: int = 0
) -> dict[str, Any]:
    """Every word's pointing hit, energy and deletion area per method on the scenes of `seeds`."""
    rng = np.random.default_rng(seed)
    rows, cols = model.grid
    records: list[dict[str, Any]] = []
    seconds = {m: 0.0 for m in methods}
    config = greedy_config(model)
    for s in seeds:
        image, scene, masks = RENDERERS[renderer](s, 64)
        caption = caption_image(model, image, [config])[0].best
        words = described_words(caption.text, scene)
        if not words:
            continue
        explanations = {}
        for m in methods:
            explanations[m] = explain(model, image, caption, m)
            seconds[m] += explanations[m].seconds
        view = model_view(model, image)
        for index, kind, objects in words:
            w = {m: e.words[index] for m, e in explanations.items()}
            record = {"seed": s, "word": w[methods[0]].word, "kind": kind, "described": bool(objects)}
            if objects:
                covered, share = mask_cells(np.logical_or.reduce([masks[k] for k in objects]), rows, cols)
                for m in methods:
                    peak = np.unravel_index(int(np.argmax(w[m].map)), (rows, cols))
                    record[f"{m}_hit"] = bool(covered[peak])
                    record[f"{m}_energy"] = float((w[m].map * share).sum())
                record["area"] = float(share.mean())
                record["chance_hit"] = float(covered.mean())
            else:
                record.update({f"{m}_hit": False for m in methods})
            jitter = rng.random(rows * cols) * 1e-9  # ties (a uniform map) in a random order
            orders = [np.argsort(-(w[m].map.ravel() + jitter), kind="stable") for m in methods]
            orders.append(rng.permutation(rows * cols))
            aucs = deletion_auc(model, view, caption.token_ids, w[methods[0]].token_indices, orders, (rows, cols), steps)
            record.update({f"{m}_deletion": a for m, a in zip([*methods, "random"], aucs)})
            records.append(record)
    return {
        "renderer": renderer,
        "scenes": len(seeds),
        "records": records,
        "seconds_per_caption": {m: seconds[m] / max(1, len(seeds)) for m in methods},
    }


def summary(run: dict[str, Any], methods: Sequence[str]) -> dict[str, dict[str, float]]:
    """Per method: pointing (all words, per kind), energy, deletion area; plus the chance and random rows."""
    recs = run["records"]
    described = [r for r in recs if r["described"]]

    def mean(values):
        values = list(values)
        return float(np.mean(values)) if values else float("nan")

    out = {}
    for m in methods:
        row = {"pointing": mean(r[f"{m}_hit"] for r in recs)}
        row.update({f"pointing_{k}": mean(r[f"{m}_hit"] for r in recs if r["kind"] == k) for k in KINDS})
        row["energy"] = mean(r[f"{m}_energy"] for r in described)
        row["deletion"] = mean(r[f"{m}_deletion"] for r in recs)
        row["seconds"] = run["seconds_per_caption"][m]
        out[m] = row
    chance = {"pointing": mean(r.get("chance_hit", 0.0) for r in recs)}
    chance.update({f"pointing_{k}": mean(r.get("chance_hit", 0.0) for r in recs if r["kind"] == k) for k in KINDS})
    chance.update(energy=mean(r["area"] for r in described), deletion=mean(r["random_deletion"] for r in recs), seconds=0.0)
    out["random"] = chance
    return out


def table(rows: dict[str, dict[str, float]]) -> list[str]:
    def pct(v):
        return "–" if np.isnan(v) else f"{100 * v:.0f}%"

    lines = [
        "| method | pointing | colour | shape | size | energy in mask | deletion area ↓ | s / caption |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m, r in rows.items():
        name = "random (chance; random order)" if m == "random" else m
        lines.append(
            f"| {name} | {pct(r['pointing'])} | {pct(r['pointing_colour'])} | {pct(r['pointing_shape'])} | "
            f"{pct(r['pointing_size'])} | {pct(r['energy'])} | {r['deletion']:.3f} | "
            f"{r['seconds']:.3f} |"
        )
    return lines


def findings(results: dict[str, dict[str, dict[str, dict[str, float]]]]) -> list[str]:
    """Sentences that compare the figures (written from the numbers, so they stay true)."""
    lines = []
    models = list(results)
    for renderer in next(iter(results.values())):
        for model in models:
            rows = results[model][renderer]
            methods = [m for m in rows if m != "random"]
            best_point = max(methods, key=lambda m: rows[m]["pointing"])
            best_del = min(methods, key=lambda m: rows[m]["deletion"])
            lines.append(
                f"- {model}, {renderer} renderer: {best_point} points best ({100 * rows[best_point]['pointing']:.0f}%"
                f" against {100 * rows['random']['pointing']:.0f}% by chance); {best_del} is the most faithful"
                f" under deletion ({rows[best_del]['deletion']:.3f} against {rows['random']['deletion']:.3f}"
                f" for a random order)."
            )
        if len(models) == 2 and "attention" in results[models[0]][renderer]:
            a, b = (results[m][renderer]["attention"]["pointing"] for m in models)
            verb = "worse" if b < a else ("better" if b > a else "as well")
            lines.append(
                f"- Raw attention, {renderer} renderer: on {models[1]} it points {verb} than on {models[0]}"
                f" ({100 * b:.0f}% against {100 * a:.0f}%)."
            )
    return lines


def write_markdown(path: Path, results, meta: dict[str, Any], runs: dict[str, Any]) -> None:
    lines = [
        "# Which explanation to trust",
        "",
        f"Written by `{meta['command']}` ({meta['date']}, {meta['seconds']:.0f} s). Eval scenes"
        f" from seed {meta['first_seed']} (counts per table), greedy captions, every colour, shape and size word;"
        f" deletion in {meta['steps']} steps of the {meta['grid']} patch grid.",
        "",
        "Methods: `attention` raw cross-attention (layers and heads averaged); `relevance` gradient-weighted"
        " cross-attention with encoder rollout (Chefer et al. 2021); `gradcam` Grad-CAM on the last layer's"
        " cross-attention; `occlusion` each cell blanked with the image's mean colour. Deletion blanks cells the"
        " same way, which favours occlusion: it measured exactly this.",
        "",
        "Pointing: the map's peak cell overlaps an object the word describes (chance: the share of cells that do)."
        " Energy: the map's share inside those objects (chance: their area). Deletion area: the word's"
        " probability, relative to its own, as cells are blanked most important first; lower is more faithful.",
        "",
    ]
    for model, per_renderer in results.items():
        for renderer, rows in per_renderer.items():
            run = runs[model][renderer]
            lines += [
                f"## {model}, {renderer} renderer",
                "",
                f"{run['scenes']} scenes, {len(run['records'])} words.",
                "",
                *table(rows),
                "",
            ]
    lines += ["## What the figures show", "", *findings(results), ""]
    path.write_text("\n".join(lines))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m captioner.explain.bench", description=__doc__.split("\n")[0])
    p.add_argument("--scenes", type=int, default=30, help="eval scenes per renderer (default 30)")
    p.add_argument("--start", type=int, default=0, help="first eval seed index")
    p.add_argument("--steps", type=int, default=8, help="deletion steps (default 8)")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--renderers", default="first,second")
    p.add_argument("--models", default=f"builtin,{NO_ATTENTION_LOSS}", help="comma-separated model specs")
    p.add_argument("--write", default=None, help="write the markdown report here (e.g. docs/explain.md)")
    p.add_argument("--json", default=None, help="write every record here")
    p.add_argument("--merge", nargs="*", default=[], help="--json files of earlier runs: their tables join this report")
    p.add_argument("--threads", type=int, default=2)
    return p


def _merged(earlier: Sequence[dict[str, Any]]) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """(summary, runs) per model and renderer of earlier runs' --json files, the later one winning."""
    results: dict[str, dict[str, Any]] = {}
    raw: dict[str, Any] = {}
    for e in earlier:
        for name, per_renderer in e["summary"].items():
            results.setdefault(name, {}).update(per_renderer)
            raw.setdefault(name, {}).update(e["runs"][name])
    return results, raw


def _measure(args: argparse.Namespace, seeds: list[int], results: dict[str, dict[str, Any]], raw: dict[str, Any]) -> str:
    """Run every model on every renderer, adding to `results` and `raw` and printing each table; the patch grid."""
    from captioner.loading import load_captioner

    methods = [m for m in args.methods.split(",") if m]
    grid = ""
    for spec in [m for m in args.models.split(",") if m]:
        name = "no attention loss" if Path(spec) == NO_ATTENTION_LOSS else spec
        model = load_captioner(spec)
        grid = "x".join(map(str, model.grid))
        for renderer in args.renderers.split(","):
            run = run_model(model, renderer, seeds, methods, args.steps)
            rows = summary(run, methods)
            results.setdefault(name, {})[renderer] = rows
            raw.setdefault(name, {})[renderer] = run
            print(f"\n{name}, {renderer} renderer ({len(run['records'])} words)")
            print("\n".join(table(rows)), flush=True)
    return grid


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = split_seeds("eval", args.scenes, args.start)
    t0 = time.perf_counter()
    earlier = [json.loads(Path(f).read_text()) for f in args.merge]
    results, raw = _merged(earlier)
    grid = _measure(args, seeds, results, raw) or (earlier[0]["meta"]["grid"] if earlier else "")
    if results:
        print("\n" + "\n".join(findings(results)))
    command = "python -m captioner.explain.bench " + " ".join(argv if argv is not None else sys.argv[1:])
    meta = {
        "command": "`, `".join([*(e["meta"]["command"] for e in earlier), command]),
        "date": time.strftime("%Y-%m-%d"),
        "seconds": time.perf_counter() - t0 + sum(e["meta"]["seconds"] for e in earlier),
        "scenes": args.scenes,
        "first_seed": seeds[0],
        "steps": args.steps,
        "grid": grid,
    }
    if args.write:
        write_markdown(Path(args.write), results, meta, raw)
    if args.json:
        Path(args.json).write_text(json.dumps({"meta": meta, "summary": results, "runs": raw}, indent=1))
    return {"meta": meta, "summary": results}


if __name__ == "__main__":
    main()
