"""Speed and memory benchmark: `python -m captioner.bench [--quick] [--runs N] [--only SECTIONS]`.

Full-size models with random weights (the compute is the same as with trained weights), built offline:
- VisionGPT2 at the seed checkpoint's config (ViT-B/16 encoder blocks + GPT-2 124M decoder blocks);
- transformers' `VisionEncoderDecoderModel` with ViT-B/16 and GPT-2 124M configs.

Every contender writes exactly 16 tokens (min_new_tokens = max_new_tokens = 16) from the same pixel
tensor (preprocessing excluded), so each does the same work: this project's engine (`decode`), the
model's own `generate` on the same weights and dtype, and the plain no-cache loop of the original
code (greedy only). One warm-up run per contender is excluded; the table gives median, min and max.

The machine section measures memory bandwidth (a streaming read of 1 GiB) and matmul throughput, and
the floor they imply for one caption: encoder FLOPs / throughput + 16 x decoder weight bytes / bandwidth.
Peak resident memory is measured in a fresh process per model (`--child-rss`, VmHWM of that process).

Results go to bench-results/bench-<date>.json and .md (ignored by git); `--update-docs` also writes the
markdown table to the tracked docs/benchmark.md.
Only the standard library is imported at module level, so a memory child starts from a bare interpreter.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

NEW_TOKENS = 16
DOCS_TABLE = Path("docs/benchmark.md")  # written only with --update-docs
SECTIONS = ("machine", "kernels", "visiongpt2", "hf", "versus", "nocache", "compare", "memory", "builtin")
DTYPES = ("fp32", "bf16", "int8")
GB = 1e9
TARGETS_TEXT = {
    "greedy_vs_generate": "HF model, greedy: engine <= 0.5 x generate",
    "beam4_vs_generate": "HF model, beam 4: engine <= 0.6 x generate",
    "visiongpt2_vs_hf": "VisionGPT2 through the engine no slower than the HF model through it",
    "vs_nocache": "greedy: >= 10 x faster than the no-cache loop",
    "bf16_vs_floor": "bf16 greedy within 1.5 x of the floor",
    "compare_vs_beam4": "Compare workload <= 1.5 x one beam-4 caption",
    "rss_bf16": "peak RSS, full-size VisionGPT2 in bf16 <= 0.7 GB",
    "rss_fp32": "peak RSS, full-size VisionGPT2 in fp32 <= 1.2 GB",
    "builtin_bf16": "built-in model: bf16 greedy identical to fp32 on >= 99% of evaluation scenes",
}


# -- measuring ----------------------------------------------------------------------------------
def stats(times: list[float]) -> dict[str, Any]:
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times), "runs": len(times)}


def measure(fn: Callable[[], Any], runs: int, warmup: int = 1) -> dict[str, Any]:
    """Median / min / max seconds of `fn` over `runs` runs after `warmup` unrecorded ones."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return stats(times)


def measure_interleaved(fns: dict[str, Callable[[], Any]], runs: int, warmup: int = 1) -> dict[str, dict[str, Any]]:
    """`measure` for several contenders, their runs interleaved (a b a b ...) so that a change of load
    on a shared machine falls on all of them alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: stats(t) for name, t in times.items()}


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class OtherLoad:
    """Samples, in a background thread, how much CPU other processes use while timings run: on a
    shared machine that is what makes numbers noisy, so the report says it."""

    def __init__(self, every_s: float = 1.0):
        import threading

        self.samples: list[float] = []
        self.paused = False  # set while nothing is timed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every_s,), daemon=True)

    def _run(self, every_s: float) -> None:
        try:
            import psutil
        except ImportError:
            return
        me = psutil.Process()
        me.cpu_percent(None)
        psutil.cpu_percent(None)
        while not self._stop.wait(every_s):
            total = psutil.cpu_percent(None) * (os.cpu_count() or 1)  # percent of one core, all cores
            mine = me.cpu_percent(None)
            if self.paused or me.children():  # memory children are ours, and are not timed
                continue
            self.samples.append(max(0.0, total - mine) / 100.0)  # cores busy elsewhere

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=2)

    def summary(self) -> dict[str, float]:
        s = self.samples or [0.0]
        return {"mean_cores": statistics.fmean(s), "max_cores": max(s), "share_above_half_core": sum(x > 0.5 for x in s) / len(s)}


# -- the machine --------------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = ""
    try:
        flags = next(l for l in Path("/proc/cpuinfo").read_text().splitlines() if l.startswith("flags"))
    except (OSError, StopIteration):
        pass
    mem_total = None
    try:
        import psutil

        mem_total = psutil.virtual_memory().total / GB
    except ImportError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "amx_bf16": "amx_bf16" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "memory_gb": mem_total,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "platform": platform.platform(),
    }


def measure_bandwidth(runs: int) -> dict[str, Any]:
    """Streaming read bandwidth: sum of a 1 GiB buffer (far larger than any cache)."""
    import torch

    buf = torch.ones(2**30 // 4)  # written once, so the pages are real
    r = measure(lambda: buf.sum(), runs)
    del buf
    return {**r, "bytes": 2**30, "gb_per_s": 2**30 / r["median_s"] / GB}


def measure_matmul(dtype_name: str, runs: int) -> dict[str, Any]:
    """Matmul throughput in `dtype`: the encoder's own shapes (197 tokens x 768 -> 3072) and a large square one."""
    import torch
    import torch.nn.functional as F

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name]
    x = torch.randn(197, 768).to(dtype)
    w = torch.randn(3072, 768).to(dtype)
    n_inner = 20

    def enc():
        for _ in range(n_inner):
            F.linear(x, w)

    r_enc = measure(enc, runs)
    a = torch.randn(2048, 2048).to(dtype)
    b = torch.randn(2048, 2048).to(dtype)
    r_sq = measure(lambda: a @ b, runs)
    return {
        "encoder_shape_gflops": 2 * 197 * 768 * 3072 * n_inner / r_enc["median_s"] / 1e9,
        "square_2048_gflops": 2 * 2048**3 / r_sq["median_s"] / 1e9,
    }



