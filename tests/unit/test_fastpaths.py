"""The engine's fast paths give what the plain paths give: folded cross-attention, bf16 row projection,
top-p without a full argsort, sampling among the kept tokens, dtype conversion that hands file pages
back. No timings here: those are in `captioner.bench`."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from captioner.config import DecodingConfig
from captioner.decoding import NEG_INF, apply_top_p, caption_image
from captioner.loading import convert_dtype, load_captioner, read_state_dict
from captioner.models.base import project_rows
from captioner.models.visiongpt2 import CrossAttention
from tests.tiny_models import make_tiny_visiongpt2, make_tiny_visiongpt2_dir, tiny_visiongpt2_config


def _sorted_top_p(scores: torch.Tensor, p: float) -> torch.Tensor:
    """transformers' TopPLogitsWarper, written out: full argsort."""
    sorted_scores, order = torch.sort(scores, descending=False)
    remove_sorted = sorted_scores.softmax(dim=-1).cumsum(dim=-1) <= (1 - p)
    remove_sorted[..., -1:] = False
    return scores.masked_fill(remove_sorted.scatter(1, order, remove_sorted), NEG_INF)


@pytest.mark.parametrize("ties", [False, True])
def test_top_p_fast_path_is_exact(ties):
    torch.manual_seed(0)
    for trial in range(20):
        scores = torch.randn(3, 5000) * (0.5 + trial)
        if ties:  # bf16 logits: many equal values, some straddling the cut
            scores = scores.bfloat16().float()
        if trial % 4 == 0:
            scores[:, torch.randperm(5000)[:3000]] = NEG_INF  # after top-k or banned tokens
        for p in (0.05, 0.5, 0.9, 0.999):
            assert torch.equal(apply_top_p(scores, p), _sorted_top_p(scores, p))


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


def test_folded_cross_attention_equals_per_row():
    torch.manual_seed(0)
    attn = CrossAttention(tiny_visiongpt2_config()).eval()
    x = torch.randn(5, 1, 32)
    k, v = attn.image_keys_values(torch.randn(1, 17, 32))  # one image, (1, H, N, hd)
    for need_weights in (False, True):
        folded, att = attn(x, k, v, need_weights)  # 5 rows share the image: folded
        plain, att_plain = attn(x, k.expand(5, -1, -1, -1), v.expand(5, -1, -1, -1), need_weights)  # not folded
        torch.testing.assert_close(folded, plain)
        if need_weights:
            assert att.shape == (5, 4, 1, 17)
            torch.testing.assert_close(att, att_plain)


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


@pytest.mark.parametrize("shape", [(1, 64), (4, 64), (3, 1, 64), (1, 1, 64), (40, 64)])
@pytest.mark.parametrize("bias", [False, True])
def test_project_rows(shape, bias):
    torch.manual_seed(0)
    layer = nn.Linear(64, 300, bias=bias)
    x = torch.randn(*shape)
    torch.testing.assert_close(project_rows(x, layer), layer(x))  # fp32: the layer itself
    layer = layer.bfloat16()
    x = x.bfloat16()
    y = project_rows(x, layer)
    assert y.shape == (*shape[:-1], 300) and y.dtype == torch.bfloat16
    torch.testing.assert_close(y.float(), layer(x).float(), rtol=2e-2, atol=2e-2)


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


def test_bench_helpers():
    from captioner.bench import benchmark as bench

    # ViT-B/16 at 224 px: ~35 GFLOP (17.6 G multiply-adds), + 2.8 GFLOP of cross-attention keys/values.
    assert 35e9 < bench.encoder_flops(cross_kv=False) < 36e9
    assert bench.encoder_flops() - bench.encoder_flops(cross_kv=False) == pytest.approx(12 * 4 * 197 * 768 * 768)
    cap = type("C", (), {"model": make_tiny_visiongpt2()})()
    c = cap.model.config
    C = c.embed_dim
    # c_attn 3C^2+3C; c_proj, cross q, cross c_proj 3(C^2+C); mlp 8C^2+5C; three LayerNorms 6C (cross k, v excluded)
    per_layer = 14 * C * C + 17 * C
    assert bench.decoder_step_bytes(cap) == 4 * (c.depth * per_layer + c.vocab_size * C + 2 * C)
    row = {"model": "visiongpt2", "dtype": "fp32", "contender": "engine", "workload": "greedy", "median_s": 0.3, "min_s": 0.2,
           "max_s": 0.4, "runs": 3, "vs_generate": 0.8, "vs_floor": 1.2}
    text = bench.markdown({"date": "d", "machine": {"cpu": "x", "cores": 2, "threads": 2, "amx_bf16": True, "torch": "t",
                                                    "transformers": "t"}, "load_before": (0, 0, 0), "load_after": (0, 0, 0),
                           "rows": [row], "targets": []})
    assert "| visiongpt2 | fp32 | greedy | engine | 300 | 200 | 400 | 3 | 0.80 x generate; 1.20 x floor |" in text


