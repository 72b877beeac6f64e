"""The options both command lines share (captioner.cli_options): the same model and decoding options, from
DecodingConfig's schema, giving the same config and the same messages."""

from __future__ import annotations

import pytest

from captioner import __main__ as cli
from captioner.batch import __main__ as batch_cli
from captioner.cli_options import DECODING_OPTIONS, decoding_from_args
from captioner.config import DECODING_SCHEMA, ConfigError, DecodingConfig

PARSERS = {"cli": (cli.build_parser, ["x.png"]), "batch": (batch_cli.build_parser, ["x/", "--out", "c.csv"])}


def parse(which: str, *options: str):
    build, needed = PARSERS[which]
    return build().parse_args([*needed, *options])


def option_flags(parser) -> set[str]:
    return {flag for action in parser._actions for flag in action.option_strings}


def test_every_decoding_setting_a_user_chooses_is_an_option_of_both_commands():
    assert set(DECODING_OPTIONS) == set(DECODING_SCHEMA) - {"early_stopping", "num_alternatives", "output_attentions", "label"}
    for build, _ in PARSERS.values():
        flags = option_flags(build())
        assert {"--model", "--dtype", *("--" + n.replace("_", "-") for n in DECODING_OPTIONS)} <= flags


@pytest.mark.parametrize(
    "options",
    [
        ["--strategy", "beam", "--num-beams", "3", "--length-penalty", "0.5"],
        ["--strategy", "sample", "--top-p", "0.9", "--temperature", "0.7", "--seed", "18446744073709551615"],
        ["--max-new-tokens", "7", "--dtype", "bfloat16", "--model", "builtin"],
    ],
)
def test_both_commands_read_the_same_options_into_the_same_config(options):
    a, b = parse("cli", *options), parse("batch", *options)
    assert decoding_from_args(a, DecodingConfig()) == decoding_from_args(b, DecodingConfig())
    assert a.dtype == b.dtype and (a.model, b.model) in ((None, None), ("builtin", ["builtin"]))  # batch: repeatable


def test_options_left_out_keep_the_models_defaults():
    defaults = DecodingConfig(strategy="beam", num_beams=5, max_new_tokens=11)
    config = decoding_from_args(parse("batch", "--num-beams", "3"), defaults)
    assert (config.strategy, config.num_beams, config.max_new_tokens, config.output_attentions) == ("beam", 3, 11, False)


def test_a_bad_value_is_the_schemas_message():
    with pytest.raises(ConfigError, match="num_beams must be a whole number from 1 to 16, not 0"):
        decoding_from_args(parse("cli", "--num-beams", "0"), DecodingConfig())


@pytest.mark.parametrize("which", sorted(PARSERS))
def test_help_gives_each_settings_range(which, capsys):
    with pytest.raises(SystemExit) as exited:
        PARSERS[which][0]().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert exited.value.code == 0
    assert "--num-beams N a whole number from 1 to 16" in text and "--top-p X a number above 0 and at most 1" in text
    assert "--seed N a whole number from 0 to 18446744073709551615" in text and "(or none)" not in text
    assert "the model's own default (its generation_config.json" in text


def test_a_value_of_the_wrong_type_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        parse("batch", "--top-k", "many")
    assert exited.value.code == 2 and "argument --top-k: invalid int value: 'many'" in capsys.readouterr().err
