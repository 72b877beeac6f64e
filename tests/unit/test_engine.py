"""The decoding engine: cached = no-cache reference, token identity with transformers' generate, processors,
batched images = one by one, the model's position limit, finite numbers for every accepted setting."""

from __future__ import annotations

import math

import numpy as np

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from captioner.config import (
    LENGTH_PENALTY_RANGE,
    MAX_NEW_TOKENS,
    MAX_NUM_BEAMS,
    MAX_RETURN_SEQUENCES,
    REPETITION_PENALTY_RANGE,
    TEMPERATURE_RANGE,
    DecodingConfig,
)
from captioner.decoding import caption_image, caption_images, decode, encode_image
from captioner.decoding.processors import Processors
from captioner.loading import load_captioner
from captioner.models.base import ModelInfo
from captioner.models.visiongpt2 import VisionGPT2Captioner
from tests.unit.engine_helpers import caption_or_refusal, image, small_vocabulary_model
from tests.strategies import floats_within
from tests.same_as_generate import assert_same_as_generate, assert_same_as_processors
from tests.tiny_models import make_tiny_visiongpt2, make_word_tokenizer


CONFIGS = [
    DecodingConfig(strategy="greedy", max_new_tokens=10),
    DecodingConfig(strategy="greedy", max_new_tokens=10, repetition_penalty=1.3, no_repeat_ngram_size=2, min_new_tokens=4),
    DecodingConfig(strategy="beam", num_beams=3, max_new_tokens=10, num_return_sequences=3),
    DecodingConfig(strategy="beam", num_beams=4, max_new_tokens=9, length_penalty=0.5, early_stopping=True),
    DecodingConfig(strategy="sample", top_k=8, top_p=0.9, temperature=0.8, seed=3, num_return_sequences=3, max_new_tokens=10),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.strategy}")
def test_cached_engine_equals_reference(pair, config):
    cached, reference = pair
    ours = caption_image(cached, image(), [config])[0]
    ref = caption_image(reference, image(), [config])[0]
    assert [c.token_ids for c in ours.beams] == [c.token_ids for c in ref.beams]
    for a, b in zip(ours.beams, ref.beams):
        assert a.score == pytest.approx(b.score, abs=1e-4)
        assert a.token_probs == pytest.approx(b.token_probs, abs=1e-4)
        assert a.attentions.shape == b.attentions.shape
        assert abs(a.attentions - b.attentions).max() < 1e-4


def test_engine_equals_the_models_own_generate(pair):
    cached, _ = pair
    pixels = cached.preprocess([image()])
    ours = caption_image(cached, image(), [DecodingConfig(max_new_tokens=12)])[0].best.token_ids
    assert ours == cached.model.generate(pixels, 12)[0].tolist()


def test_strategies_decoded_together_equal_alone(pair):
    cached, _ = pair
    encoded = encode_image(cached, image())
    together = decode(cached, encoded, CONFIGS)
    for config, result in zip(CONFIGS, together):
        alone = decode(cached, encoded, [config])[0]
        assert [c.token_ids for c in result.beams] == [c.token_ids for c in alone.beams]


def test_a_beam_result_records_its_beams_tokens_and_alternatives(pair):
    cached, _ = pair
    config = DecodingConfig(strategy="beam", num_beams=3, max_new_tokens=8, num_alternatives=4)
    result = caption_image(cached, image(), [config])[0]
    assert len(result.beams) == 3 and len(result.captions) == 1
    assert [b.score for b in result.beams] == sorted((b.score for b in result.beams), reverse=True)
    best = result.best
    n = len(best.token_ids)
    assert len(best.tokens) == len(best.token_probs) == len(best.entropies) == len(best.alternatives) == n
    assert best.attentions.shape == (n, 2, 4, 4, 4)  # tokens, layers, heads, rows, cols (class token dropped)
    assert all(len(a) == 4 for a in best.alternatives)
    for alts, p in zip(best.alternatives, best.token_probs):
        probs = [q for _, _, q in alts]
        assert probs == sorted(probs, reverse=True) and 0 < p <= 1
    assert best.logprob == pytest.approx(sum(torch.tensor(best.token_probs).log().tolist()), abs=1e-5)
    assert set(result.timings) >= {"preprocess", "encode", "decode"}
    assert best.text == cached.decode_text(best.token_ids)


