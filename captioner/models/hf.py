"""Adapter for transformers' VisionEncoderDecoderModel with a GPT-2 decoder (e.g. nlpconnect/vit-gpt2).

The encoder runs once through transformers. Decoding steps use the model's own GPT-2 weights
(LayerNorms, Conv1D projections, MLP activation) in the one cached step (models/step.py), which keeps
the cache as plain tensors, computes each image's cross-attention keys and values once per image
rather than once per caption, and shares them across that image's rows instead of copying them per row.
"""

from __future__ import annotations

from typing import Any

import torch

from captioner.config import DecodingConfig, decoding_from_generation_config
from captioner.models.base import ModelInfo, TransformersImages, split_heads
from captioner.models.step import DecoderPlan, GPT2DecoderCaptioner, ImageMemory


class HFVisionEncoderDecoderCaptioner(TransformersImages, GPT2DecoderCaptioner):
    """A `VisionEncoderDecoderModel` whose decoder is GPT-2 with cross-attention."""

    def __init__(self, model: Any, image_processor: Any, tokenizer: Any, source: str):
        super().__init__(tokenizer)
        decoder_type = model.config.decoder.model_type
        if decoder_type != "gpt2":
            raise ValueError(f"Only GPT-2 decoders are supported, this model's decoder is {decoder_type!r}.")
        self.model = model.eval()
        self.image_processor = image_processor
        self.decoder = model.decoder.transformer
        self.lm_head = model.decoder.lm_head
        dconf = model.config.decoder
        self.num_layers = dconf.n_layer
        self.num_heads = dconf.n_head
        self.max_positions = dconf.n_positions
        cfg = model.config
        gen = getattr(model, "generation_config", None)
        self.bos_token_id = _first_id(
            getattr(cfg, "decoder_start_token_id", None), getattr(gen, "decoder_start_token_id", None), dconf.bos_token_id
        )
        self.eos_token_id = _first_id(getattr(gen, "eos_token_id", None), getattr(cfg, "eos_token_id", None), dconf.eos_token_id)
        self.pad_token_id = _first_id(getattr(gen, "pad_token_id", None), getattr(cfg, "pad_token_id", None), self.eos_token_id)
        enc = model.config.encoder
        size = getattr(enc, "image_size", 224)
        patch = getattr(enc, "patch_size", 16)
        self.image_size = (size, size) if isinstance(size, int) else tuple(size)
        self.grid = (self.image_size[0] // patch, self.image_size[1] // patch)
        self.default_decoding = _defaults_from_generation_config(gen)
        self.info = ModelInfo.of_module(model, "hf-vision-encoder-decoder", source)

    @torch.inference_mode()
    def encode(self, pixels: torch.Tensor) -> ImageMemory:
        hidden = self.model.encoder(pixel_values=pixels).last_hidden_state
        if getattr(self.model, "enc_to_dec_proj", None) is not None:
            hidden = self.model.enc_to_dec_proj(hidden)
        memory = []
        for block in self.decoder.h:
            k, v = block.crossattention.c_attn(hidden).split(block.crossattention.split_size, dim=2)
            memory.append((split_heads(k, self.num_heads), split_heads(v, self.num_heads)))
        return memory

    def decoder_plan(self) -> DecoderPlan:
        return DecoderPlan.from_gpt2(self.decoder, self.lm_head, self.num_heads)


def _first_id(*candidates: Any) -> int:
    for c in candidates:
        if isinstance(c, (list, tuple)):
            c = c[0] if c else None
        if c is not None:
            return int(c)
    raise ValueError("The model defines no start or end token id.")


def _defaults_from_generation_config(gen: Any) -> DecodingConfig:
    """The loaded model's own decoding defaults, read from its generation config as for every model
    folder (`config.decoding_from_generation_config`: max_length counts the start token)."""
    if gen is None:
        return DecodingConfig()
    return decoding_from_generation_config(gen.to_diff_dict() if hasattr(gen, "to_diff_dict") else dict(gen))
