"""Raw cross-attention: where each word's query looked, teacher-forced over the caption's own tokens."""

from __future__ import annotations

import time

import torch
from PIL import Image

from captioner.explain.forward import CaptionLike, attention_pass, caption_tokens
from captioner.explain.result import Explanation, WordExplanation, normalised, word_groups
from captioner.models.base import CaptionModel

MEAN = "mean"


def select(maps: torch.Tensor, layer: int | str, head: int | str) -> torch.Tensor:
    """(layers, H, ...) -> (...): one layer or their mean, one head or their mean."""
    maps = maps.mean(dim=0) if layer == MEAN else maps[_index(layer, maps.size(0), "layer")]
    return maps.mean(dim=0) if head == MEAN else maps[_index(head, maps.size(0), "head")]


def _index(i: int | str, n: int, what: str) -> int:
    if not isinstance(i, int) or not 0 <= i < n:
        raise ValueError(f"{what} must be 'mean' or 0..{n - 1}, not {i!r}.")
    return i


def explain_attention(
    model: CaptionModel, image: Image.Image, caption: CaptionLike, layer: int | str = MEAN, head: int | str = MEAN
) -> Explanation:
    """Each word's cross-attention (its tokens' maps summed), one layer or the layers' mean, one head or the mean."""
    t0 = time.perf_counter()
    cap = caption_tokens(model, caption)
    run = attention_pass(model, model.preprocess([image]), cap.ids)
    maps = model.image_tokens_to_grid(torch.cat(run.cross).float())  # (layers, H, T, rows, cols)
    per_token = select(maps, layer, head).numpy()  # (T, rows, cols)
    logp = run.logprobs.numpy()
    words = [
        WordExplanation(w, idx, normalised(per_token[idx].sum(axis=0)), float(logp[idx].sum()))
        for w, idx in word_groups(cap.tokens, cap.finished)
    ]
    return Explanation(
        "attention", model.grid, cap.text, cap.tokens, words, time.perf_counter() - t0, 1, settings={"layer": layer, "head": head}
    )
