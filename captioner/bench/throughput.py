"""`python -m captioner.bench.throughput`: images per second through the batch command's code.

For the built-in model and a full-size VisionGPT2 (random weights at the seed config, saved as a
seed-layout `captioner.pt` with a GPT-2-sized word tokenizer beside it), it times:

- the local path (`python -m captioner.batch`'s loop: list, read, hash, caption, journal, write
  Parquet) at batch 1 and batch 8, the model loaded once beforehand;
- the Ray path (`--ray`) with 1 and 2 local workers at batch 8. Each Ray job starts its workers,
  and each worker loads the model, so the steady rate is taken from two jobs:
  (N - 1) / (time of N images - time of 1 image). The end-to-end rate is reported too.

Every caption is greedy with exactly `--new-tokens` tokens (min = max), so that the random model,
which rarely ends a caption, and the built-in one do the same work. The images are drawn here at
320 x 240. Prints a table and writes JSON and Markdown to bench-results/.

`--memory-images N` measures something else: resident memory after each quarter of N images
captioned by the built-in model through the local path (flat when the run streams).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from captioner.bench.contenders import save_seed_checkpoint, word_tokenizer
from captioner.bench.measure import log

MODELS = ("builtin", "visiongpt2")
RESULTS = Path("bench-results")


def make_images(folder: Path, count: int, seed: int = 0) -> None:
    """Photos-like PNGs: a gradient background and a few filled shapes, different in each image."""
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        top, bottom = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        ramp = np.linspace(0, 1, 240)[:, None, None]
        pixels = (top * (1 - ramp) + bottom * ramp).repeat(320, axis=1).astype("uint8")
        image = Image.fromarray(pixels, "RGB")
        draw = ImageDraw.Draw(image)
        for _ in range(3):
            x, y, size = rng.integers(0, 260), rng.integers(0, 180), rng.integers(20, 60)
            draw.ellipse([x, y, x + size, y + size], fill=tuple(int(c) for c in rng.integers(0, 256, 3)))
        image.save(folder / f"{i:04d}.png")


def _full_size_checkpoint(folder: Path) -> Path:
    """A full-size VisionGPT2 with random weights as a user holds it (`captioner.pt`, tokenizer beside it)."""
    save_seed_checkpoint(folder, word_tokenizer())
    return folder / "captioner.pt"


def time_local(model, config, run, inputs: list[str], out: Path, batch_size: int) -> float:
    """Seconds for the local path over the inputs, into a fresh Parquet file."""
    from captioner.batch.__main__ import run_local

    t0 = time.perf_counter()
    summary = run_local(inputs, str(out), model, config, run, batch_size=batch_size, quiet=True)
    seconds = time.perf_counter() - t0
    if summary.errors:
        raise RuntimeError(f"{summary.errors} images failed in the local run")
    return seconds


def time_ray(spec: str, config, run, inputs: list[str], out: Path, workers: int, batch_size: int) -> float:
    """Seconds for a Ray job over the inputs (workers started and models loaded inside), into a fresh folder."""
    from captioner.batch.ray_job import RayOptions, run_ray

    options = RayOptions(workers=workers, batch_size=batch_size, quiet=True)
    t0 = time.perf_counter()
    result = run_ray(inputs, str(out), spec, "float32", config, run, options)
    seconds = time.perf_counter() - t0
    if result.errors:
        raise RuntimeError(f"{result.errors} images failed in the Ray run")
    return seconds


def measure_model(name: str, spec: str, images: Path, one_image: Path, scratch: Path, args) -> list[dict[str, Any]]:
    from captioner.batch.rows import BatchRun, batch_config
    from captioner.loading import load_captioner

    model = load_captioner(spec)
    config = batch_config(
        model, model.default_decoding.with_(strategy="greedy", min_new_tokens=args.new_tokens, max_new_tokens=args.new_tokens)
    )
    run = BatchRun.of(model, config)
    n = args.images
    rows = []
    for batch in (1, 8):
        time_local(model, config, run, [str(one_image)], scratch / f"warm-{name}-{batch}.parquet", batch)
        seconds = time_local(model, config, run, [str(images)], scratch / f"{name}-local-{batch}.parquet", batch)
        rows.append(
            {
                "model": name,
                "path": "local",
                "batch": batch,
                "workers": 0,
                "images": n,
                "seconds": seconds,
                "images_per_s": n / seconds,
            }
        )
        log(f"{name} local batch {batch}: {n / seconds:.2f} images/s")
    del model
    if args.no_ray:
        return rows
    for workers in (1, 2):
        one = time_ray(spec, config, run, [str(one_image)], scratch / f"{name}-ray{workers}-one", workers, 8)
        full = time_ray(spec, config, run, [str(images)], scratch / f"{name}-ray{workers}-all", workers, 8)
        # None when the job of n images took no longer than the job of one: start-up varied more than the work
        steady = (n - 1) / (full - one) if full > one else None
        rows.append(
            {
                "model": name,
                "path": "ray",
                "batch": 8,
                "workers": workers,
                "images": n,
                "seconds": full,
                "images_per_s": steady,
                "end_to_end_images_per_s": n / full,
                "one_image_job_s": one,
            }
        )
        log(f"{name} ray {workers} workers: {_rate(steady)} images/s steady, {n / full:.2f} end to end")
    return rows


def memory_over_a_run(images: Path, out: Path, count: int, new_tokens: int) -> list[tuple[int, float]]:
    """Resident memory (MB) of this process against images captioned, sampled while the built-in
    model captions `count` images through the local path: flat when the run streams."""
    import threading

    import psutil

    from captioner.batch.__main__ import run_local
    from captioner.batch.outputs import JOURNAL_SUFFIX
    from captioner.batch.rows import BatchRun, batch_config
    from captioner.loading import load_captioner

    model = load_captioner("builtin")
    config = batch_config(model, model.default_decoding.with_(max_new_tokens=new_tokens))
    journal, process, samples, stop = Path(str(out) + JOURNAL_SUFFIX), psutil.Process(), [], threading.Event()

    def sample() -> None:
        while not stop.wait(0.5):
            done = sum(1 for _ in journal.open()) if journal.exists() else 0
            samples.append((done, process.memory_info().rss / 1e6))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    run_local([str(images)], str(out), model, config, BatchRun.of(model, config), batch_size=8, quiet=True)
    stop.set()
    sampler.join()
    quarters = [min(samples, key=lambda s: abs(s[0] - count * q / 4)) for q in (1, 2, 3, 4)]
    return quarters + [(count, max(mb for _, mb in samples))]


def _rate(images_per_s: float | None) -> str:
    return "n/a" if images_per_s is None else f"{images_per_s:.2f}"


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"Throughput of `python -m captioner.batch` ({result['when']}, {result['cpus']} CPUs, torch threads "
        f"{result['torch_threads']}, greedy, {result['new_tokens']} tokens per caption, {result['images']} images "
        "of 320 x 240):",
        "",
        "| model | path | batch | Ray workers | images/s | end to end (Ray: workers start and load the model) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in result["rows"]:
        workers = r["workers"] or "-"
        end = r.get("end_to_end_images_per_s", r["images_per_s"])
        lines.append(f"| {r['model']} | {r['path']} | {r['batch']} | {workers} | {_rate(r['images_per_s'])} | {_rate(end)} |")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m captioner.bench.throughput", description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=48, help="images per measurement (default 48)")
    p.add_argument("--new-tokens", type=int, default=16, help="tokens per caption (default 16)")
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    p.add_argument("--no-ray", action="store_true", help="only the local path")
    p.add_argument("--out-dir", type=Path, default=RESULTS)
    p.add_argument(
        "--memory-images",
        type=int,
        default=0,
        help="instead: caption this many images with the built-in model and print resident memory "
        "after each quarter of them (flat when the run streams)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if args.images < 2 or any(m not in MODELS for m in models):
        build_parser().error(f"--images must be 2 or more, --models among {', '.join(MODELS)}")
    if args.memory_images:
        return print_memory(args.memory_images, args.new_tokens)
    import torch

    scratch = Path(tempfile.mkdtemp(prefix="captioner-throughput-"))
    try:
        make_images(scratch / "images", args.images)
        make_images(scratch / "one", 1, seed=1)
        one_image = scratch / "one" / "0000.png"
        rows = []
        for name in models:
            spec = "builtin" if name == "builtin" else str(_full_size_checkpoint(scratch / "visiongpt2"))
            rows += measure_model(name, spec, scratch / "images", one_image, scratch, args)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    when = time.strftime("%Y-%m-%d %H:%M")
    result = {
        "when": when,
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "new_tokens": args.new_tokens,
        "images": args.images,
        "rows": rows,
    }
    table = markdown(result)
    print(table)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    stem = args.out_dir / f"throughput-{time.strftime('%Y%m%d-%H%M%S')}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2))
    stem.with_suffix(".md").write_text(table)
    log(f"written to {stem}.json and .md")
    return 0


def print_memory(count: int, new_tokens: int) -> int:
    scratch = Path(tempfile.mkdtemp(prefix="captioner-memory-"))
    try:
        make_images(scratch / "images", count)
        samples = memory_over_a_run(scratch / "images", scratch / "captions.parquet", count, new_tokens)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    for done, mb in samples[:-1]:
        print(f"after {done} images: {mb:.1f} MB resident")
    print(f"peak, writing the Parquet file included: {samples[-1][1]:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
