"""What every explanation method returns: one map per word over the model's patch grid, and its cost."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np


SPREAD_TOLERANCE = 0.01  # nats, as occlusion's: a smaller drop of the whole image is no drop


@dataclass
class WordExplanation:
    """One word of the caption and where in the image its evidence lies."""

    word: str
    token_indices: list[int]  # positions of its tokens in the caption
    map: np.ndarray  # (rows, cols) over the patch grid: finite, >= 0, sums to 1
    logprob: float  # log-probability of the word (its tokens together) under the model, teacher-forced
    supported: bool | None = None  # occlusion: some region lowers its probability (None: the method cannot tell)
    drops: np.ndarray | None = None  # occlusion: its log-probability's drop per cell of the occlusion grid (nats)
    whole_image_drop: float | None = None  # occlusion: the drop when every cell is blanked at once (nats)

    @property
    def spread(self) -> bool:
        """No single cell lowers the word, but blanking the whole image does: several regions carry it together."""
        return self.supported is False and self.whole_image_drop is not None and self.whole_image_drop > SPREAD_TOLERANCE

    def to_dict(self) -> dict[str, Any]:
        return {
            "word": self.word,
            "token_indices": self.token_indices,
            "logprob": self.logprob,
            "supported": self.supported,
            "map": np.round(self.map, 6).tolist(),
            **(
                {}
                if self.drops is None
                else {"drops": np.round(self.drops, 6).tolist(), "whole_image_drop": self.whole_image_drop, "spread": self.spread}
            ),
        }


@dataclass
class Explanation:
    """Per-word maps of one method on one (image, caption), with what they cost."""

    method: str
    grid: tuple[int, int]  # rows, cols of every map (the model's patch grid)
    caption: str
    tokens: list[str]
    words: list[WordExplanation]
    seconds: float
    forward_passes: int  # images run through the model (a batch of n counts n)
    backward_passes: int = 0
    settings: dict[str, Any] = field(default_factory=dict)  # the method's options as used

    @property
    def unsupported(self) -> list[str]:
        """Words that no region of the image supports (occlusion lowers none of them)."""
        return [w.word for w in self.words if w.supported is False]

    @property
    def spread(self) -> list[str]:
        """The unsupported words that the whole image supports (blanking it all lowers them): several regions at once."""
        return [w.word for w in self.words if w.spread]

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "grid": list(self.grid),
            "caption": self.caption,
            "tokens": self.tokens,
            "settings": self.settings,
            "seconds": self.seconds,
            "forward_passes": self.forward_passes,
            "backward_passes": self.backward_passes,
            "unsupported": self.unsupported,
            "spread": self.spread,
            "words": [w.to_dict() for w in self.words],
        }


def normalised(values: np.ndarray) -> np.ndarray:
    """Evidence map -> finite, non-negative, summing to 1; a map without positive evidence becomes uniform."""
    m = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0).clip(min=0.0)
    total = m.sum()
    return (m / total if total > 0 else np.full(m.shape, 1.0 / m.size)).astype(np.float32)


def word_groups(tokens: Sequence[str], finished: bool) -> list[tuple[str, list[int]]]:
    """Words of a caption as (text, token indices); the end token is left out.

    Sub-word tokenizers (GPT-2's BPE) mark a word start with a leading space: tokens without one
    join the previous word. When no token after the first has a leading space the tokenizer is
    word-level and each token is a word.
    """
    n = len(tokens) - (1 if finished and tokens else 0)
    tokens = list(tokens[:n])
    bpe = any(t[:1].isspace() for t in tokens[1:])
    groups: list[tuple[str, list[int]]] = []
    for i, tok in enumerate(tokens):
        if not tok.strip():
            continue
        if bpe and groups and not tok[:1].isspace():
            text, idx = groups[-1]
            groups[-1] = (text + tok, idx + [i])
        else:
            groups.append((tok, [i]))
    return [(text.strip(), idx) for text, idx in groups]


def to_grid(values: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """A (r, c) map -> the (rows, cols) grid: each patch takes the value of the cell holding its centre."""
    r, c = values.shape
    rows, cols = grid
    ri = ((np.arange(rows) + 0.5) * r / rows).astype(int)
    ci = ((np.arange(cols) + 0.5) * c / cols).astype(int)
    return values[np.ix_(ri, ci)]
