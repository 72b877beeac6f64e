"""The decoding engine: one path from encoded images to captions, for every model and strategy.

processors.py (transformers' logits processors per configuration), search.py (greedy, sampling, beam
search), diverse.py (diverse beam search), contrastive.py (contrastive search), prefix.py (a forced
prefix), beam_tree.py (what beam search kept and pruned), engine.py (encoding and the decode loop),
results.py (what comes back).
"""

from captioner.decoding.beam_tree import BeamTree, TreeNode
from captioner.decoding.engine import caption_image, caption_images, decode, encode_image
from captioner.decoding.prefix import PrefixError
from captioner.decoding.results import Alternative, Caption, DecodeResult, EncodedImage

__all__ = [
    "Alternative",
    "BeamTree",
    "Caption",
    "DecodeResult",
    "EncodedImage",
    "PrefixError",
    "TreeNode",
    "caption_image",
    "caption_images",
    "decode",
    "encode_image",
]
