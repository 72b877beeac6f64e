"""The app's control tables and their URL form (captioner/app/settings.py), tried beyond their ends.

Property-based: whatever a link carries (numbers far outside a range, text, infinities, nonsense
JSON), what comes out is a value the widget accepts and a config the engine accepts.
"""

from __future__ import annotations

from hypothesis import given, settings as hsettings, strategies as st

from captioner.app import compare_links, settings
from captioner.config import MAX_NEW_TOKENS, STRATEGIES, DecodingConfig

ALL_RANGES = settings.DECODING_RANGES + settings.COMPARE_RANGES + (settings.OPACITY,)
model_limits = st.integers(min_value=1, max_value=5000)
url_text = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.text(max_size=12),
    st.sampled_from(["1e309", "-inf", "nan", "0x10", " 3 ", "", "1_000", "٣"]),
)


@given(st.sampled_from(ALL_RANGES), st.floats(allow_nan=False, allow_infinity=False, width=64))
def test_snap_always_lands_on_the_widgets_grid(r, value):
    snapped = r.snap(value)
    assert r.lo <= snapped <= r.hi and r.fits(snapped)
    assert isinstance(snapped, int) == r.is_int
    if r.lo <= value <= r.hi:
        assert abs(snapped - value) <= r.step / 2 + 1e-9


@given(
    model_limits,
    st.dictionaries(
        st.sampled_from([r.url_name for r in settings.DECODING_RANGES] + ["strategy", "other"]), url_text, max_size=12
    ),
)
@hsettings(max_examples=300, deadline=None)
def test_any_link_gives_settings_the_engine_accepts(limit, params):
    ranges = settings.decoding_ranges(limit)
    values, notes = settings.from_params(params, ranges)
    strategy, more = settings.strategy_from_params(params)
    for r in ranges:
        if r.name in values:
            assert r.fits(values[r.name])
    assert values.get("max_new_tokens", 1) <= min(limit, MAX_NEW_TOKENS)
    config = settings.config_with(DecodingConfig(), {**values, **({"strategy": strategy} if strategy else {})})
    config.validate()
    changed = [k for k, raw in params.items() if k in values and not _same_number(raw, values[k])]
    assert len(notes) >= len(changed)  # every value that was changed or ignored is said
    assert (strategy is None) == (params.get("strategy") not in STRATEGIES)
    assert bool(more) == ("strategy" in params and params["strategy"] not in STRATEGIES)


def _same_number(raw: str, value: float) -> bool:
    try:
        return float(raw) == value
    except ValueError:
        return False


@given(
    model_limits,
    st.fixed_dictionaries({r.name: st.floats(-1e6, 1e6) for r in settings.DECODING_RANGES}),
    st.sampled_from(STRATEGIES),
)
@hsettings(max_examples=200, deadline=None)
def test_values_survive_a_round_trip_through_the_url(limit, raw, strategy):
    ranges = settings.decoding_ranges(limit)
    values = {r.name: r.snap(raw[r.name]) for r in ranges}
    values["strategy"] = strategy
    defaults = settings.decoding_defaults(DecodingConfig(), limit)
    params = settings.to_params(values, defaults, ranges, choices=("strategy",))
    back, notes = settings.from_params(params, ranges)
    assert not notes
    restored = {**defaults, **back, **({"strategy": params["strategy"]} if "strategy" in params else {})}
    assert restored == values
    assert all(k in {r.url_name for r in ranges} | {"strategy"} for k in params)


@given(model_limits)
def test_model_defaults_always_fit(limit):
    for config in (
        DecodingConfig(),
        DecodingConfig(max_new_tokens=MAX_NEW_TOKENS, num_beams=16, top_k=10**6, temperature=50.0, seed=None, top_p=1e-9),
    ):
        defaults = settings.decoding_defaults(config, limit)
        for r in settings.decoding_ranges(limit, config):
            assert r.fits(defaults[r.name])
        assert defaults["max_new_tokens"] <= limit


def test_max_new_tokens_follows_the_model_and_the_app_cap():
    assert settings.decoding_ranges(31)[0].hi == 31
    assert settings.decoding_ranges(1023)[0].hi == MAX_NEW_TOKENS
    assert settings.token_limit(0) == 1


@given(st.text(max_size=80), model_limits)
@hsettings(max_examples=200, deadline=None)
def test_added_configuration_from_any_url_value(raw, limit):
    defaults = settings.decoding_defaults(DecodingConfig(), limit)
    record, notes = compare_links.added_from_param(raw, defaults, limit)
    if record is None:
        assert notes
        return
    config = settings.config_with(DecodingConfig(), settings.snap_all(record, settings.decoding_ranges(limit), defaults))
    config.validate()


