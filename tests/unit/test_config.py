"""captioner.config: one validation of decoding settings, the typed schema of config files, generation defaults.

The Hypothesis tests draw every decoding setting and every config field from inside, at and far beyond
its range, in every type, and assert the one property that matters to a user: a caption or a clear
one-line error naming the setting, never another exception, never a number that is not finite.
"""

from __future__ import annotations

import json
import math
from dataclasses import fields

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from captioner.config import (
    DECODING_SCHEMA,
    GENERATION_SCHEMA,
    MAX_NEW_TOKENS,
    STRATEGIES,
    VISIONGPT2_SCHEMA,
    ConfigError,
    DecodingConfig,
    VisionGPT2Config,
    decoding_from_generation_config,
)

PROPERTY = settings(derandomize=True, deadline=None, max_examples=120, suppress_health_check=[HealthCheck.too_slow])

# Values that break something somewhere: non-numbers, non-finite, huge, tiny, negative, wrong types.
JUNK = st.one_of(
    st.sampled_from(
        [
            float("nan"),
            float("inf"),
            -float("inf"),
            1e308,
            -1e308,
            1e-40,
            -1e-40,
            0.0,
            -0.0,
            2**64,
            2**64 - 1,
            -(2**63),
            2**63,
            -1,
            0,
            1,
            True,
            False,
            None,
            "",
            "4",
            "nan",
            [],
            {},
            [1, 2],
        ]
    ),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
)


def in_range(name: str):
    """Values a user may really pick: inside the setting's range and at its ends."""
    spec = DECODING_SCHEMA[name]
    if spec.kind == "int":
        return st.integers(int(spec.low), int(min(spec.high, 64)))
    if spec.kind == "float":
        return st.floats(spec.low, spec.high, exclude_min=spec.above)
    if spec.kind == "choice":
        return st.sampled_from(spec.choices)
    return st.booleans() if spec.kind == "bool" else st.text(max_size=5)


SETTINGS = [f.name for f in fields(DecodingConfig)]


@st.composite
def decoding_settings(draw):
    """Every setting in its range, at its ends or left at its default; in half the draws one of them junk."""
    values = {name: draw(in_range(name)) for name in SETTINGS if draw(st.booleans())}
    if draw(st.booleans()):
        values[draw(st.sampled_from(SETTINGS))] = draw(JUNK)
    return values


def all_finite(caption) -> bool:
    numbers = [
        caption.score,
        caption.logprob,
        caption.confidence,
        *caption.token_probs,
        *caption.processed_probs,
        *caption.entropies,
        *(p for alts in caption.alternatives for _, _, p in alts),
    ]
    return all(isinstance(x, float) and math.isfinite(x) for x in numbers)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from captioner.loading import load_captioner
    from tests.tiny_models import make_gpt2_visiongpt2_dir

    return load_captioner(str(make_gpt2_visiongpt2_dir(tmp_path_factory.mktemp("gpt2-tiny"))))


@pytest.mark.slow  # ~40 s: 120 draws, each decoded up to the model's 39 positions
@PROPERTY
@given(values=decoding_settings())
def test_any_decoding_settings_give_a_caption_or_a_clear_error(tiny_model, values):
    """Validation as the CLI and the app run it (validate, then fit the model's positions), then decoding."""
    from captioner.__main__ import json_line
    from captioner.decoding import caption_image

    try:
        config = DecodingConfig(**values).validate()
    except ConfigError as e:
        message = str(e)
        assert "\n" not in message and message.startswith("Invalid decoding settings: ")
        assert e.field in SETTINGS and e.field in message
        return
    config, _ = config.within_limit(tiny_model.max_new_tokens_limit)
    result = caption_image(tiny_model, Image.new("RGB", (32, 32), (200, 40, 40)), [config])[0]
    assert 1 <= len(result.captions) <= config.num_return_sequences
    for caption in result.captions:
        assert isinstance(caption.text, str) and 1 <= len(caption.token_ids) <= config.max_new_tokens
        assert all_finite(caption), caption
    json.loads(json_line({"caption": result.best.to_dict()}))  # strict JSON: no NaN can hide in it


