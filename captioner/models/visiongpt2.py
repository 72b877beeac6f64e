"""VisionGPT2: timm ViT blocks interleaved layer by layer with GPT-2 blocks that cross-attend.

The layout and the forward pass follow the seed checkpoint format (docs/checkpoint-format.md):
decoder block i cross-attends to the output of encoder block i. State-dict keys are those of
the original ``captioner.pt`` so that ``load_state_dict`` takes such a file as it is.

The modules are plain forward code, as in nanoGPT: ``forward(pixels, ids)`` is the whole lock-step
pass (training, tests), ``generate`` the original no-cache loop. The decoding engine does not run
these modules token by token: ``VisionGPT2Captioner`` encodes once (``encode``) and takes cached
steps through models/step.py, which reads the same weights.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image
from timm.layers import PatchEmbed
from timm.models.vision_transformer import Block as ViTBlock

from captioner.config import DecodingConfig, VisionGPT2Config
from captioner.models.base import ModelInfo, split_heads
from captioner.models.step import DecoderPlan, GPT2DecoderCaptioner, ImageMemory

DEFAULT_MAX_NEW_TOKENS = 32  # a VisionGPT2's own default caption length, when its position table allows it


# -- decoder ------------------------------------------------------------------------------------
class CausalSelfAttention(nn.Module):
    """GPT-2 masked self-attention with nn.Linear weights (not HF's transposed Conv1D)."""

    def __init__(self, config: VisionGPT2Config):
        super().__init__()
        self.n_head = config.num_heads
        self.c_attn = nn.Linear(config.embed_dim, 3 * config.embed_dim)
        self.c_proj = nn.Linear(config.embed_dim, config.embed_dim)
        self.attn_dropout = config.attention_dropout
        self.resid_dropout = nn.Dropout(config.residual_dropout)
        # The seed file stores a (1, 1, seq_len, seq_len) lower-triangular `mask` buffer per layer.
        # It carries no information, so it is accepted on load but not kept in memory.
        self.seq_len = config.seq_len

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        mask = state_dict.pop(prefix + "mask", None)
        if mask is not None and mask.shape[-1] != self.seq_len:
            error_msgs = args[-1]
            error_msgs.append(
                f"size mismatch for {prefix}mask: copying a param with shape {tuple(mask.shape)}, "
                f"the shape in current model is (1, 1, {self.seq_len}, {self.seq_len})."
            )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, H, T, hd)
        dropout = self.attn_dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout)
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class CrossAttention(nn.Module):
    """Text queries attend to one encoder layer's image tokens (no mask)."""

    def __init__(self, config: VisionGPT2Config):
        super().__init__()
        self.n_head = config.num_heads
        self.q = nn.Linear(config.embed_dim, config.embed_dim)
        self.k = nn.Linear(config.embed_dim, config.embed_dim)
        self.v = nn.Linear(config.embed_dim, config.embed_dim)
        self.c_proj = nn.Linear(config.embed_dim, config.embed_dim)
        self.attn_dropout = nn.Dropout(config.attention_dropout)
        self.resid_dropout = nn.Dropout(config.residual_dropout)

    def image_keys_values(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N, C) image tokens -> keys and values, each (B, H, N, hd)."""
        return split_heads(self.k(image), self.n_head), split_heads(self.v(image), self.n_head)

    def forward(self, x: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, C) text, (B, N, C) image tokens -> (B, T, C) and the attention weights (B, H, T, N)."""
        B, T, C = x.shape
        q = split_heads(self.q(x), self.n_head)
        k, v = self.image_keys_values(image)
        att = ((q @ k.transpose(-2, -1)) * q.size(-1) ** -0.5).softmax(dim=-1)
        y = (self.attn_dropout(att) @ v).transpose(1, 2).reshape(B, T, C)
        return self.resid_dropout(self.c_proj(y)), att


