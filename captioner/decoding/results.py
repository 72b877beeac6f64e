"""What the engine hands back: captions with their per-token records, per configuration and image."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from captioner.config import DecodingConfig
from captioner.decoding.beam_tree import BeamTree


class Alternative(NamedTuple):
    """One of the most likely tokens at a step, under the model's raw distribution."""

    id: int
    token: str
    prob: float


@dataclass
class Caption:
    """One generated caption with everything needed to explain it. Every number is finite."""

    text: str
    token_ids: list[int]  # generated ids, start token excluded, end token included if produced
    tokens: list[str]  # each token's text
    token_probs: list[float]  # probability under the model (raw softmax)
    processed_probs: list[float]  # probability in the distribution decoding actually used
    entropies: list[float]  # entropy (nats) of the raw next-token distribution per step
    alternatives: list[list[Alternative]]  # the most likely tokens per step, best first
    score: float  # sum of processed log-probs / length ** length_penalty (beam search's score)
    logprob: float  # sum of raw log-probs of the generated tokens
    finished: bool  # ended with the end token (not cut by max_new_tokens)
    forced: list[bool] = field(default_factory=list)  # per token: part of a forced prefix (not chosen by the search)
    attentions: np.ndarray | None = None  # (tokens, layers, heads, rows, cols) cross-attention
    confidence: float = 0.0  # decoding/confidence.py: how sure the model was of this caption, in [0, 1]
    out_of_world: bool | None = None  # the image looks outside what the model knows (None: model has no calibration)

    @property
    def hit_limit(self) -> bool:
        """The caption stopped at max_new_tokens instead of ending with the end token."""
        return not self.finished

    def to_dict(self) -> dict[str, Any]:
        """The caption as JSON-ready data (what the CLI writes); attention maps are left out."""
        return {
            "caption": self.text,
            "token_ids": self.token_ids,
            "tokens": self.tokens,
            "token_probs": self.token_probs,
            "processed_probs": self.processed_probs,
            "entropies": self.entropies,
            "alternatives": [[a._asdict() for a in alts] for alts in self.alternatives],
            "score": self.score,
            "logprob": self.logprob,
            "finished": self.finished,
            "forced": self.forced,
            "hit_limit": self.hit_limit,
            "confidence": self.confidence,
            "out_of_world": self.out_of_world,
        }


@dataclass
class DecodeResult:
    """The outcome of one decoding configuration on one image."""

    config: DecodingConfig  # as decoded: max_new_tokens is at most the model's limit
    captions: list[Caption]  # num_return_sequences captions, best first
    beams: list[Caption]  # beam search: every finished hypothesis, best first; otherwise the captions
    # Seconds: preprocess, encode, decode. For images captioned together (caption_images), each
    # image's share of the batch's time.
    timings: dict[str, float] = field(default_factory=dict)
    beam_tree: BeamTree | None = None  # beam searches: every candidate of every step (beam_tree.py)

    @property
    def best(self) -> Caption:
        return self.captions[0]


@dataclass
class EncodedImage:
    """An image after the encoder: reusable by any number of `decode` calls."""

    memory: Any  # what the model's `step` reads, for one image
    timings: dict[str, float]  # seconds: preprocess, encode