def measure_step_kernels(runs: int) -> list[dict[str, Any]]:
    """What the decoding step's own products read: one pass over the 72 projections of 12 full-size
    decoder layers (768 wide), rows of 1 (greedy) and 4 (beam 4), each dtype, weights stored (out, in)
    or (in, out), multiplied the way `step.projection` does. Bytes read / time = GB/s."""
    import torch
    import torch.nn as nn

    from captioner.models.base import projection

    C = 768
    shapes = [(C, 3 * C), (C, C), (C, C), (C, C), (C, 4 * C), (4 * C, C)] * 12  # (in, out): qkv, proj, q, xproj, fc, fc2
    out = []
    for dtype_name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        layers = [nn.Linear(i, o).to(dtype) for i, o in shapes]
        nbytes = sum(layer.weight.numel() * layer.weight.element_size() for layer in layers)
        for order in ("(out, in)", "(in, out)"):
            for layer in layers:
                w = layer.weight.data
                layer.weight.data = w.contiguous() if order == "(out, in)" else w.t().contiguous().t()
            fns = [projection(layer) for layer in layers]
            for rows in (1, 4):
                xs = {n: torch.randn(rows, n).to(dtype) for n in (C, 4 * C)}
                passes = 10

                def run():
                    for _ in range(passes):
                        for f, layer in zip(fns, layers):
                            f(xs[layer.in_features])

                r = measure(run, runs)
                out.append({"dtype": dtype_name, "order": order, "rows": rows, "gb_per_s": passes * nbytes / r["median_s"] / GB,
                            "ms": r["median_s"] * 1e3 / passes, "mb": nbytes / 1e6})
        del layers, fns
    return out

# -- models -------------------------------------------------------------------------------------
def word_tokenizer(vocab_size: int = 50257):
    """A word-level tokenizer as large as GPT-2's, id vocab_size-1 = <|endoftext|> (no download needed)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"w{i}": i for i in range(vocab_size - 1)}
    vocab["<|endoftext|>"] = vocab_size - 1
    tok = Tokenizer(models.WordLevel(vocab, unk_token="w0"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##")
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>",
        unk_token="w0",
    )


def build_visiongpt2(tokenizer, seed: int = 0):
    """The full-size seed VisionGPT2 with random weights, behind the engine's adapter."""
    import torch

    from captioner.config import VisionGPT2Config
    from captioner.models.base import ModelInfo
    from captioner.models.visiongpt2 import VisionGPT2, VisionGPT2Captioner

    torch.manual_seed(seed)
    model = VisionGPT2(VisionGPT2Config()).eval()
    info = ModelInfo("visiongpt2-random", "visiongpt2", "random", model.num_parameters(), "float32")
    return VisionGPT2Captioner(model, tokenizer, info)


def hf_config():
    from transformers import GPT2Config, VisionEncoderDecoderConfig, ViTConfig

    enc = ViTConfig()  # ViT-B/16, 224 px
    dec = GPT2Config(add_cross_attention=True, is_decoder=True)  # GPT-2 124M
    config = VisionEncoderDecoderConfig.from_encoder_decoder_configs(enc, dec)
    config.decoder_start_token_id = config.pad_token_id = config.eos_token_id = 50256
    return config


def build_hf(seed: int = 0):
    """A VisionEncoderDecoderModel (ViT-B/16 + GPT-2 124M) with random weights, built from configs."""
    import torch
    from transformers import VisionEncoderDecoderModel

    torch.manual_seed(seed)
    model = VisionEncoderDecoderModel(config=hf_config()).eval()
    gen = model.generation_config
    gen.decoder_start_token_id = gen.bos_token_id = gen.eos_token_id = gen.pad_token_id = 50256
    return model


def hf_captioner(model, tokenizer):
    from transformers import ViTImageProcessor

    from captioner.models.hf import HFVisionEncoderDecoderCaptioner

    return HFVisionEncoderDecoderCaptioner(model, ViTImageProcessor(), tokenizer, source="hf-random")


def quantize_int8(captioner):
    """Dynamic int8 quantization of the Linear layers (int8 weights, fp32 activations), a copy."""
    import copy

    import torch

    q = copy.copy(captioner)
    q.model = torch.ao.quantization.quantize_dynamic(captioner.model, {torch.nn.Linear}, dtype=torch.qint8)
    return q


def set_dtype(captioner, dtype_name: str):
    import torch

    captioner.model.to({"fp32": torch.float32, "bf16": torch.bfloat16}[dtype_name])
    return captioner


