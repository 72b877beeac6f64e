"""A full-size captioner.pt as the original training code saved it: ViT-B/16 at 224 px + GPT-2 small (12 layers,
12 heads, 768 wide, 1024 positions, 50257 tokens), 429 keys with the attn.mask buffers and the tied lm_head,
random weights, and GPT-2's tokenizer shape (50257 tokens, <|endoftext|> = 50256) beside it.

It must load with its config read off the shapes, caption through the CLI, and give the same greedy tokens as
the forward pass written from the state dict alone (`seed_forward` in tests/reference.py).
"""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from captioner.config import VisionGPT2Config
from tests.child_process import run_captioner
from tests.tiny_models import make_gpt2_tokenizer, save_tokenizer
from tests.reference import seed_forward

pytestmark = pytest.mark.slow  # about a minute: a 0.9 GB file, a CLI run and 8 reference forward passes

NEW_TOKENS = 8


@pytest.fixture(scope="module")
def full_size(tmp_path_factory):
    """The folder: captioner.pt (seed layout, random weights) + GPT-2-shaped tokenizer files, and a photo-like image."""
    from captioner.models.visiongpt2 import VisionGPT2

    folder = tmp_path_factory.mktemp("full-size")
    torch.manual_seed(0)
    model = VisionGPT2(VisionGPT2Config())
    torch.save(model.seed_state_dict(), folder / "captioner.pt")
    del model
    save_tokenizer(make_gpt2_tokenizer(num_merges=50_000), folder, "save_pretrained_v4")
    gradient = torch.linspace(0, 255, 320).to(torch.uint8)
    pixels = torch.stack(
        [gradient[None, :].expand(240, -1), gradient[:240, None].expand(-1, 320), torch.full((240, 320), 90, dtype=torch.uint8)],
        -1,
    )
    Image.fromarray(pixels.numpy()).save(folder / "photo.png")
    return folder


def test_the_file_is_the_seed_layout_at_full_size(full_size):
    state = torch.load(full_size / "captioner.pt", weights_only=True, mmap=True)
    assert len(state) == 429
    assert state["lm_head.weight"].data_ptr() == state["transformer.wte.weight"].data_ptr()  # tied
    assert state["transformer.h.11.attn.mask"].shape == (1, 1, 1024, 1024)
    assert 0.85e9 < (full_size / "captioner.pt").stat().st_size < 1.1e9


def test_loads_with_its_config_inferred_and_captions_as_the_reference_forward(full_size):
    from captioner.loading import load_captioner

    model = load_captioner(str(full_size / "captioner.pt"))
    c = model.config
    assert (c.depth, c.embed_dim, c.num_heads, c.seq_len, c.vocab_size, c.image_size, c.patch_size, c.mlp_ratio) == (
        12,
        768,
        12,
        1024,
        50257,
        224,
        16,
        4,
    )
    assert (model.bos_token_id, model.eos_token_id, model.max_new_tokens_limit) == (50256, 50256, 1023)
    pixels = model.preprocess([Image.open(full_size / "photo.png").convert("RGB")])
    del model

    out = run_captioner(
        full_size / "photo.png", "--model", full_size / "captioner.pt", "--json", "--max-new-tokens", NEW_TOKENS, timeout=600
    )
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    engine_ids = json.loads(out.stdout)["token_ids"]

    state = torch.load(full_size / "captioner.pt", weights_only=True, mmap=True)
    config = VisionGPT2Config()
    ids = torch.tensor([[50256]])
    reference = []
    with torch.inference_mode():
        for _ in range(NEW_TOKENS):
            next_id = int(seed_forward(state, config, pixels, ids)[0, -1].argmax())
            reference.append(next_id)
            if next_id == 50256:
                break
            ids = torch.cat([ids, torch.tensor([[next_id]])], dim=1)
    assert engine_ids == reference
