"""One cached decoding step of a GPT-2 decoder that cross-attends to an image, as a flat loop.

Both model families decode with GPT-2 blocks plus a cross-attention: VisionGPT2's own modules, and
transformers' GPT2 with `add_cross_attention`. Their modules stay the reference (training, `forward`,
`generate`). For decoding, `DecoderPlan` gathers once what a step needs (tensors, LayerNorm
settings, and for every projection the fastest way to multiply a few rows by it) so that a step is a
plain loop of torch calls: no module calls, no attribute lookups, no dropout no-ops. On a CPU that
streams the decoder's weights in ~10 ms a step, the Python around the products is worth saving.

Per layer and step, for R rows of T new tokens (h is kept flat, (R*T, C)):
  h += proj(self_attention(qkv(ln_1(h)), cache))
  h += xproj(attention(q(ln_2(h)), image keys, image values))   rows folded into one query block
  h += fc2(act(fc(ln_3(h))))
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from captioner.models.base import Projection, next_token_logits, projection

def step_layout(weight: torch.Tensor, weight_in_out: bool = False) -> torch.Tensor | None:
    """`weight` stored the way a decoding step reads it fastest, or None when it already is.

    Same values, same shape as the module sees it; only the order in memory changes. Measured
    (`python -m captioner.bench --only kernels`): fp32 products of a row or a few read an (in, out)
    matrix fastest (x @ W, MKL's gemv), bf16 ones an (out, in) matrix (torch.mv, weight @ x.T).
    `weight_in_out`: the module keeps its weight as (in, out), like transformers' Conv1D.
    """
    if weight.dtype not in (torch.float32, torch.bfloat16) or weight.dim() != 2:
        return None
    out_in = weight.t() if weight_in_out else weight  # (out, in) view
    want_rows = out_in if weight.dtype == torch.bfloat16 else out_in.t()  # what should be contiguous
    if want_rows.is_contiguous():
        return None
    out_in = out_in.contiguous() if weight.dtype == torch.bfloat16 else out_in.t().contiguous().t()
    return out_in.t() if weight_in_out else out_in


def lay_out_for_steps(
    projections: list[tuple[nn.Module, bool]], release: Callable[[torch.Tensor], None] | None = None
) -> None:
    """Store each (module, weight_in_out) projection's weight in its `step_layout`, one at a time.

    The modules compute the same products afterwards (forward, `generate`). `release(old)` is called on
    each replaced tensor: the loader drops the pages of a memory-mapped checkpoint that way.
    """
    for module, weight_in_out in projections:
        w = getattr(module, "weight", None)
        if not isinstance(w, torch.Tensor):
            continue  # e.g. a dynamically quantized Linear
        new = step_layout(w.data, weight_in_out)
        if new is not None:
            old, w.data = w.data, new
            if release is not None:
                release(old)


def visiongpt2_projections(model: Any) -> list[tuple[nn.Module, bool]]:
    """The decoder projections a VisionGPT2 step reads (nn.Linear, weight (out, in))."""
    return [
        (m, False)
        for b in model.transformer.h
        for m in (b.attn.c_attn, b.attn.c_proj, b.cross_attn.q, b.cross_attn.c_proj, b.mlp.c_fc, b.mlp.c_proj)
    ]


def gpt2_projections(decoder: Any) -> list[tuple[nn.Module, bool]]:
    """The projections a step of transformers' GPT2Model with cross-attention reads (Conv1D, (in, out))."""
    return [
        (m, True)
        for b in decoder.h
        for m in (b.attn.c_attn, b.attn.c_proj, b.crossattention.q_attn, b.crossattention.c_proj, b.mlp.c_fc, b.mlp.c_proj)
    ]


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

    def __init__(self, wte: torch.Tensor, wpe: torch.Tensor, layers: list[Layer], ln_f: nn.LayerNorm, head: nn.Module, n_head: int):
        self.wte, self.wpe, self.layers, self.ln_f, self.head, self.n_head = wte, wpe, layers, ln_f, head, n_head

    @classmethod
    def from_visiongpt2(cls, model: Any) -> "DecoderPlan":
        t = model.transformer
        hd = model.config.embed_dim // model.config.num_heads
        layers = [
            Layer(
                _norm(b.ln_1), projection(b.attn.c_attn), projection(b.attn.c_proj),
                _norm(b.ln_2), projection(b.cross_attn.q), projection(b.cross_attn.c_proj),
                _norm(b.ln_3), projection(b.mlp.c_fc), F.gelu, projection(b.mlp.c_proj),
                hd**-0.5, hd**-0.5,
            )
            for b in t.h
        ]
        return cls(t.wte.weight, t.wpe.weight, layers, t.ln_f, model.lm_head, model.config.num_heads)

    @classmethod
    def from_gpt2(cls, decoder: Any, lm_head: nn.Module, n_head: int) -> "DecoderPlan":
        """transformers' GPT2Model (`decoder`) with cross-attention, Conv1D weights (in, out)."""
        layers = [
            Layer(
                _norm(b.ln_1), projection(b.attn.c_attn, True), projection(b.attn.c_proj, True),
                _norm(b.ln_cross_attn), projection(b.crossattention.q_attn, True), projection(b.crossattention.c_proj, True),
                _norm(b.ln_2), projection(b.mlp.c_fc, True), b.mlp.act, projection(b.mlp.c_proj, True),
                float(b.attn.scaling), float(b.crossattention.scaling),
            )
            for b in decoder.h
        ]
        return cls(decoder.wte.weight, decoder.wpe.weight, layers, decoder.ln_f, lm_head, n_head)

    def step(
        self, memory: list[tuple[torch.Tensor, torch.Tensor]], ids: torch.Tensor, cache: list | None, need_weights: bool
    ) -> tuple[torch.Tensor, list, torch.Tensor | None]:
        """New tokens `ids` (R, T) after the cached prefix -> logits of the last position (R, V), the new
        cache (per layer (keys, values), each (R, H, t, hd)), and when `need_weights` the last position's
        cross-attention (R, layers, H, image tokens). `memory` holds one image's keys and values per layer."""
        R, T = ids.shape
        start = 0 if cache is None else cache[0][0].size(2)
        H = self.n_head
        C = self.wte.size(1)
        hd = C // H
        h = (F.embedding(ids, self.wte) + self.wpe[start : start + T]).reshape(R * T, C)
        mask = None
        if T > 1 and cache is not None:  # several new tokens after a prefix: causal with an offset
            mask = torch.ones(T, start + T, dtype=torch.bool).tril(start)
        present, attentions = [], []
        for i, (ln_1, qkv, proj, ln_2, q_proj, xproj, ln_3, fc, act, fc2, scale, xscale) in enumerate(self.layers):
            # masked self-attention over the cache and the new tokens
            a = F.layer_norm(h, (C,), ln_1.weight, ln_1.bias, ln_1.eps)
            q, k, v = qkv(a).reshape(R, T, 3, H, hd).permute(2, 0, 3, 1, 4).unbind(0)  # each (R, H, T, hd)
            if cache is not None:
                k = torch.cat([cache[i][0], k], dim=2)
                v = torch.cat([cache[i][1], v], dim=2)
            present.append((k, v))
            if mask is not None:
                y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale)
            else:
                y = F.scaled_dot_product_attention(q, k, v, is_causal=T > 1, scale=scale)
            h = h + proj(y.transpose(1, 2).reshape(R * T, C))
            # cross-attention: all R*T queries against the one image, (1, H, R*T, hd)
            a = F.layer_norm(h, (C,), ln_2.weight, ln_2.bias, ln_2.eps)
            q = q_proj(a).reshape(R * T, H, hd).transpose(0, 1)[None]
            mk, mv = memory[i]
            if mk.size(0) != 1:  # one image per row: no folding
                q = q[0].view(H, R, T, hd).transpose(0, 1)
            if need_weights:
                att = ((q @ mk.transpose(-2, -1)) * xscale).softmax(dim=-1)
                y = att @ mv
                last = att.view(H, R, T, -1)[:, :, -1].transpose(0, 1) if mk.size(0) == 1 else att[:, :, -1]
                attentions.append(last)  # (R, H, N)
            else:
                y = F.scaled_dot_product_attention(q, mk, mv, scale=xscale)
            if mk.size(0) == 1:
                y = y[0].transpose(0, 1).reshape(R * T, C)
            else:
                y = y.transpose(1, 2).reshape(R * T, C)
            h = h + xproj(y)
            # MLP
            a = F.layer_norm(h, (C,), ln_3.weight, ln_3.bias, ln_3.eps)
            h = h + fc2(act(fc(a)))
        logits = next_token_logits(h.view(R, T, C)[:, -1], self.ln_f, self.head)
        return logits, present, torch.stack(attentions, dim=1) if need_weights else None
