"""The train command's options come from TrainConfig's fields (world/options.py), and its reproduce line
gives the same config back."""

from __future__ import annotations

import contextlib
import io
import shlex
from dataclasses import fields

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from captioner.world import train
from captioner.world.options import option

PROPERTY = settings(derandomize=True, deadline=None, max_examples=100)
NAMES = [f.name for f in fields(train.TrainConfig)]
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)


def parsed(line: str):
    """A printed reproduce line read back by the train command's own parser: (TrainConfig, threads)."""
    words = shlex.split(line)
    assert words[:3] == ["python", "-m", "captioner.world.train"]
    args = train.build_parser().parse_args(words[3:])
    return train.TrainConfig(**{name: getattr(args, name) for name in NAMES}), args.threads


def value_of(f):
    """Any value the option takes: of its type, within its rule where it has one."""
    spec = f.metadata.get("spec")
    if isinstance(f.default, bool):
        return st.booleans()
    if isinstance(f.default, int):
        return st.integers(-(10**12) if spec is None else int(spec.low), 10**12)
    if isinstance(f.default, float):
        values = st.floats(allow_nan=False, allow_infinity=False, min_value=spec.low, max_value=spec.high)
        return values.filter(lambda x: spec.above is False or x > spec.low)
    return TEXT


@st.composite
def train_configs(draw):
    """TrainConfigs with any of their fields changed, to any value of its type."""
    changed = {f.name: draw(value_of(f)) for f in fields(train.TrainConfig) if draw(st.booleans())}
    return train.TrainConfig(**changed)


@PROPERTY
@given(cfg=train_configs(), threads=st.integers(1, 64))
def test_the_reproduce_line_gives_the_same_config_back(cfg, threads):
    assert parsed(train.reproduce_command(cfg, threads)) == (cfg, threads)


@settings(derandomize=True, deadline=None, max_examples=30)
@given(
    size=st.sampled_from(["base", "tiny"]),
    width=st.none() | st.sampled_from([32, 64, 96, 160]),
    depth=st.none() | st.integers(1, 6),
)
def test_the_reproduce_line_names_the_models_shape(size, width, depth):
    mc = train.model_from_args(size, width, depth)
    args = train.build_parser().parse_args(shlex.split(train.reproduce_command(train.TrainConfig(), 1, mc))[3:])
    assert train.model_from_args(args.size, args.width, args.depth) == mc
    assert (args.width is None) == (mc.embed_dim == train.model_config(size).embed_dim)


@pytest.mark.parametrize("bad", ["0", "-3", "abc", "1.5"])
def test_a_models_width_or_depth_must_be_a_whole_number_of_at_least_1(bad, capsys):
    with pytest.raises(SystemExit) as e:
        train.build_parser().parse_args(["--width", bad])
    assert e.value.code == 2 and "--width: must be a whole number" in capsys.readouterr().err


def test_the_documented_command_is_its_own_reproduce_line():
    line = (
        "python -m captioner.world.train --threads 1 --steps 6000 --lr 0.0004 --min-lr 2e-05 --train-scenes 40000 "
        "--init-from runs/v7-base/model.safetensors"
    )
    cfg, threads = parsed(line)
    assert (cfg.steps, cfg.lr, cfg.init_from, cfg.varied, cfg.seed) == (6000, 0.0004, "runs/v7-base/model.safetensors", True, 0)
    assert train.reproduce_command(cfg, threads) == line
    assert train.reproduce_command(train.TrainConfig(varied=False, bf16=True), 2).endswith("--threads 2 --plain --bf16")


def test_every_field_is_an_option_with_help(capsys):
    with pytest.raises(SystemExit):
        train.build_parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in NAMES:
        flag = "--plain" if name == "varied" else "--" + name.replace("_", "-")
        assert flag in text, flag
    assert "--grad-clip GRAD_CLIP the gradient norm is clipped to this (a number above 0; default 1.0)" in text


CHECKED = [f for f in fields(train.TrainConfig) if f.metadata.get("spec") is not None and isinstance(f.default, float)]
# Text that parses as a number but breaks a rule: NaN and infinities, and values beyond each field's range.
OUT_OF_RANGE = st.one_of(
    st.sampled_from(["nan", "-nan", "inf", "-inf", "1e309", "-1e-300", "-1"]),
    st.floats(allow_nan=False, allow_infinity=False, max_value=-1e-9).map(repr),
)


@pytest.mark.parametrize("name", ["grad_clip", "weight_decay", "lr", "min_lr", "attn_weight", "outlier_share", "canonical_share"])
def test_the_float_settings_are_checked(name):
    assert name in {f.name for f in CHECKED}


def parse_error(argv: list[str]) -> str:
    """The last line the train command's parser writes for `argv`, which must exit 2."""
    stderr = io.StringIO()
    with pytest.raises(SystemExit) as exit, contextlib.redirect_stderr(stderr):
        train.build_parser().parse_args(argv)
    assert exit.value.code == 2
    return stderr.getvalue().strip().splitlines()[-1]


@PROPERTY
@given(f=st.sampled_from(CHECKED), text=OUT_OF_RANGE)
def test_a_value_that_breaks_a_settings_rule_is_one_line_and_exit_2(f, text):
    # A negative --grad-clip flips every gradient and a NaN --lr ends in NaN weights, both without a word.
    error = parse_error([f"--{f.name.replace('_', '-')}={text}"])
    assert f"{f.name} must be {f.metadata['spec'].describe()}" in error and "Traceback" not in error


@pytest.mark.parametrize("argv", [["--batch-size", "0"], ["--batch-size=-3"], ["--canonical-share", "1.5"]])
def test_a_count_or_share_out_of_range_is_one_line_and_exit_2(argv):
    assert " must be " in parse_error(argv)


def test_a_flag_on_by_default_needs_its_off_flag():
    with pytest.raises(ValueError, match="needs the flag that turns it off"):
        option(True, "on unless told")
