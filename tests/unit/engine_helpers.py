"""Shared by the decoding tests: the test image, a small-vocabulary model that rules can leave without tokens,
and one caption (or validate()'s refusal) checked for finite numbers."""

from __future__ import annotations

import contextlib
import functools
import json
import math

import numpy as np
import torch
from PIL import Image

from captioner.config import DecodingConfig
from captioner.decoding import caption_image
from captioner.models.base import ModelInfo
from captioner.models.visiongpt2 import VisionGPT2Captioner
from tests.tiny_models import make_tiny_visiongpt2, make_word_tokenizer


def image(colour=(200, 40, 40), size=(48, 40)) -> Image.Image:
    """An image of `colour` (red unless given) with a blue rectangle in its top left."""
    im = Image.new("RGB", size, colour)
    im.paste((20, 20, 220), (5, 5, 20, 25))
    return im


@functools.lru_cache(maxsize=1)
def small_vocabulary_model() -> VisionGPT2Captioner:
    """8 tokens and 24 positions: no-repeat n-grams and a minimum length can ban every token."""
    model = make_tiny_visiongpt2(seed=7, vocab_size=8, seq_len=24)
    return VisionGPT2Captioner(model, make_word_tokenizer(), ModelInfo("tiny", "visiongpt2", "test", 0, "float32"))


@contextlib.contextmanager
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def assert_finite(caption) -> None:
    numbers = [
        caption.score,
        caption.logprob,
        caption.confidence,
        *caption.token_probs,
        *caption.processed_probs,
        *caption.entropies,
        *(a.prob for alts in caption.alternatives for a in alts),
    ]
    assert all(math.isfinite(x) for x in numbers), caption
    assert caption.attentions is None or np.isfinite(caption.attentions).all()
    json.dumps(caption.to_dict(), allow_nan=False)


def caption_or_refusal(settings: dict):
    """The one result of `settings` on the small-vocabulary model, or None when validate() refuses them."""
    config = DecodingConfig(**settings)
    try:
        config.validate()
    except ValueError as e:
        assert "Invalid decoding settings" in str(e)
        return None
    with one_thread():  # a tiny model's steps are many small ops: threads only add waiting
        [result] = caption_image(small_vocabulary_model(), image(), [config])
    assert len(result.captions) == (1 if config.strategy == "greedy" else config.num_return_sequences)
    for caption in result.beams:
        assert_finite(caption)
    return result
