"""Speed and memory benchmark: `python -m captioner.bench [--quick] [--runs N] [--only SECTIONS] [--update-docs]`.

Full-size models with random weights (the compute is the same as with trained weights), built offline
(contenders.py). The machine section measures memory bandwidth (a streaming read of 1 GiB) and matmul
throughput, and the floor they imply for one caption: encoder FLOPs / throughput + 16 x decoder weight
bytes / bandwidth. Peak resident memory is measured in a fresh process per model (memory.py). The
targets are stated once, in targets.py.

Results go to bench-results/bench-<date>.json and .md (ignored by git); `--update-docs` also writes the
markdown page to the tracked docs/benchmark.md.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from captioner.bench import contenders as c
from captioner.bench.measure import (
    GB,
    OtherLoad,
    log,
    machine_info,
    measure,
    measure_bandwidth,
    measure_interleaved,
    measure_matmul,
)
from captioner.bench.memory import child_rss
from captioner.bench.peers import peers
from captioner.bench.report import markdown
from captioner.bench.targets import evaluate

DOCS_PAGE = Path("docs/benchmark.md")  # written only with --update-docs
SECTIONS = ("machine", "visiongpt2", "hf", "peers", "versus", "nocache", "compare", "batch", "memory", "builtin")
BATCH_SIZES = (1, 8)


class Bench:
    def __init__(self, args):
        self.args = args
        self.rows: list[dict[str, Any]] = []
        self.result: dict[str, Any] = {}
        self.only = set(args.only.split(",")) if args.only else set(SECTIONS)
        self.dtypes = [d for d in args.dtypes.split(",") if d]
        self.folder = Path()  # the seed-layout checkpoint, set by run()

    def add(self, model: str, dtype: str, contender: str, workload: str, r: dict[str, Any], **extra) -> dict[str, Any]:
        row = {"model": model, "dtype": dtype, "contender": contender, "workload": workload, **r, **extra}
        self.rows.append(row)
        log(
            f"  {model:10s} {dtype:5s} {contender:9s} {workload:12s} median {r['median_s'] * 1e3:8.1f} ms "
            f"(min {r['min_s'] * 1e3:.1f}, max {r['max_s'] * 1e3:.1f}, n={r['runs']})" + (f"  {extra}" if extra else "")
        )
        return row

    def find(self, model, dtype, contender, workload):
        return next(
            (
                r
                for r in self.rows
                if (r["model"], r["dtype"], r["contender"], r["workload"]) == (model, dtype, contender, workload)
            ),
            None,
        )

    def visiongpt2(self, dtype: str):
        """The seed-layout checkpoint, loaded as a user's file is, in `dtype` (int8: fp32 quantized after loading)."""
        from captioner.loading import load_captioner

        model = load_captioner(str(self.folder), dtype="float32" if dtype == "int8" else c.torch_dtype(dtype))
        return c.quantize_int8(model) if dtype == "int8" else model

    # -- sections ---------------------------------------------------------------------------------
    def machine(self):
        log("machine: bandwidth and matmul throughput")
        runs = max(3, self.args.runs)
        self.result["bandwidth"] = measure_bandwidth(runs)
        self.result["matmul"] = {d: measure_matmul(d, runs) for d in ("fp32", "bf16")}
        log(
            f"  read bandwidth {self.result['bandwidth']['gb_per_s']:.1f} GB/s; matmul "
            + ", ".join(
                f"{d}: {m['encoder_shape_gflops']:.0f} GFLOP/s (encoder shapes), {m['square_2048_gflops']:.0f} (2048^3)"
                for d, m in self.result["matmul"].items()
            )
        )

    def floor(self, captioner, dtype: str) -> dict[str, Any] | None:
        """Encoder FLOPs / throughput + 16 x decoder weight bytes / bandwidth, for this model in this dtype."""
        if "bandwidth" not in self.result or dtype not in self.result.get("matmul", {}):
            return None
        flops, step_bytes = c.encoder_flops(), c.decoder_step_bytes(captioner)
        enc_s = flops / (self.result["matmul"][dtype]["square_2048_gflops"] * 1e9)
        dec_s = c.NEW_TOKENS * step_bytes / (self.result["bandwidth"]["gb_per_s"] * GB)
        return {
            "encoder_gflop": flops / 1e9,
            "decoder_step_mb": step_bytes / 1e6,
            "encoder_s": enc_s,
            "decoder_s": dec_s,
            "floor_s": enc_s + dec_s,
        }

    def time_model(self, name: str, captioner, dtype: str, pixels, hf_model=None):
        import torch

        pixels = pixels.to(captioner.dtype if dtype != "int8" else torch.float32)
        with torch.inference_mode():
            self.add(name, dtype, "engine", "encode only", measure(lambda: captioner.encode(pixels), self.args.runs))
        for kind in ("greedy", "beam4", "top_p"):
            self._time_workload(name, captioner, dtype, pixels, kind, hf_model)
        if name == "visiongpt2" and dtype == "fp32":
            wl = c.workloads()["greedy+attn"]
            self.add(name, dtype, "engine", "greedy+attn", measure(lambda: c.run_engine(captioner, pixels, wl), self.args.runs))
        fl = self.floor(captioner, dtype) if dtype in ("fp32", "bf16") else None
        if fl:
            self.result.setdefault("floor", {}).setdefault(name, {})[dtype] = fl
            greedy = self.find(name, dtype, "engine", "greedy")
            greedy["vs_floor"] = greedy["median_s"] / fl["floor_s"]
            log(f"  floor {fl['floor_s'] * 1e3:.1f} ms; greedy / floor = {greedy['vs_floor']:.2f}")
        if name == "visiongpt2" and "nocache" in self.only and dtype != "int8":
            r = measure(lambda: c.run_nocache(captioner, pixels), max(1, self.args.runs // 2), warmup=0)  # slow, and warm already
            greedy = self.find(name, dtype, "engine", "greedy")
            self.add(name, dtype, "no-cache", "greedy", r, engine_speedup=r["median_s"] / greedy["median_s"])

    def _time_workload(self, name, captioner, dtype, pixels, kind, hf_model):
        """The engine on one workload, interleaved with generate, the Compare workload and one thread where they apply."""
        import torch

        wl = c.workloads()
        fns = {"engine": lambda: c.run_engine(captioner, pixels, wl[kind])}
        if hf_model is not None:
            fns["generate"] = lambda: c.run_generate(hf_model, pixels, kind)
        if kind == "beam4" and "compare" in self.only:
            fns["compare"] = lambda: c.run_engine(captioner, pixels, wl["compare"])
        if kind == "greedy" and torch.get_num_threads() > 1:  # what one core gives (Community Cloud: 1 to 2 CPUs)
            fns["one thread"] = lambda: c.with_threads(1, lambda: c.run_engine(captioner, pixels, wl[kind]))
        r = measure_interleaved(fns, self.args.runs)
        extra = {}
        if hf_model is not None:
            self.add(name, dtype, "generate", kind, r["generate"])
            if kind != "top_p":  # samplers draw differently; greedy and beam must agree
                tokens = c.run_engine(captioner, pixels, wl[kind])[0].best.token_ids
                extra["same_tokens_as_generate"] = c.run_generate(hf_model, pixels, kind)[0, 1:].tolist() == tokens
            extra["vs_generate"] = r["engine"]["median_s"] / r["generate"]["median_s"]
        self.add(name, dtype, "engine", kind, r["engine"], **extra)
        if "one thread" in r:
            self.add(name, dtype, "engine, 1 thread", kind, r["one thread"])
        if "compare" in r:
            self.add(name, dtype, "engine", "compare", r["compare"], vs_beam4=r["compare"]["median_s"] / r["engine"]["median_s"])

    def visiongpt2_section(self, pixels):
        log("VisionGPT2 (full size, random weights, a seed-layout captioner.pt loaded by load_captioner)")
        for dtype in [d for d in ("fp32", "int8", "bf16") if d in self.dtypes]:
            self.time_model("visiongpt2", self.visiongpt2(dtype), dtype, pixels)

    def hf_section(self, tokenizer, pixels):
        log("VisionEncoderDecoderModel ViT-B/16 + GPT-2 124M (random weights)")
        model = c.build_hf()
        cap = c.hf_captioner(model, tokenizer)  # the engine and generate read the same weights
        for dtype in [d for d in ("fp32", "bf16") if d in self.dtypes]:
            model.to(c.torch_dtype(dtype))
            self.time_model("hf", cap, dtype, pixels, hf_model=model)

    def versus(self, tokenizer, pixels):
        """VisionGPT2 and the HF model through the engine with their runs interleaved, so that the ratio
        the target asks for is not at the mercy of the load drifting between the two sections above."""
        log("VisionGPT2 beside the HF model through the engine (runs interleaved)")
        hf = c.build_hf()
        hcap = c.hf_captioner(hf, tokenizer)
        wl = c.workloads()
        for dtype in [d for d in ("fp32", "bf16") if d in self.dtypes]:
            vcap = self.visiongpt2(dtype)
            hf.to(c.torch_dtype(dtype))
            pv, ph = pixels.to(vcap.dtype), pixels.to(hcap.dtype)
            for kind in ("greedy", "beam4", "top_p"):
                fns = {"visiongpt2": lambda: c.run_engine(vcap, pv, wl[kind]), "hf": lambda: c.run_engine(hcap, ph, wl[kind])}
                r = measure_interleaved(fns, self.args.runs)
                self.add(
                    "visiongpt2",
                    dtype,
                    "engine, beside hf",
                    kind,
                    r["visiongpt2"],
                    vs_hf=r["visiongpt2"]["median_s"] / r["hf"]["median_s"],
                )
                self.add("hf", dtype, "engine, beside visiongpt2", kind, r["hf"])

    def batch(self):
        """Images per second captioning B images together (caption_images), B = 1 and 8, runs interleaved."""
        import numpy as np
        from PIL import Image

        from captioner.decoding import caption_images

        log("batch: full-size VisionGPT2, fp32 greedy, images captioned together")
        cap = self.visiongpt2("fp32")
        rng = np.random.default_rng(0)
        images = [Image.fromarray(rng.integers(0, 256, (224, 224, 3), dtype=np.uint8)) for _ in range(max(BATCH_SIZES))]
        config = c.workloads()["greedy"]
        r = measure_interleaved({b: (lambda b=b: caption_images(cap, images[:b], config)) for b in BATCH_SIZES}, self.args.runs)
        per_s = {b: b / r[b]["median_s"] for b in BATCH_SIZES}
        for b in BATCH_SIZES:
            self.add(
                "visiongpt2",
                "fp32",
                f"engine, batch {b}",
                "greedy",
                r[b],
                images_per_s=per_s[b],
                **({"vs_batch1": per_s[b] / per_s[1]} if b != 1 else {}),
            )

    def memory(self, tokenizer):
        log("memory: peak resident set of a fresh process per model")
        from transformers import ViTImageProcessor

        out = {"import torch": child_rss("torch", "", "", self.args.threads)}
        for dtype in ("fp32", "bf16"):
            out[f"visiongpt2 {dtype}"] = child_rss("model", str(self.folder), dtype, self.args.threads)
        with tempfile.TemporaryDirectory(prefix="captioner-bench-hf-") as hdir:
            model = c.build_hf()
            model.save_pretrained(hdir)
            del model
            ViTImageProcessor().save_pretrained(hdir)
            tokenizer.save_pretrained(hdir)
            for dtype in ("fp32", "bf16"):
                out[f"hf {dtype}"] = child_rss("model", hdir, dtype, self.args.threads)
        for k, v in out.items():
            log(f"  {k:18s} " + ", ".join(f"{s}: {m['peak_mb']:.0f} MiB" for s, m in v["stages"].items()))
        self.result["memory"] = out

    def builtin(self):
        """bf16 greedy captions of the built-in model against fp32 on evaluation scenes."""
        from captioner.loading import BUILTIN_DIR

        if not (BUILTIN_DIR / "config.json").exists():
            self.result["builtin_bf16"] = {"skipped": f"no built-in model in {BUILTIN_DIR}"}
            log(f"builtin: skipped, no built-in model in {BUILTIN_DIR}")
            return
        # A small model's steps are many tiny ops: one thread, so that a busy second core cannot stall them.
        c.with_threads(1, self._builtin_check)

    def _builtin_check(self):
        from captioner.config import DecodingConfig
        from captioner.decoding import caption_image
        from captioner.loading import load_captioner
        from captioner.world import make_examples, split_seeds

        n = self.args.builtin_scenes
        m32 = load_captioner("builtin", dtype="float32")
        others = {"bf16": load_captioner("builtin", dtype="bfloat16")}
        if "int8" in self.dtypes:
            others["int8"] = c.quantize_int8(m32)
        cfg = DecodingConfig(max_new_tokens=m32.default_decoding.max_new_tokens, output_attentions=False, num_alternatives=1)
        same, differ = {k: 0 for k in others}, {k: [] for k in others}
        for seed, (img, _, _) in zip(split_seeds("eval", n), make_examples(split_seeds("eval", n))):
            a = caption_image(m32, img, [cfg])[0].best
            for k, m in others.items():
                b = caption_image(m, img, [cfg])[0].best
                if a.token_ids == b.token_ids:
                    same[k] += 1
                else:
                    differ[k].append({"seed": seed, "fp32": a.text, k: b.text})
        for k in others:
            self.result[f"builtin_{k}"] = {"scenes": n, "identical": same[k], "fraction": same[k] / n, "differ": differ[k][:20]}
        log(
            "builtin: greedy captions identical to fp32 on "
            + ", ".join(f"{same[k]}/{n} evaluation scenes in {k}" for k in others)
        )

    # -- putting it together ---------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        import torch

        if self.args.threads:
            torch.set_num_threads(self.args.threads)
        self.result.update(
            date=_dt.datetime.now().isoformat(timespec="seconds"),
            machine=machine_info(),
            load_before=os.getloadavg(),
            settings={
                "runs": self.args.runs,
                "new_tokens": c.NEW_TOKENS,
                "dtypes": self.dtypes,
                "sections": sorted(self.only),
                "quick": self.args.quick,
            },
        )
        m = self.result["machine"]
        log(
            f"{m['cpu']} ({m['cpu_capability']}), {m['threads']} threads, torch {torch.__version__}; "
            f"load average {self.result['load_before'][0]:.2f}"
        )
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="captioner-bench-") as folder, OtherLoad() as other:
            self.folder = Path(folder)
            tokenizer = c.word_tokenizer()
            n = c.save_seed_checkpoint(self.folder, tokenizer)
            self.result["weights_gb"] = {"fp32": 4 * n / GB, "bf16": 2 * n / GB}
            self._sections(tokenizer, other)
        self.result.update(
            other_load=other.summary(), load_after=os.getloadavg(), wall_s=time.perf_counter() - t0, rows=self.rows
        )
        self.result["targets"] = evaluate(self.rows, self.result, self.dtypes)
        return self.result

    def _sections(self, tokenizer, other: OtherLoad):
        import torch

        if "machine" in self.only:
            self.machine()
        torch.manual_seed(0)
        pixels = torch.randn(1, 3, 224, 224)
        if "visiongpt2" in self.only:
            self.visiongpt2_section(pixels)
        if "hf" in self.only:
            self.hf_section(tokenizer, pixels)
        if "peers" in self.only:
            peers(self, tokenizer, pixels)
        if "versus" in self.only:
            self.versus(tokenizer, pixels)
        if "batch" in self.only:
            self.batch()
        other.paused = True  # below: memory and captions, no timings
        if "memory" in self.only:
            self.memory(tokenizer)
        if "builtin" in self.only:
            self.builtin()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m captioner.bench", description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=int, default=5, help="timed runs per contender (after one warm-up)")
    p.add_argument("--quick", action="store_true", help="2 runs each, fp32 and bf16 only")
    p.add_argument("--only", default=None, help=f"comma-separated sections: {','.join(SECTIONS)}")
    p.add_argument("--dtypes", default="fp32,bf16,int8", help="comma-separated: fp32,bf16,int8 (int8: VisionGPT2 only)")
    p.add_argument("--no-compile", action="store_true", help="peers: leave out generate with static cache + compile")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--builtin-scenes", type=int, default=500, help="evaluation scenes for the built-in bf16 check")
    p.add_argument("--json", default=None, help="JSON output (default bench-results/bench-<date>.json)")
    p.add_argument("--markdown", default=None, help="markdown output (default: beside the JSON)")
    p.add_argument("--update-docs", action="store_true", help=f"also write the page to {DOCS_PAGE} (tracked)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
    page = markdown(result)
    written = [json_path, Path(args.markdown or json_path.with_suffix(".md"))] + ([DOCS_PAGE] if args.update_docs else [])
    for path in written[1:]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(page)
    print(page)
    log("wrote " + ", ".join(map(str, written)) + f" in {result['wall_s']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
