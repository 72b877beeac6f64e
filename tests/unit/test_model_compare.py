"""The Models page's data (captioner/app/model_compare.py) and the app's budget reading (ui/model_budget.py)."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from captioner.app import model_compare
from captioner.app.ui import model_budget
from captioner.loading import load_captioner
from captioner.models.cache import BUDGET_ENV, DEFAULT_BUDGET_BYTES

PROPERTY = settings(derandomize=True, deadline=None, max_examples=80, suppress_health_check=list(HealthCheck))
spec_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@PROPERTY
@given(st.lists(spec_text, max_size=8))
def test_parse_specs_keeps_order_drops_blanks_and_repeats_and_caps_at_four(lines):
    specs, notes = model_compare.parse_specs("\n".join(lines))
    wanted = list(dict.fromkeys(s.strip() for line in lines for s in line.replace(",", "\n").splitlines() if s.strip()))
    assert specs == wanted[: model_compare.MAX_MODELS]
    assert bool(notes) == (len(wanted) > model_compare.MAX_MODELS)


@PROPERTY
@given(
    st.lists(st.from_regex(r"[a-z0-9_./-]{1,20}", fullmatch=True), min_size=2, max_size=4, unique=True),
    st.booleans(),
    st.sampled_from(model_compare.SHARED_STRATEGIES),
    st.integers(2, 8),
    st.integers(1, 64),
)
def test_the_models_pages_settings_survive_a_round_trip_through_the_url(specs, same, strategy, beams, tokens):
    specs = [s for s in specs if s.strip()]
    shared = {"strategy": strategy, "num_beams": beams, "max_new_tokens": tokens}
    params = model_compare.to_params(specs, same, shared)
    as_url = {k: v for k, v in params.items() if k != model_compare.MODELS_PARAM}
    as_url[model_compare.MODELS_PARAM] = params.get(model_compare.MODELS_PARAM, [])
    values, notes = model_compare.from_params(as_url)
    assert notes == []
    assert values.get("specs", "builtin").split("\n") == specs
    assert values.get("same", True) is same
    if same:
        restored = {**model_compare.SHARED_DEFAULTS, **{k: v for k, v in values.items() if k in shared}}
        assert restored == shared


def test_url_values_out_of_range_or_unknown_are_fitted_with_notes():
    values, notes = model_compare.from_params(
        {
            "models": ["a", "b", "c", "d", "e"],
            "model_settings": "mine",
            "models_strategy": "sample",
            "models_beams": "99",
            "models_tokens": "x",
        }
    )
    assert values["specs"] == "a\nb\nc\nd" and values["same"] is True and values["num_beams"] == model_compare.SHARED_RANGES[0].hi
    assert "strategy" not in values and "max_new_tokens" not in values
    assert len(notes) == 5


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("256", 256_000_000),
        (" 1.5 ", 1_500_000),
        ("0", None),
        ("-3", None),
        ("inf", None),
        ("nan", None),
        ("lots", None),
        (True, None),
        (512, 512_000_000),
    ],
)
def test_a_budget_in_megabytes_is_read_or_refused(raw, expected):
    assert model_budget.budget_from_megabytes(raw) == expected


def test_budget_comes_from_the_environment_without_a_secret(monkeypatch):
    monkeypatch.setenv(BUDGET_ENV, "123")
    assert model_budget.budget_bytes() == 123_000_000
    monkeypatch.delenv(BUDGET_ENV)
    assert model_budget.budget_bytes() == DEFAULT_BUDGET_BYTES


def test_budget_secret_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv(BUDGET_ENV, "123")
    monkeypatch.setattr(model_budget.st, "secrets", {model_budget.SECRET: 77})
    assert model_budget.budget_bytes() == 77_000_000
    monkeypatch.setattr(model_budget.st, "secrets", {model_budget.SECRET: "none"})  # unusable: the next source
    assert model_budget.budget_bytes() == 123_000_000


def test_shared_settings_are_cut_to_each_models_limit_and_own_defaults_are_the_models():
    model = load_captioner("builtin")
    limit = model.max_new_tokens_limit
    config, notes = model_compare.config_for(model, {"strategy": "beam", "num_beams": 4, "max_new_tokens": limit + 10})
    assert (config.strategy, config.num_beams, config.max_new_tokens) == ("beam", 4, min(limit, 64))
    assert notes == ([f"Holds at most {limit} tokens: decoded with {limit}, not {limit + 10}."] if limit < 64 else [])
    own, notes = model_compare.config_for(model, None)
    assert own.strategy == model.default_decoding.strategy and own.num_beams == model.default_decoding.num_beams
    assert own.num_return_sequences == 1 and not own.output_attentions and notes == []


def test_summary_table_and_record_hold_each_model_or_its_error():
    from PIL import Image

    from captioner.decoding import decode, encode_image

    model = load_captioner("builtin")
    config, _ = model_compare.config_for(model, model_compare.SHARED_DEFAULTS)
    result = decode(model, encode_image(model, Image.new("RGB", (64, 64), "white")), [config])[0]
    outcomes = [
        model_compare.ModelOutcome("builtin", model.info, result),
        model_compare.ModelOutcome("/no/such.pt", error="Could not load /no/such.pt: no such file."),
    ]
    table = model_compare.summary_table(outcomes)
    assert list(table["model"]) == ["builtin", "/no/such.pt"]
    assert table["confidence"][0] == round(result.best.confidence, 3) and math.isnan(table["confidence"][1])
    assert table["error"][1].startswith("Could not load") and table["error"][0] == ""
    assert table["out of world"][0] == ("yes" if result.best.out_of_world else "no")
    record = model_compare.comparison_record(outcomes, "white.png", same_settings=True)
    assert record["models"][0]["caption"] == result.best.text and "error" in record["models"][1]
    assert model_compare.summary_table(outcomes[:1]).columns.tolist()[-1] == "out of world"  # no error column


def test_the_default_model_is_named_as_such_not_as_a_missing_path():
    from captioner.app.model_compare import kind_name

    assert kind_name("default") == "the default model" and kind_name("builtin") == "built-in"
