"""What the JSON downloads hold: one decode result (Caption page), or every configuration (Compare page)."""

from __future__ import annotations

from typing import Any, Sequence

from captioner.app.views.text import config_label
from captioner.decoding import DecodeResult
from captioner.models.base import ModelInfo


def _model_record(info: ModelInfo) -> dict[str, Any]:
    return {"name": info.name, "family": info.family, "source": info.source, "dtype": info.dtype}


def caption_record(result: DecodeResult, info: ModelInfo | None = None, image_name: str = "") -> dict[str, Any]:
    """One decode result as a JSON-ready dict (settings, timings, every returned caption and beam)."""
    config = {k: v for k, v in result.config.to_dict().items() if k not in ("label",)}
    record: dict[str, Any] = {
        "image": image_name,
        "caption": result.best.text,
        "decoding": config,
        "timings_s": {k: round(v, 4) for k, v in result.timings.items()},
        "captions": [c.to_dict() for c in result.captions],
    }
    if result.config.strategy == "beam":
        record["beams"] = [c.to_dict() for c in result.beams]
    if info is not None:
        record["model"] = _model_record(info)
    return record


def comparison_record(results: Sequence[DecodeResult], info: ModelInfo | None, image_name: str) -> dict[str, Any]:
    """Compare's JSON: per configuration, its settings, timings, every caption and every beam."""
    configurations = []
    for r in results:
        record = caption_record(r)
        record.pop("image")
        configurations.append({"strategy": config_label(r.config), **record})
    out: dict[str, Any] = {"image": image_name, "configurations": configurations}
    if info is not None:
        out["model"] = _model_record(info)
    return out
