"""Before and after, runs interleaved in one process: `python -m captioner.bench.before_after REV [--runs N]`.

The package as it was at git revision REV is copied out of the repository (`git archive`) under another
name (`captioner_before`, its imports rewritten), so that both versions load in this process. Both load
the same full-size files (a seed-layout `captioner.pt` and a ViT-B/16 + GPT-2 folder with random
weights) and caption the same image with each workload of the bench, alternating run by run (the order
flips every run). Prints min and median per side, and after / before. Preprocessing is included.

Works for revisions whose package has `loading.load_captioner`, `decoding.caption_image` and
`config.DecodingConfig` (every revision since the engine was written); the tokenizer beside the files
has an unknown token other than its end token, which loaders before the fix for GPT-2's layout need.
"""

from __future__ import annotations

import argparse
import io
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

BEFORE = "captioner_before"
WORKLOADS = ("greedy", "beam4", "top_p", "greedy+attn", "compare")


def import_revision(rev: str, into: Path):
    """The package `captioner` at `rev`, importable as `captioner_before` from `into`."""
    repo = Path(__file__).resolve().parents[2]
    data = subprocess.run(["git", "archive", "--format=tar", rev, "captioner"], cwd=repo, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        tar.extractall(into, filter="data")
    package = into / BEFORE
    (into / "captioner").rename(package)
    for py in package.rglob("*.py"):
        text = py.read_text()
        text = re.sub(r"\b(from|import) captioner\b", rf"\1 {BEFORE}", text)
        py.write_text(re.sub(r"([\"'])captioner\.", rf"\1{BEFORE}.", text))
    sys.path.insert(0, str(into))
    import importlib

    return {name: importlib.import_module(f"{BEFORE}.{name}") for name in ("loading", "decoding", "config")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("rev", help="the git revision to compare against (e.g. bbcd634)")
    p.add_argument("--runs", type=int, default=5, help="timed runs per side and workload, after one warm-up")
    args = p.parse_args(argv)

    import numpy as np
    from PIL import Image
    from transformers import ViTImageProcessor

    from captioner import decoding, loading
    from captioner.bench import contenders as c

    tmp = Path(tempfile.mkdtemp(prefix="captioner-before-after-"))
    old = import_revision(args.rev, tmp / "src")
    tokenizer = c.word_tokenizer()
    tokenizer.unk_token = "w0"  # loaders before GPT-2's layout was accepted refuse unk == end
    c.save_seed_checkpoint(tmp / "visiongpt2", tokenizer)
    hf = c.build_hf()
    hf.save_pretrained(tmp / "hf")
    del hf
    ViTImageProcessor().save_pretrained(tmp / "hf")
    tokenizer.save_pretrained(tmp / "hf")
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8))
    work = c.workloads()
    fields = old["config"].DecodingConfig.__dataclass_fields__

    def old_config(config):
        return old["config"].DecodingConfig(**{k: v for k, v in config.to_dict().items() if k in fields})

    print(f"{'model':10s} {'workload':12s} {'before min / median':>20s} {'after min / median':>20s}  after/before (min, median)")
    for name, spec in (("visiongpt2", tmp / "visiongpt2" / "captioner.pt"), ("hf", tmp / "hf")):
        before, after = old["loading"].load_captioner(str(spec)), loading.load_captioner(str(spec))
        for workload in WORKLOADS:
            configs = work[workload]
            calls = {
                "before": lambda cs=[old_config(x) for x in configs], m=before: old["decoding"].caption_image(m, image, cs),
                "after": lambda m=after: decoding.caption_image(m, image, configs),
            }
            for call in calls.values():
                call()
            times: dict[str, list[float]] = {"before": [], "after": []}
            for run in range(args.runs):
                for side in ("before", "after") if run % 2 == 0 else ("after", "before"):
                    t0 = time.perf_counter()
                    calls[side]()
                    times[side].append(time.perf_counter() - t0)
            b, a = (min(times[s]) * 1e3 for s in ("before", "after"))
            mb, ma = (statistics.median(times[s]) * 1e3 for s in ("before", "after"))
            print(f"{name:10s} {workload:12s} {b:9.0f} / {mb:8.0f} {a:9.0f} / {ma:8.0f}  {a / b:.2f}, {ma / mb:.2f}", flush=True)
        del before, after
    return 0


if __name__ == "__main__":
    sys.exit(main())