def test_next_token_logits_decides_near_ties_in_fp32():
    from captioner.models.base import next_token_logits

    torch.manual_seed(0)
    norm, head = nn.LayerNorm(64), nn.Linear(64, 500, bias=False)
    h = torch.randn(3, 64)
    torch.testing.assert_close(next_token_logits(h, norm, head), head(norm(h)))  # fp32: unchanged
    norm16, head16 = nn.LayerNorm(64).bfloat16(), head.bfloat16()
    logits = next_token_logits(h.bfloat16(), norm16, head16, exact_top=8)
    assert logits.dtype == torch.float32
    x = F.layer_norm(h.bfloat16().float(), (64,))
    reference = x @ head16.weight.float().T  # the bf16 weights, fp32 arithmetic
    top = reference.topk(8, dim=-1).indices
    torch.testing.assert_close(logits.gather(1, top), reference.gather(1, top), rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(logits, reference, rtol=2e-2, atol=2e-2)  # the rest: bf16-rounded


def test_hf_bf16_step_transposes_weights_without_changing_the_model(tiny_hf_dir):
    model = load_captioner(str(tiny_hf_dir), dtype="bfloat16")
    hf = model.model
    pixels = torch.randn(1, 3, 32, 32).bfloat16()
    ids = torch.tensor([[0, 5, 7, 9]])
    with torch.inference_mode():
        before = hf(pixel_values=pixels, decoder_input_ids=ids).logits[:, -1].float()
        logits, _, _ = model.step(model.encode(pixels), ids, None, False)  # lays the weights out
        after = hf(pixel_values=pixels, decoder_input_ids=ids).logits[:, -1].float()
    conv = hf.decoder.transformer.h[0].mlp.c_fc
    assert conv.weight.t().is_contiguous() and conv.weight.shape == (32, 128)
    torch.testing.assert_close(after, before)
    torch.testing.assert_close(logits, before, rtol=5e-2, atol=5e-2)
    # And a cached one-row step gives the same next-token logits as the whole prefix.
    with torch.inference_mode():
        memory = model.encode(pixels)
        _, cache, _ = model.step(memory, ids[:, :3], None, False)
        last, _, _ = model.step(memory, ids, cache, False)
    torch.testing.assert_close(last, logits, rtol=5e-2, atol=5e-2)


def _forward(model, pixels, ids):
    with torch.inference_mode():
        return model(pixels, ids)


def test_step_layout_keeps_values_and_orders_memory_per_dtype():
    from captioner.models.step import step_layout

    w = torch.randn(6, 4)  # (out, in), as nn.Linear keeps it
    fp32 = step_layout(w)
    assert fp32.shape == w.shape and fp32.t().is_contiguous() and torch.equal(fp32, w)
    assert step_layout(fp32) is None  # already laid out
    bf16 = step_layout(fp32.to(torch.bfloat16))  # .to keeps the (in, out) order: bf16 wants (out, in)
    assert bf16.is_contiguous() and torch.equal(bf16, w.to(torch.bfloat16))
    conv = torch.randn(4, 6)  # transformers' Conv1D: (in, out)
    assert step_layout(conv, weight_in_out=True) is None  # fp32 reads (in, out) already
    assert step_layout(conv.bfloat16(), weight_in_out=True).t().is_contiguous()
    assert step_layout(torch.ones(3, 3, dtype=torch.int8)) is None


def test_visiongpt2_weights_laid_out_for_steps_give_the_same_model(tmp_path):
    src = make_tiny_visiongpt2(seed=3)
    pixels = torch.randn(1, 3, 32, 32)
    ids = torch.tensor([[0, 5, 7, 9]])
    before = _forward(src, pixels, ids)
    folder = make_tiny_visiongpt2_dir(tmp_path, seed=3)  # captioner.pt (a mapped .pt zip) + tokenizer
    (folder / "config.json").write_text(json.dumps({"architecture": "VisionGPT2", **src.config.to_dict()}))
    for dtype in ("float32", "bfloat16"):
        model = load_captioner(str(folder), dtype=dtype)  # fp32: laid out (in, out) while loading
        fc = model.model.transformer.h[0].mlp.c_fc.weight
        assert fc.shape == src.transformer.h[0].mlp.c_fc.weight.shape
        assert (fc.is_contiguous() if dtype == "bfloat16" else fc.t().is_contiguous()), dtype
        after = _forward(model.model, pixels.to(model.dtype), ids)
        tol = {"rtol": 0, "atol": 1e-5} if dtype == "float32" else {"rtol": 5e-2, "atol": 5e-2}
        torch.testing.assert_close(after.float(), before, **tol)
    # A model switched from fp32 to bf16 after captioning gets the bf16 order at its next caption.
    model = load_captioner(str(folder))
    image = Image.new("RGB", (40, 30))
    caption_image(model, image, DecodingConfig(max_new_tokens=3))
    model.model.to(torch.bfloat16)
    assert not model.model.transformer.h[0].attn.c_attn.weight.is_contiguous()
    caption_image(model, image, DecodingConfig(max_new_tokens=3))
    assert model.model.transformer.h[0].attn.c_attn.weight.is_contiguous()


def test_releasing_pages_leaves_anonymous_memory_alone():
    from captioner.loading import release_file_pages

    t = torch.arange(4 * 2**20, dtype=torch.float32)  # 16 MB of anonymous memory, many whole pages
    release_file_pages()(t)
    assert torch.equal(t, torch.arange(4 * 2**20, dtype=torch.float32))
