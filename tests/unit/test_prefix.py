"""A forced prefix: kept verbatim, then the model's own distribution; the greedy caption forced token by
token is the greedy caption; prefixes a model cannot take are refused with one line."""

from __future__ import annotations

import functools
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from captioner.config import DecodingConfig
from captioner.decoding import PrefixError, caption_image, decode, encode_image
from captioner.loading import load_captioner
from tests.reference import full_forward
from tests.tiny_models import WORDS
from tests.unit.engine_helpers import image

STRATEGIES = [
    DecodingConfig(max_new_tokens=10),
    DecodingConfig(strategy="beam", num_beams=3, max_new_tokens=10, num_return_sequences=2),
    DecodingConfig(strategy="sample", seed=4, num_return_sequences=3, max_new_tokens=10, top_p=0.9),
    DecodingConfig(strategy="group_beam", num_beams=4, num_beam_groups=2, max_new_tokens=10),
    DecodingConfig(strategy="contrastive", top_k=3, penalty_alpha=0.6, max_new_tokens=10),
]


@pytest.mark.parametrize("strategy", ["greedy", "contrastive"])
def test_forcing_the_searchs_own_token_at_every_step_gives_its_caption(pair, strategy):
    cached, _ = pair
    config = DecodingConfig(strategy=strategy, top_k=3, max_new_tokens=12)
    encoded = encode_image(cached, image())
    own = decode(cached, encoded, [config])[0].best
    for t in range(len(own.token_ids)):
        forced = decode(cached, encoded, [config], prefix=own.token_ids[:t])[0].best
        assert forced.token_ids == own.token_ids
        assert forced.token_probs == pytest.approx(own.token_probs, abs=1e-6)
        assert forced.forced == [True] * t + [False] * (len(own.token_ids) - t)


@pytest.mark.parametrize("config", STRATEGIES, ids=lambda c: c.strategy)
def test_a_prefix_is_kept_verbatim_and_the_rest_is_the_models_own(pair, config):
    cached, _ = pair
    prefix = [5, 17, 5]  # not what the model would say: w3 w15 w3
    result = caption_image(cached, image(), [config], prefix=prefix)[0]
    pixels = cached.preprocess([image()])
    for caption in result.beams:
        assert caption.token_ids[:3] == prefix and caption.forced[:3] == [True] * 3 and not any(caption.forced[3:])
        logprobs = full_forward(cached.model, pixels, torch.tensor([[0, *caption.token_ids]]))[0][0].log_softmax(-1)
        expected = [math.exp(float(logprobs[t, token])) for t, token in enumerate(caption.token_ids)]
        assert caption.token_probs == pytest.approx(expected, abs=1e-5)  # the prefix's tokens too, under the model
        if config.strategy == "greedy":  # after the prefix: the model's own most likely tokens
            assert caption.token_ids[3:] == logprobs[3 : len(caption.token_ids)].argmax(-1).tolist()


def test_a_text_prefix_goes_through_the_models_tokenizer():
    model = load_captioner("builtin")
    result = caption_image(model, image(), [DecodingConfig(strategy="beam", num_beams=3)], prefix="A big")[0]
    ids = model.tokenizer("A big", add_special_tokens=False)["input_ids"]
    assert all(c.token_ids[: len(ids)] == ids and c.text.startswith("a big") for c in result.beams)


def test_a_prefix_filling_max_new_tokens_still_leaves_room_and_one_filling_the_model_is_the_caption(pair):
    cached, _ = pair
    result = caption_image(cached, image(), [DecodingConfig(max_new_tokens=3)], prefix=[5, 6, 7])[0]
    assert result.config.max_new_tokens == 4 and len(result.best.token_ids) <= 4
    full = [5] * cached.max_new_tokens_limit
    for config in STRATEGIES:
        caption = caption_image(cached, image(), [config], prefix=full)[0].best
        assert caption.token_ids == full and caption.hit_limit and all(caption.forced)


@functools.lru_cache(maxsize=1)
def builtin():
    return load_captioner("builtin")


@pytest.mark.parametrize(
    "prefix,words",
    [
        ("a purple elephant", "'elephant'"),
        ("a big zebra", "'zebra'"),
        (" ".join(["a"] * 32), "32 tokens"),
        ([0], "end token"),
        ([5, 10_000], "outside this model's vocabulary"),
        ([-1], "at least 0"),
        ("x" * 20_000, "10000"),
    ],
)
def test_a_prefix_the_model_cannot_take_is_one_clear_line(prefix, words):
    with pytest.raises(PrefixError) as refusal:
        caption_image(builtin(), image(), [DecodingConfig()], prefix=prefix)
    assert words in str(refusal.value) and "\n" not in str(refusal.value)


@settings(
    derandomize=True,
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    text=st.one_of(st.lists(st.sampled_from(WORDS + ["<unk>", "nope", "W1"]), max_size=45).map(" ".join), st.text(max_size=30))
)
def test_any_text_prefix_is_kept_or_refused_with_one_line(pair, text):
    cached, _ = pair
    try:
        result = caption_image(cached, image(), [DecodingConfig(max_new_tokens=5, output_attentions=False)], prefix=text)[0]
    except PrefixError as e:
        assert "\n" not in str(e)
        return
    ids = cached.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert result.best.token_ids[: len(ids)] == ids and result.best.forced.count(True) == len(ids)