def test_added_configuration_round_trip():
    defaults = settings.decoding_defaults(DecodingConfig(), 31)
    values = {**defaults, "strategy": "beam", "num_beams": 3, "max_new_tokens": 31}
    raw = compare_links.added_to_param("careful beam", values, defaults)
    assert "max_new_tokens" in raw and "top_k" not in raw  # only what differs
    record, notes = compare_links.added_from_param(raw, defaults, 20)  # a model that holds fewer tokens
    assert record["label"] == "careful beam" and record["num_beams"] == 3 and record["strategy"] == "beam"
    assert record["max_new_tokens"] == 20 and notes and "max_new_tokens=31" in notes[0]
    assert compare_links.added_from_param("[1, 2]", defaults, 20)[0] is None


def test_compare_defaults_follow_the_model():
    assert settings.compare_defaults(DecodingConfig(num_beams=1))["beams"] == 2
    assert settings.compare_defaults(DecodingConfig(num_beams=40))["beams"] == 16
    assert {k: settings.compare_defaults(DecodingConfig())[k] for k in ("samples", "top_k", "top_p")} == settings.COMPARE_DEFAULTS


@given(st.text(max_size=6), st.text(max_size=6), st.integers(1, 24), st.integers(1, 24))
def test_layer_and_head_from_any_link(layer, head, layers, heads):
    values, notes = settings.attention_from_params({"layer": layer, "head": head}, {"layer": layers, "head": heads})
    for kind, count, named in (
        ("layer", layers, (settings.LAYER_MEAN,)),
        ("head", heads, (settings.HEAD_MEAN, settings.HEAD_MAX)),
    ):
        if kind in values:
            assert values[kind] in named or 0 <= values[kind] < count
    assert len(values) + len(notes) == sum(bool(v) for v in (layer, head))


def test_layer_and_head_round_trip():
    for layer, head in ((settings.LAYER_MEAN, settings.HEAD_MAX), (2, 0), (0, settings.HEAD_MEAN)):
        params = settings.attention_to_params({"layer": layer, "head": head})
        back, notes = settings.attention_from_params(params, {"layer": 3, "head": 4})
        assert not notes and {**settings.ATTENTION_DEFAULTS, **back} == {"layer": layer, "head": head}
    assert settings.attention_to_params({"layer": 1, "head": settings.HEAD_MAX}) == {"layer": "2", "head": "max"}


def test_only_ascii_whole_numbers_are_read_as_numbers():
    assert [settings.whole_number(s) for s in ("12", "0", "²", "-1", "1e3", "", " 3", "٣")] == [
        12,
        0,
        None,
        None,
        None,
        None,
        None,
        None,
    ]


@given(
    model_limits,
    st.integers(0, 128),
    st.integers(0, 10**6),
    st.floats(0.05, 50),
    st.floats(0.5, 3.0),
    st.integers(0, 2**64 - 1),
    st.integers(0, 60_000),
)
@hsettings(max_examples=200, deadline=None)
def test_every_range_contains_the_models_own_setting(limit, ngram, top_k, temperature, penalty, seed, vocab):
    config = DecodingConfig(
        no_repeat_ngram_size=ngram, top_k=top_k, temperature=temperature, repetition_penalty=penalty, seed=seed
    )
    defaults = settings.decoding_defaults(config, limit, vocab)
    for r in settings.decoding_ranges(limit, config, vocab):
        if r.name != "max_new_tokens":  # that one ends at what the model holds
            assert defaults[r.name] == settings.Range.snap(r, getattr(config, r.name)) and r.fits(defaults[r.name])
    assert defaults["no_repeat_ngram_size"] == ngram and defaults["seed"] == seed and defaults["top_k"] == top_k


def test_builtin_models_own_no_repeat_size_is_on_the_slider():
    config = DecodingConfig(no_repeat_ngram_size=10)
    ngram = {r.name: r for r in settings.decoding_ranges(31, config)}["no_repeat_ngram_size"]
    assert ngram.hi >= 10 and settings.decoding_defaults(config, 31)["no_repeat_ngram_size"] == 10


def test_top_k_ends_at_the_models_vocabulary():
    assert {r.name: r for r in settings.decoding_ranges(31, vocab_size=38)}["top_k"].hi == 38
    assert {r.name: r for r in settings.compare_ranges(38)}["top_k"].hi == 38
    assert {r.name: r for r in settings.compare_ranges(50257)}["top_k"].hi == settings.TOP_K_MAX
    assert settings.compare_defaults(DecodingConfig(), 38)["top_k"] == 38


@given(st.integers(0, 2**64 - 1))
@hsettings(max_examples=100)
def test_seeds_up_to_2_to_the_64_survive_a_link(seed):
    ranges = settings.decoding_ranges(31)
    back, notes = settings.from_params({"seed": str(seed)}, ranges)
    assert back["seed"] == seed and not notes
    assert settings.SEED_MAX == 2**64 - 1
