"""The one cached decoding step, for every model whose decoder is GPT-2 with cross-attention to an image.

Both model families decode this way: VisionGPT2's own modules, and transformers' GPT2 with
`add_cross_attention`. Their modules stay the reference (training, `forward`, `generate`). For decoding,
`DecoderPlan` gathers once what a step needs (weights, LayerNorm settings, the product of every
projection) so that a step is a plain loop of torch calls: no module calls, no attribute lookups, no
dropout no-ops. On a CPU that streams the decoder's weights in ~10 ms a step, the Python around the
products is worth saving.

Per layer and step, for R rows of T new tokens (h is kept flat, (R*T, C)):
  h += proj(self_attention(qkv(ln_1(h)), cache))
  h += xproj(attention(q(ln_2(h)), image keys, image values))   each image's rows folded into one query block
  h += fc2(act(fc(ln_3(h))))
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, Callable, NamedTuple, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from captioner.models.base import CaptionModel, StepOutput, final_hidden, head_logits

# Per decoder layer: the images' cross-attention keys and values, each (B, H, N_img, hd).
ImageMemory = list[tuple[torch.Tensor, torch.Tensor]]
# Per decoder layer: the rows' self-attention keys and values so far, each (R, H, t, hd).
Cache = list[tuple[torch.Tensor, torch.Tensor]]
Projection = Callable[[torch.Tensor], torch.Tensor]  # (rows, in) -> (rows, out)


def linear(layer: nn.Module, weight_in_out: bool = False) -> Projection:
    """`layer(x)` for x (rows, in), as one torch call: nn.Linear (weight (out, in)), or transformers'
    Conv1D when `weight_in_out` (weight (in, out)). Other layers (a dynamically quantized Linear) run as they are."""
    w, b = getattr(layer, "weight", None), getattr(layer, "bias", None)
    if not isinstance(w, torch.Tensor):
        return layer
    if weight_in_out:
        return (lambda x: torch.addmm(b, x, w)) if b is not None else (lambda x: x @ w)
    return lambda x: F.linear(x, w, b)


class Norm(NamedTuple):
    weight: torch.Tensor
    bias: torch.Tensor
    eps: float


class Layer(NamedTuple):
    ln_1: Norm
    qkv: Projection  # C -> 3C, q k v in that order
    proj: Projection
    ln_2: Norm
    q: Projection  # cross-attention queries; its keys and values come from the image memory
    xproj: Projection
    ln_3: Norm
    fc: Projection
    act: Callable[[torch.Tensor], torch.Tensor]
    fc2: Projection
    scale: float  # self-attention
    xscale: float  # cross-attention


def _norm(ln: nn.LayerNorm) -> Norm:
    return Norm(ln.weight, ln.bias, ln.eps)


class DecoderPlan:
    """A decoder's step-time view: embeddings, layers, final norm and head."""

    def __init__(
        self, wte: torch.Tensor, wpe: torch.Tensor, layers: list[Layer], ln_f: nn.LayerNorm, head: nn.Module, n_head: int
    ):
        self.wte, self.wpe, self.layers, self.ln_f, self.head, self.n_head = wte, wpe, layers, ln_f, head, n_head

    @classmethod
    def from_visiongpt2(cls, model: Any) -> "DecoderPlan":
        t = model.transformer
        hd = model.config.embed_dim // model.config.num_heads
        layers = [
            Layer(
                _norm(b.ln_1),
                linear(b.attn.c_attn),
                linear(b.attn.c_proj),
                _norm(b.ln_2),
                linear(b.cross_attn.q),
                linear(b.cross_attn.c_proj),
                _norm(b.ln_3),
                linear(b.mlp.c_fc),
                F.gelu,
                linear(b.mlp.c_proj),
                hd**-0.5,
                hd**-0.5,
            )
            for b in t.h
        ]
        return cls(t.wte.weight, t.wpe.weight, layers, t.ln_f, model.lm_head, model.config.num_heads)

    @classmethod
    def from_gpt2(cls, decoder: Any, lm_head: nn.Module, n_head: int) -> "DecoderPlan":
        """transformers' GPT2Model (`decoder`) with cross-attention, Conv1D weights (in, out)."""
        layers = [
            Layer(
                _norm(b.ln_1),
                linear(b.attn.c_attn, True),
                linear(b.attn.c_proj, True),
                _norm(b.ln_cross_attn),
                linear(b.crossattention.q_attn, True),
                linear(b.crossattention.c_proj, True),
                _norm(b.ln_2),
                linear(b.mlp.c_fc, True),
                b.mlp.act,
                linear(b.mlp.c_proj, True),
                float(b.attn.scaling),
                float(b.crossattention.scaling),
            )
            for b in decoder.h
        ]
        return cls(decoder.wte.weight, decoder.wpe.weight, layers, decoder.ln_f, lm_head, n_head)

    def step(
        self,
        memory: ImageMemory,
        ids: torch.Tensor,
        cache: Cache | None,
        need_weights: bool = False,
        image_rows: Sequence[int] | None = None,
    ) -> StepOutput:
        """New tokens `ids` (R, T) after the cached prefix -> logits of the last position (R, V), the new
        cache, and when `need_weights` the last position's cross-attention (R, layers, H, N_img); `hidden`:
        the last position's final hidden state (R, C).

        Row r reads one image of `memory`: the first image_rows[0] rows image 0, the next image_rows[1]
        rows image 1, and so on (None: every row reads the only image)."""
        R, T = ids.shape
        start = 0 if cache is None else cache[0][0].size(2)
        C = self.wte.size(1)
        h = (F.embedding(ids, self.wte) + self.wpe[start : start + T]).reshape(R * T, C)
        mask = None
        if T > 1 and cache is not None:  # several new tokens after a prefix: causal with an offset
            mask = torch.ones(T, start + T, dtype=torch.bool).tril(start)
        rows = [R] if image_rows is None else list(image_rows)
        present, attentions = [], []
        for i, layer in enumerate(self.layers):
            a = F.layer_norm(h, (C,), *layer.ln_1)
            y, kv = self._self_attention(layer, a, R, T, None if cache is None else cache[i], mask)
            present.append(kv)
            h = h + layer.proj(y)
            a = F.layer_norm(h, (C,), *layer.ln_2)
            q = layer.q(a).view(R, T, self.n_head, C // self.n_head)
            y, att = attend_images(q, *memory[i], rows, layer.xscale, need_weights)
            attentions.append(att)
            h = h + layer.xproj(y)
            a = F.layer_norm(h, (C,), *layer.ln_3)
            h = h + layer.fc2(layer.act(layer.fc(a)))
        hidden = final_hidden(h.view(R, T, C)[:, -1], self.ln_f)
        attention = torch.stack(attentions, dim=1) if need_weights else None
        return StepOutput(head_logits(hidden, self.head), present, attention, hidden)

    def _self_attention(self, layer: Layer, a: torch.Tensor, R: int, T: int, past, mask):
        """Masked self-attention of the new positions over the cache and themselves: (R*T, C), new (keys, values)."""
        H = self.n_head
        C = a.size(-1)
        q, k, v = layer.qkv(a).view(R, T, 3, H, C // H).permute(2, 0, 3, 1, 4).unbind(0)  # each (R, H, T, hd)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        if mask is not None:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=layer.scale)
        else:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=T > 1, scale=layer.scale)
        return y.transpose(1, 2).reshape(R * T, C), (k, v)


def attend_images(
    q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, image_rows: Sequence[int], scale: float, need_weights: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Cross-attention of R rows' queries q (R, T, H, hd) to their images' keys and values (B, H, N, hd).

    Rows of one image are consecutive, image_rows[b] of them (0 once image b has no rows left). Each
    image's keys and values are read once for all its rows, which are folded into one query block;
    the image is never copied per row. Returns (R*T, C) and, with `need_weights`, the attention of each
    row's last position (R, H, N)."""
    if len(image_rows) == keys.size(0) and len(set(image_rows)) == 1:  # the same rows for every image: one call
        return _fold(q, keys, values, image_rows[0], scale, need_weights)
    outputs, maps, first = [], [], 0
    for b, n in enumerate(image_rows):
        if n:
            y, last = _fold(q[first : first + n], keys[b : b + 1], values[b : b + 1], n, scale, need_weights)
            outputs.append(y)
            maps.append(last)
            first += n
    return torch.cat(outputs), (torch.cat(maps) if need_weights else None)


def _fold(q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, n: int, scale: float, need_weights: bool):
    """Queries of n rows per image (B*n, T, H, hd), folded to (B, H, n*T, hd), against keys and values (B, H, N, hd)."""
    B = keys.size(0)
    T, H, hd = q.shape[1:]
    qb = q.view(B, n, T, H, hd).permute(0, 3, 1, 2, 4).reshape(B, H, n * T, hd)
    last = None
    if need_weights:
        att = ((qb @ keys.transpose(-2, -1)) * scale).softmax(dim=-1)  # (B, H, n*T, N)
        y = att @ values
        last = att.view(B, H, n, T, -1)[:, :, :, -1].transpose(1, 2).reshape(B * n, H, -1)
    else:
        y = F.scaled_dot_product_attention(qb, keys, values, scale=scale)
    return y.view(B, H, n, T, hd).permute(0, 2, 3, 1, 4).reshape(B * n * T, H * hd), last


class GPT2DecoderCaptioner(CaptionModel):
    """A captioner whose decoder is GPT-2 with cross-attention: its `step` is `DecoderPlan.step`."""

    _plan: DecoderPlan | None = None

    @abstractmethod
    def decoder_plan(self) -> DecoderPlan:
        """The decoder's step-time view, gathered from the model's current weights."""

    @torch.inference_mode()
    def step(self, memory, ids, cache, need_weights=False, image_rows=None):
        # Gathered anew at the first step of each decode, so that it always sees the model's current
        # weights (after a change of dtype, say).
        if cache is None:
            self._plan = self.decoder_plan()
        new = ids if cache is None else ids[:, cache[0][0].size(2) :]
        return self._plan.step(memory, new, cache, need_weights, image_rows)