def test_confidence_limit_and_out_of_world_flag(pair):
    cached, _ = pair
    assert cached.max_new_tokens_limit == cached.max_positions - 1 == 39
    config = DecodingConfig(strategy="beam", num_beams=3, max_new_tokens=3, num_return_sequences=3)
    beams = caption_image(cached, image(), [config])[0].beams
    for c in beams:
        assert c.confidence == pytest.approx(math.exp(c.logprob / len(c.token_ids)))
        assert c.hit_limit == (not c.finished) and c.out_of_world is None  # no calibration: unknown
    try:
        cached.calibration = {"confidence_threshold": 1.01}  # above every possible confidence
        assert caption_image(cached, image(), [config])[0].best.out_of_world is True
        cached.calibration = {"confidence_threshold": 0.0}
        assert caption_image(cached, image(), [config])[0].best.out_of_world is False
    finally:
        cached.calibration = None


def test_sampling_is_reproducible_and_seed_dependent(pair):
    cached, _ = pair
    config = DecodingConfig(strategy="sample", seed=11, num_return_sequences=4, max_new_tokens=10)
    a = [c.token_ids for c in caption_image(cached, image(), [config])[0].captions]
    b = [c.token_ids for c in caption_image(cached, image(), [config])[0].captions]
    c = [c.token_ids for c in caption_image(cached, image(), [config.with_(seed=12)])[0].captions]
    assert a == b and a != c and len(a) == 4


def test_min_and_max_new_tokens(pair):
    cached, _ = pair
    forced = caption_image(cached, image(), [DecodingConfig(min_new_tokens=16, max_new_tokens=16)])[0].best
    assert len(forced.token_ids) == 16 and 0 not in forced.token_ids[:15]


def test_invalid_settings_are_refused(pair):
    cached, _ = pair
    for bad in [
        dict(num_beams=0, strategy="beam"),
        dict(top_p=0),
        dict(temperature=0),
        dict(max_new_tokens=100000),
        dict(strategy="nope"),
        dict(strategy="beam", num_beams=2, num_return_sequences=3),
    ]:
        with pytest.raises(ValueError, match="Invalid decoding settings"):
            caption_image(cached, image(), [DecodingConfig(**bad)])


# -- processors: transformers' classes, as generate applies them --------------------------------
def test_sampling_processors_give_generates_distribution():
    from transformers.generation.logits_process import (
        NoRepeatNGramLogitsProcessor,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    torch.manual_seed(0)
    scores = torch.randn(3, 30) * 3
    ids = torch.randint(0, 30, (3, 9))
    ids[0, -2:] = ids[0, 2:4]  # a repeated bigram to ban
    config = DecodingConfig(
        strategy="sample", repetition_penalty=1.7, no_repeat_ngram_size=3, temperature=0.7, top_k=12, top_p=0.8
    )
    ours = Processors.for_config(config, eos_token_id=0)(ids, scores)
    processors = [
        RepetitionPenaltyLogitsProcessor(1.7),
        NoRepeatNGramLogitsProcessor(3),
        TemperatureLogitsWarper(0.7),
        TopKLogitsWarper(12),
        TopPLogitsWarper(0.8),
    ]
    assert_same_as_processors(ours, processors, ids, scores)


def test_processors_never_leave_a_row_without_tokens():
    torch.manual_seed(0)
    scores = torch.randn(2, 5)
    ids = torch.tensor([[0, 1, 2, 3, 4, 1], [0, 1, 2, 1, 2, 1]])  # row 0: every token already seen
    config = DecodingConfig(strategy="sample", no_repeat_ngram_size=1, min_new_tokens=8, temperature=1e-30)
    processed = Processors.for_config(config, eos_token_id=0)(ids, scores)
    assert processed.isfinite().any(dim=-1).all()  # row 0: every token banned, so its raw scores are used
    lp = processed.log_softmax(-1)
    assert lp[0].argmax() == scores[0].argmax() and lp[1].argmax() in (3, 4)  # row 1: 0 (end) and 1, 2 banned
    assert float(lp.max(dim=-1).values.min()) == 0.0  # a tiny temperature: all mass on the best, no overflow


# -- token identity with transformers' generate on a tiny HF model -------------------------------
GENERATE_CASES = [
    (dict(strategy="greedy", max_new_tokens=12), dict(num_beams=1)),
    (
        dict(strategy="greedy", max_new_tokens=12, repetition_penalty=1.5, no_repeat_ngram_size=2),
        dict(num_beams=1, repetition_penalty=1.5, no_repeat_ngram_size=2),
    ),
    (dict(strategy="greedy", max_new_tokens=10, min_new_tokens=10), dict(num_beams=1, min_new_tokens=10)),
    (dict(strategy="beam", num_beams=4, max_new_tokens=12, num_return_sequences=4), dict(num_beams=4, num_return_sequences=4)),
    (
        dict(strategy="beam", num_beams=3, max_new_tokens=12, length_penalty=0.3, early_stopping=True),
        dict(num_beams=3, length_penalty=0.3, early_stopping=True),
    ),
    (
        dict(strategy="beam", num_beams=5, max_new_tokens=10, length_penalty=2.0, early_stopping="never", num_return_sequences=2),
        dict(num_beams=5, length_penalty=2.0, early_stopping="never", num_return_sequences=2),
    ),
    (
        dict(strategy="beam", num_beams=3, max_new_tokens=14, no_repeat_ngram_size=2, repetition_penalty=1.2),
        dict(num_beams=3, no_repeat_ngram_size=2, repetition_penalty=1.2),
    ),
]


@pytest.mark.parametrize(
    "ours,theirs", GENERATE_CASES, ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()) if "strategy" in d else ""
)
@pytest.mark.parametrize("colour", [(200, 40, 40), (30, 160, 90), (250, 250, 250)])
def test_token_identity_with_generate(tiny_hf_dir, ours, theirs, colour):
    from transformers import VisionEncoderDecoderModel

    model = load_captioner(str(tiny_hf_dir))
    hf = VisionEncoderDecoderModel.from_pretrained(str(tiny_hf_dir)).eval()
    assert_same_as_generate(model, hf, image(colour), DecodingConfig(**ours), theirs, padding={0})  # 0: the padding id