@PROPERTY
@given(values=decoding_settings())
def test_validation_only_raises_config_error_naming_the_setting(values):
    try:
        config = DecodingConfig(**values).validate()
    except ConfigError as e:
        assert e.field in str(e) and "\n" not in str(e)
        return
    for name, spec in DECODING_SCHEMA.items():
        assert spec.check(name, getattr(config, name)) == getattr(config, name)
    assert type(config.max_new_tokens) is int and type(config.temperature) is float


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"temperature": float("nan")}, "temperature must be a number from 0.01 to 100, not nan"),
        ({"temperature": 1e-40}, "temperature must be a number from 0.01 to 100, not 1e-40"),
        ({"repetition_penalty": float("nan")}, "repetition_penalty must be a number from 0.01 to 100"),
        ({"length_penalty": -8, "strategy": "beam"}, "length_penalty must be a number from -2 to 3, not -8"),
        ({"length_penalty": 1e308, "strategy": "beam"}, "length_penalty must be a number from -2 to 3, not 1e+308"),
        ({"seed": 2**64}, "seed must be a whole number from 0 to 18446744073709551615 (or none), not 18446744073709551616"),
        ({"seed": -1}, "seed must be a whole number from 0"),
        ({"max_new_tokens": 5000}, f"max_new_tokens must be a whole number from 1 to {MAX_NEW_TOKENS}"),
        ({"max_new_tokens": 3.0}, "max_new_tokens must be a whole number"),
        ({"num_beams": True, "strategy": "beam"}, "num_beams must be a whole number from 1 to 16, not true"),
        ({"top_p": 0.0}, "top_p must be a number above 0 and at most 1, not 0"),
        (
            {"strategy": "nucleus"},
            "strategy must be one of 'greedy', 'beam', 'sample', 'group_beam', 'contrastive', not 'nucleus'",
        ),
        ({"early_stopping": 1}, "early_stopping must be one of true, false, 'never', not 1"),
        ({"min_new_tokens": 9, "max_new_tokens": 5}, "min_new_tokens must be at most max_new_tokens (5)"),
        ({"strategy": "beam", "num_beams": 2, "num_return_sequences": 3}, "num_return_sequences must be at most num_beams (2)"),
        ({"num_return_sequences": 2}, "num_return_sequences must be 1 with greedy decoding"),
    ],
)
def test_each_bad_setting_is_named_with_its_range(changes, message):
    with pytest.raises(ConfigError) as caught:
        DecodingConfig(**changes).validate()
    assert message in str(caught.value) and "\n" not in str(caught.value)
    assert caught.value.field in changes


def test_validation_returns_plain_numbers():
    np = pytest.importorskip("numpy")
    config = DecodingConfig(
        strategy="sample", top_k=np.int64(5), temperature=np.float32(0.5), seed=np.uint64(2**64 - 1)
    ).validate()
    assert (type(config.top_k), type(config.temperature), type(config.seed)) == (int, float, int)
    assert config.seed == 2**64 - 1


def test_within_limit_clamps_with_one_notice():
    config, notice = DecodingConfig(max_new_tokens=64, min_new_tokens=40).within_limit(31)
    assert (config.max_new_tokens, config.min_new_tokens) == (31, 31)
    assert notice == "max_new_tokens 64 is more than the model holds after its start token (31); using 31."
    assert DecodingConfig(max_new_tokens=20).within_limit(31) == (DecodingConfig(max_new_tokens=20), None)


# -- generation_config.json -----------------------------------------------------------------------
def saved_generation_config(tmp_path, **values) -> dict:
    """A generation_config.json as transformers writes it, read back as JSON."""
    from transformers import GenerationConfig

    GenerationConfig(**values).save_pretrained(str(tmp_path))
    return json.loads((tmp_path / "generation_config.json").read_text())


def test_generation_config_as_transformers_saves_it(tmp_path):
    values = saved_generation_config(
        tmp_path,
        max_length=16,
        num_beams=4,
        no_repeat_ngram_size=3,
        length_penalty=0.8,
        early_stopping=True,
        decoder_start_token_id=50256,
    )
    assert "transformers_version" in values
    config = decoding_from_generation_config(values)
    assert (config.strategy, config.num_beams, config.max_new_tokens) == ("beam", 4, 15)  # max_length counts the start token
    assert (config.no_repeat_ngram_size, config.length_penalty, config.early_stopping) == (3, 0.8, True)


def test_generation_config_sampling_and_limits(tmp_path):
    values = saved_generation_config(tmp_path, do_sample=True, top_p=0.9, temperature=0.7, max_new_tokens=500, num_beams=40)
    config = decoding_from_generation_config(values, max_new_tokens_limit=31)
    assert (config.strategy, config.top_p, config.temperature) == ("sample", 0.9, 0.7)
    assert config.top_k == 50  # transformers' own default when sampling
    assert config.max_new_tokens == 31  # the model's positions
    greedy = decoding_from_generation_config({"max_length": 1}, base=DecodingConfig(max_new_tokens=7))
    assert (greedy.strategy, greedy.max_new_tokens) == ("greedy", 1)
    assert decoding_from_generation_config({}, base=DecodingConfig(max_new_tokens=7)).max_new_tokens == 7


@PROPERTY
@given(
    values=st.dictionaries(
        st.sampled_from(sorted(GENERATION_SCHEMA)), st.one_of(JUNK, st.integers(0, 64), st.floats(0, 2)), max_size=6
    )
)
def test_any_generation_config_gives_valid_defaults_or_names_the_field(values):
    try:
        config = decoding_from_generation_config(values, max_new_tokens_limit=31)
    except ConfigError as e:
        assert e.field in GENERATION_SCHEMA and e.field in str(e) and "\n" not in str(e)
        return
    assert config.validate() == config and config.max_new_tokens <= 31


