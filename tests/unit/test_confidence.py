"""decoding/confidence.py: the caption confidence and the out-of-world flag, at their limits."""

from __future__ import annotations

import math
import random

import pytest

from captioner.decoding.confidence import caption_confidence, is_out_of_world


def test_confidence_is_the_geometric_mean_of_token_probabilities() -> None:
    assert caption_confidence([0.5, 0.5]) == pytest.approx(0.5)
    assert caption_confidence([1.0, 0.25]) == pytest.approx(0.5)
    assert caption_confidence([1.0] * 30) == pytest.approx(1.0)


def test_confidence_stays_in_range_at_the_limits() -> None:
    assert caption_confidence([]) == 0.0  # nothing generated: no confidence
    assert caption_confidence([0.0]) == pytest.approx(1e-12)  # a zero probability does not raise
    rng = random.Random(0)
    for _ in range(500):
        n = rng.randint(1, 64)
        probs = [rng.choice((0.0, 1.0, rng.random(), 1e-300)) for _ in range(n)]
        c = caption_confidence(probs)
        assert 0.0 <= c <= 1.0 and math.isfinite(c)
        assert c >= min(probs) - 1e-12 and c <= max(max(probs), 1e-12) * (1 + 1e-9)  # probabilities floor at 1e-12


def test_a_less_likely_token_lowers_the_confidence() -> None:
    assert caption_confidence([0.9, 0.9, 0.2]) < caption_confidence([0.9, 0.9, 0.9])


def test_out_of_world_needs_a_calibration() -> None:
    assert is_out_of_world(0.1, None) is None
    assert is_out_of_world(0.1, {}) is None
    assert is_out_of_world(0.1, {"something_else": 1}) is None
    calibration = {"confidence_threshold": 0.5}
    assert is_out_of_world(0.49, calibration) is True
    assert is_out_of_world(0.5, calibration) is False
    assert is_out_of_world(1.0, calibration) is False and is_out_of_world(0.0, calibration) is True
