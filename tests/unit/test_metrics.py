"""BLEU-4, CIDEr-D and ROUGE-L held against pycocoevalcap's own scorers (the coco-caption code, pure Python)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge

from captioner.metrics import (
    bleu4_scores,
    cider_d,
    cider_d_scores,
    corpus_bleu4,
    distinct_n,
    exact_match,
    rouge_l,
    rouge_l_scores,
    word_tokens,
)

# Captions people write and models produce: several references per image, shared and rare words,
# repeated words (clipping), captions shorter and longer than their references (brevity and length
# penalties), a caption with no 4-gram in common, one identical to a reference.
CORPUS = [
    (
        "a man riding a wave on top of a surfboard",
        [
            "a man riding a wave on a surfboard",
            "a surfer rides a large wave in the ocean",
            "a person on a surfboard riding a wave",
        ],
    ),
    ("a cat sitting on a couch", ["a cat lying on a sofa", "a grey cat sleeping on a couch"]),
    (
        "two dogs playing with a frisbee in a park",
        ["two dogs play with a frisbee on the grass", "a pair of dogs chasing a frisbee in a park", "dogs playing in the park"],
    ),
    ("a plate of food", ["a plate with broccoli and rice on a table", "a white plate of food with vegetables"]),
    (
        "a red double decker bus driving down a street",
        ["a red double decker bus driving down a street", "a bus on a city street"],
    ),
    ("a a a a a a", ["a kitchen with a stove and a sink"]),
    ("a group of people standing around a kitchen", ["people cooking in a kitchen", "a kitchen full of people"]),
    ("a clock tower", ["a tall clock tower against a blue sky with clouds in the background"]),
    (
        "a bowl of bananas and apples and oranges and apples and bananas on a wooden table",
        ["a bowl of fruit on a table", "bananas apples and oranges in a bowl"],
    ),
    ("an airplane flying in the sky", ["a large jetliner flying through a blue sky", "an airplane in the sky"]),
]


def coco(hyps, refs):
    """pycocoevalcap's corpus and per-image scores, on the same tokens as ours."""
    res = {i: [" ".join(word_tokens(h))] for i, h in enumerate(hyps)}
    gts = {i: [" ".join(word_tokens(r)) for r in rs] for i, rs in enumerate(refs)}
    bleu, bleu_per_image = Bleu(4).compute_score(gts, res, verbose=0)
    cider, cider_per_image = Cider().compute_score(gts, res)
    return bleu[3], list(bleu_per_image[3]), float(cider), [float(x) for x in cider_per_image]


def coco_rouge(hyps, refs):
    res = {i: [" ".join(word_tokens(h))] for i, h in enumerate(hyps)}
    gts = {i: [" ".join(word_tokens(r)) for r in rs] for i, rs in enumerate(refs)}
    score, per_image = Rouge().compute_score(gts, res)
    return float(score), [float(x) for x in per_image]


def assert_bleu_like_coco(ours, theirs):
    """Equal, except where an n-gram order has no match: ours is 0 there and pycocoevalcap's epsilons
    (1e-15 added to matches, 1e-9 to n-gram counts) leave at most (1e-6) ** (1/4), the docstring's
    deliberate difference."""
    if ours == 0.0:
        assert 0.0 <= theirs < 1e-6**0.25
    else:
        assert ours == pytest.approx(theirs, rel=1e-6)


def assert_like_coco(hyps, refs):
    bleu, bleu_each, cider, cider_each = coco(hyps, refs)
    ours_bleu, ours_bleu_each = bleu4_scores(hyps, refs)
    ours_cider, ours_cider_each = cider_d_scores(hyps, refs)
    for ours, theirs in zip([ours_bleu, *ours_bleu_each], [bleu, *bleu_each]):
        assert_bleu_like_coco(ours, theirs)
    assert ours_cider == pytest.approx(cider, rel=1e-9, abs=1e-12)
    assert ours_cider_each == pytest.approx(cider_each, rel=1e-9, abs=1e-12)
    rouge, rouge_each = coco_rouge(hyps, refs)
    ours_rouge, ours_rouge_each = rouge_l_scores(hyps, refs)
    assert ours_rouge == pytest.approx(rouge, rel=1e-12, abs=1e-15)
    assert ours_rouge_each == pytest.approx(rouge_each, rel=1e-12, abs=1e-15)


def test_the_fixed_corpus_scores_as_pycocoevalcap():
    hyps, refs = [h for h, _ in CORPUS], [r for _, r in CORPUS]
    assert_like_coco(hyps, refs)
    per_image = bleu4_scores(hyps, refs)[1]
    assert per_image[4] == pytest.approx(1.0) and per_image[5] == 0.0  # identical to a reference; no 4-gram


