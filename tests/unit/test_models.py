"""The models: VisionGPT2's forward pass against the seed format, the seed state-dict layout, and the one
cached step (models/step.py) against each family's own full forward."""

from __future__ import annotations

import math

import pytest
import torch

from captioner.config import VisionGPT2Config
from captioner.loading import load_captioner
from captioner.models.base import ModelInfo
from captioner.models.visiongpt2 import VisionGPT2, VisionGPT2Captioner
from tests.reference import seed_forward
from tests.tiny_models import make_tiny_visiongpt2, make_word_tokenizer, tiny_visiongpt2_config


def test_forward_equals_seed_reference():
    model = make_tiny_visiongpt2(seed=1)
    cfg = model.config
    pixels = torch.randn(2, 3, cfg.image_size, cfg.image_size)
    ids = torch.randint(0, cfg.vocab_size, (2, 7))
    with torch.no_grad():
        ours = model(pixels, ids)
        ref = seed_forward(model.seed_state_dict(), cfg, pixels, ids)
    assert ours.shape == (2, 7, cfg.vocab_size)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-4)


def test_seed_layout_keys_and_tied_head():
    cfg = tiny_visiongpt2_config()
    sd = VisionGPT2(cfg).seed_state_dict()
    # The full-size file has 429 entries: 4 + 12 per encoder block, 2 + 23 per decoder block, 3 more.
    assert len(sd) == 4 + 12 * cfg.depth + 2 + 23 * cfg.depth + 3
    assert sd["transformer.h.0.attn.mask"].shape == (1, 1, cfg.seq_len, cfg.seq_len)
    assert sd["lm_head.weight"].data_ptr() == sd["transformer.wte.weight"].data_ptr()
    assert sd["transformer.h.1.cross_attn.k.weight"].shape == (cfg.embed_dim, cfg.embed_dim)
    assert sd["blocks.0.attn.qkv.weight"].shape == (3 * cfg.embed_dim, cfg.embed_dim)


def test_full_size_key_count():
    with torch.device("meta"):
        model = VisionGPT2(VisionGPT2Config())
    sd = model.seed_state_dict()
    assert len(sd) == 429
    assert sd["pos_embed"].shape == (1, 197, 768)
    assert sd["transformer.h.11.mlp.c_fc.weight"].shape == (3072, 768)


def test_load_state_dict_of_seed_file_unchanged(tmp_path):
    src = make_tiny_visiongpt2(seed=2)
    path = tmp_path / "captioner.pt"
    torch.save(src.seed_state_dict(), path)
    state = torch.load(path, weights_only=True)
    dst = VisionGPT2(src.config).eval()
    result = dst.load_state_dict(state)  # strict: the file as it is
    assert not result.missing_keys and not result.unexpected_keys
    assert dst.lm_head.weight is dst.transformer.wte.weight
    pixels = torch.randn(1, 3, 32, 32)
    ids = torch.tensor([[0, 5, 9]])
    with torch.no_grad():
        torch.testing.assert_close(dst(pixels, ids), src(pixels, ids))


def test_mask_of_wrong_size_is_reported():
    src = make_tiny_visiongpt2()
    state = src.seed_state_dict()
    state["transformer.h.0.attn.mask"] = torch.ones(1, 1, 8, 8)
    with pytest.raises(RuntimeError, match="attn.mask"):
        VisionGPT2(src.config).load_state_dict(state)


def captioner_and_forward(family: str, hf_dir):
    """A captioner of the family, and its model's own full forward: (pixels, ids) -> logits (B, T, V) and
    cross-attention (B, layers, H, T, N_img)."""
    if family == "visiongpt2":
        model = make_tiny_visiongpt2(seed=3)
        cap = VisionGPT2Captioner(model, make_word_tokenizer(), ModelInfo("tiny", "visiongpt2", "test", 0, "float32"))

        def forward(pixels, ids):
            logits, attentions = model(pixels, ids, return_attention=True)
            return logits, torch.stack(attentions, dim=1)

        return cap, forward
    from transformers import VisionEncoderDecoderModel

    cap = load_captioner(str(hf_dir))
    eager = VisionEncoderDecoderModel.from_pretrained(str(hf_dir), attn_implementation="eager").eval()

    def forward(pixels, ids):
        out = eager(pixel_values=pixels, decoder_input_ids=ids, output_attentions=True)
        return out.logits, torch.stack(out.cross_attentions, dim=1)

    return cap, forward


@pytest.mark.parametrize("family", ["visiongpt2", "hf"])
def test_cached_steps_equal_full_forward(family, tiny_hf_dir):
    cap, forward = captioner_and_forward(family, tiny_hf_dir)
    torch.manual_seed(0)
    pixels = torch.randn(1, 3, 32, 32)
    ids = torch.tensor([[0, 4, 8, 15, 16, 23]])
    with torch.inference_mode():
        full, full_att = forward(pixels, ids)
        memory = cap.encode(pixels)
        cache = None
        for t in range(ids.size(1)):
            logits, cache, att = cap.step(memory, ids[:, : t + 1], cache, need_weights=True)
            torch.testing.assert_close(logits, full[:, t], rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(att, full_att[:, :, :, t], rtol=1e-4, atol=1e-5)  # (1, layers, H, N)
        # A prefix of several tokens at once, then two more, gives the same logits too.
        logits, cache, _ = cap.step(memory, ids[:, :4], None)
        torch.testing.assert_close(logits, full[:, 3], rtol=1e-4, atol=1e-4)
        logits, cache, _ = cap.step(memory, ids, cache)
        torch.testing.assert_close(logits, full[:, 5], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("family", ["visiongpt2", "hf"])
def test_cached_steps_of_several_images_equal_full_forward(family, tiny_hf_dir):
    """Rows of three images, 2, 0 and 3 rows each: every row reads its own image's memory."""
    cap, forward = captioner_and_forward(family, tiny_hf_dir)
    torch.manual_seed(1)
    pixels = torch.randn(3, 3, 32, 32)
    image_rows = [2, 0, 3]
    ids = torch.randint(1, 62, (5, 4))
    ids[:, 0] = 0
    row_pixels = pixels.repeat_interleave(torch.tensor(image_rows), dim=0)
    with torch.inference_mode():
        full, full_att = forward(row_pixels, ids)
        memory = cap.encode(pixels)
        _, cache, _ = cap.step(memory, ids[:, :3], None, False, image_rows)
        logits, _, att = cap.step(memory, ids, cache, True, image_rows)
    torch.testing.assert_close(logits, full[:, -1], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(att, full_att[:, :, :, -1], rtol=1e-4, atol=1e-5)


def test_generate_is_the_greedy_loop_over_forward():
    model = make_tiny_visiongpt2(seed=4)
    pixels = torch.randn(2, 3, 32, 32)
    out = model.generate(pixels, 5, stop_at_eos=False)
    assert out.shape == (2, 5)
    with torch.no_grad():
        ids = torch.zeros(2, 1, dtype=torch.long)
        for _ in range(5):
            ids = torch.cat([ids, model(pixels, ids)[:, -1].argmax(-1, keepdim=True)], dim=1)
    assert torch.equal(out, ids[:, 1:])


def test_exact_gelu_and_eps():
    model = make_tiny_visiongpt2()
    assert model.blocks[0].norm1.eps == 1e-6
    assert model.transformer.h[0].ln_1.eps == 1e-5
    assert model.transformer.h[0].mlp.gelu.approximate == "none"
    assert math.isclose(model.transformer.ln_f.eps, 1e-5)
