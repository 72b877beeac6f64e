"""The no-cache yardstick: a VisionGPT2 captioner whose every step is the model's own full `forward`.

Tests hold the engine's cached steps against it: same tokens, probabilities, scores and attention.
"""

from __future__ import annotations

import torch

from captioner.models.visiongpt2 import VisionGPT2Captioner


class NoCacheVisionGPT2(VisionGPT2Captioner):
    """VisionGPT2 whose `step` re-runs the encoder and the whole prefix through `forward`."""

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels  # nothing is precomputed

    @torch.inference_mode()
    def step(self, memory, ids, cache, need_weights=False, image_rows=None):
        rows = torch.tensor([ids.size(0)] if image_rows is None else list(image_rows))
        pixels = memory.repeat_interleave(rows, dim=0)  # each row's image
        logits, attentions = self.model(pixels, ids, return_attention=True)
        last = torch.stack([att[:, :, -1] for att in attentions], dim=1) if need_weights else None  # (R, L, H, N)
        return logits[:, -1], None, last
