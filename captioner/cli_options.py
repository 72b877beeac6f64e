"""The options both command lines share, `python -m captioner` and `python -m captioner.batch`: the model
(--model, --dtype) and the decoding settings, one option per setting of DecodingConfig's schema, and the
config they give. No torch here: `--help` and argument errors answer at once."""

from __future__ import annotations

import argparse
from dataclasses import replace

from captioner.config import DECODING_SCHEMA, DecodingConfig

MODEL_HELP = "builtin, a .pt/.safetensors file, a model folder or a hub id (default: resolved automatically)"
SEVERAL_MODELS_HELP = "; give it several times to caption with each model, one row per image and model, and print a leaderboard"
DTYPES = ("float32", "bfloat16")
# Settings that are no options: what a run records (alternatives, attention) is the command's to choose, a
# label names settings for a person, and early stopping comes with the model's generation config.
_NOT_OPTIONS = ("early_stopping", "num_alternatives", "output_attentions", "label")
DECODING_OPTIONS: tuple[str, ...] = tuple(name for name in DECODING_SCHEMA if name not in _NOT_OPTIONS)
_TYPES = {"int": (int, "N"), "float": (float, "X")}


def add_model_options(parser: argparse.ArgumentParser, several: bool = False) -> None:
    """--model (with `several`: repeatable, into a list) and --dtype."""
    group = parser.add_argument_group("model")
    if several:
        group.add_argument("--model", action="append", metavar="SPEC", help=MODEL_HELP + SEVERAL_MODELS_HELP)
    else:
        group.add_argument("--model", default=None, metavar="SPEC", help=MODEL_HELP)
    group.add_argument("--dtype", default="float32", choices=DTYPES, help="the weights' type while captioning (default float32)")


def add_decoding_options(parser: argparse.ArgumentParser) -> None:
    """One option per decoding setting (--num-beams for num_beams), its allowed values as its help."""
    group = parser.add_argument_group(
        "decoding", "Each setting left out is the model's own default (its generation_config.json, else DecodingConfig's)."
    )
    for name in DECODING_OPTIONS:
        spec = DECODING_SCHEMA[name]
        flag = "--" + name.replace("_", "-")
        if spec.kind == "choice":
            group.add_argument(flag, choices=spec.choices, default=None)
        else:  # the schema checks the range, so every message about a value is the same one as the app's
            shown = replace(spec, nullable=False).describe()  # a command line has no way to say none
            kind, metavar = _TYPES[spec.kind]
            group.add_argument(flag, type=kind, metavar=metavar, help=shown)


def decoding_from_args(args: argparse.Namespace, defaults: DecodingConfig) -> DecodingConfig:
    """The model's defaults with every decoding option the user gave, validated (ConfigError names a bad
    setting); attention is not recorded (no command line shows it)."""
    changes = {name: getattr(args, name) for name in DECODING_OPTIONS if getattr(args, name) is not None}
    return defaults.with_(**changes, output_attentions=False).validate()
