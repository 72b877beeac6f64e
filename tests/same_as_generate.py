"""The engine checked against transformers: its captions against generate() on the same model and image, its
logits processors against transformers' own processors on the same scores."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from captioner.config import DecodingConfig
from captioner.decoding import caption_image


def assert_same_as_generate(
    cap, generator, image: Image.Image, config: DecodingConfig, theirs: dict, padding: set[int], start=None
):
    """Caption `image` with the engine (`config`) and with `generator.generate(**theirs)` without sampling: each
    caption's token ids are generate's row after its start token (`start`, when given), followed only by `padding`
    ids; beam scores agree. Returns the engine's result."""
    result = caption_image(cap, image, [config])[0]
    out = generator.generate(
        pixel_values=cap.preprocess([image]),
        do_sample=False,
        max_new_tokens=config.max_new_tokens,
        output_scores=True,
        return_dict_in_generate=True,
        **theirs,
    )
    assert len(result.captions) == out.sequences.size(0)
    for caption, row in zip(result.captions, out.sequences.tolist()):
        if start is not None:
            assert row[0] == start  # generate's start token, which the engine does not count
        generated = row[1:]
        assert generated[: len(caption.token_ids)] == caption.token_ids
        assert set(generated[len(caption.token_ids) :]) <= padding
    if config.strategy == "beam":
        assert [c.score for c in result.captions] == pytest.approx(out.sequences_scores.tolist(), abs=1e-4)
    return result


def assert_same_as_processors(ours: torch.Tensor, processors: list, ids: torch.Tensor, scores: torch.Tensor) -> None:
    """`ours` (our processors applied to `scores`) is the distribution transformers' `processors` give, applied in
    turn to the same scores, with the same tokens ruled out (and some are). The warpers see the scores shifted by
    their maximum, so the log-probabilities are compared, not the scores."""
    theirs = scores.clone()
    for processor in processors:
        theirs = processor(ids, theirs)
    torch.testing.assert_close(ours.log_softmax(-1), theirs.log_softmax(-1))
    assert torch.equal(ours.isneginf(), theirs.isneginf()) and bool(theirs.isneginf().any())
