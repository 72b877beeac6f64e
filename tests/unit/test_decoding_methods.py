"""The decoding methods beyond greedy, beam search and top-k/top-p sampling: min-p, typical-p, epsilon and
eta sampling (token-identical to transformers' generate), diverse beam search and contrastive search
(against tests/reference.py, written from their papers), and their settings' ranges."""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from captioner.config import (
    CUTOFF_RANGE,
    DIVERSITY_PENALTY_RANGE,
    MAX_CONTRASTIVE_TOP_K,
    MAX_NUM_BEAMS,
    MIN_P_RANGE,
    ConfigError,
    DecodingConfig,
)
from captioner.decoding import caption_image, decode, encode_image
from captioner.decoding.processors import Processors
from captioner.loading import load_captioner
from tests.reference import contrastive_search, diverse_beam_search
from tests.same_as_generate import assert_same_as_processors
from tests.strategies import floats_within
from tests.unit.engine_helpers import caption_or_refusal, image

# -- sampling cut-offs: transformers' warpers, token-identical to generate ------------------------
CUTOFFS = [
    dict(min_p=0.05),
    dict(min_p=0.3, temperature=1.5),
    dict(typical_p=0.6),
    dict(typical_p=0.95, top_k=20),
    dict(epsilon_cutoff=0.02),
    dict(epsilon_cutoff=0.0003, temperature=0.7),
    dict(eta_cutoff=0.01),
    dict(eta_cutoff=0.0009, top_p=0.9),
    dict(min_p=0.1, typical_p=0.8, epsilon_cutoff=0.001, eta_cutoff=0.001),
]


@pytest.mark.parametrize("cutoff", CUTOFFS, ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()))
@pytest.mark.parametrize("seed", [0, 7])
def test_sampling_cutoffs_are_token_identical_to_generate(tiny_hf_dir, cutoff, seed):
    from transformers import VisionEncoderDecoderModel

    model = load_captioner(str(tiny_hf_dir))
    hf = VisionEncoderDecoderModel.from_pretrained(str(tiny_hf_dir)).eval()
    for colour in [(200, 40, 40), (30, 160, 90)]:
        img = image(colour)
        config = DecodingConfig(strategy="sample", max_new_tokens=12, seed=seed, **cutoff)
        ours = caption_image(model, img, [config])[0].best.token_ids
        torch.manual_seed(seed)  # generate samples from torch's global generator; the engine from its own, seeded alike
        out = hf.generate(
            pixel_values=model.preprocess([img]),
            do_sample=True,
            max_new_tokens=12,
            top_k=cutoff.get("top_k", 0),
            **{k: v for k, v in cutoff.items() if k != "top_k"},
        )
        generated = out[0, 1:].tolist()
        assert generated[: len(ours)] == ours
        assert all(t == 0 for t in generated[len(ours) :])


def test_cutoff_warpers_give_generates_distribution():
    from transformers.generation.logits_process import (
        EpsilonLogitsWarper,
        EtaLogitsWarper,
        MinPLogitsWarper,
        TemperatureLogitsWarper,
        TypicalLogitsWarper,
    )

    torch.manual_seed(0)
    scores, ids = torch.randn(4, 40) * 3, torch.randint(0, 40, (4, 5))
    config = DecodingConfig(strategy="sample", temperature=0.9, min_p=0.02, typical_p=0.9, epsilon_cutoff=0.001, eta_cutoff=0.002)
    ours = Processors.for_config(config, eos_token_id=0)(ids, scores)
    processors = [
        TemperatureLogitsWarper(0.9),
        MinPLogitsWarper(0.02),
        TypicalLogitsWarper(0.9),
        EpsilonLogitsWarper(0.001),
        EtaLogitsWarper(0.002),
    ]
    assert_same_as_processors(ours, processors, ids, scores)


def test_cutoffs_act_only_when_sampling():
    config = dict(min_p=0.5, typical_p=0.5, epsilon_cutoff=0.5, eta_cutoff=0.5)
    for strategy in ("greedy", "beam", "group_beam", "contrastive"):
        assert not Processors.for_config(DecodingConfig(strategy=strategy, top_k=4, **config), 0).warpers