# -- VisionGPT2 config.json --------------------------------------------------------------------
@PROPERTY
@given(
    values=st.dictionaries(
        st.sampled_from(sorted(VISIONGPT2_SCHEMA)),
        st.one_of(JUNK, st.integers(0, 4096), st.lists(st.floats(), max_size=4)),
        max_size=6,
    )
)
def test_any_config_fields_build_a_config_or_name_the_field(values):
    try:
        config = VisionGPT2Config.from_dict(values)
    except ConfigError as e:
        assert e.field in VISIONGPT2_SCHEMA and e.field in str(e) and "\n" not in str(e)
        return
    assert config.embed_dim % config.num_heads == 0 and config.image_size % config.patch_size == 0
    assert all(math.isfinite(x) for x in (*config.image_mean, *config.image_std))


def test_config_dict_round_trip_ignores_unknown_keys():
    config = VisionGPT2Config(
        vocab_size=62,
        embed_dim=32,
        num_heads=4,
        depth=2,
        seq_len=40,
        image_size=32,
        patch_size=8,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
    )
    assert VisionGPT2Config.from_dict({**config.to_dict(), "architecture": "VisionGPT2", "extra": {"x": 1}}) == config


def test_strategies_are_the_schema_choices():
    assert DECODING_SCHEMA["strategy"].choices == STRATEGIES


# -- config files through the loader, end to end ------------------------------------------------
LOADER_PROPERTY = settings(
    derandomize=True,
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def field_values(schema):
    """For each field: junk, or a plausible value of its kind (whole numbers near the tiny models' sizes)."""
    plausible = st.one_of(st.integers(0, 80), st.floats(-2, 2), st.lists(st.floats(-2, 2), min_size=3, max_size=3))
    return st.dictionaries(st.sampled_from(sorted(schema)), st.one_of(JUNK, plausible), max_size=4)


def caption_or_one_line(spec: str) -> None:
    """Load `spec`: a ModelLoadError of one line, or a model whose caption has only finite numbers."""
    from captioner.decoding import caption_image
    from captioner.loading import ModelLoadError, load_captioner

    try:
        model = load_captioner(spec)
    except ModelLoadError as e:
        assert "\n" not in str(e) and len(str(e)) < 600, str(e)
        return
    config, _ = model.default_decoding.with_(max_new_tokens=6).within_limit(model.max_new_tokens_limit)
    caption = caption_image(model, Image.new("RGB", (40, 30), (20, 90, 200)), [config])[0].best
    assert caption.token_ids and all_finite(caption)


@pytest.mark.slow
@LOADER_PROPERTY
@given(values=field_values(VISIONGPT2_SCHEMA))
def test_any_visiongpt2_config_json_loads_or_says_which_field(tmp_path_factory, values):
    from tests.tiny_models import make_gpt2_visiongpt2_dir

    folder = tmp_path_factory.mktemp("cfg")
    make_gpt2_visiongpt2_dir(folder)
    (folder / "config.json").write_text(json.dumps(values))
    caption_or_one_line(str(folder / "captioner.pt"))


@pytest.mark.slow
@LOADER_PROPERTY
@given(
    encoder=field_values(
        {
            "hidden_size": 0,
            "num_hidden_layers": 0,
            "num_attention_heads": 0,
            "intermediate_size": 0,
            "image_size": 0,
            "patch_size": 0,
            "num_channels": 0,
        }
    ),
    decoder=field_values({"n_layer": 0, "n_head": 0, "n_embd": 0, "n_positions": 0, "vocab_size": 0, "n_inner": 0}),
    preprocessor=field_values({"size": 0, "do_resize": 0, "image_mean": 0, "image_std": 0, "rescale_factor": 0}),
)
def test_any_hugging_face_config_loads_or_says_which_field(tiny_hf_dir, tmp_path_factory, encoder, decoder, preprocessor):
    import shutil

    folder = tmp_path_factory.mktemp("hf")
    shutil.copytree(tiny_hf_dir, folder, dirs_exist_ok=True)
    for file, part, values in (
        ("config.json", "encoder", encoder),
        ("config.json", "decoder", decoder),
        ("preprocessor_config.json", None, preprocessor),
    ):
        config = json.loads((folder / file).read_text())
        (config[part] if part else config).update(values)
        (folder / file).write_text(json.dumps(config))
    caption_or_one_line(str(folder))


def test_every_field_declares_its_rule_beside_its_default():
    """The schemas are read from the fields (config.schema.checked): a new field cannot miss its rule."""
    assert list(DECODING_SCHEMA) == [f.name for f in fields(DecodingConfig)]
    assert list(VISIONGPT2_SCHEMA) == ["architecture", *(f.name for f in fields(VisionGPT2Config))]
    assert DECODING_SCHEMA["max_new_tokens"].high == MAX_NEW_TOKENS
    assert [f.name for f in fields(DecodingConfig) if not f.compare] == ["label"]
