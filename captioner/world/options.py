"""Command-line options declared once, by a dataclass's fields.

A field declared with `option(default, help)` is an option `--field-name` of its default's type (with `spec`,
a `captioner.config.Spec`, its values are checked against that rule when parsed); a bool is a flag: `--field-name` turns on one that is off by default, and `off_flag` names the flag that turns off one
that is on. `add_options` puts them on a parser, `from_args` reads the dataclass back from the parsed
arguments, and `command_line` gives the options that rebuild an instance (those that differ from the defaults).
"""

from __future__ import annotations

import argparse
import shlex
from dataclasses import MISSING, Field, field, fields
from typing import Any, Callable, TypeVar

from captioner.config import ConfigError, Spec

T = TypeVar("T")


def option(default: Any, help: str, off_flag: str | None = None, spec: Spec | None = None) -> Any:
    """A dataclass field that is a command-line option with this help (`off_flag`, `spec`: see the module's docstring)."""
    if isinstance(default, bool) and default and not off_flag:
        raise ValueError("a bool option that is on by default needs the flag that turns it off")
    return field(default=default, metadata={"help": help, "off_flag": off_flag, "spec": spec})


def _value_type(f: Field) -> Callable[[str], Any]:
    """The option's argparse type: its default's type, and the field's rule checked (one line naming the
    rule for a value that breaks it: argparse's exit 2, no traceback)."""
    kind, spec = type(f.default), f.metadata.get("spec")
    if spec is None:
        return kind

    def parse(text: str) -> Any:
        value = kind(text)  # a ValueError: argparse's own "invalid float value"
        try:
            return spec.check(f.name, value)
        except ConfigError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    parse.__name__ = kind.__name__
    return parse


def _flag(f: Field) -> str:
    if isinstance(f.default, bool):
        return f.metadata["off_flag"] if f.default else "--" + f.name.replace("_", "-")
    return "--" + f.name.replace("_", "-")


def _options(cls: type) -> list[Field]:
    chosen = [f for f in fields(cls) if "help" in f.metadata]
    if any(f.default is MISSING for f in chosen):
        raise ValueError(f"{cls.__name__}: every option needs a default")
    return chosen


def add_options(parser: argparse.ArgumentParser | Any, cls: type) -> None:
    """One option per `option` field of `cls`, its default stated in its help."""
    for f in _options(cls):
        if isinstance(f.default, bool):
            action = "store_false" if f.default else "store_true"
            parser.add_argument(_flag(f), dest=f.name, action=action, help=f.metadata["help"])
        else:
            shown = "none" if f.default == "" else f.default
            spec = f.metadata.get("spec")
            text = f"{f.metadata['help']} ({spec.describe() + '; ' if spec else ''}default {shown})"
            parser.add_argument(_flag(f), dest=f.name, type=_value_type(f), default=f.default, help=text)


def from_args(cls: type[T], args: argparse.Namespace) -> T:
    """The dataclass that the parsed options say."""
    return cls(**{f.name: getattr(args, f.name) for f in _options(cls)})


def command_line(config: Any) -> list[str]:
    """The options that give `config` again from the defaults, in field order, each shell-quoted."""
    parts = []
    for f in _options(type(config)):
        value = getattr(config, f.name)
        if value == f.default:
            continue
        if isinstance(f.default, bool):
            parts.append(_flag(f))
        else:  # "--lr=-0.5": a value that starts with a dash would read as an option after a space
            text = str(value)
            parts.append(f"{_flag(f)}{'=' if text.startswith('-') else ' '}{shlex.quote(text)}")
    return parts
