"""The VisionGPT2 architecture: `VisionGPT2Config`, each field declared once with its default and its rule."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Mapping

from captioner.config.schema import ConfigError, Spec, checked, read_fields, schema_of

_UNIT = Spec("float", 0.0, 1.0)
_TOKEN_ID = Spec("int", 0, 1_000_000)
_RGB_MEAN = Spec("floats", -1e3, 1e3, length=3)
_RGB_STD = Spec("floats", 1e-6, 1e3, length=3)


@dataclass
class VisionGPT2Config:
    """Architecture of a VisionGPT2 captioner; defaults are the full-size seed model."""

    vocab_size: int = checked(50257, Spec("int", 1, 1_000_000))
    embed_dim: int = checked(768, Spec("int", 1, 16_384))
    num_heads: int = checked(12, Spec("int", 1, 1_024))
    seq_len: int = checked(1024, Spec("int", 2, 65_536))
    depth: int = checked(12, Spec("int", 1, 256))
    mlp_ratio: int = checked(4, Spec("int", 1, 64))
    image_size: int = checked(224, Spec("int", 1, 4_096))
    patch_size: int = checked(16, Spec("int", 1, 4_096))
    attention_dropout: float = checked(0.1, _UNIT)
    residual_dropout: float = checked(0.1, _UNIT)
    mlp_dropout: float = checked(0.1, _UNIT)
    emb_dropout: float = checked(0.1, _UNIT)
    # Image normalisation applied after scaling to [0, 1].
    image_mean: tuple[float, float, float] = checked((0.5, 0.5, 0.5), _RGB_MEAN)
    image_std: tuple[float, float, float] = checked((0.5, 0.5, 0.5), _RGB_STD)
    # The id that starts generation and ends a caption (GPT-2's <|endoftext|>).
    bos_token_id: int = checked(50256, _TOKEN_ID)
    eos_token_id: int = checked(50256, _TOKEN_ID)
    pad_token_id: int = checked(50256, _TOKEN_ID)

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
    def from_dict(cls, d: Mapping[str, Any]) -> "VisionGPT2Config":
        """Build from a dict (e.g. config.json) read through VISIONGPT2_SCHEMA; unknown keys are ignored.

        Raises ConfigError naming the first field of the wrong type or out of range.
        """
        known = {f.name for f in fields(cls)}
        kwargs = {k: v for k, v in read_fields(d, VISIONGPT2_SCHEMA).items() if k in known}
        return cls(**kwargs).validate()

    def validate(self) -> "VisionGPT2Config":
        """Check the fields against each other (ConfigError naming the field)."""
        if self.embed_dim % self.num_heads:
            raise ConfigError("num_heads", f"num_heads ({self.num_heads}) must divide embed_dim ({self.embed_dim})")
        if self.image_size % self.patch_size:
            raise ConfigError("patch_size", f"patch_size ({self.patch_size}) must divide image_size ({self.image_size})")
        for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
            if getattr(self, name) >= self.vocab_size:
                raise ConfigError(name, f"{name} ({getattr(self, name)}) must be below vocab_size ({self.vocab_size})")
        return self


# What a VisionGPT2 config.json may hold: the fields, and the name of the architecture it describes.
VISIONGPT2_SCHEMA: dict[str, Spec] = {"architecture": Spec("str"), **schema_of(VisionGPT2Config)}
