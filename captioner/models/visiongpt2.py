"""VisionGPT2: timm ViT blocks interleaved layer by layer with GPT-2 blocks that cross-attend.

The layout and the forward pass follow the seed checkpoint format (shared/seed-checkpoint.md):
decoder block i cross-attends to the output of encoder block i. State-dict keys are those of
the original ``captioner.pt`` so that ``load_state_dict`` takes such a file as it is.

Two ways to run it:
- ``forward(pixels, ids)``: the whole lock-step pass, as the original code ran it (reference).
- ``encode(pixels)`` once per image, then ``step(...)`` once per token with a key/value cache.
"""

from __future__ import annotations

import math
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
from captioner.models.base import CaptionModel, ModelInfo, next_token_logits, project_rows
from captioner.models.step import DecoderPlan, lay_out_for_steps, visiongpt2_projections

# Per decoder layer: cross-attention keys and values of the image, each (1, H, N_img, hd).
ImageMemory = list[tuple[torch.Tensor, torch.Tensor]]


# -- decoder ------------------------------------------------------------------------------------
class CausalSelfAttention(nn.Module):
    """GPT-2 masked self-attention with nn.Linear weights (not HF's transposed Conv1D)."""

    def __init__(self, config: VisionGPT2Config):
        super().__init__()
        self.n_head = config.num_heads
        self.c_attn = nn.Linear(config.embed_dim, 3 * config.embed_dim)
        self.c_proj = nn.Linear(config.embed_dim, config.embed_dim)
        self.attn_dropout = nn.Dropout(config.attention_dropout)
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

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        return x.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, H, T, hd)

    def forward(
        self, x: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        B, T, C = x.shape
        q, k, v = project_rows(x, self.c_attn).split(C, dim=2)
        q, k, v = self._split_heads(q), self._split_heads(k), self._split_heads(v)  # (B, H, T, hd)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        # A query at position p may see keys 0..p; with a cache the new queries are the last T.
        causal = T > 1
        if causal and past is not None:
            offset = k.size(2) - T
            mask = torch.ones(T, k.size(2), dtype=torch.bool, device=x.device).tril(offset)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self._dropout_p())
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=causal, dropout_p=self._dropout_p())
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(project_rows(y, self.c_proj)), (k, v)

    def _dropout_p(self) -> float:
        return self.attn_dropout.p if self.training else 0.0


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
        B, N, C = image.shape
        k = self.k(image).view(B, N, self.n_head, C // self.n_head).transpose(1, 2)
        v = self.v(image).view(B, N, self.n_head, C // self.n_head).transpose(1, 2)
        return k, v

    def forward(
        self, x: torch.Tensor, k: torch.Tensor, v: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, T, C = x.shape
        H, hd = self.n_head, C // self.n_head
        q = project_rows(x, self.q).view(B, T, H, hd).transpose(1, 2)  # (B, H, T, hd)
        # One image shared by B rows (beams, strategies): fold the rows into the query length, so that
        # the image's keys and values are read once, not copied per row: (1, H, B*T, hd).
        fold = B > 1 and k.size(0) == 1
        if fold:
            q = q.transpose(0, 1).reshape(1, H, B * T, hd)
        if need_weights:
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hd))  # (B, H, T, N)
            att = att.softmax(dim=-1)
            y = self.attn_dropout(att) @ v
        else:
            att = None
            dropout_p = self.attn_dropout.p if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k.expand(q.size(0), -1, -1, -1), v.expand(q.size(0), -1, -1, -1), dropout_p=dropout_p)
        if fold:
            y = y.view(H, B, T, hd).transpose(0, 1)
            att = att.view(H, B, T, -1).transpose(0, 1) if att is not None else None
        y = y.transpose(1, 2).reshape(B, T, C)
        return self.resid_dropout(project_rows(y, self.c_proj)), att


