"""What every captioning model gives the decoding engine: preprocess, encode once, one cached step."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from captioner.config import DecodingConfig


@dataclass
class ModelInfo:
    """What the app and the CLI show about a loaded model."""

    name: str
    family: str  # "visiongpt2" or "hf-vision-encoder-decoder"
    source: str  # where the weights came from
    num_parameters: int
    dtype: str
    reason: str = ""  # why this model was chosen, when it was the default
    fell_back: bool = False  # the default model was asked for and could not load: this is the built-in one
    notes: list[str] = field(default_factory=list)


# Above this many rows a product is a matmul, and F.linear is the right call.
FEW_ROWS = 16


Projection = Callable[[torch.Tensor], torch.Tensor]  # (rows, in) -> (rows, out)


def projection(layer: nn.Module, weight_in_out: bool = False) -> Projection:
    """The fastest way to multiply a few rows by `layer` (nn.Linear, or transformers' Conv1D when
    `weight_in_out`), chosen once from its dtype and memory layout. Same product as `layer(x)`.

    With bf16 weights F.linear takes a oneDNN matmul kernel that streams the weights slowly when x
    has a row or a few: a matrix-vector product (one row) or weight @ x.T (a few rows) reads the
    same weights 1.3 to 1.8 times faster on this project's CPUs, with fp32 accumulation. Anything
    else (fp32, many rows, quantized layers, weights not stored as (out, in) rows) is the plain product.
    """
    if not isinstance(getattr(layer, "weight", None), torch.Tensor):
        return layer  # e.g. a dynamically quantized Linear: its own kernel
    w = layer.weight.t() if weight_in_out else layer.weight  # (out, in) view
    b = layer.bias
    if w.dtype == torch.bfloat16 and w.is_contiguous():
        bcol = None if b is None else b[:, None]

        def bf16_rows(x: torch.Tensor) -> torch.Tensor:
            rows = x.size(0)
            if rows == 1:
                return (torch.mv(w, x[0]) if b is None else torch.addmv(b, w, x[0]))[None]
            if rows <= FEW_ROWS:
                return (w @ x.T if b is None else torch.addmm(bcol, w, x.T)).T
            return F.linear(x, w, b)

        return bf16_rows
    if weight_in_out:  # Conv1D as transformers computes it: x @ w(in, out) + b
        w_in_out = layer.weight
        return lambda x: torch.addmm(b, x, w_in_out) if b is not None else x @ w_in_out
    return lambda x: F.linear(x, w, b)


def project_rows(x: torch.Tensor, layer: nn.Module) -> torch.Tensor:
    """`layer(x)` for x (..., C), through `projection`: the fast product for the few rows of a decoding
    step. Takes nn.Linear and transformers' GPT-2 Conv1D (weight (in, out)); other layers run as they are."""
    conv1d = type(layer).__name__ == "Conv1D"
    if type(layer) is not nn.Linear and not conv1d:
        return layer(x)
    y = projection(layer, weight_in_out=conv1d)(x.reshape(-1, x.size(-1)))
    return y.reshape(*x.shape[:-1], y.size(-1))


def next_token_logits(h: torch.Tensor, norm: nn.LayerNorm, head: nn.Module, exact_top: int = 16) -> torch.Tensor:
    """The final LayerNorm and the lm_head on last positions h (R, C): fp32 logits (R, V).

    The norm runs in fp32. With bf16 weights the head's product comes out rounded to bf16 (8 bits of
    mantissa: steps of 1/16 at a logit of 10), which turns near-ties between the best tokens into
    coin flips; so the `exact_top` largest logits are computed again in fp32 from the same weights,
    and greedy and beam search decide as they would in fp32.
    """
    x = F.layer_norm(h.float(), norm.normalized_shape, norm.weight.float(), norm.bias.float(), norm.eps)
    if type(head) is not nn.Linear or head.weight.dtype == torch.float32:
        return head(x).float()  # fp32, or a quantized head that takes fp32 input
    logits = project_rows(x.to(head.weight.dtype), head).float()
    top = logits.topk(min(exact_top, logits.size(-1)), dim=-1).indices  # (R, k)
    exact = torch.einsum("rc,rkc->rk", x, head.weight[top].float())
    if head.bias is not None:
        exact = exact + head.bias[top].float()
    return logits.scatter_(1, top, exact)


class CaptionModel(ABC):
    """A captioner seen by the engine: it encodes an image once and takes one cached decoding step.

    Everything about strategies, probabilities and attention lives in `captioner.decoding`.
    """

    info: ModelInfo
    bos_token_id: int
    eos_token_id: int
    pad_token_id: int
    num_layers: int
    num_heads: int
    grid: tuple[int, int]  # patch rows, patch cols of the cross-attention maps
    image_size: tuple[int, int]  # (height, width) the model sees
    default_decoding: DecodingConfig
    max_positions: int  # text positions the decoder has (its position table), the start token included
    calibration: dict[str, Any] | None = None  # out-of-world calibration shipped with the model (decoding/confidence.py)

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer
        self._token_text_cache: dict[int, str] = {}

    @property
    def max_new_tokens_limit(self) -> int:
        """The most tokens a caption can have: the positions left after the start token."""
        return self.max_positions - 1

    @abstractmethod
    def preprocess(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """RGB images -> pixel tensor (B, 3, H, W) in the model's dtype."""

    @abstractmethod
    def encode(self, pixels: torch.Tensor) -> Any:
        """Run the image encoder once. The result is what `step` reads (batch 1)."""

    @abstractmethod
    def step(
        self, memory: Any, ids: torch.Tensor, cache: Any, need_weights: bool
    ) -> tuple[torch.Tensor, Any, torch.Tensor | None]:
        """One decoding step for `ids` (R, T), the full token history of R rows.

        With a cache, only the last token is new. Returns next-token logits (R, V), the new cache,
        and when `need_weights` the cross-attention of the new position (R, layers, heads, image tokens).
        """

    def reorder_cache(self, cache: Any, rows: torch.Tensor) -> Any:
        """Keep cache rows `rows` (in that order): beams are reordered, finished rows dropped."""
        if cache is None:
            return None
        return [tuple(t.index_select(0, rows) for t in layer) for layer in cache]

    def image_tokens_to_grid(self, attention: torch.Tensor) -> torch.Tensor:
        """(..., N_img) attention over image tokens -> (..., rows, cols) over patches (class token dropped)."""
        rows, cols = self.grid
        return attention[..., -rows * cols :].reshape(*attention.shape[:-1], rows, cols)

    # -- text --------------------------------------------------------------------------------
    def decode_text(self, ids: Sequence[int]) -> str:
        """Caption text of generated ids, special tokens removed."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=True).strip()

    def token_text(self, token_id: int) -> str:
        """How one token reads on its own (special tokens keep their name)."""
        text = self._token_text_cache.get(token_id)
        if text is None:
            text = self.tokenizer.decode([token_id], skip_special_tokens=False)
            self._token_text_cache[token_id] = text
        return text
