"""The benchmark's results as a markdown page (bench-results/, or docs/benchmark.md with --update-docs)."""

from __future__ import annotations

from typing import Any

from captioner.bench.contenders import NEW_TOKENS


def markdown(result: dict[str, Any]) -> str:
    parts = [
        _header(result),
        _machine(result),
        _floors(result),
        _table(result),
        _nocache_notes(result),
        _batch(result),
        _memory(result),
        _builtin(result),
        _targets(result),
    ]
    return "\n\n".join(p for p in parts if p) + "\n"


def _header(result: dict[str, Any]) -> str:
    m = result["machine"]
    load = ""
    if "other_load" in result:
        o = result["other_load"]
        load = f"; other processes used {o['mean_cores']:.2f} cores on average (max {o['max_cores']:.2f})"
    return (
        f"# Benchmark\n\nMeasured {result['date']} with `python -m captioner.bench` on {m['cpu']} ({m['cores']} cores, "
        f"{m['threads']} threads, {m['cpu_capability']}, AMX: {'yes' if m['amx'] else 'no'}), torch {m['torch']}, "
        f"transformers {m['transformers']}. Load average before / after: {result['load_before'][0]:.2f} / "
        f"{result['load_after'][0]:.2f}{load}.\n\n"
        f"Full-size models with random weights; every caption is exactly {NEW_TOKENS} tokens from a 224 x 224 pixel "
        "tensor (preprocessing excluded); one warm-up run excluded; times in ms."
    )


def _machine(result: dict[str, Any]) -> str:
    if "bandwidth" not in result:
        return ""
    bw, mm = result["bandwidth"], result["matmul"]
    speeds = "; ".join(
        f"{d} {v['square_2048_gflops']:.0f} GFLOP/s (2048^3), {v['encoder_shape_gflops']:.0f} at the encoder's shapes"
        for d, v in mm.items()
    )
    return f"Machine: read bandwidth {bw['gb_per_s']:.1f} GB/s; matmul {speeds}."


def _floors(result: dict[str, Any]) -> str:
    return "\n".join(
        f"Floor, {model} {dtype}: {f['encoder_gflop']:.1f} GFLOP encoder / throughput = {f['encoder_s'] * 1e3:.1f} ms "
        f"+ {NEW_TOKENS} x {f['decoder_step_mb']:.0f} MB decoder weights / bandwidth = {f['decoder_s'] * 1e3:.1f} ms "
        f"-> **{f['floor_s'] * 1e3:.0f} ms**."
        for model, per in result.get("floor", {}).items()
        for dtype, f in per.items()
    )


def _ratios(r: dict[str, Any]) -> str:
    out = []
    if "vs_generate" in r:
        out.append(f"{r['vs_generate']:.2f} x generate" + ("" if r.get("same_tokens_as_generate", True) else " (tokens differ)"))
    if "vs_fastest_peer" in r:
        out[-1:] = [
            f"{r['vs_generate']:.2f} (min {r['vs_generate_min']:.2f}) x generate"
            + ("" if r.get("same_tokens_as_generate", True) else " (tokens differ)")
        ]
        if "vs_compiled" in r:
            out.append(f"{r['vs_compiled']:.2f} (min {r['vs_compiled_min']:.2f}) x static+compile")
        out.append(f"fastest peer: {r['fastest_peer']}")
    for key, text in (
        ("vs_floor", "{:.2f} x floor"),
        ("vs_hf", "{:.2f} x hf"),
        ("vs_beam4", "{:.2f} x beam 4"),
        ("engine_speedup", "engine {:.1f} x faster"),
        ("images_per_s", "{:.2f} images/s"),
        ("vs_batch1", "{:.2f} x batch 1"),
    ):
        if key in r:
            out.append(text.format(r[key]))
    return "; ".join(out)


