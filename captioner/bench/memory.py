"""Peak resident memory of a fresh process that imports, loads a model and captions with it.

    python -m captioner.bench.memory KIND PATH DTYPE [THREADS]   (run by the benchmark, one per model)

Only the standard library is imported before the first stage, so the process starts from a bare
interpreter; each stage records the resident set and its peak so far (this process only).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

GB = 1e9
MB = 2**20


def _rss_mb() -> tuple[float, float]:
    """(current, peak) resident memory of this process in MiB: VmRSS and VmHWM of /proc/self/status.

    Not getrusage's ru_maxrss: Linux carries it over fork and exec, so a child started by a process
    holding 2 GB reports 2 GB from its first line. VmHWM belongs to this process's own memory map.
    """
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    rss, peak = (int(fields[k].split()[0]) * 1024 / MB for k in ("VmRSS", "VmHWM"))  # kB
    return rss, max(rss, peak)


def child_main(kind: str, path: str, dtype: str, threads: int | None = None) -> dict[str, dict[str, float]]:
    """In a fresh process: import, load, caption once; the resident memory after each stage."""
    stages = {}

    def mark(name):
        rss, peak = _rss_mb()
        stages[name] = {"rss_mb": rss, "peak_mb": peak}

    mark("python")
    import torch

    if threads:
        torch.set_num_threads(threads)
    mark("import torch")
    if kind == "model":
        _load_and_caption(path, dtype, mark)
    return stages


def _load_and_caption(path: str, dtype: str, mark) -> None:
    from PIL import Image

    from captioner.bench.contenders import NEW_TOKENS
    from captioner.config import DecodingConfig
    from captioner.decoding import caption_image
    from captioner.loading import load_captioner

    mark("import captioner")
    # The libraries the model's code needs (timm and torchvision, or transformers' GPT-2 and ViT),
    # imported before the weights so that the next stage is the weights alone.
    if (Path(path) / "captioner.pt").exists():
        import captioner.models.visiongpt2  # noqa: F401
    else:
        import captioner.models.hf  # noqa: F401
        from transformers import GPT2LMHeadModel, ViTModel  # noqa: F401
    mark("import model code")
    model = load_captioner(path, dtype={"fp32": "float32", "bf16": "bfloat16"}[dtype])
    mark("loaded")
    img = Image.new("RGB", (320, 240), (120, 80, 200))
    cfg = DecodingConfig(min_new_tokens=NEW_TOKENS, max_new_tokens=NEW_TOKENS)
    caption_image(model, img, [cfg])
    mark("one caption (greedy, attention maps)")
    caption_image(model, img, [cfg.with_(strategy="beam", num_beams=4)])
    mark("one beam-4 caption")


def child_rss(kind: str, path: str, dtype: str, threads: int | None = None) -> dict[str, Any]:
    """Run `child_main` in a fresh process: its stages and its peak in GB."""
    cmd = [sys.executable, "-m", "captioner.bench.memory", kind, path, dtype] + ([str(threads)] if threads else [])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(Path(__file__).resolve().parents[2]))
    if proc.returncode != 0:
        raise RuntimeError(f"memory child {kind} {path} {dtype} failed:\n{proc.stderr[-3000:]}")
    stages = json.loads(proc.stdout.strip().splitlines()[-1])
    peak = max(s["peak_mb"] for s in stages.values())
    return {"stages": stages, "peak_gb": peak * MB / GB}


if __name__ == "__main__":
    kind, path, dtype, *rest = sys.argv[1:]
    print(json.dumps(child_main(kind, path, dtype, int(rest[0]) if rest else None)))
