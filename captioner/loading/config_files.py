"""Config files as data: strict JSON within size and depth caps, no model code (`auto_map`), typed fields.

Also what a model folder says beside its weights (decoding defaults, calibration), for every family.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator, Mapping

from captioner.config import GENERATION_SCHEMA, ConfigError, Spec, decoding_from_generation_config, read_fields
from captioner.files import FileRefused, read_regular_file
from captioner.loading.errors import ModelLoadError, one_line
from captioner.models.base import CaptionModel

MAX_CONFIG_BYTES = 1_000_000  # README "Limits and safety"
MAX_JSON_DEPTH = 32
CALIBRATION_FILE = "calibration.json"  # out-of-world calibration beside a model's weights (decoding/confidence.py)
GENERATION_CONFIG_FILE = "generation_config.json"  # Hugging Face's decoding defaults, for both families


def read_json_file(path: Path, max_bytes: int = MAX_CONFIG_BYTES) -> dict[str, Any]:
    """A config file's JSON object: a regular file within `max_bytes`, strict JSON (no NaN), nested at most
    MAX_JSON_DEPTH levels, naming no code to run (`auto_map`). Anything else is a ModelLoadError naming the file."""
    try:
        data = read_regular_file(path, max_bytes, "a config file")
    except FileRefused as e:
        raise ModelLoadError(str(e)) from None
    try:
        obj = json.loads(data, parse_constant=_refuse_json_constant)
    except RecursionError:
        raise ModelLoadError(f"{path} is nested too deeply; the limit is {MAX_JSON_DEPTH} levels.") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise ModelLoadError(f"{path} is not valid JSON: {one_line(e)}") from None
    if not isinstance(obj, dict):
        raise ModelLoadError(f"{path} does not hold a JSON object.")
    if json_depth(obj) > MAX_JSON_DEPTH:
        raise ModelLoadError(f"{path} is nested too deeply; the limit is {MAX_JSON_DEPTH} levels.")
    refuse_model_code(path, obj)
    return obj


def _refuse_json_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def json_depth(obj: Any) -> int:
    """How deeply `obj` nests (a scalar is 0, `{}` is 1); counting stops past MAX_JSON_DEPTH + 1."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            if depth <= MAX_JSON_DEPTH:
                stack += [(child, depth + 1) for child in (item.values() if isinstance(item, dict) else item)]
    return deepest


def refuse_model_code(path: Path, obj: Mapping[str, Any]) -> None:
    """Refuse a config that asks transformers to import code shipped with the model (`auto_map`)."""
    stack: list[Any] = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("auto_map"):
                modules = sorted({s.split("--")[-1].rsplit(".", 1)[0] + ".py" for s in _strings(item["auto_map"]) if "." in s})
                raise ModelLoadError(
                    f"Refused {path.parent}: {path.name} asks to run code shipped with the model (auto_map"
                    + (f": {', '.join(modules)}" if modules else "")
                    + "). Models are only loaded as data; nothing from the folder was run."
                )
            stack += list(item.values())
        elif isinstance(item, list):
            stack += item


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)


def typed_fields(values: Mapping[str, Any], schema: Mapping[str, Spec], source: Path | str, prefix: str = "") -> dict[str, Any]:
    """`config.read_fields`, with a failure turned into a ModelLoadError naming the file and the field."""
    try:
        return read_fields(values, schema)
    except ConfigError as e:
        raise ModelLoadError(f"{source}: {prefix}{e}.") from None


def read_generation_config(path: Path) -> dict[str, Any]:
    """A generation_config.json's values, its known fields typed."""
    values = read_json_file(path)
    typed_fields(values, GENERATION_SCHEMA, path)
    return values


def apply_folder_defaults(model: CaptionModel, folder: Path) -> None:
    """What a model folder says beside the weights: decoding defaults (generation_config.json), the
    out-of-world calibration (calibration.json); and max_new_tokens within the model's positions."""
    limit = model.max_new_tokens_limit
    gen_file = folder / GENERATION_CONFIG_FILE
    if os.path.lexists(gen_file) and model.info.family == "visiongpt2":
        values = read_generation_config(gen_file)
        try:
            model.default_decoding = decoding_from_generation_config(values, model.default_decoding, limit)
        except ConfigError as e:
            raise ModelLoadError(f"{gen_file}: {e}.") from None
    model.default_decoding = model.default_decoding.within_limit(limit)[0]
    if os.path.lexists(folder / CALIBRATION_FILE) and model.info.family == "visiongpt2":
        model.calibration = read_json_file(folder / CALIBRATION_FILE)