# -- images decoded together ---------------------------------------------------------------------
BATCH_COLOURS = [(200, 40, 40), (30, 160, 90), (250, 250, 250), (0, 0, 0), (90, 20, 200), (240, 220, 40)]
BATCH_CONFIGS = [
    DecodingConfig(strategy="greedy", max_new_tokens=12),
    DecodingConfig(strategy="beam", num_beams=3, max_new_tokens=12, num_return_sequences=3),
    DecodingConfig(strategy="sample", seed=1, max_new_tokens=12, num_return_sequences=2),
]


def ending_visiongpt2() -> VisionGPT2Captioner:
    """The tiny VisionGPT2 with a head that favours the end token a little: captions end at different steps."""
    model = make_tiny_visiongpt2(seed=5)
    head = torch.nn.Linear(model.config.embed_dim, model.config.vocab_size)
    with torch.no_grad():
        head.weight.copy_(model.transformer.wte.weight)
        head.bias.zero_()
        head.bias[model.config.eos_token_id] = 2.0
    model.lm_head = head
    return VisionGPT2Captioner(model, make_word_tokenizer(), ModelInfo("tiny", "visiongpt2", "test", 0, "float32"))


def ending_hf(folder) -> "CaptionModel":  # noqa: F821
    model = load_captioner(str(folder))
    with torch.no_grad():
        model.decoder.wte.weight[model.eos_token_id] *= 1.5  # tied to the head: the end token comes sooner
    return model


class CountingSteps:
    """Wraps a model's `step` to see what the engine hands it."""

    def __init__(self, model):
        self.model, self.memory_ids, self.image_rows = model, set(), []
        self._step = model.step
        model.step = self

    def __call__(self, memory, ids, cache, need_weights=False, image_rows=None):
        self.memory_ids.add(tuple(t.data_ptr() for kv in memory for t in kv))
        self.image_rows.append(list(image_rows))
        return self._step(memory, ids, cache, need_weights, image_rows)


