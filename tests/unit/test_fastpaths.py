"""The engine's fast paths give what the plain paths give: cross-attention with each image's rows folded
into one query block, top-p with numpy's sort, sampling among the kept tokens, dtype conversion that hands file pages back, a
model whose dtype changes between captions. No timings here: those are in `captioner.bench`."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from captioner.config import DecodingConfig
from captioner.decoding import caption_image
from captioner.loading import convert_dtype, load_captioner, read_state_dict
from captioner.models.step import attend_images
from tests.tiny_models import make_tiny_visiongpt2, make_tiny_visiongpt2_dir


@pytest.mark.parametrize("ties", [False, True])
def test_top_p_with_numpys_sort_is_transformers_top_p(ties):
    from transformers import TopPLogitsWarper

    from captioner.decoding.processors import TopPWarper

    torch.manual_seed(0)
    ids = torch.zeros(3, 1, dtype=torch.long)
    for trial in range(20):
        scores = torch.randn(3, 5000) * (0.5 + trial)
        if ties:  # bf16 logits: many equal values, some straddling the cut
            scores = scores.bfloat16().float()
        if trial % 4 == 0:
            scores[:, torch.randperm(5000)[:3000]] = -float("inf")  # after top-k or banned tokens
        for p in (0.05, 0.5, 0.9, 0.999):
            assert torch.equal(TopPWarper(p)(ids, scores), TopPLogitsWarper(p)(ids, scores.clone()))


def test_sampling_draws_only_kept_tokens():
    model = make_tiny_visiongpt2(seed=5)
    from captioner.models.base import ModelInfo
    from captioner.models.visiongpt2 import VisionGPT2Captioner
    from tests.tiny_models import make_word_tokenizer

    cap = VisionGPT2Captioner(model, make_word_tokenizer(), ModelInfo("t", "visiongpt2", "t", 0, "float32"))
    from PIL import Image

    config = DecodingConfig(strategy="sample", top_k=2, seed=4, num_return_sequences=6, max_new_tokens=6, num_alternatives=3)
    result = caption_image(cap, Image.new("RGB", (40, 40), (90, 20, 200)), [config])[0]
    for caption in result.captions:
        for token, alts in zip(caption.token_ids, caption.alternatives):
            assert token in [i for i, _, _ in alts[:2]]  # one of the two most likely


@pytest.mark.parametrize("image_rows", [[6], [3, 3], [1, 1, 1, 1, 1, 1], [2, 4], [1, 0, 5], [0, 6]])
def test_folded_cross_attention_equals_per_row(image_rows):
    torch.manual_seed(0)
    H, T, hd, N = 4, 2, 8, 17
    q = torch.randn(6, T, H, hd)  # 6 rows
    keys, values = torch.randn(len(image_rows), H, N, hd), torch.randn(len(image_rows), H, N, hd)
    image_of_row = torch.arange(len(image_rows)).repeat_interleave(torch.tensor(image_rows))
    # Per row, written out: the row's queries against its own image.
    att = (q.transpose(1, 2) @ keys[image_of_row].transpose(-2, -1) * hd**-0.5).softmax(dim=-1)  # (6, H, T, N)
    expected = (att @ values[image_of_row]).transpose(1, 2).reshape(6 * T, H * hd)
    for need_weights in (False, True):
        y, last = attend_images(q, keys, values, image_rows, hd**-0.5, need_weights)
        torch.testing.assert_close(y, expected)
        if need_weights:
            torch.testing.assert_close(last, att[:, :, -1])


def test_hf_folded_step_equals_rows_alone(tiny_hf_dir):
    model = load_captioner(str(tiny_hf_dir))
    pixels = torch.randn(1, 3, 32, 32)
    memory = model.encode(pixels)
    ids = torch.tensor([[0, 5, 7], [0, 9, 3], [0, 2, 2]])
    logits, _, att = model.step(memory, ids, None, True)
    for r in range(3):
        alone, _, att_alone = model.step(memory, ids[r : r + 1], None, True)
        torch.testing.assert_close(logits[r : r + 1], alone, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(att[r : r + 1], att_alone, rtol=1e-5, atol=1e-5)


def test_convert_dtype_releasing_mapped_pages(tmp_path):
    src = make_tiny_visiongpt2(seed=2)
    torch.save(src.seed_state_dict(), tmp_path / "captioner.pt")
    from captioner.loading import build_visiongpt2

    state = read_state_dict(tmp_path / "captioner.pt")  # memory-mapped
    model = convert_dtype(build_visiongpt2(state, src.config), torch.bfloat16, release_source=True)
    del state
    assert model.lm_head.weight is model.transformer.wte.weight
    for (name, a), b in zip(model.state_dict().items(), src.state_dict().values()):
        assert a.dtype == torch.bfloat16, name
        torch.testing.assert_close(a, b.to(torch.bfloat16), rtol=0, atol=0)
    # The file is untouched.
    torch.testing.assert_close(read_state_dict(tmp_path / "captioner.pt")["lm_head.weight"], src.lm_head.weight)


def test_the_benchmarks_flop_counts_targets_and_report_helpers():
    from captioner.bench import contenders
    from captioner.bench.report import markdown
    from captioner.bench.targets import TARGETS, evaluate

    # ViT-B/16 at 224 px: ~35 GFLOP (17.6 G multiply-adds), + 2.8 GFLOP of cross-attention keys/values.
    assert 35e9 < contenders.encoder_flops(cross_kv=False) < 36e9
    assert contenders.encoder_flops() - contenders.encoder_flops(cross_kv=False) == pytest.approx(12 * 4 * 197 * 768 * 768)
    cap = type("C", (), {"model": make_tiny_visiongpt2()})()
    c = cap.model.config
    C = c.embed_dim
    # c_attn 3C^2+3C; c_proj, cross q, cross c_proj 3(C^2+C); mlp 8C^2+5C; three LayerNorms 6C (cross k, v excluded)
    per_layer = 14 * C * C + 17 * C
    assert contenders.decoder_step_bytes(cap) == 4 * (c.depth * per_layer + c.vocab_size * C + 2 * C)
    # One table gives the targets' text and their checks.
    assert TARGETS["greedy_vs_generate"].describe() == "HF model, greedy: engine <= 0.5 x generate"
    assert TARGETS["builtin_bf16"].describe().endswith(">= 99% of evaluation scenes")
    assert TARGETS["batch8_vs_batch1"].met(1.8) and not TARGETS["batch8_vs_batch1"].met(1.79)
    rows = [
        {
            "model": "hf",
            "dtype": "fp32",
            "contender": "engine",
            "workload": "greedy",
            "median_s": 0.3,
            "min_s": 0.2,
            "max_s": 0.4,
            "runs": 3,
            "vs_generate": 0.8,
            "vs_floor": 1.2,
        },
        {
            "model": "visiongpt2",
            "dtype": "fp32",
            "contender": "engine, batch 8",
            "workload": "greedy",
            "median_s": 2.0,
            "min_s": 2.0,
            "max_s": 2.0,
            "runs": 3,
            "images_per_s": 4.0,
            "vs_batch1": 1.9,
        },
    ]
    targets = evaluate(rows, {}, ["fp32"])
    assert [(t["target"], t["met"]) for t in targets] == [("greedy_vs_generate", False), ("batch8_vs_batch1", True)]
    machine = {"cpu": "x", "cpu_capability": "AVX512", "amx": True, "cores": 2, "threads": 2, "torch": "t", "transformers": "t"}
    text = markdown(
        {"date": "d", "machine": machine, "load_before": (0, 0, 0), "load_after": (0, 0, 0), "rows": rows, "targets": targets}
    )
    assert "| hf | fp32 | greedy | engine | 300 | 200 | 400 | 3 | 0.80 x generate; 1.20 x floor |" in text
    assert "| HF model, greedy: engine <= 0.5 x generate | fp32 | 0.80 | 0.5 | **no** |" in text
    assert "batch 8: 4.00 images/s" in text


def test_next_token_logits_are_fp32_from_a_fp32_norm():
    """The shared step's last two stages (models/step.py): the final LayerNorm in fp32, then the head."""
    from captioner.models.base import final_hidden, head_logits

    torch.manual_seed(0)
    norm, head = nn.LayerNorm(64), nn.Linear(64, 500, bias=False)
    h = torch.randn(3, 64)
    torch.testing.assert_close(head_logits(final_hidden(h, norm), head), head(norm(h)))  # fp32: the modules themselves
    norm16, head16 = nn.LayerNorm(64).bfloat16(), head.bfloat16()
    logits = head_logits(final_hidden(h.bfloat16(), norm16), head16)
    assert logits.dtype == torch.float32
    reference = F.layer_norm(h.bfloat16().float(), (64,)) @ head16.weight.float().T  # bf16 weights, fp32 arithmetic
    torch.testing.assert_close(logits, reference, rtol=2e-2, atol=2e-2)  # the head's product rounded to bf16


