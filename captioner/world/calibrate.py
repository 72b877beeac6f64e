"""`python -m captioner.world.calibrate [MODEL_DIR]`: the out-of-world threshold, into calibration.json.

Greedy captions of held-out VAL scenes (never trained on, never the second renderer's): half drawn
plainly by the first renderer, half in training's randomised looks. The threshold is the
confidence (`decoding/confidence.py`) below which `quantile` of them fall, so about that share of
scenes like these is flagged; the loader reads the file into `model.calibration`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from captioner.config import DecodingConfig
from captioner.decoding.confidence import CONFIDENCE_MEASURE, caption_confidence
from captioner.models.base import CaptionModel

CALIBRATION_FILE = "calibration.json"


def calibrate(
    model: CaptionModel, scenes: int = 1000, quantile: float = 0.005, config: DecodingConfig | None = None
) -> dict[str, Any]:
    """The calibration dict for `model` (confidence threshold and how it was chosen), greedy with `config`'s settings."""
    from captioner.world import split_seeds
    from captioner.world.evaluate import evaluate_model

    half = scenes // 2
    confidences = []
    for look, seeds in (("first", split_seeds("val", half)), ("training-look", split_seeds("val", scenes - half, half))):
        result = evaluate_model(model, seeds, attention=False, renderer=look, records=True, config=config)
        confidences += [caption_confidence(r["token_probs"]) for r in result["records"]]
    threshold = float(np.quantile(confidences, quantile))
    return {
        "confidence_threshold": round(threshold, 4),
        "confidence": CONFIDENCE_MEASURE,
        "quantile": quantile,
        "scenes": len(confidences),
        "from": "VAL scenes, half by the first renderer, half in training's randomised looks, greedy",
    }


def write_calibration(
    model_dir: Path, model: CaptionModel, scenes: int = 1000, quantile: float = 0.005, config: DecodingConfig | None = None
) -> dict[str, Any]:
    """Calibrate and write calibration.json into `model_dir`."""
    calibration = calibrate(model, scenes, quantile, config)
    (Path(model_dir) / CALIBRATION_FILE).write_text(json.dumps(calibration, indent=2) + "\n")
    return calibration


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(prog="python -m captioner.world.calibrate", description=__doc__.split("\n")[0])
    p.add_argument("model_dir", nargs="?", default=str(Path(__file__).parents[1] / "builtin"))
    p.add_argument("--scenes", type=int, default=1000)
    p.add_argument("--quantile", type=float, default=0.005, help="share of held-out scenes allowed below the threshold")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)

    import torch

    from captioner.loading import load_captioner

    torch.set_num_threads(args.threads)
    from captioner.world.evaluate import greedy_config, read_generation_config

    model = load_captioner(args.model_dir)
    generation = Path(args.model_dir) / "generation_config.json"
    config = greedy_config(model, read_generation_config(generation if generation.exists() else None))
    calibration = write_calibration(Path(args.model_dir), model, args.scenes, args.quantile, config)
    print(json.dumps(calibration, indent=2))
    return calibration


if __name__ == "__main__":
    main()