# -- what one caption costs, analytically -------------------------------------------------------
def encoder_flops(embed_dim: int = 768, depth: int = 12, tokens: int = 197, mlp_ratio: int = 4, cross_kv: bool = True) -> float:
    """Multiply-adds x 2 of one image through a ViT-B/16-like encoder (+ the decoder's cross-attention keys/values)."""
    C, N = embed_dim, tokens
    per_block = 2 * N * C * 3 * C + 2 * N * C * C + 2 * 2 * N * C * mlp_ratio * C + 2 * 2 * N * N * C
    patch = 2 * (N - 1) * C * 3 * 16 * 16
    kv = 2 * 2 * N * C * C if cross_kv else 0
    return depth * (per_block + kv) + patch


def decoder_step_bytes(captioner) -> int:
    """Bytes of weights one decoding step reads: every decoder weight but the cross-attention K/V projections, + lm_head."""
    seen, total = set(), 0
    model = captioner.model
    if hasattr(model, "transformer") and hasattr(model, "blocks"):  # VisionGPT2
        named = [(n, p) for n, p in model.named_parameters(remove_duplicate=False)]
        keep = lambda n: (n.startswith("transformer.h.") and ".cross_attn.k." not in n and ".cross_attn.v." not in n) or n.startswith(
            ("transformer.ln_f", "lm_head"))
    else:  # HF: decoder blocks without crossattention.c_attn (its K/V projection), + ln_f and lm_head
        named = [(n, p) for n, p in model.decoder.named_parameters(remove_duplicate=False)]
        keep = lambda n: (n.startswith("transformer.h.") and ".crossattention.c_attn." not in n) or n.startswith(
            ("transformer.ln_f", "lm_head"))
    for n, p in named:
        if keep(n) and p.data_ptr() not in seen:
            seen.add(p.data_ptr())
            total += p.numel() * p.element_size()
    return total


# -- contenders ---------------------------------------------------------------------------------
def workloads() -> dict[str, list]:
    """Decoding configurations, each forced to exactly 16 new tokens."""
    from captioner.config import DecodingConfig

    base = DecodingConfig(min_new_tokens=NEW_TOKENS, max_new_tokens=NEW_TOKENS, output_attentions=False)
    greedy = base.with_(strategy="greedy", label="greedy")
    beam4 = base.with_(strategy="beam", num_beams=4, label="beam 4")
    top_k = base.with_(strategy="sample", top_k=50, seed=0, label="top-k 50")
    top_p = base.with_(strategy="sample", top_p=0.9, top_k=0, seed=0, label="top-p 0.9")
    return {
        "greedy": [greedy],
        "beam4": [beam4],
        "top_p": [top_p],
        "greedy+attn": [greedy.with_(output_attentions=True)],
        "compare": [greedy, beam4, top_k, top_p],
    }


GENERATE_KWARGS = {
    "greedy": dict(num_beams=1, do_sample=False),
    "beam4": dict(num_beams=4, do_sample=False, early_stopping=False, length_penalty=1.0),
    "top_p": dict(num_beams=1, do_sample=True, top_p=0.9, top_k=0),
}


def run_engine(captioner, pixels, configs):
    from captioner.decoding import EncodedImage, decode

    import torch

    with torch.inference_mode():
        memory = captioner.encode(pixels)
    return decode(captioner, EncodedImage(memory, (224, 224), {}), configs)


def _with_threads(n: int, fn: Callable[[], Any]) -> Any:
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        return fn()
    finally:
        torch.set_num_threads(before)


def run_generate(hf_model, pixels, kind: str):
    import torch

    torch.manual_seed(0)
    with torch.inference_mode():
        return hf_model.generate(
            pixel_values=pixels, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, **GENERATE_KWARGS[kind]
        )


def run_nocache(model, pixels, bos: int):
    """The original loop: the whole encoder and prefix again for every token (forced to 16 tokens)."""
    import torch

    ids = torch.tensor([[bos]])
    with torch.inference_mode():
        for _ in range(NEW_TOKENS):
            next_id = model(pixels, ids)[:, -1].argmax(-1, keepdim=True)
            ids = torch.cat([ids, next_id], dim=1)
    return ids[0, 1:].tolist()


