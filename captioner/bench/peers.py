"""The engine against transformers' own paths, runs interleaved in one process (`--only peers`).

Contenders, on the same full-size weights and the same pixels, each caption exactly NEW_TOKENS tokens:
- `generate`: the HF model's eager `generate` (dynamic cache);
- `generate static+compile`: transformers' documented fast path for vision-encoder-decoder models on
  CPU, `model.decoder.forward = torch.compile(model.decoder.forward)` and
  `generate(..., cache_implementation="static")`, on a second copy of the model (so that the eager one
  stays eager). Its compilation is timed apart: `first` in a fresh inductor cache directory, `warm`
  after `torch._dynamo.reset()` with that directory already filled (what a second process would pay);
- the engine on the HF model and on the seed-layout VisionGPT2 (the same sizes).

Ratios per row: against eager `generate` and against the fastest peer (the quicker of the two
`generate` paths), by median and by minimum. ONNX Runtime through optimum is not a contender: optimum
is not installed here, and its export drops the cross-attention outputs the explorer shows.
"""

from __future__ import annotations

import copy
import os
import tempfile
import time
from typing import Any

from captioner.bench import contenders as c
from captioner.bench.measure import log, measure_interleaved

PEERS = ("generate", "generate static+compile")
KINDS = ("greedy", "beam4", "top_p")


def compiled_copy(model) -> Any:
    """A copy of the HF model whose decoder forward is torch.compile'd (transformers' documented CPU path)."""
    import torch

    fast = copy.deepcopy(model)
    fast.decoder.forward = torch.compile(fast.decoder.forward)
    return fast


def run_static(model, pixels, kind: str):
    """`generate` with the static cache (the compiled contender)."""
    import torch

    torch.manual_seed(0)
    with torch.inference_mode():
        return model.generate(
            pixel_values=pixels,
            max_new_tokens=c.NEW_TOKENS,
            min_new_tokens=c.NEW_TOKENS,
            cache_implementation="static",
            **c.GENERATE_KWARGS[kind],
        )


def compile_times(model, pixels, kind: str) -> tuple[dict[str, float], Any]:
    """Seconds of the first call of a compiled copy in a fresh inductor cache directory, then of another
    copy after a dynamo reset with that directory filled (a second process's cost); and that copy."""
    import torch

    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="captioner-bench-inductor-")
    out = {}
    for label in ("first", "warm"):
        torch._dynamo.reset()
        fast = compiled_copy(model)
        t0 = time.perf_counter()
        run_static(fast, pixels, kind)
        out[label] = time.perf_counter() - t0
    return out, fast


def ratio_fields(r: dict[str, dict[str, Any]], name: str) -> dict[str, float]:
    """`name`'s median and minimum against eager generate and against the fastest peer present."""
    peers = [p for p in PEERS if p in r]
    fastest = min(peers, key=lambda p: r[p]["median_s"])
    out = {
        "vs_generate": r[name]["median_s"] / r["generate"]["median_s"],
        "vs_generate_min": r[name]["min_s"] / r["generate"]["min_s"],
        "fastest_peer": fastest,
        "vs_fastest_peer": r[name]["median_s"] / r[fastest]["median_s"],
        "vs_fastest_peer_min": r[name]["min_s"] / r[fastest]["min_s"],
    }
    if "generate static+compile" in r:
        out["vs_compiled"] = r[name]["median_s"] / r["generate static+compile"]["median_s"]
        out["vs_compiled_min"] = r[name]["min_s"] / r["generate static+compile"]["min_s"]
    return out


def peers(bench, tokenizer, pixels) -> None:
    """Add rows for every dtype and workload: the peers and the engine, runs interleaved."""
    log("peers: eager generate, generate with static cache + compiled decoder, the engine (runs interleaved)")
    hf = c.build_hf()
    hcap = c.hf_captioner(hf, tokenizer)
    compile_on = not bench.args.no_compile
    for dtype in [d for d in ("fp32", "bf16") if d in bench.dtypes]:
        vcap = bench.visiongpt2(dtype)
        hf.to(c.torch_dtype(dtype))
        px = pixels.to(hcap.dtype)
        wl = c.workloads()
        for kind in KINDS:
            fns = {"generate": lambda k=kind: c.run_generate(hf, px, k)}
            if compile_on:
                times, fast = compile_times(hf, px, kind)
                for label, s in times.items():
                    bench.add("hf", dtype, f"peers: compile, {label}", kind, {"median_s": s, "min_s": s, "max_s": s, "runs": 1})
                fns["generate static+compile"] = lambda k=kind, m=fast: run_static(m, px, k)
            fns["engine"] = lambda k=kind: c.run_engine(hcap, px, wl[k])
            fns["engine, visiongpt2"] = lambda k=kind: c.run_engine(vcap, px, wl[k])
            r = measure_interleaved(fns, bench.args.runs)
            same = {}
            if kind != "top_p":
                want = c.run_generate(hf, px, kind)[0, 1:].tolist()
                same["same_tokens_as_generate"] = c.run_engine(hcap, px, wl[kind])[0].best.token_ids == want
            for name in fns:
                model = "visiongpt2" if name.endswith("visiongpt2") else "hf"
                contender = "peers: " + name.removesuffix(", visiongpt2").removeprefix("generate ")
                extra = {} if name == "generate" else ratio_fields(r, name)
                bench.add(model, dtype, contender, kind, r[name], **extra, **(same if name == "engine" else {}))