@pytest.mark.parametrize("family", ["visiongpt2", "hf"])
def test_images_decoded_together_equal_one_by_one(family, tiny_hf_dir):
    model = ending_visiongpt2() if family == "visiongpt2" else ending_hf(tiny_hf_dir)
    images = [image(c) for c in BATCH_COLOURS]
    alone = [caption_image(model, im, BATCH_CONFIGS) for im in images]
    for k in range(len(BATCH_CONFIGS)):  # the captions end at different steps on different images
        assert len({len(c.token_ids) for r in alone for c in r[k].beams}) > 1, BATCH_CONFIGS[k]
    counting = CountingSteps(model)
    together = caption_images(model, images, BATCH_CONFIGS)
    for results, expected in zip(together, alone):
        for ours, theirs in zip(results, expected):
            assert ours.config == theirs.config
            assert [c.token_ids for c in ours.beams] == [c.token_ids for c in theirs.beams]
            for a, b in zip(ours.beams, theirs.beams):
                assert a.score == pytest.approx(b.score, abs=1e-4) and a.finished == b.finished
                for field in ("token_probs", "processed_probs", "entropies"):
                    assert getattr(a, field) == pytest.approx(getattr(b, field), abs=1e-4), field
                assert [[x.id for x in alts] for alts in a.alternatives] == [[x.id for x in alts] for alts in b.alternatives]
                np.testing.assert_allclose(a.attentions, b.attentions, atol=1e-4)
    # One image memory for the whole decode, read in place: its rows are told apart by image_rows.
    assert len(counting.memory_ids) == 1
    assert counting.image_rows[0] == [1 + 3 + 2] * len(images)
    assert any(0 < sum(rows) < 6 * len(images) for rows in counting.image_rows)  # rows dropped as captions end


def test_caption_images_of_nothing_and_of_one(pair):
    cached, _ = pair
    assert caption_images(cached, [], BATCH_CONFIGS) == []
    [one] = caption_images(cached, [image()], BATCH_CONFIGS[0])
    assert one[0].best.token_ids == caption_image(cached, image(), BATCH_CONFIGS[0])[0].best.token_ids


# -- the model's limit ---------------------------------------------------------------------------
@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
def test_decoding_stops_at_the_models_position_limit(strategy):
    model = make_tiny_visiongpt2(seed=5, seq_len=8)
    cap = VisionGPT2Captioner(model, make_word_tokenizer(), ModelInfo("tiny", "visiongpt2", "test", 0, "float32"))
    assert cap.max_new_tokens_limit == 7
    config = DecodingConfig(
        strategy=strategy,
        max_new_tokens=120,
        min_new_tokens=100,
        num_beams=3,
        num_return_sequences=1 if strategy == "greedy" else 2,
    )
    result = caption_image(cap, image(), [config])[0]
    assert result.config.max_new_tokens == 7 and result.config.min_new_tokens == 7  # what was decoded
    assert [len(c.token_ids) for c in result.captions] == ([7] if strategy == "greedy" else [7, 7])
    assert all(c.hit_limit for c in result.captions)


# -- finite numbers for every setting validate() accepts -----------------------------------------
EXTREMES = [1e-300, 1e-40, 1e-3, 0.5, 1.0, 2.0, 5.0, 8.0, 1e3, 1e38, 1e308]
ANY = st.one_of(st.sampled_from(EXTREMES + [0.0] + [-x for x in EXTREMES]), st.floats(allow_nan=False, allow_infinity=False))


@st.composite
def accepted_settings(draw, strategy: str) -> dict:
    """Settings within the ranges validate() accepts, their ends and extremes included."""
    max_new = draw(st.integers(1, MAX_NEW_TOKENS))
    beams = draw(st.integers(1, MAX_NUM_BEAMS))
    return dict(
        strategy=strategy,
        max_new_tokens=max_new,
        min_new_tokens=draw(st.integers(0, max_new)),
        num_beams=beams,
        length_penalty=draw(floats_within(LENGTH_PENALTY_RANGE)),
        early_stopping=draw(st.sampled_from([True, False, "never"])),
        temperature=draw(floats_within(TEMPERATURE_RANGE)),
        top_k=draw(st.integers(0, 100)),
        top_p=draw(st.floats(min_value=1e-300, max_value=1.0)),
        repetition_penalty=draw(floats_within(REPETITION_PENALTY_RANGE)),
        no_repeat_ngram_size=draw(st.integers(0, 4)),
        num_return_sequences=draw(st.integers(1, {"beam": beams, "greedy": 1}.get(strategy, MAX_RETURN_SEQUENCES))),
        seed=draw(st.one_of(st.none(), st.integers(0, 2**64 - 1))),
        num_alternatives=draw(st.integers(0, 8)),
        output_attentions=draw(st.booleans()),
    )