# -- diverse beam search against the paper's algorithm ---------------------------------------------
GROUP_CASES = [
    dict(num_beams=4, num_beam_groups=2, diversity_penalty=0.5, max_new_tokens=8),
    dict(num_beams=6, num_beam_groups=3, diversity_penalty=2.0, max_new_tokens=7),
    dict(num_beams=4, num_beam_groups=4, diversity_penalty=5.0, max_new_tokens=6, length_penalty=0.5),
    dict(num_beams=6, num_beam_groups=2, diversity_penalty=0.0, max_new_tokens=6, length_penalty=2.0),
]


@pytest.mark.parametrize("case", GROUP_CASES, ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()))
@pytest.mark.parametrize("colour", [(200, 40, 40), (250, 250, 250)])
def test_group_beam_search_equals_the_papers_algorithm(pair, case, colour):
    cached, _ = pair
    config = DecodingConfig(strategy="group_beam", num_return_sequences=case["num_beams"], **case)
    result = caption_image(cached, image(colour), [config])[0]
    pixels = cached.preprocess([image(colour)])
    expected = diverse_beam_search(
        cached.model,
        pixels,
        case["num_beams"],
        case["num_beam_groups"],
        case["diversity_penalty"],
        case["max_new_tokens"],
        case.get("length_penalty", 1.0),
    )
    assert [c.token_ids for c in result.beams] == [tokens for tokens, _ in expected]
    assert [c.score for c in result.beams] == pytest.approx([score for _, score in expected], abs=1e-4)
    assert result.captions == result.beams[: config.num_return_sequences]


def test_group_beam_search_with_one_group_is_beam_search(pair):
    cached, _ = pair
    encoded = encode_image(cached, image())
    beam = DecodingConfig(strategy="beam", num_beams=4, max_new_tokens=9, num_return_sequences=4)
    one_group, plain = decode(
        cached, encoded, [beam.with_(strategy="group_beam", num_beam_groups=1, diversity_penalty=3.0), beam]
    )
    assert [c.token_ids for c in one_group.beams] == [c.token_ids for c in plain.beams]
    assert [c.score for c in one_group.beams] == pytest.approx([c.score for c in plain.beams])


def test_the_diversity_penalty_makes_groups_differ(pair):
    cached, _ = pair
    config = DecodingConfig(strategy="group_beam", num_beams=4, num_beam_groups=4, max_new_tokens=8, num_return_sequences=4)
    same = caption_image(cached, image(), [config.with_(diversity_penalty=0.0)])[0].beams
    diverse = caption_image(cached, image(), [config.with_(diversity_penalty=50.0)])[0].beams
    assert len({tuple(c.token_ids) for c in same}) == 1  # four groups of one beam, no penalty: the same caption
    assert len({c.token_ids[0] for c in diverse}) == 4  # a large penalty: every group starts with its own word


# -- contrastive search against the paper's definition ---------------------------------------------
@pytest.mark.parametrize("k,alpha", [(2, 0.3), (4, 0.6), (5, 0.9), (3, 1.0)])
@pytest.mark.parametrize("colour", [(200, 40, 40), (30, 160, 90)])
def test_contrastive_search_equals_the_papers_definition(pair, k, alpha, colour):
    cached, _ = pair
    config = DecodingConfig(strategy="contrastive", top_k=k, penalty_alpha=alpha, max_new_tokens=9)
    result = caption_image(cached, image(colour), [config])[0]
    assert result.best.token_ids == contrastive_search(cached.model, cached.preprocess([image(colour)]), k, alpha, 9)


def test_contrastive_search_with_no_penalty_is_greedy(pair):
    cached, _ = pair
    encoded = encode_image(cached, image())
    contrastive, greedy = decode(
        cached, encoded, [DecodingConfig(strategy="contrastive", top_k=4, penalty_alpha=0.0), DecodingConfig()]
    )
    assert contrastive.best.token_ids == greedy.best.token_ids
    assert contrastive.best.token_probs == pytest.approx(greedy.best.token_probs, abs=1e-5)
    assert contrastive.best.alternatives == greedy.best.alternatives


