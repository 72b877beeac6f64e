"""The decoding engine: cached = reference, token identity with transformers' generate, processors."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from captioner.config import DecodingConfig
from captioner.decoding import (
    apply_no_repeat_ngram,
    apply_repetition_penalty,
    apply_top_k,
    apply_top_p,
    caption_image,
    decode,
    encode_image,
)
from captioner.loading import load_captioner
from captioner.models.base import ModelInfo
from captioner.models.visiongpt2 import VisionGPT2Captioner
from tests.reference import NoCacheVisionGPT2, plain_greedy
from tests.tiny_models import make_tiny_visiongpt2, make_word_tokenizer


def image(colour=(200, 40, 40), size=(48, 40)) -> Image.Image:
    im = Image.new("RGB", size, colour)
    im.paste((20, 20, 220), (5, 5, 20, 25))
    return im


@pytest.fixture(scope="module")
def pair():
    """The same tiny VisionGPT2 behind the cached engine and behind the no-cache reference."""
    model = make_tiny_visiongpt2(seed=5)
    info = ModelInfo("tiny", "visiongpt2", "test", model.num_parameters(), "float32")
    tok = make_word_tokenizer()
    return VisionGPT2Captioner(model, tok, info), NoCacheVisionGPT2(model, tok, info)


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


def test_cached_logits_equal_plain_loop(pair):
    cached, _ = pair
    model = cached.model
    pixels = cached.preprocess([image()])
    ours = caption_image(cached, image(), [DecodingConfig(max_new_tokens=12)])[0].best.token_ids
    assert ours == plain_greedy(model, pixels, 12, 0, 0)


def test_strategies_decoded_together_equal_alone(pair):
    cached, _ = pair
    encoded = encode_image(cached, image())
    together = decode(cached, encoded, CONFIGS)
    for config, result in zip(CONFIGS, together):
        alone = decode(cached, encoded, [config])[0]
        assert [c.token_ids for c in result.beams] == [c.token_ids for c in alone.beams]


def test_result_records(pair):
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
    for bad in [dict(num_beams=0, strategy="beam"), dict(top_p=0), dict(temperature=0), dict(max_new_tokens=100000),
                dict(strategy="nope"), dict(strategy="beam", num_beams=2, num_return_sequences=3)]:
        with pytest.raises(ValueError, match="Invalid decoding settings"):
            caption_image(cached, image(), [DecodingConfig(**bad)])


# -- processors: the semantics of transformers' logits processors --------------------------------
def test_processors_match_transformers():
    from transformers.generation.logits_process import (
        NoRepeatNGramLogitsProcessor,
        RepetitionPenaltyLogitsProcessor,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    torch.manual_seed(0)
    scores = torch.randn(3, 30)
    ids = torch.randint(0, 30, (3, 9))
    ids[0, -2:] = ids[0, 2:4]  # a repeated bigram to ban
    torch.testing.assert_close(apply_repetition_penalty(scores, ids, 1.7), RepetitionPenaltyLogitsProcessor(1.7)(ids, scores.clone()))
    torch.testing.assert_close(apply_no_repeat_ngram(scores, ids, 3), NoRepeatNGramLogitsProcessor(3)(ids, scores.clone()))
    torch.testing.assert_close(apply_top_k(scores, 5), TopKLogitsWarper(5)(ids, scores.clone()))
    torch.testing.assert_close(apply_top_p(scores, 0.7), TopPLogitsWarper(0.7)(ids, scores.clone()))


# -- token identity with transformers' generate on a tiny HF model -------------------------------
GENERATE_CASES = [
    (dict(strategy="greedy", max_new_tokens=12), dict(num_beams=1)),
    (dict(strategy="greedy", max_new_tokens=12, repetition_penalty=1.5, no_repeat_ngram_size=2), dict(num_beams=1, repetition_penalty=1.5, no_repeat_ngram_size=2)),
    (dict(strategy="greedy", max_new_tokens=10, min_new_tokens=10), dict(num_beams=1, min_new_tokens=10)),
    (dict(strategy="beam", num_beams=4, max_new_tokens=12, num_return_sequences=4), dict(num_beams=4, num_return_sequences=4)),
    (dict(strategy="beam", num_beams=3, max_new_tokens=12, length_penalty=0.3, early_stopping=True), dict(num_beams=3, length_penalty=0.3, early_stopping=True)),
    (dict(strategy="beam", num_beams=5, max_new_tokens=10, length_penalty=2.0, early_stopping="never", num_return_sequences=2), dict(num_beams=5, length_penalty=2.0, early_stopping="never", num_return_sequences=2)),
    (dict(strategy="beam", num_beams=3, max_new_tokens=14, no_repeat_ngram_size=2, repetition_penalty=1.2), dict(num_beams=3, no_repeat_ngram_size=2, repetition_penalty=1.2)),
]


@pytest.mark.parametrize("ours,theirs", GENERATE_CASES, ids=lambda d: ",".join(f"{k}={v}" for k, v in d.items()) if "strategy" in d else "")
@pytest.mark.parametrize("colour", [(200, 40, 40), (30, 160, 90), (250, 250, 250)])
def test_token_identity_with_generate(tiny_hf_dir, ours, theirs, colour):
    from transformers import VisionEncoderDecoderModel

    model = load_captioner(str(tiny_hf_dir))
    hf = VisionEncoderDecoderModel.from_pretrained(str(tiny_hf_dir)).eval()
    img = image(colour)
    config = DecodingConfig(**ours)
    result = caption_image(model, img, [config])[0]
    out = hf.generate(
        pixel_values=model.preprocess([img]), do_sample=False, max_new_tokens=config.max_new_tokens,
        output_scores=True, return_dict_in_generate=True, **theirs,
    )
    assert len(result.captions) == out.sequences.size(0)
    for caption, row in zip(result.captions, out.sequences.tolist()):
        generated = row[1:]  # drop the start token
        assert generated[: len(caption.token_ids)] == caption.token_ids
        assert all(t == 0 for t in generated[len(caption.token_ids) :])  # only padding after the end
    if config.strategy == "beam":
        assert [c.score for c in result.captions] == pytest.approx(out.sequences_scores.tolist(), abs=1e-4)