WILD_SETTINGS = st.fixed_dictionaries(
    {},
    optional={
        "strategy": st.sampled_from(["greedy", "beam", "sample", "nope"]),
        "max_new_tokens": st.integers(-1, 140),
        "min_new_tokens": st.integers(-1, 140),
        "num_beams": st.integers(-1, 17),
        "length_penalty": ANY,
        "temperature": ANY,
        "top_k": st.integers(-1, 100),
        "top_p": ANY,
        "repetition_penalty": ANY,
        "no_repeat_ngram_size": st.integers(-1, 4),
        "num_return_sequences": st.integers(0, 17),
    },
)


T_LOW, T_HIGH = TEMPERATURE_RANGE
R_LOW, R_HIGH = REPETITION_PENALTY_RANGE
L_LOW, L_HIGH = LENGTH_PENALTY_RANGE
NAMED_EXTREMES = [  # every number at the end of the range validate() accepts
    dict(strategy="sample", temperature=T_LOW, top_k=0, top_p=1.0),
    dict(strategy="sample", temperature=T_LOW, top_p=5e-324),  # the smallest top-p above 0: one token kept
    dict(strategy="sample", temperature=T_HIGH, repetition_penalty=R_LOW, no_repeat_ngram_size=1, max_new_tokens=20),
    dict(strategy="beam", num_beams=4, length_penalty=L_LOW, max_new_tokens=20),
    dict(strategy="beam", num_beams=4, length_penalty=L_HIGH, early_stopping="never", max_new_tokens=20),
    dict(strategy="beam", num_beams=MAX_NUM_BEAMS, length_penalty=L_HIGH, max_new_tokens=20, num_return_sequences=MAX_NUM_BEAMS),
    dict(strategy="beam", num_beams=MAX_NUM_BEAMS, length_penalty=L_LOW, max_new_tokens=20),
    dict(strategy="greedy", repetition_penalty=R_LOW, max_new_tokens=20),
    dict(strategy="beam", repetition_penalty=R_HIGH, num_beams=5, max_new_tokens=20),
    dict(strategy="beam", repetition_penalty=R_HIGH, num_beams=1, min_new_tokens=9, max_new_tokens=10),
    dict(strategy="greedy", no_repeat_ngram_size=1, min_new_tokens=20, max_new_tokens=20),  # every token banned, end too
    dict(strategy="beam", num_beams=16, no_repeat_ngram_size=1, min_new_tokens=20, max_new_tokens=20),
    dict(strategy="sample", no_repeat_ngram_size=1, min_new_tokens=20, max_new_tokens=20, num_return_sequences=4),
]
BEYOND_THE_ENDS = [  # one step past each end: refused with the setting's name, never decoded
    dict(strategy="sample", temperature=T_LOW / 10),
    dict(strategy="sample", temperature=T_HIGH * 10),
    dict(repetition_penalty=1e-300),
    dict(repetition_penalty=1e308),
    dict(strategy="beam", length_penalty=-1e308),
    dict(strategy="beam", length_penalty=1e308),
    dict(strategy="beam", num_beams=MAX_NUM_BEAMS + 1),
    dict(strategy="sample", top_p=0.0),
    dict(strategy="greedy", num_return_sequences=2),
]


@pytest.mark.parametrize("settings", NAMED_EXTREMES, ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()))
def test_extreme_settings_give_captions_with_finite_numbers(settings):
    assert caption_or_refusal(settings) is not None


@pytest.mark.parametrize("settings", BEYOND_THE_ENDS, ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()))
def test_settings_beyond_the_ends_are_refused_by_name(settings):
    with pytest.raises(ValueError, match=next(k for k in settings if k != "strategy")):
        caption_image(small_vocabulary_model(), image(), [DecodingConfig(**settings)])


@pytest.mark.parametrize("strategy", ["greedy", "beam", "sample"])
@settings(derandomize=True, max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_setting_gives_a_caption_with_finite_numbers_or_a_refusal(strategy, data):
    settings = data.draw(st.one_of(accepted_settings(strategy), WILD_SETTINGS), label="settings")
    event("refused by validate" if caption_or_refusal(settings) is None else f"captioned: {strategy}")
