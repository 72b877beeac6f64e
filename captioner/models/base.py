"""What every captioning model gives the decoding engine: preprocess, encode once, one cached step."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from captioner.config import DecodingConfig


@dataclass
class ModelInfo:
    """What the app and the CLI show about a loaded model."""

    name: str
    family: str  # "visiongpt2", "hf-vision-encoder-decoder", "blip" or "git"
    source: str  # where the weights came from
    num_parameters: int
    dtype: str
    reason: str = ""  # why this model was chosen, when it was the default
    fell_back: bool = False  # the default model was asked for and could not load: this is the built-in one
    notes: list[str] = field(default_factory=list)  # what a user should know about how it was loaded

    @classmethod
    def of_module(cls, module: nn.Module, family: str, source: str) -> "ModelInfo":
        """The info of a torch module loaded from `source`: its parameter count and dtype read from it."""
        return cls(
            name=source,
            family=family,
            source=source,
            num_parameters=sum(p.numel() for p in module.parameters()),
            dtype=dtype_name(next(module.parameters()).dtype),
        )


def dtype_name(dtype: torch.dtype | torch.layout) -> str:
    """A dtype (or layout) as people write it: "float32" for torch.float32."""
    return str(dtype).removeprefix("torch.")


def split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """(B, T, C) -> (B, n_head, T, C // n_head): one attention input split into its heads."""
    B, T, C = x.shape
    return x.view(B, T, n_head, C // n_head).transpose(1, 2)


class StepOutput(tuple):
    """What a step returns: (logits, cache, attention), unpacked as three, and `hidden`, the last
    position's final hidden state (R, C) after the final LayerNorm, in fp32 (contrastive search reads it)."""

    hidden: torch.Tensor | None

    def __new__(cls, logits: torch.Tensor, cache: Any, attention: torch.Tensor | None, hidden: torch.Tensor | None):
        out = super().__new__(cls, (logits, cache, attention))
        out.hidden = hidden
        return out


def final_hidden(h: torch.Tensor, norm: nn.LayerNorm) -> torch.Tensor:
    """The final LayerNorm (in fp32) on last positions h (R, C)."""
    return F.layer_norm(h.float(), norm.normalized_shape, norm.weight.float(), norm.bias.float(), norm.eps)


def head_logits(x: torch.Tensor, head: nn.Module) -> torch.Tensor:
    """The lm_head on final hidden states x (R, C) in fp32: fp32 logits (R, V)."""
    weight = getattr(head, "weight", None)
    if isinstance(weight, torch.Tensor) and weight.dtype != torch.float32:
        x = x.to(weight.dtype)  # a quantized head (no weight tensor) takes fp32 input
    return head(x).float()


class CaptionModel(ABC):
    """A captioner seen by the engine: it encodes images once and takes one cached decoding step.

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
        """Run the image encoder once for B images. The result is what `step` reads."""

    @abstractmethod
    def step(
        self, memory: Any, ids: torch.Tensor, cache: Any, need_weights: bool = False, image_rows: Sequence[int] | None = None
    ) -> StepOutput:
        """One decoding step for `ids` (R, T), the full token history of R rows.

        With a cache, only the last token is new. The first image_rows[0] rows read image 0 of `memory`,
        the next image_rows[1] rows image 1, ... (None: all rows read its only image). Returns next-token
        logits (R, V), the new cache, and when `need_weights` the cross-attention of the new position
        (R, layers, heads, image tokens); its `hidden` is the new position's final hidden state (R, C).
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


class TransformersImages:
    """`dtype` and `preprocess` for a captioner holding a transformers `model` and its `image_processor`."""

    model: nn.Module
    image_processor: Any

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype

    def preprocess(self, images: Sequence[Any]) -> torch.Tensor:
        pixels = self.image_processor(images=list(images), return_tensors="pt").pixel_values
        return pixels.to(self.dtype)
