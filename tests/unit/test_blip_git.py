"""BLIP and GIT through the engine: each cached step equals the family's own full forward (logits and
image attention), and greedy and beam search give `generate`'s token ids, on tiny random models saved
with save_pretrained."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from captioner.config import DecodingConfig
from captioner.decoding import caption_image, caption_images
from captioner.loading import load_captioner
from tests.same_as_generate import assert_same_as_generate

FAMILIES = ("blip", "git")


def noise_image(seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (40, 40, 3), dtype=np.uint8))


def captioner(family, folder):
    model = load_captioner(str(folder))
    assert model.info.family == family
    return model


def full_forward(cap, pixels, ids):
    """The model's own forward on whole sequences: logits (B, T, V) and the attention of each text position
    on the image tokens (B, layers, H, T, N_img)."""
    if cap.info.family == "blip":
        images = cap.model.vision_model(pixel_values=pixels).last_hidden_state
        out = cap.model.text_decoder(input_ids=ids, encoder_hidden_states=images, output_attentions=True, return_dict=True)
        return out.logits, torch.stack(out.cross_attentions, dim=1)
    out = cap.model(input_ids=ids, pixel_values=pixels, output_attentions=True, return_dict=True)
    n = cap.num_image_tokens
    return out.logits[:, n:], torch.stack([a[:, :, n:, :n] for a in out.attentions], dim=1)


@pytest.mark.parametrize("family", FAMILIES)
def test_cached_steps_equal_the_full_forward(family, blip_git_dirs):
    cap = captioner(family, blip_git_dirs[family])
    pixels = cap.preprocess([noise_image(0), noise_image(1), noise_image(2)])
    image_rows = [2, 0, 3]
    ids = torch.randint(5, 60, (5, 6))
    ids[:, 0] = cap.bos_token_id
    with torch.inference_mode():
        full, full_att = full_forward(cap, pixels.repeat_interleave(torch.tensor(image_rows), dim=0), ids)
        memory = cap.encode(pixels)
        cache = None
        for t in range(ids.size(1)):
            logits, cache, att = cap.step(memory, ids[:, : t + 1], cache, True, image_rows)
            torch.testing.assert_close(logits, full[:, t], rtol=1e-4, atol=1e-4)
            torch.testing.assert_close(att, full_att[:, :, :, t], rtol=1e-4, atol=1e-5)
        # A prefix of several tokens at once, then the rest, on rows reordered as beam search does.
        _, cache, _ = cap.step(memory, ids[:, :4], None, False, image_rows)
        order = torch.tensor([1, 0, 4, 2, 3])
        cache = cap.reorder_cache(cache, order)
        logits, _, _ = cap.step(memory, ids[order], cache, False, image_rows)
    torch.testing.assert_close(logits, full[order, -1], rtol=1e-4, atol=1e-4)
    assert full_att.shape[-1] == cap.grid[0] * cap.grid[1] + 1  # the class token and the patches


GENERATE_CASES = [
    pytest.param(dict(strategy="greedy", max_new_tokens=12), dict(num_beams=1), id="greedy"),
    pytest.param(
        dict(strategy="beam", num_beams=4, max_new_tokens=12, num_return_sequences=4),
        dict(num_beams=4, num_return_sequences=4),
        id="beam4",
        marks=pytest.mark.slow,
    ),
    pytest.param(
        dict(strategy="beam", num_beams=4, max_new_tokens=10, length_penalty=0.5, early_stopping=True, no_repeat_ngram_size=2),
        dict(num_beams=4, length_penalty=0.5, early_stopping=True, no_repeat_ngram_size=2),
        id="beam4-rules",
        marks=pytest.mark.slow,
    ),
]


@pytest.mark.parametrize("ours,theirs", GENERATE_CASES)
@pytest.mark.parametrize("family", FAMILIES)
def test_token_ids_equal_generate(family, blip_git_dirs, ours, theirs):
    cap = captioner(family, blip_git_dirs[family])
    config = DecodingConfig(**ours)
    greedy_texts = set()
    for seed in range(3):
        padding = {cap.pad_token_id, cap.eos_token_id}
        result = assert_same_as_generate(cap, cap.model, noise_image(seed), config, theirs, padding, start=cap.bos_token_id)
        greedy_texts.add(tuple(result.best.token_ids))
    assert len(greedy_texts) > 1  # the images matter: a step that read the wrong image would show


@pytest.mark.parametrize("family", FAMILIES)
def test_per_token_records_and_image_maps(family, blip_git_dirs):
    cap = captioner(family, blip_git_dirs[family])
    images = [noise_image(5), noise_image(6)]
    config = DecodingConfig(max_new_tokens=8, min_new_tokens=8)
    together = caption_images(cap, images, [config])
    for image, (result,) in zip(images, together):
        caption = result.best
        assert caption.token_ids == caption_image(cap, image, [config])[0].best.token_ids  # batched = one by one
        n = len(caption.token_ids)
        assert n == 8 and len(caption.token_probs) == len(caption.entropies) == len(caption.alternatives) == n
        for p, alternatives in zip(caption.token_probs, caption.alternatives):
            assert alternatives[0].prob + 1e-6 >= p > 0  # no token is more likely than the first alternative
        assert caption.attentions.shape == (n, cap.num_layers, cap.num_heads, *cap.grid)
        total = caption.attentions.sum(axis=(-1, -2))
        assert (total > 0).all() and (total <= 1 + 1e-5).all()
