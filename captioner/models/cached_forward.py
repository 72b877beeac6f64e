"""The generic cached step: a transformers captioner decoded through its own forward and its own cache.

For families whose decoder is not GPT-2 with cross-attention (BLIP, GIT), the fast step of models/step.py
does not apply. Each step here calls the model's text decoder on the new tokens with the transformers
`Cache` it returned last time, at the text positions `generate` gives them; beams are reordered (and
finished rows dropped) with the cache's own `reorder_cache`. The subclasses say how images are encoded
and how one step reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from captioner.models.base import CaptionModel, ModelInfo, TransformersImages


class CachedForwardCaptioner(TransformersImages, CaptionModel):
    """A transformers captioner whose step is its own forward with its own cache (a `transformers.Cache`)."""

    family: str  # ModelInfo.family

    def __init__(self, model: Any, image_processor: Any, tokenizer: Any, source: str):
        super().__init__(tokenizer)
        self.model = model.eval()
        self.image_processor = image_processor
        self.info = ModelInfo.of_module(self.model, self.family, source)

    def reorder_cache(self, cache: Any, rows: torch.Tensor) -> Any:
        if cache is not None:
            cache.reorder_cache(rows)  # in place, on every layer (self- and cross-attention caches alike)
        return cache


def rows_of(memory: torch.Tensor, num_rows: int, image_rows: Sequence[int] | None) -> torch.Tensor:
    """Per-image tensors (B, ...) repeated for their rows: image b for image_rows[b] consecutive rows."""
    if image_rows is None:
        return memory.expand(num_rows, *memory.shape[1:])
    return memory.repeat_interleave(torch.tensor(list(image_rows), device=memory.device), dim=0)


def text_positions(start: int, length: int, rows: int) -> torch.Tensor:
    """Position ids (rows, length) of new tokens after `start` cached text tokens, as `generate` gives them."""
    return torch.arange(start, start + length).expand(rows, length)


def last_position_attention(attentions: Sequence[torch.Tensor], keys: slice) -> torch.Tensor:
    """Per-layer attention (R, H, T, K) -> the last position's weights on `keys`, (R, layers, H, len(keys))."""
    return torch.stack([a[:, :, -1, keys] for a in attentions], dim=1)
