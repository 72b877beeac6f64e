"""DecodingConfig.cache_key: one stable string per decoding, the one key caches and batch runs use."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from captioner.config import ConfigError, DecodingConfig

PROPERTY = settings(derandomize=True, deadline=None, max_examples=150)


@st.composite
def valid_configs(draw) -> DecodingConfig:
    """Valid configs that differ in a few settings (beam and sample ones), with any label."""
    strategy = draw(st.sampled_from(["greedy", "beam", "sample"]))
    beams = draw(st.integers(1, 4))
    return DecodingConfig(
        strategy=strategy,
        num_beams=beams,
        num_return_sequences=1 if strategy == "greedy" else draw(st.integers(1, beams)),
        max_new_tokens=draw(st.integers(1, 4)),
        temperature=draw(st.sampled_from([1.0, 0.5, 2.0])),
        seed=draw(st.sampled_from([0, 1, None])),
        num_alternatives=draw(st.integers(0, 2)),
        label=draw(st.text(max_size=3)),
    ).validate()


@PROPERTY
@given(a=valid_configs(), b=valid_configs())
def test_two_configs_have_one_key_exactly_when_they_are_equal(a, b):
    assert (a.cache_key() == b.cache_key()) == (a == b)


@PROPERTY
@given(config=valid_configs(), label=st.text(max_size=8))
def test_the_key_is_the_settings_as_json_without_the_label(config, label):
    key = config.with_(label=label).cache_key()
    assert key == config.cache_key()
    settings_ = json.loads(key)
    assert settings_ == {k: v for k, v in config.to_dict().items() if k != "label"}
    assert list(settings_) == sorted(settings_)  # sorted keys: the same string in every process


def test_numbers_of_other_types_give_the_same_key():
    np = pytest.importorskip("numpy")
    plain = DecodingConfig(strategy="sample", top_k=5, temperature=1)
    assert DecodingConfig(strategy="sample", top_k=np.int64(5), temperature=np.float32(1.0)).cache_key() == plain.cache_key()
    assert '"temperature": 1.0' in plain.cache_key()


def test_leave_out_and_extra_entries():
    config = DecodingConfig(label="mine")
    key = json.loads(config.cache_key(leave_out=("output_attentions", "num_alternatives"), dtype="float32", label="mine"))
    assert key["dtype"] == "float32" and key["label"] == "mine"
    assert "output_attentions" not in key and "num_alternatives" not in key and key["max_new_tokens"] == 20
    with pytest.raises(ValueError, match="num_beams is a setting"):
        config.cache_key(num_beams=3)


def test_an_invalid_config_has_no_key():
    with pytest.raises(ConfigError, match="top_p must be a number above 0"):
        DecodingConfig(top_p=0.0).cache_key()


ZERO_IN_RANGE = ["length_penalty", "min_p", "epsilon_cutoff", "eta_cutoff", "diversity_penalty", "penalty_alpha"]


@PROPERTY
@given(
    name=st.sampled_from(ZERO_IN_RANGE),
    x=st.one_of(st.sampled_from([0.0, -0.0, 5e-324, -5e-324]), st.floats(-0.5, 0.5)),
    y=st.one_of(st.sampled_from([0.0, -0.0]), st.floats(-0.5, 0.5)),
)
def test_equal_float_settings_give_one_key_whatever_their_sign_of_zero(name, x, y):
    # -0.0 == 0.0, so the configs are equal; the key wrote "-0.0" for one and "0.0" for the other (and a
    # batch run's key with --length-penalty -0 differed from one with 0, so resume captioned again).
    low = DecodingConfig.__dataclass_fields__[name].metadata["spec"].low
    a, b = DecodingConfig(**{name: max(x, low)}), DecodingConfig(**{name: max(y, low)})
    assert (a.cache_key() == b.cache_key()) == (a == b)
