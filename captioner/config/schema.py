"""The typed schema every value from outside goes through (a config.json, a generation_config.json,
command-line options, sliders): each field has a type and a range, and the first field that breaks its
rule is named in a `ConfigError` with one line for a person.

A dataclass declares a field's rule beside its default with `checked(default, Spec(...))`; `schema_of`
reads the rules back, so a field and its rule are written once.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, fields
from typing import Any, Literal, Mapping


class ConfigError(ValueError):
    """A setting or a config-file field of the wrong type or out of range. `field` names it."""

    def __init__(self, field_name: str, message: str):
        super().__init__(message)
        self.field = field_name


@dataclass(frozen=True)
class Spec:
    """The rule for one field: its type, its range (inclusive unless `above`), whether null is allowed."""

    kind: Literal["int", "float", "bool", "str", "floats", "choice"]
    low: float | None = None
    high: float | None = None
    above: bool = False  # the low end itself is excluded
    length: int | None = None  # "floats": how many numbers
    choices: tuple[Any, ...] = ()  # "choice": the allowed values
    nullable: bool = False

    def describe(self) -> str:
        """The allowed values in words, e.g. "a whole number from 1 to 16"."""
        if self.kind == "choice":
            return "one of " + ", ".join(_show(c) for c in self.choices)
        if self.kind in ("bool", "str"):
            return {"bool": "true or false", "str": "a string"}[self.kind]
        noun = {"int": "a whole number", "float": "a number", "floats": f"a list of {self.length} numbers"}[self.kind]
        text = noun + _range_text(self.low, self.high, self.above)
        return text + (" (or none)" if self.nullable else "")

    def check(self, name: str, value: Any) -> Any:
        """`value` if it follows the rule (ints as int, floats as float), else ConfigError naming `name`."""
        if value is None and self.nullable:
            return None
        checked = _CHECKS[self.kind](self, value)
        if checked is _INVALID:
            raise ConfigError(name, f"{name} must be {self.describe()}, not {_show(value)}")
        return checked


_INVALID = object()


def _range_text(low: float | None, high: float | None, above: bool) -> str:
    if low is not None and high is not None:
        return f" above {_show(low)} and at most {_show(high)}" if above else f" from {_show(low)} to {_show(high)}"
    if low is not None:
        return f" above {_show(low)}" if above else f" of at least {_show(low)}"
    return f" of at most {_show(high)}" if high is not None else ""


def _in_range(spec: Spec, x: float) -> bool:
    low_ok = spec.low is None or (x > spec.low if spec.above else x >= spec.low)
    return low_ok and (spec.high is None or x <= spec.high)


def _check_int(spec: Spec, value: Any) -> Any:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        return _INVALID  # numpy integers pass; floats, even 3.0, do not
    value = int(value)
    return value if _in_range(spec, value) else _INVALID


def _check_float(spec: Spec, value: Any) -> Any:
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return _INVALID
    try:
        x = float(value)
    except OverflowError:  # an int beyond float's range
        return _INVALID
    # + 0.0 turns -0.0 into 0.0: the two are equal, so a config's key (its settings as JSON) must not tell them apart
    return x + 0.0 if math.isfinite(x) and _in_range(spec, x) else _INVALID


def _check_floats(spec: Spec, value: Any) -> Any:
    if not isinstance(value, (list, tuple)) or len(value) != spec.length:
        return _INVALID
    items = [_check_float(spec, v) for v in value]
    return _INVALID if any(v is _INVALID for v in items) else tuple(items)


_CHECKS = {
    "int": _check_int,
    "float": _check_float,
    "floats": _check_floats,
    "bool": lambda spec, v: v if isinstance(v, bool) else _INVALID,
    "str": lambda spec, v: v if isinstance(v, str) else _INVALID,
    "choice": lambda spec, v: v if any(v is c or (type(v) is type(c) and v == c) for c in spec.choices) else _INVALID,
}


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, str):
        return repr(value[:40] + ("…" if len(value) > 40 else ""))
    if (
        isinstance(value, (list, tuple))
        and len(value) <= 4
        and all(isinstance(v, (int, float, str, bool)) or v is None for v in value)
    ):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    if isinstance(value, (dict, list, tuple)):
        return f"a {'list' if isinstance(value, (list, tuple)) else 'mapping'} of {len(value)} items"
    text = repr(value) if value is not None else "none"
    return text if len(text) <= 40 else text[:40] + "…"


def read_fields(values: Mapping[str, Any], schema: Mapping[str, Spec]) -> dict[str, Any]:
    """The fields of `values` that `schema` knows, each checked (ConfigError on the first bad one)."""
    return {name: spec.check(name, values[name]) for name, spec in schema.items() if name in values}


def checked(default: Any, spec: Spec, **options: Any) -> Any:
    """A dataclass field with this default whose values follow `spec` (`options`: dataclasses.field's)."""
    return field(default=default, metadata={"spec": spec}, **options)


def schema_of(cls: type) -> dict[str, Spec]:
    """The rules of a dataclass's `checked` fields, by name, in their order."""
    return {f.name: f.metadata["spec"] for f in fields(cls) if "spec" in f.metadata}
