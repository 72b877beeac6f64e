"""Teacher-forced passes over a caption's own tokens, for both model families, through the models' own modules.

Row t of a cross-attention map is the query at input position t (the start token, then the caption's
tokens), whose output predicts caption token t: the step that produced token t, as in decoding.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from captioner.decoding.results import Caption
from captioner.models.base import CaptionModel

CaptionLike = Caption | str | Sequence[int]


@dataclass
class CaptionTokens:
    """The caption being explained: its token ids (end token included when it ended) and texts."""

    ids: list[int]
    tokens: list[str]
    text: str
    finished: bool


def caption_tokens(model: CaptionModel, caption: CaptionLike) -> CaptionTokens:
    """A Caption, a text (tokenized with the model's tokenizer, the end token added) or token ids."""
    if isinstance(caption, Caption):
        ids, finished = list(caption.token_ids), caption.finished
    elif isinstance(caption, str):
        ids = list(model.tokenizer.encode(caption.strip(), add_special_tokens=False)) + [model.eos_token_id]
        finished = True
    else:
        ids = [int(i) for i in caption]
        finished = bool(ids) and ids[-1] == model.eos_token_id
    if not ids:
        raise ValueError("The caption has no tokens to explain.")
    if len(ids) > model.max_new_tokens_limit:
        raise ValueError(f"The caption has {len(ids)} tokens; this model reads at most {model.max_new_tokens_limit}.")
    return CaptionTokens(ids, [model.token_text(i) for i in ids], model.decode_text(ids), finished)


def _inputs(model: CaptionModel, ids: Sequence[int], batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoder inputs (start token, then all tokens but the last) and targets, each (batch, T)."""
    targets = torch.tensor([list(ids)], dtype=torch.long)
    inputs = torch.cat([torch.tensor([[model.bos_token_id]]), targets[:, :-1]], dim=1)
    return inputs.expand(batch, -1), targets.expand(batch, -1)


def is_hf(model: CaptionModel) -> bool:
    return model.info.family == "hf-vision-encoder-decoder"


@contextlib.contextmanager
def _eager_attention(model: CaptionModel) -> Iterator[None]:
    """transformers returns attention weights only from its eager attention: switch to it for one pass."""
    if not is_hf(model):
        yield
        return
    before = model.model.config._attn_implementation
    model.model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.model.set_attn_implementation(before)


def _logits(model: CaptionModel, pixels: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
    if is_hf(model):
        return model.model(pixel_values=pixels, decoder_input_ids=inputs, use_cache=False).logits
    return model.model(pixels, inputs)


def _log_softmax(logits: torch.Tensor) -> torch.Tensor:
    """Log-probabilities in fp32 at least (fp64 models keep fp64)."""
    return logits.to(torch.promote_types(logits.dtype, torch.float32)).log_softmax(dim=-1)


@torch.inference_mode()
def token_logprobs(model: CaptionModel, pixels: torch.Tensor, ids: Sequence[int], batch_size: int = 16) -> torch.Tensor:
    """Log-probability of each caption token under each image: (B, T) fp32, images in batches."""
    out = []
    for start in range(0, pixels.size(0), batch_size):
        chunk = pixels[start : start + batch_size]
        inputs, targets = _inputs(model, ids, chunk.size(0))
        logp = _log_softmax(_logits(model, chunk, inputs))
        out.append(logp.gather(-1, targets[..., None])[..., 0])
    return torch.cat(out)


@dataclass
class AttentionPass:
    """One teacher-forced pass of one image: token log-probs (T,), each decoder layer's cross-attention
    (1, H, T, N_img) as the graph holds it (a view would have no gradient), and per decoder layer the encoder's attention rollout up to the layer it reads (N, N) or None."""

    logprobs: torch.Tensor
    cross: list[torch.Tensor]
    rollout: list[torch.Tensor] | None


def attention_pass(
    model: CaptionModel, pixels: torch.Tensor, ids: Sequence[int], grad: bool = False, rollout: bool = False
) -> AttentionPass:
    """The pass behind the attention and gradient methods. With `grad` the cross-attention maps and
    log-probs stay in the autograd graph (the encoder's output does not: gradients stop at the decoder)."""
    inputs, targets = _inputs(model, ids, 1)
    with contextlib.ExitStack() as stack:
        stack.enter_context(torch.enable_grad() if grad else torch.inference_mode())
        fn = _hf_pass if is_hf(model) else _visiongpt2_pass
        logits, cross, encoder_attention = fn(model, pixels, inputs, rollout)
        logp = _log_softmax(logits).gather(-1, targets[..., None])[0, :, 0]
    maps = None if encoder_attention is None else rollouts(encoder_attention)
    if maps is not None and is_hf(model):  # every decoder layer reads the encoder's last layer
        maps = [maps[-1]] * len(cross)
    return AttentionPass(logp, cross, maps)


def _visiongpt2_pass(model: CaptionModel, pixels: torch.Tensor, inputs: torch.Tensor, rollout: bool):
    """VisionGPT2's lock-step forward (models/visiongpt2.py), split so that the encoder runs without grad:
    decoder block i reads encoder block i's output."""
    m = model.model
    encoder_attention: list[torch.Tensor] = []
    with torch.no_grad(), _timm_attention_weights(m.blocks if rollout else [], encoder_attention):
        x = m.embed_image(pixels)
        images = []
        for block in m.blocks:
            x = block(x)
            images.append(x.detach())
    if torch.is_grad_enabled():  # the maps need a graph even when the model's weights are frozen
        images = [x.requires_grad_() for x in images]
    h = m.embed_text(inputs)
    cross = []
    for dec, image in zip(m.transformer.h, images):
        h, att = dec(h, image)
        cross.append(att)
    return (m.lm_head(m.transformer.ln_f(h)), cross, (encoder_attention if rollout else None))


@contextlib.contextmanager
def _timm_attention_weights(blocks: Sequence[Any], sink: list[torch.Tensor]) -> Iterator[None]:
    """timm's ViT attention computes its weights only on the unfused path, where they pass `attn_drop`:
    take that path and record them (each (B, H, N, N)) for the pass."""
    hooks, fused = [], []
    for block in blocks:
        fused.append(block.attn.fused_attn)
        block.attn.fused_attn = False
        hooks.append(block.attn.attn_drop.register_forward_hook(lambda _m, _i, out: sink.append(out.detach())))
    try:
        yield
    finally:
        for block, was, hook in zip(blocks, fused, hooks):
            block.attn.fused_attn = was
            hook.remove()


def _hf_pass(model: CaptionModel, pixels: torch.Tensor, inputs: torch.Tensor, rollout: bool):
    m = model.model
    with _eager_attention(model):
        with torch.no_grad():
            enc = m.encoder(pixel_values=pixels, output_attentions=rollout)
            hidden = enc.last_hidden_state
            if getattr(m, "enc_to_dec_proj", None) is not None:
                hidden = m.enc_to_dec_proj(hidden)
        hidden = hidden.detach().requires_grad_(torch.is_grad_enabled())  # a graph even with frozen weights
        out = m.decoder(input_ids=inputs, encoder_hidden_states=hidden, output_attentions=True, use_cache=False)
    return (out.logits, list(out.cross_attentions), (list(enc.attentions) if rollout else None))


def rollouts(attentions: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Attention rollout (Abnar & Zuidema 2020) after each encoder layer: heads averaged, the residual
    as half identity, rows renormalised, multiplied through the layers. Each (N, N) fp32."""
    out = []
    rollout = None
    for att in attentions:
        a = att[0].float().mean(dim=0)
        a = 0.5 * a + 0.5 * torch.eye(a.size(-1))
        a = a / a.sum(dim=-1, keepdim=True)
        rollout = a if rollout is None else a @ rollout
        out.append(rollout)
    return out
