"""The benchmark's peers section (engine against eager and static+compiled generate) on tiny models:
its rows, ratios and targets. No timings are asserted here; those are in `python -m captioner.bench`."""

from __future__ import annotations

import argparse

import pytest
import torch

from captioner.bench import contenders, peers
from captioner.bench.report import markdown
from captioner.bench.targets import evaluate
from tests.tiny_models import make_tiny_hf_model, make_tiny_visiongpt2, make_word_tokenizer


def _stats(median, minimum):
    return {"median_s": median, "min_s": minimum, "max_s": median, "runs": 2}


def test_ratios_against_generate_and_the_fastest_peer():
    r = {"generate": _stats(2.0, 1.0), "generate static+compile": _stats(1.0, 0.8), "engine": _stats(0.5, 0.4)}
    f = peers.ratio_fields(r, "engine")
    assert f["fastest_peer"] == "generate static+compile"
    assert (f["vs_generate"], f["vs_generate_min"]) == (0.25, 0.4)
    assert (f["vs_fastest_peer"], f["vs_fastest_peer_min"]) == (0.5, 0.5)
    assert f["vs_compiled"] == 0.5
    no_compile = peers.ratio_fields({k: v for k, v in r.items() if k != "generate static+compile"}, "engine")
    assert no_compile["fastest_peer"] == "generate" and "vs_compiled" not in no_compile


@pytest.fixture
def tiny_bench(monkeypatch):
    """A Bench whose full-size models are swapped for tiny ones (same code paths)."""
    from captioner.bench.run import Bench
    from captioner.models.base import ModelInfo
    from captioner.models.visiongpt2 import VisionGPT2Captioner

    monkeypatch.setattr(contenders, "build_hf", lambda seed=0: make_tiny_hf_model(seed))
    monkeypatch.setattr(contenders, "NEW_TOKENS", 5)
    args = argparse.Namespace(runs=1, no_compile=True, only="peers", dtypes="fp32", quick=False, threads=None)
    bench = Bench(args)
    tok = make_word_tokenizer()
    monkeypatch.setattr(
        bench,
        "visiongpt2",
        lambda dtype: VisionGPT2Captioner(
            make_tiny_visiongpt2().to(contenders.torch_dtype(dtype)), tok, ModelInfo("t", "visiongpt2", "t", 0, dtype)
        ),
    )
    return bench, tok


def test_peers_section_rows_and_targets(tiny_bench):
    bench, tok = tiny_bench
    torch.manual_seed(0)
    peers.peers(bench, tok, torch.randn(1, 3, 32, 32))
    got = {(r["model"], r["contender"], r["workload"]) for r in bench.rows}
    for kind in peers.KINDS:
        assert {("hf", "peers: generate", kind), ("hf", "peers: engine", kind), ("visiongpt2", "peers: engine", kind)} <= got
    engine = bench.find("hf", "fp32", "peers: engine", "greedy")
    assert engine["same_tokens_as_generate"] is True
    assert bench.find("hf", "fp32", "peers: engine", "beam4")["same_tokens_as_generate"] is True
    assert engine["fastest_peer"] == "generate"
    targets = evaluate(bench.rows, {}, ["fp32"])
    names = [(t["target"], t["where"]) for t in targets]
    assert ("peers_greedy_vs_generate", "visiongpt2 fp32") in names and ("peers_beam4_vs_generate", "hf fp32") in names
    row = next(t for t in targets if t["target"] == "peers_greedy_vs_generate" and t["where"] == "hf fp32")
    assert row["value"] == engine["vs_generate"] and row["met"] == (engine["vs_generate"] <= 0.6)
    machine = {"cpu": "x", "cpu_capability": "AVX512", "amx": False, "cores": 2, "threads": 2, "torch": "t", "transformers": "t"}
    text = markdown(
        {
            "date": "d",
            "machine": machine,
            "load_before": (0, 0, 0),
            "load_after": (0, 0, 0),
            "rows": bench.rows,
            "targets": targets,
        }
    )
    assert f"{engine['vs_generate']:.2f} (min {engine['vs_generate_min']:.2f}) x generate; fastest peer: generate" in text
    assert "fp32 greedy: engine <= 0.6 x eager generate" in text


def test_coldstart_checks_out_a_revision_with_its_builtin_model(tmp_path):
    from captioner.bench import coldstart

    tree = coldstart.checkout("HEAD", tmp_path / "rev")
    assert (tree / "captioner" / "__main__.py").exists() and (tree / "captioner" / "builtin" / "config.json").exists()


@pytest.mark.slow
def test_coldstart_of_the_builtin_model_prints_a_caption(tmp_path):
    import numpy as np
    from PIL import Image

    from captioner.bench import coldstart

    image = tmp_path / "image.png"
    Image.fromarray(np.zeros((64, 64, 3), dtype=np.uint8)).save(image)
    assert 0 < coldstart.first_caption_s(coldstart.REPO, image, "builtin") < 600
    with pytest.raises(RuntimeError, match="printed no caption"):
        coldstart.first_caption_s(coldstart.REPO, tmp_path / "missing.png", "builtin")