def _table(result: dict[str, Any]) -> str:
    lines = [
        "| model | dtype | workload | contender | median | min | max | runs | ratio |",
        "|---|---|---|---|---:|---:|---:|---:|---|",
    ]
    for r in result.get("rows", []):
        lines.append(
            f"| {r['model']} | {r['dtype']} | {r['workload']} | {r['contender']} | {r['median_s'] * 1e3:.0f} | "
            f"{r['min_s'] * 1e3:.0f} | {r['max_s'] * 1e3:.0f} | {r['runs']} | {_ratios(r)} |"
        )
    return "\n".join(lines)


def _nocache_notes(result: dict[str, Any]) -> str:
    rows = result.get("rows", [])
    notes = []
    for r in rows:
        if r["contender"] != "no-cache":
            continue
        same = [x for x in rows if (x["model"], x["dtype"]) == (r["model"], r["dtype"])]
        enc = next((x for x in same if x["workload"] == "encode only"), None)
        greedy = next((x for x in same if (x["contender"], x["workload"]) == ("engine", "greedy")), None)
        if enc and greedy:
            E = enc["median_s"]
            D = max(1e-9, (greedy["median_s"] - E) / NEW_TOKENS)
            bound = NEW_TOKENS * (E + D) / (E + NEW_TOKENS * D)
            notes.append(
                f"- No-cache loop, {r['model']} {r['dtype']}: it re-runs the encoder (E = {E * 1e3:.0f} ms) and the prefix for "
                f"each token, while the engine runs E once and then a step of D = {D * 1e3:.0f} ms per token. A pass over a "
                f"{NEW_TOKENS}-token prefix streams the same weights as one step, so the cache saves roughly "
                f"{NEW_TOKENS}(E+D)/(E+{NEW_TOKENS}D) = {bound:.1f} x here (measured: {r['engine_speedup']:.1f} x)."
            )
    return "\n".join(notes)


def _batch(result: dict[str, Any]) -> str:
    rows = [r for r in result.get("rows", []) if r["contender"].startswith("engine, batch")]
    if not rows:
        return ""
    return (
        "Images captioned together (`caption_images`, preprocessing included): "
        + "; ".join(f"{r['contender'].removeprefix('engine, ')}: {r['images_per_s']:.2f} images/s" for r in rows)
        + "."
    )


def _memory(result: dict[str, Any]) -> str:
    mem = result.get("memory")
    if not mem:
        return ""
    names = list(next(v["stages"] for k, v in mem.items() if k != "import torch"))
    lines = [
        "Peak resident memory (MiB) of a fresh process, after each stage (peak also in GB = 1e9 bytes):",
        "",
        "| process | " + " | ".join(names) + " | peak GB |",
        "|---|" + "---:|" * (len(names) + 1),
    ]
    for k, v in mem.items():
        cells = [f"{v['stages'][s]['peak_mb']:.0f}" if s in v["stages"] else "" for s in names]
        lines.append(f"| {k} | " + " | ".join(cells) + f" | {v['peak_gb']:.2f} |")
    return "\n".join(lines)


def _builtin(result: dict[str, Any]) -> str:
    lines = []
    for key, label in (("builtin_bf16", "bf16"), ("builtin_int8", "int8 (dynamic quantization)")):
        b = result.get(key)
        if b and "fraction" in b:
            lines.append(
                f"Built-in model, {label}: greedy captions identical to fp32 on {b['identical']} of {b['scenes']} "
                f"evaluation scenes ({100 * b['fraction']:.1f}%)."
            )
    return "\n\n".join(lines)


def _targets(result: dict[str, Any]) -> str:
    lines = ["| target | where | measured | limit | met |", "|---|---|---:|---:|---|"]
    for t in result.get("targets", []):
        value = "" if t["value"] is None else (f"{t['value']:.3f}" if t["target"] == "builtin_bf16" else f"{t['value']:.2f}")
        met = {True: "yes", False: "**no**", None: "not measured"}[t["met"]]
        note = f" ({t['note']})" if t["note"] else ""
        lines.append(f"| {t['text']} | {t['where']} | {value} | {t['limit']} | {met}{note} |")
    return "\n".join(lines)
