"""The decoding engine: one path from encoded images to captions, for every model and strategy.

processors.py (transformers' logits processors per configuration), search.py (greedy, sampling, beam
search), engine.py (encoding and the decode loop), results.py (what comes back).
"""

from captioner.decoding.engine import caption_image, caption_images, decode, encode_image
from captioner.decoding.results import Alternative, Caption, DecodeResult, EncodedImage

__all__ = ["Alternative", "Caption", "DecodeResult", "EncodedImage", "caption_image", "caption_images", "decode", "encode_image"]
