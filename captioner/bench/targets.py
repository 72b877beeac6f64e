"""The benchmark's targets, stated once: the table gives both the text of the report and the checks."""

from __future__ import annotations

from typing import Any, NamedTuple


class Target(NamedTuple):
    key: str
    text: str  # formatted with the limit
    limit: float
    at_most: bool  # met when the measured value is <= limit (else >=)

    def describe(self) -> str:
        return self.text.format(limit=self.limit)

    def met(self, value: float) -> bool:
        return value <= self.limit if self.at_most else value >= self.limit


TARGETS = {
    t.key: t
    for t in [
        Target("greedy_vs_generate", "HF model, greedy: engine <= {limit} x generate", 0.5, True),
        Target("beam4_vs_generate", "HF model, beam 4: engine <= {limit} x generate", 0.6, True),
        Target("peers_greedy_vs_generate", "fp32 greedy: engine <= {limit} x eager generate", 0.6, True),
        Target(
            "peers_greedy_vs_compiled", "fp32 greedy: engine <= {limit} x generate with static cache + compile (warm)", 0.85, True
        ),
        Target("peers_beam4_vs_generate", "beam 4: engine <= {limit} x eager generate", 0.6, True),
        Target("visiongpt2_vs_hf", "VisionGPT2 through the engine no slower than the HF model through it", 1.0, True),
        Target("vs_nocache", "greedy: >= {limit:.0f} x faster than the no-cache loop", 10.0, False),
        Target("bf16_vs_floor", "bf16 greedy within {limit} x of the floor", 1.5, True),
        Target("compare_vs_beam4", "Compare workload <= {limit} x one beam-4 caption", 1.5, True),
        Target("batch8_vs_batch1", "full-size VisionGPT2, fp32 greedy: batch 8 >= {limit} x the images/s of batch 1", 1.8, False),
        Target("rss_bf16", "peak RSS, full-size VisionGPT2 in bf16 <= {limit} GB", 0.7, True),
        Target("rss_fp32", "peak RSS, full-size VisionGPT2 in fp32 <= {limit} GB", 1.2, True),
        Target(
            "builtin_bf16", "built-in model: bf16 greedy identical to fp32 on >= {limit:.0%} of evaluation scenes", 0.99, False
        ),
    ]
}


def check(key: str, where: str, value: float | None, note: str = "") -> dict[str, Any]:
    """One row of the targets table: the target, where it was measured, the value and whether it is met."""
    t = TARGETS[key]
    met = None if value is None else t.met(value)
    return {"target": key, "text": t.describe(), "where": where, "value": value, "limit": t.limit, "met": met, "note": note}


def evaluate(rows: list[dict[str, Any]], result: dict[str, Any], dtypes: list[str]) -> list[dict[str, Any]]:
    """Each target with its measured ratio (or value) and whether it is met."""
    find = _finder(rows)
    out = []
    for dtype in dtypes:
        for kind, key in (("greedy", "greedy_vs_generate"), ("beam4", "beam4_vs_generate")):
            r = find("hf", dtype, "engine", kind)
            if r and "vs_generate" in r:
                out.append(check(key, dtype, r["vs_generate"]))
        out += _peers(find, dtype)
        out += _versus(find, dtype)
        r = find("visiongpt2", dtype, "no-cache", "greedy")
        if r:
            out.append(check("vs_nocache", dtype, r["engine_speedup"]))
        for model in ("visiongpt2", "hf"):
            r = find(model, dtype, "engine", "greedy")
            if dtype == "bf16" and r and "vs_floor" in r:
                out.append(check("bf16_vs_floor", model, r["vs_floor"]))
            r = find(model, dtype, "engine", "compare")
            if r:
                out.append(check("compare_vs_beam4", f"{model} {dtype}", r["vs_beam4"]))
    r = find("visiongpt2", "fp32", "engine, batch 8", "greedy")
    if r:
        out.append(check("batch8_vs_batch1", "16 tokens, interleaved", r["vs_batch1"]))
    out += _memory(result)
    b = result.get("builtin_bf16")
    if b:
        out.append(
            check("builtin_bf16", f"{b['scenes']} scenes" if "fraction" in b else "", b.get("fraction"), b.get("skipped", ""))
        )
    return out


def _finder(rows):
    def find(model, dtype, contender, workload):
        return next(
            (r for r in rows if (r["model"], r["dtype"], r["contender"], r["workload"]) == (model, dtype, contender, workload)),
            None,
        )

    return find


def _peers(find, dtype: str) -> list[dict[str, Any]]:
    """The peers section's targets: fp32 greedy against both generate paths, beam 4 against eager generate."""
    out = []
    for model in ("visiongpt2", "hf"):
        greedy, beam = find(model, dtype, "peers: engine", "greedy"), find(model, dtype, "peers: engine", "beam4")
        if greedy and dtype == "fp32":
            out.append(check("peers_greedy_vs_generate", f"{model} {dtype}", greedy["vs_generate"]))
            if "vs_compiled" in greedy:
                out.append(check("peers_greedy_vs_compiled", f"{model} {dtype}", greedy["vs_compiled"]))
        if beam:
            out.append(check("peers_beam4_vs_generate", f"{model} {dtype}", beam["vs_generate"]))
    return out


def _versus(find, dtype: str) -> list[dict[str, Any]]:
    out = []
    for kind in ("greedy", "beam4", "top_p"):
        v, h = find("visiongpt2", dtype, "engine, beside hf", kind), find("hf", dtype, "engine, beside visiongpt2", kind)
        where = f"{dtype} {kind}, interleaved"
        if not (v and h):  # the sections' own rows, measured minutes apart
            v, h = find("visiongpt2", dtype, "engine", kind), find("hf", dtype, "engine", kind)
            where = f"{dtype} {kind}"
        if v and h:
            out.append(check("visiongpt2_vs_hf", where, v["median_s"] / h["median_s"]))
    return out


def _memory(result: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    mem = result.get("memory", {})
    base = mem.get("import torch", {}).get("peak_gb")
    for dtype in ("bf16", "fp32"):
        m = mem.get(f"visiongpt2 {dtype}")
        if not m:
            continue
        code = m["stages"].get("import model code", {}).get("peak_mb")
        code = code * 2**20 / 1e9 if code else None
        note = f"import torch alone: {base:.2f} GB" if base else ""
        if base and code:
            note += f"; timm + torchvision imports: +{code - base:.2f} GB; weights and decoding: +{m['peak_gb'] - code:.2f} GB"
        weights = result.get("weights_gb", {}).get(dtype)
        if weights:
            note += f" (the weights alone: {weights:.2f} GB)"
        out.append(check(f"rss_{dtype}", dtype, m["peak_gb"], note))
    return out