def test_hf_bf16_step_equals_its_forward(tiny_hf_dir):
    model = load_captioner(str(tiny_hf_dir), dtype="bfloat16")
    pixels = torch.randn(1, 3, 32, 32).bfloat16()
    ids = torch.tensor([[0, 5, 7, 9]])
    with torch.inference_mode():
        expected = model.model(pixel_values=pixels, decoder_input_ids=ids).logits[:, -1].float()
        memory = model.encode(pixels)
        logits, _, _ = model.step(memory, ids, None, False)
        _, cache, _ = model.step(memory, ids[:, :3], None, False)  # a cached one-row step: the same
        last, _, _ = model.step(memory, ids, cache, False)
    assert logits.dtype == torch.float32
    torch.testing.assert_close(logits, expected, rtol=5e-2, atol=5e-2)
    torch.testing.assert_close(last, logits, rtol=5e-2, atol=5e-2)


def test_loaded_visiongpt2_is_the_saved_model_in_each_dtype(tmp_path):
    src = make_tiny_visiongpt2(seed=3)
    pixels = torch.randn(1, 3, 32, 32)
    ids = torch.tensor([[0, 5, 7, 9]])
    with torch.inference_mode():
        before = src(pixels, ids)
    folder = make_tiny_visiongpt2_dir(tmp_path, seed=3)  # captioner.pt (a mapped .pt zip) + tokenizer
    (folder / "config.json").write_text(json.dumps({"architecture": "VisionGPT2", **src.config.to_dict()}))
    for dtype in ("float32", "bfloat16"):
        model = load_captioner(str(folder), dtype=dtype)
        with torch.inference_mode():
            after = model.model(pixels.to(model.dtype), ids)
        tol = {"rtol": 0, "atol": 1e-5} if dtype == "float32" else {"rtol": 5e-2, "atol": 0.1}  # logits ~10: bf16 steps of 1/16
        torch.testing.assert_close(after.float(), before, **tol)


def test_a_model_switched_to_bf16_after_captioning_decodes_with_its_new_weights(tmp_path):
    folder = make_tiny_visiongpt2_dir(tmp_path, seed=3)
    image = Image.new("RGB", (40, 30), (120, 30, 200))
    config = DecodingConfig(max_new_tokens=6, num_alternatives=3)
    model = load_captioner(str(folder))
    caption_image(model, image, config)
    model.model.to(torch.bfloat16)
    switched = caption_image(model, image, config)[0].best
    fresh = caption_image(load_captioner(str(folder), dtype="bfloat16"), image, config)[0].best
    assert switched.token_ids == fresh.token_ids
    assert switched.token_probs == pytest.approx(fresh.token_probs, abs=1e-6)


def test_releasing_pages_leaves_anonymous_memory_alone():
    from captioner.loading import release_file_pages

    t = torch.arange(4 * 2**20, dtype=torch.float32)  # 16 MB of anonymous memory, many whole pages
    release_file_pages()(t)
    assert torch.equal(t, torch.arange(4 * 2**20, dtype=torch.float32))
