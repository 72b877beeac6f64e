"""The plain, cache-free way the original VisionGPT2 code generated: recompute everything per token.

Kept as the yardstick for tests (the cached engine must give the same tokens and logits) and for the
benchmark (how much the cache saves).
"""

from __future__ import annotations

import torch

from captioner.models.visiongpt2 import VisionGPT2, VisionGPT2Captioner


class NoCacheVisionGPT2(VisionGPT2Captioner):
    """VisionGPT2 whose `step` re-runs the encoder and the whole prefix through `forward`."""

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels  # nothing is precomputed

    @torch.inference_mode()
    def step(self, memory, ids, cache, need_weights):
        logits = self.model(memory.expand(ids.size(0), -1, -1, -1), ids)[:, -1]
        attention = None
        if need_weights:
            attention = self._last_cross_attention(memory, ids)
        return logits, None, attention

    def _last_cross_attention(self, pixels: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Cross-attention of the last position, recomputed from scratch (R, L, H, N)."""
        m = self.model
        x = m.embed_image(pixels.expand(ids.size(0), -1, -1, -1))
        h = m.embed_text(ids)
        maps = []
        for block, dec in zip(m.blocks, m.transformer.h):
            x = block(x)
            k, v = dec.cross_attn.image_keys_values(x)
            h, _, att = dec(h, k, v, need_weights=True)
            maps.append(att[:, :, -1])
        return torch.stack(maps, dim=1)

    def reorder_cache(self, cache, rows):
        return None


@torch.inference_mode()
def plain_greedy(model: VisionGPT2, pixels: torch.Tensor, max_new_tokens: int, bos: int, eos: int | None) -> list[int]:
    """The original generation loop: full forward over image and prefix for every new token."""
    ids = torch.tensor([[bos]])
    out = []
    for _ in range(max_new_tokens):
        next_id = int(model(pixels, ids)[0, -1].argmax())
        out.append(next_id)
        if eos is not None and next_id == eos:
            break
        ids = torch.cat([ids, torch.tensor([[next_id]])], dim=1)
    return out
