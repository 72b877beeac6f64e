"""Caption metrics in pure Python: exact match, BLEU-4, CIDEr-D and ROUGE-L as coco-caption computes them.

The scores follow pycocoevalcap's `Bleu(4)`, `Cider` and `Rouge` scorers (the CIDEr-D variant: clipped
tf-idf vectors and a Gaussian length penalty); tests/unit/test_metrics.py holds them against
pycocoevalcap on a fixed set of captions. Two deliberate differences:

- Tokens: coco-caption runs Stanford's PTB tokenizer (Java) and drops punctuation; `word_tokens`
  does the same for everyday captions in Python: lower case, "dog's" -> "dog 's", "don't" ->
  "do n't", punctuation dropped, hyphenated words and numbers kept whole.
- BLEU-4 is exactly 0 when some n-gram order has no match, as BLEU is defined (and as NLTK and
  sacreBLEU give it without smoothing). pycocoevalcap adds 1e-15 to every match count and 1e-9 to
  every n-gram count to avoid dividing by zero, which leaves a small positive score there instead:
  below 0.001 when the caption has n-grams of every order, up to 0.032 for a caption under four words.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import NamedTuple

__all__ = ["bleu4_scores", "cider_d", "cider_d_scores", "corpus_bleu4", "distinct_n", "exact_match", "word_tokens"]

_CLITIC = re.compile(r"(?<=\w)(n't|'(?:s|re|ve|ll|d|m))\b")
_TOKEN = re.compile(r"n't|'(?:s|re|ve|ll|d|m)\b|\w+(?:[-./&']\w+)*|[^\w\s]+")
_PUNCTUATION = set(".,;:!?'\"`()[]{}-")  # what coco-caption drops after PTB tokenizing


def word_tokens(text: str) -> list[str]:
    """Lower-cased words with punctuation dropped, split like the PTB tokenizer coco-caption uses."""
    tokens = _TOKEN.findall(_CLITIC.sub(r" \1", text.lower()))
    return [t for t in tokens if not set(t) <= _PUNCTUATION]


def exact_match(hyp: str, refs: Sequence[str]) -> bool:
    """True when hyp equals one of refs after tokenizing (case, spacing and punctuation aside)."""
    return word_tokens(hyp) in [word_tokens(r) for r in refs]


def distinct_n(captions: Sequence[str], n: int) -> float:
    """Distinct-n (Li et al. 2016): unique n-grams over all n-grams of the captions' words (0 when they have none)."""
    grams = [tuple(t[i : i + n]) for t in map(word_tokens, captions) for i in range(len(t) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _check(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> None:
    if len(hyps) != len(refs):
        raise ValueError("hyps and refs differ in length")


# -- BLEU -------------------------------------------------------------------------------------------
class _BleuCounts(NamedTuple):
    matches: list[int]  # clipped n-gram matches, n = 1..4
    totals: list[int]  # n-grams in the hypothesis, n = 1..4
    hyp_len: int
    ref_len: int  # the closest reference length (the shorter one on ties)

    def __add__(self, other: "_BleuCounts") -> "_BleuCounts":  # type: ignore[override]
        return _BleuCounts(
            [a + b for a, b in zip(self.matches, other.matches)],
            [a + b for a, b in zip(self.totals, other.totals)],
            self.hyp_len + other.hyp_len,
            self.ref_len + other.ref_len,
        )

    def bleu(self) -> float:
        if self.hyp_len == 0 or min(self.matches) == 0:
            return 0.0
        log_precision = sum(math.log(m / t) for m, t in zip(self.matches, self.totals)) / 4
        brevity = 1.0 if self.hyp_len > self.ref_len else math.exp(1 - self.ref_len / self.hyp_len)
        return brevity * math.exp(log_precision)


def _bleu_counts(hyp: str, ref_texts: Sequence[str]) -> _BleuCounts:
    h = word_tokens(hyp)
    rs = [word_tokens(r) for r in ref_texts]
    ref_len = min((abs(len(r) - len(h)), len(r)) for r in rs)[1] if rs else 0
    matches, totals = [], []
    for n in range(1, 5):
        max_ref: Counter = Counter()
        for r in rs:
            max_ref |= _ngrams(r, n)
        matches.append(sum(min(c, max_ref[g]) for g, c in _ngrams(h, n).items()))
        totals.append(max(len(h) - n + 1, 0))
    return _BleuCounts(matches, totals, len(h), ref_len)


def bleu4_scores(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> tuple[float, list[float]]:
    """Corpus BLEU-4 and each caption's own BLEU-4, as pycocoevalcap's `Bleu(4)` returns them.

    Papineni et al. 2002: clipped n-gram precisions (counts summed over the corpus for the corpus
    score), uniform weights, brevity penalty with the closest reference length (the shorter on ties).
    """
    _check(hyps, refs)
    per_image = [_bleu_counts(h, r) for h, r in zip(hyps, refs)]
    corpus = sum(per_image, _BleuCounts([0] * 4, [0] * 4, 0, 0))
    return corpus.bleu(), [c.bleu() for c in per_image]


def corpus_bleu4(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU-4 (see `bleu4_scores`); 0 when some n-gram order has no match."""
    return bleu4_scores(hyps, refs)[0]


# -- CIDEr-D ----------------------------------------------------------------------------------------
def _cider_vector(counts: Counter, doc_freq: Counter, log_n_images: float, n: int):
    """tf-idf vectors per n-gram order, their norms, and the 'length' coco-caption uses
    (the number of bigrams, kept as in the reference implementation)."""
    vec: list[dict] = [{} for _ in range(n)]
    norm = [0.0] * n
    length = 0
    for gram, tf in counts.items():
        k = len(gram) - 1
        vec[k][gram] = tf * (log_n_images - math.log(max(1.0, doc_freq[gram])))
        norm[k] += vec[k][gram] ** 2
        if k == 1:
            length += tf
    return vec, [math.sqrt(x) for x in norm], length


def cider_d_scores(
    hyps: Sequence[str], refs: Sequence[Sequence[str]], n: int = 4, sigma: float = 6.0
) -> tuple[float, list[float]]:
    """CIDEr-D of the corpus and of each caption, as pycocoevalcap's `Cider` returns them.

    Document frequencies come from the references of this corpus, idf = log(#images) - log(df); per
    image the score is the mean over references of the sum over n = 1..4 of the cosine of clipped
    tf-idf vectors times a Gaussian length penalty (sigma 6), divided by n, times 10; the corpus
    score is the mean over images. So a caption's score depends on the corpus it is scored in, and
    like the original it is 0 for a one-image corpus (every idf is 0).
    """
    _check(hyps, refs)
    if not hyps:
        return 0.0, []

    def cook(text: str) -> Counter:
        tokens = word_tokens(text)
        counts: Counter = Counter()
        for k in range(1, n + 1):
            counts.update(_ngrams(tokens, k))
        return counts

    cooked_refs = [[cook(r) for r in rs] for rs in refs]
    doc_freq: Counter = Counter()
    for rs in cooked_refs:
        doc_freq.update(set(g for r in rs for g in r))
    log_n_images = math.log(float(len(hyps)))

    scores = []
    for hyp, rs in zip(hyps, cooked_refs):
        vh, nh, lh = _cider_vector(cook(hyp), doc_freq, log_n_images, n)
        total = 0.0
        for r in rs:
            vr, nr, lr = _cider_vector(r, doc_freq, log_n_images, n)
            penalty = math.exp(-((lh - lr) ** 2) / (2 * sigma**2))
            for k in range(n):
                val = sum(min(w, vr[k].get(g, 0.0)) * vr[k].get(g, 0.0) for g, w in vh[k].items())
                if nh[k] != 0 and nr[k] != 0:
                    val /= nh[k] * nr[k]
                total += val * penalty
        scores.append(total / n / len(rs) * 10.0 if rs else 0.0)
    return sum(scores) / len(scores), scores


def cider_d(hyps: Sequence[str], refs: Sequence[Sequence[str]], n: int = 4, sigma: float = 6.0) -> float:
    """CIDEr-D of the corpus (see `cider_d_scores`)."""
    return cider_d_scores(hyps, refs, n, sigma)[0]


# -- ROUGE-L ----------------------------------------------------------------------------------------
ROUGE_BETA = 1.2  # coco-caption's weight of recall over precision


def _lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists (one row of the table at a time)."""
    if len(a) < len(b):
        a, b = b, a
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l_scores(hyps: Sequence[str], refs: Sequence[Sequence[str]], beta: float = ROUGE_BETA) -> tuple[float, list[float]]:
    """ROUGE-L of the corpus and of each caption, as pycocoevalcap's `Rouge` returns them.

    Per image: the best precision and the best recall of the longest common subsequence over the
    references (each maximised on its own), combined as an F-measure with recall weighted `beta`;
    the corpus score is the mean over images. An empty caption (or reference) scores 0 against it.
    """
    _check(hyps, refs)
    scores = []
    for hyp, rs in zip(hyps, refs):
        tokens = word_tokens(hyp)
        precision = recall = 0.0
        for r in rs:
            ref_tokens = word_tokens(r)
            if tokens and ref_tokens:
                lcs = _lcs_length(ref_tokens, tokens)
                precision, recall = max(precision, lcs / len(tokens)), max(recall, lcs / len(ref_tokens))
        if precision and recall:
            scores.append((1 + beta**2) * precision * recall / (recall + beta**2 * precision))
        else:
            scores.append(0.0)
    return (sum(scores) / len(scores) if scores else 0.0), scores


def rouge_l(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    """ROUGE-L of the corpus (see `rouge_l_scores`)."""
    return rouge_l_scores(hyps, refs)[0]
