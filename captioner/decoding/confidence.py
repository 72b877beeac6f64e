"""How sure a model is of a caption, from its own decoding, and whether the image looks outside what it knows.

The confidence is computed from the caption's records alone, so it exists for every model. The
out-of-world flag needs a calibration that comes with a model (`calibration.json` beside the
built-in model's weights): without one, `out_of_world` is None (unknown), never a guess.

The geometric mean of the chosen tokens' probabilities separated scenes from non-scenes best among
the measures tried on the built-in model (mean and largest entropy, smallest probability). That model
is trained to have no preference among its captions on images that are not scenes, so there every
colour, shape and size word is a guess among several and the mean falls well below the threshold
(`captioner/world/calibrate.py` sets it on held-out scenes).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence


CONFIDENCE_MEASURE = "geometric mean of the chosen tokens' probabilities"


def caption_confidence(token_probs: Sequence[float]) -> float:
    """Geometric mean of the chosen tokens' probabilities, in [0, 1] (0 for an empty caption)."""
    logs = [math.log(max(p, 1e-12)) for p in token_probs]
    return math.exp(sum(logs) / len(logs)) if logs else 0.0


def is_out_of_world(confidence: float, calibration: Mapping[str, Any] | None) -> bool | None:
    """True when the confidence is below the model's calibrated threshold; None without a calibration."""
    if not calibration or "confidence_threshold" not in calibration:
        return None
    return confidence < float(calibration["confidence_threshold"])
