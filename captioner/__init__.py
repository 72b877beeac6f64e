"""Image captioning with per-token probabilities, alternatives, entropy and attention.

    import captioner

    model = captioner.load_captioner("builtin")
    caption = captioner.caption_image(model, captioner.load_image("photo.jpg"))[0].best

The names below are imported on first use, so `import captioner` stays light (no torch until a
model is loaded or an image is captioned).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_PUBLIC = {
    "load_captioner": "captioner.loading",
    "load_image": "captioner.images",
    "DecodingConfig": "captioner.config",
    "caption_image": "captioner.decoding",
    "caption_images": "captioner.decoding",
    "encode_image": "captioner.decoding",
    "decode": "captioner.decoding",
    "ModelLoadError": "captioner.loading",
    "ImageLoadError": "captioner.images",
    "ConfigError": "captioner.config",
    "ArchiveError": "captioner.archives",
}
__all__ = [
    "ArchiveError",
    "ConfigError",
    "DecodingConfig",
    "ImageLoadError",
    "ModelLoadError",
    "caption_image",
    "caption_images",
    "decode",
    "encode_image",
    "load_captioner",
    "load_image",
]

if TYPE_CHECKING:
    from captioner.archives import ArchiveError
    from captioner.config import ConfigError, DecodingConfig
    from captioner.decoding import caption_image, caption_images, decode, encode_image
    from captioner.images import ImageLoadError, load_image
    from captioner.loading import ModelLoadError, load_captioner


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'captioner' has no attribute {name!r}")
    value = getattr(importlib.import_module(_PUBLIC[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
