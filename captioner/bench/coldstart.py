"""Cold start: seconds from process start to the first caption printed by the CLI.

`python -m captioner.bench.coldstart [--rev REV] [--runs N]` starts `python -m captioner IMAGE --model M`
in a fresh process, for the built-in model and for a full-size seed-layout `captioner.pt` (random
weights), and stamps the moment the caption's line reaches its stdout. With `--rev`, the package as it
was at that git revision (copied out with `git archive`) runs beside today's, the two alternating run
by run with the order flipped every run, so that a change of load falls on both alike. Prints min and
median per side, and today / REV.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def first_caption_s(source: Path, image: Path, model: str) -> float:
    """Seconds from starting the CLI (package from `source`) to its first line on stdout."""
    env = {**os.environ, "PYTHONPATH": str(source), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "captioner", str(image), "--model", model],
        cwd=source,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = proc.stdout.readline()
    t = time.perf_counter() - t0
    proc.stdout.read()
    if proc.wait() != 0 or not line.strip():
        raise RuntimeError(f"the CLI from {source} printed no caption for {model}")
    return t


def checkout(rev: str, into: Path) -> Path:
    """The package (built-in model included) at `rev`, extracted under `into`."""
    data = subprocess.run(["git", "archive", "--format=tar", rev, "captioner"], cwd=REPO, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    return into


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rev", default=None, help="a git revision to run beside today's code (e.g. main)")
    p.add_argument("--runs", type=int, default=3, help="cold starts per side and model")
    args = p.parse_args(argv)

    import numpy as np
    from PIL import Image

    from captioner.bench import contenders as c

    tmp = Path(tempfile.mkdtemp(prefix="captioner-coldstart-"))
    image = tmp / "image.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)).save(image)
    c.save_seed_checkpoint(tmp / "full", c.word_tokenizer())
    sides = {"today": REPO}
    if args.rev:
        sides[args.rev] = checkout(args.rev, tmp / "before")
    models = {"builtin": "builtin", "full-size captioner.pt": str(tmp / "full" / "captioner.pt")}
    print(
        f"{'model':24s} "
        + " ".join(f"{s + ' min / median':>24s}" for s in sides)
        + ("  today / before (min, median)" if args.rev else "")
    )
    for label, model in models.items():
        times: dict[str, list[float]] = {s: [] for s in sides}
        for run in range(args.runs):
            for side in list(sides) if run % 2 == 0 else list(sides)[::-1]:
                times[side].append(first_caption_s(sides[side], image, model))
        cells = [f"{min(t):11.2f} / {statistics.median(t):8.2f} s" for t in times.values()]
        line = f"{label:24s} " + " ".join(cells)
        if args.rev:
            t, b = times["today"], times[args.rev]
            line += f"  {min(t) / min(b):.2f}, {statistics.median(t) / statistics.median(b):.2f}"
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
