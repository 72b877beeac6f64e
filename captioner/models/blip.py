"""BLIP captioning (transformers' BlipForConditionalGeneration): a ViT encoder and a BERT text decoder
with cross-attention to the image.

The image is encoded once. Each step is the text decoder's own forward with its cache (models/
cached_forward.py); the cross-attention keys and values of each row are computed at the first step and
then read from the cache. Captions start as `generate` starts them: with the text config's bos token
([DEC] in Salesforce's models), and end at its sep token ([SEP]).
"""

from __future__ import annotations

from typing import Any

import torch

from captioner.models.cached_forward import CachedForwardCaptioner, last_position_attention, rows_of, text_positions
from captioner.models.hf import _defaults_from_generation_config, _first_id


class BlipCaptioner(CachedForwardCaptioner):
    """A `BlipForConditionalGeneration` seen by the engine."""

    family = "blip"

    def __init__(self, model: Any, image_processor: Any, tokenizer: Any, source: str):
        super().__init__(model, image_processor, tokenizer, source)
        text, vision = model.config.text_config, model.config.vision_config
        self.decoder = model.text_decoder
        self.num_layers = text.num_hidden_layers
        self.num_heads = text.num_attention_heads
        self.max_positions = text.max_position_embeddings
        # generate() replaces the prompt's first id with bos_token_id and stops at sep_token_id.
        self.bos_token_id = _first_id(text.bos_token_id)
        self.eos_token_id = _first_id(text.sep_token_id, text.eos_token_id)
        self.pad_token_id = _first_id(text.pad_token_id, self.eos_token_id)
        size, patch = vision.image_size, vision.patch_size
        self.image_size = (size, size)
        self.grid = (size // patch, size // patch)
        self.default_decoding = _defaults_from_generation_config(getattr(model, "generation_config", None))

    @torch.inference_mode()
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """The vision model's last hidden state (B, 1 + patches, C): what every row's cross-attention reads."""
        return self.model.vision_model(pixel_values=pixels).last_hidden_state

    @torch.inference_mode()
    def step(self, memory, ids, cache, need_weights=False, image_rows=None):
        start = 0 if cache is None else cache.get_seq_length()
        new = ids[:, start:]
        R, T = new.shape
        out = self.decoder(
            input_ids=new,
            position_ids=text_positions(start, T, R),
            encoder_hidden_states=rows_of(memory, R, image_rows),
            cache=cache,
            use_cache=True,
            output_attentions=need_weights,
            logits_to_keep=1,
            return_dict=True,
        )
        attention = last_position_attention(out.cross_attentions, slice(None)) if need_weights else None
        return out.logits[:, -1].float(), out.cache, attention
