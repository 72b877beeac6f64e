"""Why each word: per-word maps over the model's patch grid from raw attention, gradients or occlusion.

    from captioner.explain import explain, hide_regions
    explanation = explain(model, image, caption, method="occlusion")   # caption: Caption, text or token ids
    for w in explanation.words: w.word, w.map, w.supported
    hidden = hide_regions(model, image, cells=[(0, 0), (0, 1)], fill="blur")

Every method teacher-forces the caption's own tokens; nothing here imports captioner.world.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from captioner.explain.attention import explain_attention
from captioner.explain.forward import CaptionLike
from captioner.explain.gradient import explain_gradient
from captioner.explain.hide import HiddenRegions, hide_regions
from captioner.explain.masking import FILLS, mask_cells, parse_grid
from captioner.explain.occlusion import default_grid, explain_occlusion
from captioner.explain.result import Explanation, WordExplanation
from captioner.models.base import CaptionModel

METHODS = ("attention", "relevance", "gradcam", "occlusion")
FAMILIES = ("visiongpt2", "hf-vision-encoder-decoder")  # the families forward.py knows how to teacher-force


def check_explainable(model: CaptionModel) -> None:
    """Raise ValueError with one line when the model's family has no explanation methods (BLIP, GIT)."""
    if model.info.family not in FAMILIES:
        raise ValueError(
            f"Explanations are available for VisionGPT2 and ViT-GPT2 models; {model.info.name} is a "
            f"{model.info.family} model, which has none yet."
        )


__all__ = [
    "FILLS",
    "METHODS",
    "FAMILIES",
    "check_explainable",
    "Explanation",
    "HiddenRegions",
    "WordExplanation",
    "default_grid",
    "explain",
    "hide_regions",
    "mask_cells",
    "parse_grid",
]


def explain(
    model: CaptionModel, image: Image.Image, caption: CaptionLike | None = None, method: str = "attention", **options: Any
) -> Explanation:
    """Per-word maps of `caption` (default: the model's own caption of `image`) by one of METHODS.

    Options: attention `layer`, `head` ("mean" or an index); relevance `layer`, `rollout`; gradcam
    `layer`; occlusion `grid`, `fill`, `tolerance`, `progress`."""
    if method not in METHODS:
        raise ValueError(f"Unknown explanation method {method!r}: one of {', '.join(METHODS)}.")
    check_explainable(model)
    if caption is None:
        from captioner.decoding import caption_image

        caption = caption_image(model, image)[0].best
    if method == "attention":
        return explain_attention(model, image, caption, **options)
    if method == "occlusion":
        return explain_occlusion(model, image, caption, **options)
    return explain_gradient(model, image, caption, method=method, **options)