def test_new_methods_cached_equal_no_cache_and_together_equal_alone(pair):
    cached, reference = pair
    configs = [
        DecodingConfig(strategy="contrastive", top_k=3, penalty_alpha=0.5, max_new_tokens=8),
        DecodingConfig(strategy="group_beam", num_beams=4, num_beam_groups=2, diversity_penalty=1.0, max_new_tokens=8),
        DecodingConfig(strategy="sample", min_p=0.1, eta_cutoff=0.001, seed=2, num_return_sequences=2, max_new_tokens=8),
        DecodingConfig(strategy="beam", num_beams=3, max_new_tokens=8),
    ]
    together = caption_image(cached, image(), configs)
    no_cache = caption_image(reference, image(), configs)
    for config, ours, theirs in zip(configs, together, no_cache):
        alone = caption_image(cached, image(), [config])[0]
        assert [c.token_ids for c in ours.beams] == [c.token_ids for c in alone.beams] == [c.token_ids for c in theirs.beams]
        for a, b in zip(ours.beams, theirs.beams):
            assert a.token_probs == pytest.approx(b.token_probs, abs=1e-4) and a.score == pytest.approx(b.score, abs=1e-4)


# -- the settings' ranges ----------------------------------------------------------------------------
RANGE_ENDS = [  # each end of each new range, on the small-vocabulary model: captions with finite numbers
    dict(strategy="sample", min_p=MIN_P_RANGE[0]),
    dict(strategy="sample", min_p=MIN_P_RANGE[1]),
    dict(strategy="sample", typical_p=5e-324),
    dict(strategy="sample", typical_p=1.0),
    dict(strategy="sample", epsilon_cutoff=CUTOFF_RANGE[1]),
    dict(strategy="sample", eta_cutoff=CUTOFF_RANGE[1]),
    dict(strategy="sample", epsilon_cutoff=CUTOFF_RANGE[0], eta_cutoff=CUTOFF_RANGE[0]),
    dict(strategy="sample", min_p=1.0, typical_p=5e-324, epsilon_cutoff=0.99, eta_cutoff=0.99, temperature=100.0),
    dict(
        strategy="group_beam",
        num_beams=MAX_NUM_BEAMS,
        num_beam_groups=MAX_NUM_BEAMS,
        diversity_penalty=DIVERSITY_PENALTY_RANGE[1],
    ),
    dict(
        strategy="group_beam",
        num_beams=MAX_NUM_BEAMS,
        num_beam_groups=1,
        diversity_penalty=DIVERSITY_PENALTY_RANGE[0],
        num_return_sequences=MAX_NUM_BEAMS,
    ),
    dict(strategy="group_beam", num_beams=4, num_beam_groups=2, no_repeat_ngram_size=1, min_new_tokens=20, max_new_tokens=20),
    dict(strategy="contrastive", top_k=1, penalty_alpha=0.0),
    dict(strategy="contrastive", top_k=MAX_CONTRASTIVE_TOP_K, penalty_alpha=1.0),
    dict(strategy="contrastive", top_k=8, no_repeat_ngram_size=1, min_new_tokens=20, max_new_tokens=20, repetition_penalty=100.0),
]
ONE_STEP_PAST = [  # (settings, the name the refusal must give)
    (dict(strategy="sample", min_p=-0.01), "min_p"),
    (dict(strategy="sample", min_p=1.01), "min_p"),
    (dict(strategy="sample", typical_p=0.0), "typical_p"),
    (dict(strategy="sample", typical_p=1.01), "typical_p"),
    (dict(strategy="sample", epsilon_cutoff=-0.01), "epsilon_cutoff"),
    (dict(strategy="sample", epsilon_cutoff=1.0), "epsilon_cutoff"),
    (dict(strategy="sample", eta_cutoff=-0.01), "eta_cutoff"),
    (dict(strategy="sample", eta_cutoff=1.0), "eta_cutoff"),
    (dict(strategy="group_beam", num_beam_groups=0), "num_beam_groups"),
    (dict(strategy="group_beam", num_beams=16, num_beam_groups=17), "num_beam_groups"),
    (dict(strategy="group_beam", num_beams=6, num_beam_groups=4), "num_beam_groups"),
    (dict(strategy="group_beam", diversity_penalty=-0.01), "diversity_penalty"),
    (dict(strategy="group_beam", diversity_penalty=100.01), "diversity_penalty"),
    (dict(strategy="group_beam", num_beams=4, num_return_sequences=5), "num_return_sequences"),
    (dict(strategy="contrastive", top_k=0), "top_k"),
    (dict(strategy="contrastive", top_k=MAX_CONTRASTIVE_TOP_K + 1), "top_k"),
    (dict(strategy="contrastive", top_k=4, penalty_alpha=-0.01), "penalty_alpha"),
    (dict(strategy="contrastive", top_k=4, penalty_alpha=1.01), "penalty_alpha"),
    (dict(strategy="contrastive", top_k=4, num_return_sequences=2), "num_return_sequences"),
]