# -- the runs -----------------------------------------------------------------------------------
class Bench:
    def __init__(self, args):
        self.args = args
        self.rows: list[dict[str, Any]] = []
        self.result: dict[str, Any] = {}
        self.only = set(args.only.split(",")) if args.only else set(SECTIONS)
        self.dtypes = [d for d in args.dtypes.split(",") if d]

    def add(self, model: str, dtype: str, contender: str, workload: str, r: dict[str, Any], **extra):
        row = {"model": model, "dtype": dtype, "contender": contender, "workload": workload, **r, **extra}
        self.rows.append(row)
        _log(f"  {model:10s} {dtype:5s} {contender:9s} {workload:12s} median {r['median_s'] * 1e3:8.1f} ms "
             f"(min {r['min_s'] * 1e3:.1f}, max {r['max_s'] * 1e3:.1f}, n={r['runs']})"
             + (f"  {extra}" if extra else ""))
        return row

    def find(self, model, dtype, contender, workload):
        for r in self.rows:
            if (r["model"], r["dtype"], r["contender"], r["workload"]) == (model, dtype, contender, workload):
                return r
        return None

    # -- sections ---------------------------------------------------------------------------------
    def machine(self):
        _log("machine: bandwidth and matmul throughput")
        runs = max(3, self.args.runs)
        self.result["bandwidth"] = measure_bandwidth(runs)
        self.result["matmul"] = {d: measure_matmul(d, runs) for d in ("fp32", "bf16")}
        _log(f"  read bandwidth {self.result['bandwidth']['gb_per_s']:.1f} GB/s; matmul "
             + ", ".join(f"{d}: {m['encoder_shape_gflops']:.0f} GFLOP/s (encoder shapes), {m['square_2048_gflops']:.0f} (2048^3)"
                         for d, m in self.result["matmul"].items()))

    def kernels(self):
        _log("kernels: the decoding step's products, per dtype, rows and weight order")
        self.result["kernels"] = measure_step_kernels(max(3, self.args.runs))
        for k in self.result["kernels"]:
            _log(f"  {k['dtype']} {k['order']:9s} {k['rows']} row(s): {k['gb_per_s']:.1f} GB/s ({k['mb']:.0f} MB in {k['ms']:.1f} ms)")

    def floor(self, captioner, dtype: str) -> dict[str, Any] | None:
        """Encoder FLOPs / throughput + 16 x decoder weight bytes / bandwidth, for this model in this dtype."""
        if "bandwidth" not in self.result or dtype not in self.result.get("matmul", {}):
            return None
        flops = encoder_flops()
        step_bytes = decoder_step_bytes(captioner)
        gflops = self.result["matmul"][dtype]["square_2048_gflops"]
        bw = self.result["bandwidth"]["gb_per_s"]
        enc_s = flops / (gflops * 1e9)
        dec_s = NEW_TOKENS * step_bytes / (bw * GB)
        return {"encoder_gflop": flops / 1e9, "decoder_step_mb": step_bytes / 1e6, "encoder_s": enc_s,
                "decoder_s": dec_s, "floor_s": enc_s + dec_s}

    def time_model(self, name: str, captioner, dtype: str, pixels, hf_model=None, nocache: bool = False):
        import torch

        a = self.args
        pixels = pixels.to(captioner.dtype if dtype != "int8" else torch.float32)
        with torch.inference_mode():
            r = measure(lambda: captioner.encode(pixels), a.runs)
        self.add(name, dtype, "engine", "encode only", r)
        wl = workloads()
        kinds = ["greedy", "beam4", "top_p"]
        for kind in kinds:
            fns = {"engine": lambda: run_engine(captioner, pixels, wl[kind])}
            if hf_model is not None:
                fns["generate"] = lambda: run_generate(hf_model, pixels, kind)
            if kind == "beam4" and "compare" in self.only:
                fns["compare"] = lambda: run_engine(captioner, pixels, wl["compare"])
            threads = torch.get_num_threads()
            if kind == "greedy" and threads > 1:  # what one core gives (Community Cloud: 1 to 2 CPUs)
                fns["one thread"] = lambda: _with_threads(1, lambda: run_engine(captioner, pixels, wl[kind]))
            r = measure_interleaved(fns, a.runs)
            extra = {}
            if hf_model is not None:
                self.add(name, dtype, "generate", kind, r["generate"])
                if kind != "top_p":  # samplers draw differently; greedy and beam must agree
                    tokens = run_engine(captioner, pixels, wl[kind])[0].best.token_ids
                    extra["same_tokens_as_generate"] = run_generate(hf_model, pixels, kind)[0, 1:].tolist() == tokens
                extra["vs_generate"] = r["engine"]["median_s"] / r["generate"]["median_s"]
            self.add(name, dtype, "engine", kind, r["engine"], **extra)
            if "one thread" in r:
                self.add(name, dtype, "engine, 1 thread", kind, r["one thread"])
            if "compare" in r:
                self.add(name, dtype, "engine", "compare", r["compare"],
                         vs_beam4=r["compare"]["median_s"] / r["engine"]["median_s"])
        if name == "visiongpt2" and dtype == "fp32":
            r = measure(lambda: run_engine(captioner, pixels, wl["greedy+attn"]), a.runs)
            self.add(name, dtype, "engine", "greedy+attn", r)
        fl = self.floor(captioner, dtype) if dtype in ("fp32", "bf16") else None
        if fl:
            self.result.setdefault("floor", {}).setdefault(name, {})[dtype] = fl
            greedy = self.find(name, dtype, "engine", "greedy")
            greedy["vs_floor"] = greedy["median_s"] / fl["floor_s"]
            _log(f"  floor {fl['floor_s'] * 1e3:.1f} ms (encoder {fl['encoder_gflop']:.1f} GFLOP -> {fl['encoder_s'] * 1e3:.1f} ms, "
                 f"16 x {fl['decoder_step_mb']:.0f} MB -> {fl['decoder_s'] * 1e3:.1f} ms); greedy / floor = {greedy['vs_floor']:.2f}")
        if nocache:
            n = max(1, a.runs // 2)  # a few runs suffice: it is slow, and warm already
            r = measure(lambda: run_nocache(captioner.model, pixels, captioner.bos_token_id), n, warmup=0)
            greedy = self.find(name, dtype, "engine", "greedy")
            self.add(name, dtype, "no-cache", "greedy", r, engine_speedup=r["median_s"] / greedy["median_s"])

    def visiongpt2(self, tokenizer, pixels):
        _log("VisionGPT2 (full size, random weights)")
        cap = build_visiongpt2(tokenizer)
        order = [d for d in ("fp32", "int8", "bf16") if d in self.dtypes]
        for dtype in order:
            if dtype == "int8":
                self.time_model("visiongpt2", quantize_int8(cap), "int8", pixels)
                continue
            set_dtype(cap, dtype)
            self.time_model("visiongpt2", cap, dtype, pixels, nocache="nocache" in self.only)
        del cap

    def hf(self, tokenizer, pixels):
        import torch

        _log("VisionEncoderDecoderModel ViT-B/16 + GPT-2 124M (random weights)")
        import copy

        model = build_hf()
        # The engine's adapter lays bf16 weights out for its kernels; `generate` keeps its own copy of
        # the same weights, as transformers lays them out.
        cap = hf_captioner(copy.deepcopy(model), tokenizer)
        for dtype in [d for d in ("fp32", "bf16") if d in self.dtypes]:
            set_dtype(cap, dtype)
            model.to({"fp32": torch.float32, "bf16": torch.bfloat16}[dtype])
            self.time_model("hf", cap, dtype, pixels, hf_model=model)
        del cap, model

    def versus(self, tokenizer, pixels):
        """VisionGPT2 and the HF model through the engine with their runs interleaved, so that the ratio
        the target asks for is not at the mercy of the load drifting between the two sections above."""
        _log("VisionGPT2 beside the HF model through the engine (runs interleaved)")
        vcap, hcap = build_visiongpt2(tokenizer), hf_captioner(build_hf(), tokenizer)
        wl = workloads()
        for dtype in [d for d in ("fp32", "bf16") if d in self.dtypes]:
            set_dtype(vcap, dtype)
            set_dtype(hcap, dtype)
            pv, ph = pixels.to(vcap.dtype), pixels.to(hcap.dtype)
            for kind in ("greedy", "beam4", "top_p"):
                fns = {"visiongpt2": lambda: run_engine(vcap, pv, wl[kind]), "hf": lambda: run_engine(hcap, ph, wl[kind])}
                r = measure_interleaved(fns, self.args.runs)
                ratio = r["visiongpt2"]["median_s"] / r["hf"]["median_s"]
                self.add("visiongpt2", dtype, "engine, beside hf", kind, r["visiongpt2"], vs_hf=ratio)
                self.add("hf", dtype, "engine, beside visiongpt2", kind, r["hf"])
        del vcap, hcap

    def memory(self, tokenizer):
        _log("memory: peak resident set of a fresh process per model")
        import torch

        from captioner.models.visiongpt2 import VisionGPT2

        out = {}
        with tempfile.TemporaryDirectory(prefix="captioner-bench-") as tmp:
            tmp = Path(tmp)
            out["import torch"] = child_rss("torch", "", "")
            vdir = tmp / "visiongpt2"
            vdir.mkdir()
            torch.manual_seed(0)
            from captioner.config import VisionGPT2Config

            model = VisionGPT2(VisionGPT2Config())
            torch.save(model.seed_state_dict(), vdir / "captioner.pt")  # the seed format: fp32, masks included
            n = model.num_parameters()
            self.result["weights_gb"] = {"fp32": 4 * n / GB, "bf16": 2 * n / GB}
            del model
            tokenizer.save_pretrained(str(vdir))
            for dtype in ("fp32", "bf16"):
                out[f"visiongpt2 {dtype}"] = child_rss("model", str(vdir), dtype)
            if True:  # the HF model too
                hdir = tmp / "hf"
                model = build_hf()
                model.save_pretrained(str(hdir))
                del model
                from transformers import ViTImageProcessor

                ViTImageProcessor().save_pretrained(str(hdir))
                tokenizer.save_pretrained(str(hdir))
                for dtype in ("fp32", "bf16"):
                    out[f"hf {dtype}"] = child_rss("model", str(hdir), dtype)
        for k, v in out.items():
            _log(f"  {k:18s} " + ", ".join(f"{s}: {m['hwm_mb']:.0f} MB" for s, m in v["stages"].items()))
        self.result["memory"] = out

    def builtin(self):
        """bf16 greedy captions of the built-in model against fp32 on evaluation scenes."""
        from captioner.loading import BUILTIN_DIR

        if not (BUILTIN_DIR / "config.json").exists():
            self.result["builtin_bf16"] = {"skipped": f"no built-in model in {BUILTIN_DIR}"}
            _log(f"builtin: skipped, no built-in model in {BUILTIN_DIR}")
            return
        import torch

        # A small model's steps are many tiny ops: one thread, so that a busy second core cannot stall them.
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            self._builtin_check()
        finally:
            torch.set_num_threads(threads)

    def _builtin_check(self):
        from captioner.config import DecodingConfig
        from captioner.decoding import caption_image
        from captioner.loading import load_captioner
        from captioner.world import make_examples, split_seeds

        n = self.args.builtin_scenes
        m32, m16 = load_captioner("builtin", dtype="float32"), load_captioner("builtin", dtype="bfloat16")
        others = {"bf16": m16}
        if "int8" in self.dtypes:
            others["int8"] = quantize_int8(m32)
        cfg = DecodingConfig(strategy="greedy", max_new_tokens=m32.default_decoding.max_new_tokens, output_attentions=False,
                             num_alternatives=1)
        same = {k: 0 for k in others}
        differ: dict[str, list] = {k: [] for k in others}
        for seed, (img, _, _) in zip(split_seeds("eval", n), make_examples(split_seeds("eval", n))):
            a = caption_image(m32, img, [cfg])[0].best
            for k, m in others.items():
                b = caption_image(m, img, [cfg])[0].best
                if a.token_ids == b.token_ids:
                    same[k] += 1
                else:
                    differ[k].append({"seed": seed, "fp32": a.text, k: b.text})
        self.result["builtin_bf16"] = {"scenes": n, "identical": same["bf16"], "fraction": same["bf16"] / n,
                                       "differ": differ["bf16"][:20]}
        if "int8" in others:
            self.result["builtin_int8"] = {"scenes": n, "identical": same["int8"], "fraction": same["int8"] / n,
                                           "differ": differ["int8"][:20]}
        _log("builtin: greedy captions identical to fp32 on " + ", ".join(f"{same[k]}/{n} evaluation scenes in {k}" for k in others))

    # -- putting it together ---------------------------------------------------------------------------
    def run(self):
        import torch

        if self.args.threads:
            torch.set_num_threads(self.args.threads)
        self.result["date"] = _dt.datetime.now().isoformat(timespec="seconds")
        self.result["machine"] = machine_info()
        self.result["load_before"] = os.getloadavg()
        self.result["settings"] = {"runs": self.args.runs, "new_tokens": NEW_TOKENS, "dtypes": self.dtypes,
                                   "sections": sorted(self.only), "quick": self.args.quick}
        _log(f"{self.result['machine']['cpu']}, {self.result['machine']['threads']} threads, torch {torch.__version__}; "
             f"load average {self.result['load_before'][0]:.2f}")
        t0 = time.perf_counter()
        with OtherLoad() as other:
            self._sections(other)
        self.result["other_load"] = other.summary()
        self.result["load_after"] = os.getloadavg()
        self.result["wall_s"] = time.perf_counter() - t0
        self.result["rows"] = self.rows
        self.result["targets"] = self.targets()
        return self.result

    def _sections(self, other: OtherLoad):
        import torch

        if "machine" in self.only:
            self.machine()
        if "kernels" in self.only:
            self.kernels()
        tokenizer = word_tokenizer()
        torch.manual_seed(0)
        pixels = torch.randn(1, 3, 224, 224)
        if "visiongpt2" in self.only:
            self.visiongpt2(tokenizer, pixels)
        if "hf" in self.only:
            self.hf(tokenizer, pixels)
        if "versus" in self.only:
            self.versus(tokenizer, pixels)
        other.paused = True  # below: memory and captions, no timings
        if "memory" in self.only:
            self.memory(tokenizer)
        if "builtin" in self.only:
            self.builtin()

    def targets(self) -> list[dict[str, Any]]:
        """Each target with its measured ratio (or value) and whether it is met."""
        out = []

        def add(key, what, value, limit, met, note=""):
            out.append({"target": key, "text": TARGETS_TEXT[key], "where": what, "value": value, "limit": limit,
                        "met": met, "note": note})

        for dtype in self.dtypes:
            for kind, key, limit in (("greedy", "greedy_vs_generate", 0.5), ("beam4", "beam4_vs_generate", 0.6)):
                r = self.find("hf", dtype, "engine", kind)
                if r and "vs_generate" in r:
                    add(key, f"{dtype}", r["vs_generate"], limit, r["vs_generate"] <= limit)
            for kind in ("greedy", "beam4", "top_p"):
                v = self.find("visiongpt2", dtype, "engine, beside hf", kind)
                h = self.find("hf", dtype, "engine, beside visiongpt2", kind)
                where = f"{dtype} {kind}, interleaved"
                if not (v and h):  # the sections' own rows, measured minutes apart
                    v, h = self.find("visiongpt2", dtype, "engine", kind), self.find("hf", dtype, "engine", kind)
                    where = f"{dtype} {kind}"
                if v and h:
                    ratio = v["median_s"] / h["median_s"]
                    add("visiongpt2_vs_hf", where, ratio, 1.0, ratio <= 1.0)
            r = self.find("visiongpt2", dtype, "no-cache", "greedy")
            if r:
                add("vs_nocache", dtype, r["engine_speedup"], 10.0, r["engine_speedup"] >= 10.0)
            for model in ("visiongpt2", "hf"):
                r = self.find(model, dtype, "engine", "greedy")
                if dtype == "bf16" and r and "vs_floor" in r:
                    add("bf16_vs_floor", model, r["vs_floor"], 1.5, r["vs_floor"] <= 1.5)
                r = self.find(model, dtype, "engine", "compare")
                if r:
                    add("compare_vs_beam4", f"{model} {dtype}", r["vs_beam4"], 1.5, r["vs_beam4"] <= 1.5)
        mem = self.result.get("memory", {})
        for dtype, limit in (("bf16", 0.7), ("fp32", 1.2)):
            m = mem.get(f"visiongpt2 {dtype}")
            if m:
                peak = m["peak_gb"]
                base = mem.get("import torch", {}).get("peak_gb")
                stages = mem.get(f"visiongpt2 {dtype}", {}).get("stages", {})
                code = stages.get("import model code", {}).get("hwm_mb")
                note = f"import torch alone: {base:.2f} GB" if base else ""
                if base and code:
                    code_gb = code * 2**20 / GB
                    note += f"; timm + torchvision imports: +{code_gb - base:.2f} GB; weights and decoding: +{peak - code_gb:.2f} GB"
                weights = self.result.get("weights_gb", {}).get(dtype)
                if weights:
                    note += f" (the weights alone: {weights:.2f} GB)"
                add(f"rss_{dtype}", dtype, peak, limit, peak <= limit, note)
        b = self.result.get("builtin_bf16")
        if b and "fraction" in b:
            add("builtin_bf16", f"{b['scenes']} scenes", b["fraction"], 0.99, b["fraction"] >= 0.99)
        elif b:
            add("builtin_bf16", "", None, 0.99, None, b.get("skipped", ""))
        return out


# -- memory children ----------------------------------------------------------------------------
def _hwm_mb() -> tuple[float, float]:
    """(current RSS, peak RSS) of this process in MB, from /proc (peak is VmHWM: this process only)."""
    rss = hwm = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
        elif line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024
    return rss, hwm


def child_main(kind: str, path: str, dtype: str, threads: int | None) -> None:
    """In a fresh process: import, load, caption once; report RSS after each stage."""
    stages = {}

    def mark(name):
        rss, hwm = _hwm_mb()
        stages[name] = {"rss_mb": rss, "hwm_mb": hwm}

    mark("python")
    import torch

    if threads:
        torch.set_num_threads(threads)
    mark("import torch")
    if kind == "model":
        from PIL import Image

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
    print(json.dumps(stages))


def child_rss(kind: str, path: str, dtype: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "captioner.bench", "--child-rss", kind, path, dtype]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(Path(__file__).resolve().parent.parent))
    if proc.returncode != 0:
        raise RuntimeError(f"memory child {kind} {path} {dtype} failed:\n{proc.stderr[-3000:]}")
    stages = json.loads(proc.stdout.strip().splitlines()[-1])
    peak = max(s["hwm_mb"] for s in stages.values())
    return {"stages": stages, "peak_gb": peak * 2**20 / GB}


