"""Gradient-weighted cross-attention: Chefer et al. 2021's encoder-decoder relevance, and Grad-CAM on one layer.

Relevance (Chefer, Gur & Wolf 2021, "Generic attention-model explainability for interpreting bi-modal
and encoder-decoder transformers"): each decoder layer's cross-attention A weighted by the gradient of
the word's log-probability, heads averaged over the positive part, E_h[(dlogp/dA * A)+], summed over
the query positions (the earlier ones reach the word through the decoder's self-attention), carried
back to the image's patches through the rollout of the encoder's self-attention up to the layer that
cross-attention reads (identity without rollout), summed over layers.

Grad-CAM (Selvaraju et al. 2017) on one layer's cross-attention: per head the mean gradient over the
image tokens weighs that head's attention row of the word's step; the positive part of the sum.

Gradients reach the decoder only (the encoder's output is held fixed), for all tokens in one batched backward.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from PIL import Image

from captioner.explain.attention import MEAN
from captioner.explain.forward import AttentionPass, CaptionLike, attention_pass, caption_tokens
from captioner.explain.result import Explanation, WordExplanation, normalised, word_groups
from captioner.models.base import CaptionModel


def _layers(layer: int | str, n: int) -> list[int]:
    if layer == MEAN:
        return list(range(n))
    if not isinstance(layer, int) or not -n <= layer < n:
        raise ValueError(f"layer must be 'mean' or 0..{n - 1}, not {layer!r}.")
    return [layer % n]


def token_gradients(run: AttentionPass, layers: list[int]) -> list[torch.Tensor]:
    """d logp(t) / dA for every caption token t and each chosen layer's cross-attention A: each (T, H, T, N_img).

    One batched backward (autograd's vmap over the T one-hot output gradients); one backward per
    token where the batched form is not available."""
    inputs = [run.cross[i] for i in layers]
    T = run.logprobs.size(0)
    try:
        grads = torch.autograd.grad(
            run.logprobs, inputs, grad_outputs=torch.eye(T, dtype=run.logprobs.dtype), is_grads_batched=True
        )
        return [g[:, 0] for g in grads]
    except RuntimeError:  # an op without a batching rule
        per_token = [torch.autograd.grad(run.logprobs[t], inputs, retain_graph=True) for t in range(T)]
        return [torch.stack([g[k][0] for g in per_token]) for k in range(len(inputs))]


def gradient_times_attention(run: AttentionPass, layers: list[int]) -> list[torch.Tensor]:
    """dlogp(t)/dA * A for every token t and each chosen layer's cross-attention A: each (T, H, T, N_img) fp32."""
    return [g.float() * run.cross[i][0].detach().float() for i, g in zip(layers, token_gradients(run, layers))]


def token_relevance(
    model: CaptionModel, image: Image.Image, caption: CaptionLike, layer: int | str = MEAN, rollout: bool = True
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per caption token the relevance of every image token (T, N_img), the token log-probs (T,), backward passes."""
    cap = caption_tokens(model, caption)
    run = attention_pass(model, model.preprocess([image]), cap.ids, grad=True, rollout=rollout)
    layers = _layers(layer, len(run.cross))
    total = 0
    for i, ga in zip(layers, gradient_times_attention(run, layers)):
        cam = ga.clamp(min=0).mean(dim=1).sum(dim=1)  # heads' mean, summed over query positions: (T, N_img)
        total = total + (cam @ run.rollout[i] if run.rollout is not None else cam)
    return total, run.logprobs.detach(), 1


def token_gradcam(
    model: CaptionModel, image: Image.Image, caption: CaptionLike, layer: int = -1
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Grad-CAM on one layer's cross-attention: per token (T, N_img), the token log-probs (T,), backward passes."""
    cap = caption_tokens(model, caption)
    run = attention_pass(model, model.preprocess([image]), cap.ids, grad=True)
    (i,) = _layers(layer, len(run.cross))
    (g,) = token_gradients(run, [i])  # (T, H, T, N)
    T = len(cap.ids)
    rows = torch.arange(T)
    weights = g[rows, :, rows].float().mean(dim=-1, keepdim=True)  # each token's step, per head: (T, H, 1)
    attention = run.cross[i][0].detach().float().transpose(0, 1)  # (T, H, N)
    return (weights * attention).sum(dim=1).clamp(min=0), run.logprobs.detach(), 1


def explain_gradient(
    model: CaptionModel,
    image: Image.Image,
    caption: CaptionLike,
    method: str = "relevance",
    layer: int | str | None = None,
    rollout: bool = True,
) -> Explanation:
    """Per-word maps of "relevance" (all layers by default, encoder rollout) or "gradcam" (last layer by default)."""
    t0 = time.perf_counter()
    cap = caption_tokens(model, caption)
    if method == "relevance":
        layer = MEAN if layer is None else layer
        values, logp, backward = token_relevance(model, image, cap.ids, layer, rollout)
        settings = {"layer": layer, "rollout": bool(rollout)}
    elif method == "gradcam":
        layer = -1 if layer is None else layer
        values, logp, backward = token_gradcam(model, image, cap.ids, layer)
        settings = {"layer": layer}
    else:
        raise ValueError(f"Unknown gradient method {method!r}: relevance or gradcam.")
    per_token = model.image_tokens_to_grid(values).numpy()
    lp = logp.numpy()
    words = [
        WordExplanation(w, idx, normalised(np.sum(per_token[idx], axis=0)), float(lp[idx].sum()))
        for w, idx in word_groups(cap.tokens, cap.finished)
    ]
    return Explanation(method, model.grid, cap.text, cap.tokens, words, time.perf_counter() - t0, 1, backward, settings)
