"""The decoding engine: one path from an encoded image to captions, for every model and strategy."""

from captioner.decoding.engine import (
    NEG_INF,
    Caption,
    DecodeResult,
    EncodedImage,
    apply_no_repeat_ngram,
    apply_repetition_penalty,
    apply_top_k,
    apply_top_p,
    caption_image,
    caption_images,
    decode,
    encode_image,
    process_scores,
)

__all__ = [
    "NEG_INF", "Caption", "DecodeResult", "EncodedImage", "apply_no_repeat_ngram", "apply_repetition_penalty",
    "apply_top_k", "apply_top_p", "caption_image", "caption_images", "decode", "encode_image", "process_scores",
]  # fmt: skip
