"""Configuration dataclasses: the VisionGPT2 architecture and the decoding settings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

Strategy = Literal["greedy", "beam", "sample"]
STRATEGIES: tuple[str, ...] = ("greedy", "beam", "sample")

# Hard limits that keep one request from taking the machine down (see README "Limits").
MAX_NUM_BEAMS = 16
MAX_NEW_TOKENS = 128
MAX_RETURN_SEQUENCES = 16


@dataclass
class VisionGPT2Config:
    """Architecture of a VisionGPT2 captioner; defaults are the full-size seed model."""

    vocab_size: int = 50257
    embed_dim: int = 768
    num_heads: int = 12
    seq_len: int = 1024
    depth: int = 12
    mlp_ratio: int = 4
    image_size: int = 224
    patch_size: int = 16
    attention_dropout: float = 0.1
    residual_dropout: float = 0.1
    mlp_dropout: float = 0.1
    emb_dropout: float = 0.1
    # Image normalisation applied after scaling to [0, 1].
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    # The id that starts generation and ends a caption (GPT-2's <|endoftext|>).
    bos_token_id: int = 50256
    eos_token_id: int = 50256
    pad_token_id: int = 50256

    @property
    def grid_size(self) -> int:
        """Patches per image side."""
        return self.image_size // self.patch_size

    @property
    def num_image_tokens(self) -> int:
        """Patches plus the class token."""
        return self.grid_size**2 + 1

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["image_mean"] = list(self.image_mean)
        d["image_std"] = list(self.image_std)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "VisionGPT2Config":
        """Build from a dict (e.g. config.json), ignoring keys this class does not know."""
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in known}
        for key in ("image_mean", "image_std"):
            if key in kwargs:
                kwargs[key] = tuple(float(x) for x in kwargs[key])
        return cls(**kwargs)


@dataclass
class DecodingConfig:
    """How to turn next-token distributions into a caption.

    The semantics follow transformers' ``generate``: processors (repetition penalty,
    no-repeat n-grams, min length) apply to raw logits for greedy and sampling and to
    log-probabilities for beam search; temperature, top-k and top-p only apply when
    sampling.
    """

    strategy: Strategy = "greedy"
    max_new_tokens: int = 20
    min_new_tokens: int = 0
    num_beams: int = 4
    length_penalty: float = 1.0
    early_stopping: bool | Literal["never"] = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    num_return_sequences: int = 1
    seed: int | None = 0
    # How many alternatives to record per step, and whether to record cross-attention.
    num_alternatives: int = 5
    output_attentions: bool = True
    label: str = field(default="", compare=False)

    def validate(self) -> "DecodingConfig":
        """Raise ValueError with a readable message if a setting is out of range."""
        problems = []
        if self.strategy not in STRATEGIES:
            problems.append(f"strategy must be one of {', '.join(STRATEGIES)}, not {self.strategy!r}")
        if not 1 <= self.max_new_tokens <= MAX_NEW_TOKENS:
            problems.append(f"max_new_tokens must be between 1 and {MAX_NEW_TOKENS}")
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            problems.append("min_new_tokens must be between 0 and max_new_tokens")
        if self.strategy == "beam" and not 1 <= self.num_beams <= MAX_NUM_BEAMS:
            problems.append(f"num_beams must be between 1 and {MAX_NUM_BEAMS}")
        if self.temperature <= 0:
            problems.append("temperature must be above 0")
        if self.top_k < 0:
            problems.append("top_k must be 0 (off) or more")
        if not 0 < self.top_p <= 1:
            problems.append("top_p must be in (0, 1]")
        if self.repetition_penalty <= 0:
            problems.append("repetition_penalty must be above 0")
        if self.no_repeat_ngram_size < 0:
            problems.append("no_repeat_ngram_size must be 0 (off) or more")
        if not 1 <= self.num_return_sequences <= MAX_RETURN_SEQUENCES:
            problems.append(f"num_return_sequences must be between 1 and {MAX_RETURN_SEQUENCES}")
        if self.strategy == "beam" and self.num_return_sequences > self.num_beams:
            problems.append("num_return_sequences cannot exceed num_beams")
        if self.early_stopping not in (True, False, "never"):
            problems.append("early_stopping must be true, false or 'never'")
        if problems:
            raise ValueError("Invalid decoding settings: " + "; ".join(problems) + ".")
        return self

    def with_(self, **changes: Any) -> "DecodingConfig":
        """A copy with some settings changed."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