@pytest.mark.parametrize("settings", RANGE_ENDS, ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()))
def test_the_ends_of_every_new_range_give_captions_with_finite_numbers(settings):
    assert caption_or_refusal(settings) is not None


@pytest.mark.parametrize("settings,name", ONE_STEP_PAST, ids=lambda x: x if isinstance(x, str) else None)
def test_one_step_past_each_end_is_refused_by_name(settings, name):
    with pytest.raises(ConfigError) as refusal:
        DecodingConfig(**settings).validate()
    assert refusal.value.field == name and name in str(refusal.value) and "\n" not in str(refusal.value)


@st.composite
def method_settings(draw) -> dict:
    """Settings of the new methods, within their ranges (ends drawn often) and beyond them."""
    strategy = draw(st.sampled_from(["sample", "group_beam", "contrastive"]))
    beams = draw(st.integers(1, MAX_NUM_BEAMS))
    wild = st.floats(-2.0, 200.0)
    return dict(
        strategy=strategy,
        max_new_tokens=draw(st.integers(1, 24)),
        num_beams=beams,
        num_beam_groups=draw(st.one_of(st.sampled_from([d for d in range(1, beams + 1) if beams % d == 0]), st.integers(-1, 17))),
        diversity_penalty=draw(st.one_of(floats_within(DIVERSITY_PENALTY_RANGE), wild)),
        num_return_sequences=draw(st.integers(1, 3)),
        top_k=draw(st.integers(0, MAX_CONTRASTIVE_TOP_K + 1)),
        penalty_alpha=draw(st.one_of(floats_within((0.0, 1.0)), wild)),
        min_p=draw(st.one_of(floats_within(MIN_P_RANGE), wild)),
        typical_p=draw(st.one_of(floats_within((5e-324, 1.0)), wild)),
        epsilon_cutoff=draw(st.one_of(floats_within(CUTOFF_RANGE), wild)),
        eta_cutoff=draw(st.one_of(floats_within(CUTOFF_RANGE), wild)),
        no_repeat_ngram_size=draw(st.integers(0, 3)),
        repetition_penalty=draw(floats_within((0.01, 100.0))),
    )


@pytest.mark.slow  # 40 decodes of up to 16 beams
@settings(derandomize=True, max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(settings=method_settings())
def test_every_new_setting_gives_a_caption_with_finite_numbers_or_a_refusal(settings):
    event("refused" if caption_or_refusal(settings) is None else f"captioned: {settings['strategy']}")


def test_a_step_without_hidden_states_refuses_contrastive_search_only(pair):
    cached, _ = pair
    step = cached.step
    try:
        cached.step = lambda *a, **k: tuple(step(*a, **k))  # a model family whose step gives three things
        assert caption_image(cached, image(), [DecodingConfig(max_new_tokens=4)])[0].best.token_ids
        with pytest.raises(ValueError, match="contrastive search needs the decoder's hidden states"):
            caption_image(cached, image(), [DecodingConfig(strategy="contrastive", top_k=2, max_new_tokens=4)])
    finally:
        del cached.step


@pytest.mark.parametrize(
    "fields,expected",
    [
        (
            dict(num_beams=4, num_beam_groups=2, diversity_penalty=0.7),
            dict(strategy="group_beam", num_beam_groups=2, diversity_penalty=0.7),
        ),
        (dict(penalty_alpha=0.6, top_k=40), dict(strategy="contrastive", penalty_alpha=0.6, top_k=MAX_CONTRASTIVE_TOP_K)),
        (dict(penalty_alpha=0.6, top_k=1), dict(strategy="greedy")),  # generate: contrastive needs top_k > 1
        (
            dict(do_sample=True, min_p=0.1, typical_p=0.9, epsilon_cutoff=1.0, eta_cutoff=0.002),
            dict(strategy="sample", min_p=0.1, typical_p=0.9, epsilon_cutoff=0.0, eta_cutoff=0.002),
        ),
    ],
)
def test_a_generation_config_selects_the_new_methods(fields, expected):
    from captioner.config import decoding_from_generation_config

    config = decoding_from_generation_config(fields)
    assert {k: getattr(config, k) for k in expected} == expected