class MLP(nn.Module):
    def __init__(self, config: VisionGPT2Config):
        super().__init__()
        self.c_fc = nn.Linear(config.embed_dim, config.mlp_ratio * config.embed_dim)
        self.gelu = nn.GELU()  # exact erf form, unlike GPT-2's tanh approximation
        self.c_proj = nn.Linear(config.mlp_ratio * config.embed_dim, config.embed_dim)
        self.dropout = nn.Dropout(config.mlp_dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(project_rows(self.gelu(project_rows(x, self.c_fc)), self.c_proj))


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

    def forward(self, h, image_k, image_v, past=None, need_weights=False):
        a, present = self.attn(self.ln_1(h), past)
        h = h + a
        c, att = self.cross_attn(self.ln_2(h), image_k, image_v, need_weights)
        h = h + c
        h = h + self.mlp(self.ln_3(h))
        return h, present, att


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

    # -- encoder ---------------------------------------------------------------------------
    def embed_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) normalised pixels -> (B, 1 + grid*grid, C) tokens before block 0."""
        x = self.patch_embed(pixels)  # (B, N, C)
        x = torch.cat([self.cls_token.expand(x.size(0), -1, -1), x], dim=1)
        return self.pos_drop(x + self.pos_embed)

    def embed_text(self, ids: torch.Tensor, start: int = 0) -> torch.Tensor:
        """(B, T) token ids at positions start..start+T-1 -> (B, T, C)."""
        pos = torch.arange(start, start + ids.size(1), device=ids.device)
        return self.transformer.drop(self.transformer.wte(ids) + self.transformer.wpe(pos))

    @torch.inference_mode()
    def encode(self, pixels: torch.Tensor) -> ImageMemory:
        """Run the encoder once; return each decoder layer's cross-attention keys and values."""
        x = self.embed_image(pixels)
        memory = []
        for block, dec in zip(self.blocks, self.transformer.h):
            x = block(x)
            memory.append(dec.cross_attn.image_keys_values(x))
        return memory

    # -- decoder ---------------------------------------------------------------------------
    def step(
        self,
        memory: ImageMemory,
        ids: torch.Tensor,
        past: list[tuple[torch.Tensor, torch.Tensor]] | None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, list, torch.Tensor | None]:
        """Decode new tokens `ids` (B, T) after the cached prefix.

        Returns logits of the last position (B, V), the new cache, and the last position's
        cross-attention (B, L, H, N_img) when `need_weights`.
        """
        start = 0 if past is None else past[0][0].size(2)
        h = self.embed_text(ids, start)
        present, attentions = [], []
        for i, block in enumerate(self.transformer.h):
            k, v = memory[i]
            h, kv, att = block(h, k, v, None if past is None else past[i], need_weights)
            present.append(kv)
            if need_weights:
                attentions.append(att[:, :, -1])  # (B, H, N_img)
        logits = next_token_logits(h[:, -1], self.transformer.ln_f, self.lm_head)
        return logits, present, torch.stack(attentions, dim=1) if need_weights else None

    def forward(self, pixels: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """The original lock-step pass: (B, 3, H, W), (B, T) -> logits (B, T, V)."""
        x = self.embed_image(pixels)
        h = self.embed_text(ids)
        for block, dec in zip(self.blocks, self.transformer.h):
            x = block(x)
            k, v = dec.cross_attn.image_keys_values(x)
            h, _, _ = dec(h, k, v)
        return self.lm_head(self.transformer.ln_f(h))

    def seed_state_dict(self) -> dict[str, torch.Tensor]:
        """The state dict in the seed file's layout, `attn.mask` buffers included."""
        sd = dict(self.state_dict())
        T = self.config.seq_len
        mask = torch.tril(torch.ones(T, T)).view(1, 1, T, T)
        for i in range(self.config.depth):
            sd[f"transformer.h.{i}.attn.mask"] = mask
        return sd


class VisionGPT2Captioner(CaptionModel):
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
        self.default_decoding = DecodingConfig(max_new_tokens=min(32, self.max_new_tokens_limit))
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

    @torch.inference_mode()
    def step(self, memory, ids, cache, need_weights):
        # The same step as VisionGPT2.step, as a flat loop (models/step.py), gathered anew for each
        # caption so that it always sees the model's current weights.
        if cache is None:
            lay_out_for_steps(visiongpt2_projections(self.model))  # a no-op once done for this dtype
            self._plan = DecoderPlan.from_visiongpt2(self.model)
        new = ids if cache is None else ids[:, cache[0][0].size(2) :]
        return self._plan.step(memory, new, cache, need_weights)