def test_where_an_order_has_no_match_ours_is_zero_and_cocos_is_small():
    hyps, refs = ["a a a a a a", "a cat"], [["a kitchen with a stove"], ["a cat on a mat"]]
    assert corpus_bleu4(hyps, refs) == 0.0 and 0 < coco(hyps, refs)[0] < 1e-3  # n-grams of every order
    hyps, refs = ["a red cat"], [["a red cat"]]  # no 4-gram at all: the largest difference
    assert corpus_bleu4(hyps, refs) == 0.0 and coco(hyps, refs)[0] == pytest.approx(1e-6**0.25, rel=1e-6)


def test_subsets_of_the_corpus_score_as_pycocoevalcap():
    """Each image alone, pairs, and the corpus without each image: df and brevity change with the corpus."""
    for i in range(len(CORPUS)):
        others = CORPUS[:i] + CORPUS[i + 1 :]
        for part in ([CORPUS[i]], CORPUS[i : i + 2], others):
            assert_like_coco([h for h, _ in part], [r for _, r in part])


WORDS = ["a", "the", "cat", "dog", "red", "on", "sofa", "big", "ball", "of"]
caption = st.lists(st.sampled_from(WORDS), min_size=0, max_size=12).map(" ".join)
image = st.tuples(caption, st.lists(caption.filter(bool), min_size=1, max_size=4))


@settings(max_examples=150, deadline=None)
@given(st.lists(image, min_size=1, max_size=6))
def test_random_corpora_score_as_pycocoevalcap(corpus):
    assert_like_coco([h for h, _ in corpus], [r for _, r in corpus])


@pytest.mark.parametrize(
    "text, tokens",
    [
        ("  A small\tRed  circle ", ["a", "small", "red", "circle"]),
        ("A cat on a sofa.", ["a", "cat", "on", "a", "sofa"]),
        ('A man\'s bike, "parked" (near a wall)!', ["a", "man", "'s", "bike", "parked", "near", "a", "wall"]),
        ("Dogs don't swim... they paddle; ok?", ["dogs", "do", "n't", "swim", "they", "paddle", "ok"]),
        ("A black-and-white photo of 3.5 cats - really", ["a", "black-and-white", "photo", "of", "3.5", "cats", "really"]),
        ("", []),
        ("...", []),
    ],
)
def test_tokens_as_coco_captions_ptb_tokenizer_gives_them(text, tokens):
    """What Stanford's PTBTokenizer (-lowerCase) gives, after coco-caption drops its punctuation list."""
    assert word_tokens(text) == tokens


def test_punctuation_and_case_do_not_change_a_score():
    refs = [["A cat on a sofa.", "A grey cat, asleep on a couch!"], ["Two dogs in a park."]]
    assert corpus_bleu4(["a cat on a sofa", "two dogs in a park"], refs) == pytest.approx(1.0)
    assert exact_match("A cat on a sofa", ["a CAT on a sofa."])
    assert not exact_match("a cat on a", ["a cat on a sofa"])


def test_metrics_refuse_captions_and_references_of_different_lengths():
    with pytest.raises(ValueError):
        corpus_bleu4(["a"], [])
    with pytest.raises(ValueError):
        cider_d(["a"], [["a"], ["b"]])


def test_rouge_l_of_known_captions():
    assert rouge_l(["a cat on a sofa"], [["A cat on a sofa."]]) == pytest.approx(1.0)
    assert rouge_l(["dog"], [["a cat on a sofa"]]) == 0.0
    assert rouge_l([""], [["a cat"]]) == 0.0
    # The best precision and the best recall are each taken over the references: here precision 1 comes
    # from the first and recall 1 from the second, so the caption scores 1 though it equals neither.
    assert rouge_l(["a cat sofa"], [["a cat on a sofa", "cat sofa"]]) == pytest.approx(1.0)
    score, (one,) = rouge_l_scores(["a cat big sofa"], [["a cat on a sofa"]])
    p, r, b = 3 / 4, 3 / 5, 1.2  # LCS "a cat sofa"
    assert score == one == pytest.approx((1 + b**2) * p * r / (r + b**2 * p))


def test_distinct_n_counts_unique_word_ngrams_as_the_captions_are_tokenized():
    """One distinct-n for the app's Compare table and the batch leaderboard: over word_tokens' words."""
    assert distinct_n(["a b c", "a b d"], 1) == pytest.approx(4 / 6)
    assert distinct_n(["a b c", "a b d"], 2) == pytest.approx(3 / 4)
    assert distinct_n(["a", ""], 2) == 0.0
    assert distinct_n(["A b", "a B"], 2) == 0.5  # case-insensitive
    assert distinct_n(["a cat.", "a cat!"], 2) == 0.5  # punctuation is not a word


@settings(max_examples=50, derandomize=True, deadline=None)
@given(st.lists(st.text(alphabet="ab .", max_size=12), max_size=5), st.integers(1, 3))
def test_distinct_n_is_a_share(captions, n):
    value = distinct_n(captions, n)
    grams = sum(max(0, len(word_tokens(c)) - n + 1) for c in captions)
    assert 0.0 <= value <= 1.0 and (value == 0.0) == (grams == 0)