class MLP(nn.Module):
    def __init__(self, config: VisionGPT2Config):
        super().__init__()
        self.c_fc = nn.Linear(config.embed_dim, config.mlp_ratio * config.embed_dim)
        self.gelu = nn.GELU()  # exact erf form, unlike GPT-2's tanh approximation
        self.c_proj = nn.Linear(config.mlp_ratio * config.embed_dim, config.embed_dim)
        self.dropout = nn.Dropout(config.mlp_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class DecoderBlock(nn.Module):
    """GPT-2 block with a cross-attention between self-attention and MLP."""

    def __init__(self, config: VisionGPT2Config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.embed_dim)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.embed_dim)
        self.cross_attn = CrossAttention(config)
        self.ln_3 = nn.LayerNorm(config.embed_dim)
        self.mlp = MLP(config)

    def forward(self, h: torch.Tensor, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, C) text, (B, N, C) image tokens -> (B, T, C) and the cross-attention (B, H, T, N)."""
        h = h + self.attn(self.ln_1(h))
        c, att = self.cross_attn(self.ln_2(h), image)
        h = h + c
        h = h + self.mlp(self.ln_3(h))
        return h, att


class VisionGPT2(nn.Module):
    """The seed captioner. Encoder keys sit at the top level, decoder keys under `transformer.`."""

    def __init__(self, config: VisionGPT2Config):
        super().__init__()
        self.config = config
        C = config.embed_dim
        # Encoder: the layout of timm's vit_base_patch16_224, first `depth` blocks, no final norm/head.
        self.patch_embed = PatchEmbed(config.image_size, config.patch_size, 3, C)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, C))
        self.pos_embed = nn.Parameter(torch.zeros(1, config.num_image_tokens, C))
        self.pos_drop = nn.Dropout(config.emb_dropout)
        self.blocks = nn.ModuleList(
            ViTBlock(
                C,
                config.num_heads,
                mlp_ratio=config.mlp_ratio,
                qkv_bias=True,
                proj_drop=config.residual_dropout,
                attn_drop=config.attention_dropout,
                norm_layer=partial(nn.LayerNorm, eps=1e-6),
            )
            for _ in range(config.depth)
        )
        # Decoder: GPT-2 with cross-attention.
        self.transformer = nn.ModuleDict(
            dict(
                wte=nn.Embedding(config.vocab_size, C),
                wpe=nn.Embedding(config.seq_len, C),
                drop=nn.Dropout(config.emb_dropout),
                h=nn.ModuleList(DecoderBlock(config) for _ in range(config.depth)),
                ln_f=nn.LayerNorm(C),
            )
        )
        self.lm_head = nn.Linear(C, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied
        self.apply(self._init_weights)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def embed_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised pixels -> (B, 1 + grid*grid, C) tokens before block 0."""
        x = self.patch_embed(pixels)  # (B, N, C)
        x = torch.cat([self.cls_token.expand(x.size(0), -1, -1), x], dim=1)
        return self.pos_drop(x + self.pos_embed)

    def embed_text(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, T) token ids at positions 0..T-1 -> (B, T, C)."""
        pos = torch.arange(ids.size(1), device=ids.device)
        return self.transformer.drop(self.transformer.wte(ids) + self.transformer.wpe(pos))

    def forward(self, pixels: torch.Tensor, ids: torch.Tensor, return_attention: bool = False):
        """The lock-step pass: (B, 3, H, W), (B, T) -> logits (B, T, V); with `return_attention`
        also each decoder layer's cross-attention, a list of (B, H, T, N_img)."""
        hidden, attentions = self.hidden_states(pixels, ids)
        logits = self.lm_head(hidden)
        return (logits, attentions) if return_attention else logits

    def hidden_states(self, pixels: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The lock-step pass up to the head: the final hidden states (B, T, C) after ln_f, and each
        decoder layer's cross-attention (B, H, T, N_img)."""
        x = self.embed_image(pixels)
        h = self.embed_text(ids)
        attentions = []
        for block, dec in zip(self.blocks, self.transformer.h):
            x = block(x)
            h, att = dec(h, x)
            attentions.append(att)
        return self.transformer.ln_f(h), attentions

    @torch.inference_mode()
    def generate(self, pixels: torch.Tensor, max_new_tokens: int, stop_at_eos: bool = True) -> torch.Tensor:
        """The original greedy loop, no cache: the whole forward pass again for every new token.
        (B, 3, H, W) -> generated ids (B, n), n <= max_new_tokens (ends once every row has ended)."""
        c = self.config
        ids = torch.full((pixels.size(0), 1), c.bos_token_id, dtype=torch.long)
        ended = torch.zeros(pixels.size(0), dtype=torch.bool)
        for _ in range(max_new_tokens):
            next_ids = self(pixels, ids)[:, -1].argmax(dim=-1)
            ids = torch.cat([ids, next_ids[:, None]], dim=1)
            ended |= next_ids == c.eos_token_id
            if stop_at_eos and bool(ended.all()):
                break
        return ids[:, 1:]

    @torch.inference_mode()
    def encode(self, pixels: torch.Tensor) -> ImageMemory:
        """Run the encoder once; return each decoder layer's cross-attention keys and values (B, H, N, hd)."""
        x = self.embed_image(pixels)
        memory = []
        for block, dec in zip(self.blocks, self.transformer.h):
            x = block(x)
            memory.append(dec.cross_attn.image_keys_values(x))
        return memory

    def seed_state_dict(self) -> dict[str, torch.Tensor]:
        """The state dict in the seed file's layout, `attn.mask` buffers included."""
        sd = dict(self.state_dict())
        T = self.config.seq_len
        mask = torch.tril(torch.ones(T, T)).view(1, 1, T, T)
        for i in range(self.config.depth):
            sd[f"transformer.h.{i}.attn.mask"] = mask
        return sd


class VisionGPT2Captioner(GPT2DecoderCaptioner):
    """A VisionGPT2 as the decoding engine sees it."""

    def __init__(self, model: VisionGPT2, tokenizer: Any, info: ModelInfo):
        super().__init__(tokenizer)
        self.model = model.eval()
        c = model.config
        self.config = c
        self.bos_token_id, self.eos_token_id, self.pad_token_id = c.bos_token_id, c.eos_token_id, c.pad_token_id
        self.num_layers, self.num_heads = c.depth, c.num_heads
        self.grid = (c.grid_size, c.grid_size)
        self.image_size = (c.image_size, c.image_size)
        self.max_positions = c.seq_len
        self.default_decoding = DecodingConfig(max_new_tokens=min(DEFAULT_MAX_NEW_TOKENS, self.max_new_tokens_limit))
        self.info = info
        self._mean = torch.tensor(c.image_mean).view(1, 3, 1, 1)
        self._std = torch.tensor(c.image_std).view(1, 3, 1, 1)

    @property
    def dtype(self) -> torch.dtype:
        return self.model.transformer.wte.weight.dtype  # an embedding: never quantized

    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """Resize to exactly image_size x image_size (no crop), scale to [0, 1], normalise."""
        size = self.config.image_size
        arrays = [np.asarray(im.convert("RGB").resize((size, size), Image.BICUBIC), dtype=np.float32) for im in images]
        pixels = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2) / 255.0  # (B, 3, H, W)
        return ((pixels - self._mean) / self._std).to(self.dtype)

    def encode(self, pixels: torch.Tensor) -> ImageMemory:
        return self.model.encode(pixels)

    def decoder_plan(self) -> DecoderPlan:
        return DecoderPlan.from_visiongpt2(self.model)
