"""The Compare page's own configurations in a link: one `compare_add` value each, its name and the settings
that differ from the model's defaults, read back through the same ranges as every other setting. No Streamlit."""

from __future__ import annotations

import json
from typing import Any, Mapping

from captioner.app.settings import Range, decoding_ranges, from_params, strategy_from_params


def added_to_param(label: str, values: Mapping[str, Any], defaults: Mapping[str, Any]) -> str:
    """One added Compare configuration as a URL value: its name and the settings that differ from the defaults."""
    record = {"label": label, **{k: v for k, v in values.items() if v != defaults.get(k)}}
    return json.dumps(record, separators=(",", ":"))


def added_from_param(
    raw: str, defaults: Mapping[str, Any], model_limit: int, ranges: tuple[Range, ...] | None = None
) -> tuple[dict[str, Any] | None, list[str]]:
    """An added configuration back from its URL value: (label and decoding values, notes), None if unreadable.
    `ranges`: the model's decoding ranges (default: `decoding_ranges(model_limit)`)."""
    try:
        record = json.loads(raw)
        if not isinstance(record, dict):
            raise ValueError
    except ValueError:
        return None, [f"An added configuration in the link could not be read ({raw[:40]!r}): ignored."]
    params = {k: str(v) for k, v in record.items() if k not in ("label", "strategy")}
    values, notes = from_params(params, ranges or decoding_ranges(model_limit))
    strategy, more = strategy_from_params({"strategy": str(record["strategy"])} if "strategy" in record else {})
    label = str(record.get("label", ""))[:60].strip()
    return {**defaults, **values, **({"strategy": strategy} if strategy else {}), "label": label}, notes + more