# -- reporting ----------------------------------------------------------------------------------
def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# Benchmark",
        "",
        f"Measured {result['date']} with `python -m captioner.bench` on {m['cpu']} ({m['cores']} cores, "
        f"{m['threads']} threads, AMX-bf16: {'yes' if m['amx_bf16'] else 'no'}), torch {m['torch']}, "
        f"transformers {m['transformers']}. Load average before / after: "
        f"{result['load_before'][0]:.2f} / {result['load_after'][0]:.2f}"
        + (f"; other processes used {result['other_load']['mean_cores']:.2f} cores on average "
           f"(max {result['other_load']['max_cores']:.2f})" if "other_load" in result else "") + ".",
        "",
        f"Full-size models with random weights; every caption is exactly {NEW_TOKENS} tokens from a 224 x 224 "
        "pixel tensor (preprocessing excluded); one warm-up run excluded; times in ms.",
        "",
    ]
    if "bandwidth" in result:
        bw, mm = result["bandwidth"], result["matmul"]
        lines += [
            f"Machine: read bandwidth {bw['gb_per_s']:.1f} GB/s; matmul "
            + "; ".join(f"{d} {v['square_2048_gflops']:.0f} GFLOP/s (2048^3), {v['encoder_shape_gflops']:.0f} at the encoder's shapes"
                        for d, v in mm.items())
            + ".",
            "",
        ]
    if result.get("kernels"):
        lines += [
            "The decoding step's own products: one pass over the projections of 12 full-size decoder layers "
            "(rows x 768 by the 72 weights), GB/s read, by the weights' order in memory (the engine picks the "
            "faster order per dtype: fp32 (in, out), bf16 (out, in)):",
            "",
            "| dtype | rows | (out, in) | (in, out) |",
            "|---|---:|---:|---:|",
        ]
        for dtype in ("fp32", "bf16"):
            for rows in (1, 4):
                cells = {k["order"]: k["gb_per_s"] for k in result["kernels"] if k["dtype"] == dtype and k["rows"] == rows}
                if cells:
                    lines.append(f"| {dtype} | {rows} | {cells.get('(out, in)', 0):.1f} | {cells.get('(in, out)', 0):.1f} |")
        lines.append("")
    for model, per in result.get("floor", {}).items():
        for dtype, f in per.items():
            lines.append(
                f"Floor, {model} {dtype}: {f['encoder_gflop']:.1f} GFLOP encoder / throughput = {f['encoder_s'] * 1e3:.1f} ms "
                f"+ 16 x {f['decoder_step_mb']:.0f} MB decoder weights / bandwidth = {f['decoder_s'] * 1e3:.1f} ms "
                f"-> **{f['floor_s'] * 1e3:.0f} ms**."
            )
    lines += ["", "| model | dtype | workload | contender | median | min | max | runs | ratio |", "|---|---|---|---|---:|---:|---:|---:|---|"]
    for r in result.get("rows", []):
        ratio = []
        if "vs_generate" in r:
            ratio.append(f"{r['vs_generate']:.2f} x generate" + ("" if r.get("same_tokens_as_generate", True) else " (tokens differ)"))
        if "vs_floor" in r:
            ratio.append(f"{r['vs_floor']:.2f} x floor")
        if "vs_hf" in r:
            ratio.append(f"{r['vs_hf']:.2f} x hf")
        if "vs_beam4" in r:
            ratio.append(f"{r['vs_beam4']:.2f} x beam 4")
        if "engine_speedup" in r:
            ratio.append(f"engine {r['engine_speedup']:.1f} x faster")
        lines.append(
            f"| {r['model']} | {r['dtype']} | {r['workload']} | {r['contender']} | {r['median_s'] * 1e3:.0f} | "
            f"{r['min_s'] * 1e3:.0f} | {r['max_s'] * 1e3:.0f} | {r['runs']} | {'; '.join(ratio)} |"
        )
    notes = []
    for r in result.get("rows", []):
        if r["contender"] == "no-cache":
            enc = next((x for x in result["rows"] if (x["model"], x["dtype"], x["workload"]) == (r["model"], r["dtype"], "encode only")), None)
            greedy = next((x for x in result["rows"] if (x["model"], x["dtype"], x["contender"], x["workload"]) == (r["model"], r["dtype"], "engine", "greedy")), None)
            if enc and greedy:
                E = enc["median_s"]
                D = max(1e-9, (greedy["median_s"] - E) / NEW_TOKENS)
                bound = NEW_TOKENS * (E + D) / (E + NEW_TOKENS * D)
                notes.append(
                    f"No-cache loop, {r['model']} {r['dtype']}: it re-runs the encoder (E = {E * 1e3:.0f} ms) and the prefix for "
                    f"each token, while the engine runs E once and then a step of D = {D * 1e3:.0f} ms per token. A pass over a "
                    f"16-token prefix streams the same weights as one step, so the cache saves roughly 16(E+D)/(E+16D) = "
                    f"{bound:.1f} x here (measured: {r['engine_speedup']:.1f} x); 10 x would need E > 24 D."
                )
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    mem = result.get("memory")
    if mem:
        stage_names = list(next(iter(v["stages"] for k, v in mem.items() if k != "import torch")).keys())
        lines += ["", "Peak resident memory (VmHWM, MiB) of a fresh process, after each stage (peak also in GB = 1e9 bytes):", "",
                  "| process | " + " | ".join(stage_names) + " | peak GB |", "|---|" + "---:|" * (len(stage_names) + 1)]
        for k, v in mem.items():
            cells = [f"{v['stages'][s]['hwm_mb']:.0f}" if s in v["stages"] else "" for s in stage_names]
            lines.append(f"| {k} | " + " | ".join(cells) + f" | {v['peak_gb']:.2f} |")
    for key, label in (("builtin_bf16", "bf16"), ("builtin_int8", "int8 (dynamic quantization)")):
        b = result.get(key)
        if b and "fraction" in b:
            lines += ["", f"Built-in model, {label}: greedy captions identical to fp32 on {b['identical']} of {b['scenes']} "
                          f"evaluation scenes ({100 * b['fraction']:.1f}%)."]
    lines += ["", "| target | where | measured | limit | met |", "|---|---|---:|---:|---|"]
    for t in result.get("targets", []):
        value = "" if t["value"] is None else (f"{t['value']:.3f}" if t["target"] == "builtin_bf16" else f"{t['value']:.2f}")
        met = {True: "yes", False: "**no**", None: "not measured"}[t["met"]]
        note = f" ({t['note']})" if t["note"] else ""
        lines.append(f"| {t['text']} | {t['where']} | {value} | {t['limit']} | {met}{note} |")
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m captioner.bench", description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=5, help="timed runs per contender (after one warm-up)")
    p.add_argument("--quick", action="store_true", help="2 runs each, fp32 and bf16 only")
    p.add_argument("--only", default=None, help=f"comma-separated sections: {','.join(SECTIONS)}")
    p.add_argument("--dtypes", default="fp32,bf16,int8", help="comma-separated: fp32,bf16,int8 (int8: VisionGPT2 only)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--builtin-scenes", type=int, default=500, help="evaluation scenes for the built-in bf16 check")
    p.add_argument("--json", default=None, help="JSON output (default bench-results/bench-<date>.json)")
    p.add_argument("--markdown", default=None, help="markdown table output (default: beside the JSON)")
    p.add_argument("--update-docs", action="store_true", help="also write the table to docs/benchmark.md (tracked)")
    p.add_argument("--child-rss", nargs=3, metavar=("KIND", "PATH", "DTYPE"), help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.child_rss:
        child_main(*args.child_rss, threads=args.threads)
        return 0
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    if args.quick:
        args.runs = min(args.runs, 2)
        if args.dtypes == "fp32,bf16,int8":
            args.dtypes = "fp32,bf16"
    result = Bench(args).run()
    stamp = _dt.datetime.now().strftime("%Y-%m-%d-%H%M")
    json_path = Path(args.json or f"bench-results/bench-{stamp}.json")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(result, indent=1))
    table = markdown(result)
    written = [json_path, Path(args.markdown or json_path.with_suffix(".md"))]
    if args.update_docs:
        written.append(DOCS_TABLE)
    for path in written[1:]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(table)
    print(table)
    _log("wrote " + ", ".join(map(str, written)) + f" in {result['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
