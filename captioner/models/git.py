"""GIT (transformers' GitForCausalLM): a CLIP image encoder whose projected tokens come first in one
BERT-style decoder; text tokens attend to them and to earlier text in self-attention.

Image tokens attend only to each other (never to text), so their keys and values in every layer do not
depend on the caption: `encode` computes them once per image, and a caption's first step starts from a
cache holding them. Each step is then the model's own forward with that cache (models/cached_forward.py),
at text positions counted from 0 as in `generate`. The attention maps are the text-to-image part of
self-attention: the new token's weights on the image tokens (they sum to less than 1, the rest going to
the caption so far).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import DynamicCache

from captioner.models.cached_forward import CachedForwardCaptioner, last_position_attention, rows_of, text_positions
from captioner.models.hf import _defaults_from_generation_config, _first_id

# Per decoder layer: the image tokens' self-attention keys and values, each (B, H, N_img, hd).
ImageKeysValues = list[tuple[torch.Tensor, torch.Tensor]]


class GitCaptioner(CachedForwardCaptioner):
    """A `GitForCausalLM` seen by the engine."""

    family = "git"

    def __init__(self, model: Any, image_processor: Any, tokenizer: Any, source: str):
        super().__init__(model, image_processor, tokenizer, source)
        cfg, vision = model.config, model.config.vision_config
        if getattr(cfg, "num_image_with_embedding", None) is not None:
            raise ValueError("this GIT model reads video frames (num_image_with_embedding); only image captioning is supported")
        self.num_layers = cfg.num_hidden_layers
        self.num_heads = cfg.num_attention_heads
        self.max_positions = cfg.max_position_embeddings
        gen = getattr(model, "generation_config", None)
        self.bos_token_id = _first_id(getattr(gen, "bos_token_id", None), cfg.bos_token_id)
        self.eos_token_id = _first_id(getattr(gen, "eos_token_id", None), cfg.eos_token_id)
        self.pad_token_id = _first_id(getattr(gen, "pad_token_id", None), cfg.pad_token_id, self.eos_token_id)
        size, patch = vision.image_size, vision.patch_size
        self.image_size = (size, size)
        self.grid = (size // patch, size // patch)
        self.num_image_tokens = self.grid[0] * self.grid[1] + 1  # CLIP's class token first
        self.default_decoding = _defaults_from_generation_config(gen)

    @torch.inference_mode()
    def encode(self, pixels: torch.Tensor) -> ImageKeysValues:
        git = self.model.git
        tokens = git.visual_projection(git.image_encoder(pixels).last_hidden_state)
        cache = DynamicCache()
        git.encoder(tokens, attention_mask=None, cache=cache, use_cache=True)  # image tokens see each other only
        return [(layer.keys, layer.values) for layer in cache.layers]

    @torch.inference_mode()
    def step(self, memory, ids, cache, need_weights=False, image_rows=None):
        R = ids.size(0)
        if cache is None:
            cache = DynamicCache()
            for i, (k, v) in enumerate(memory):
                cache.update(rows_of(k, R, image_rows), rows_of(v, R, image_rows), i)
        start = cache.get_seq_length() - self.num_image_tokens
        new = ids[:, start:]
        out = self.model(
            input_ids=new,
            position_ids=text_positions(start, new.size(1), R),
            cache=cache,
            use_cache=True,
            output_attentions=need_weights,
            logits_to_keep=1,
            return_dict=True,
        )
        attention = last_position_attention(out.attentions, slice(0, self.num_image_tokens)) if need_weights else None
        return out.logits[:, -1].float(), out.cache, attention
