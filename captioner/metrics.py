"""Caption metrics in pure Python: exact match, BLEU-4, CIDEr-D.

Tokens are lower-cased whitespace-separated words (no PTB tokenizer, no Java):
the scene world has no punctuation, so this matches what coco-caption would do.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence


def word_tokens(text: str) -> list[str]:
    """Lower-cased whitespace tokens."""
    return text.lower().split()


def exact_match(hyp: str, refs: Sequence[str]) -> bool:
    """True when hyp equals one of refs after case and whitespace normalisation."""
    return word_tokens(hyp) in [word_tokens(r) for r in refs]


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def corpus_bleu4(hyps: Sequence[str], refs: Sequence[Sequence[str]]) -> float:
    """Corpus BLEU-4 (Papineni et al. 2002): clipped n-gram precisions summed over the
    corpus, uniform weights, brevity penalty with the closest reference length
    (the shorter one on ties). No smoothing: 0 when some n-gram order has no match.
    """
    if len(hyps) != len(refs):
        raise ValueError("hyps and refs differ in length")
    matches, totals = [0] * 4, [0] * 4
    hyp_len = ref_len = 0
    for hyp, ref_texts in zip(hyps, refs):
        h = word_tokens(hyp)
        rs = [word_tokens(r) for r in ref_texts]
        hyp_len += len(h)
        ref_len += min((abs(len(r) - len(h)), len(r)) for r in rs)[1] if rs else 0
        for n in range(1, 5):
            counts = _ngrams(h, n)
            max_ref: Counter = Counter()
            for r in rs:
                max_ref |= _ngrams(r, n)
            matches[n - 1] += sum(min(c, max_ref[g]) for g, c in counts.items())
            totals[n - 1] += max(len(h) - n + 1, 0)
    if hyp_len == 0 or min(matches) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals)) / 4
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    return brevity * math.exp(log_precision)


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


def cider_d(hyps: Sequence[str], refs: Sequence[Sequence[str]], n: int = 4, sigma: float = 6.0) -> float:
    """CIDEr-D as in coco-caption (`pycocoevalcap/cider`), on whitespace tokens.

    Document frequencies come from the references of this corpus, idf =
    log(#images) - log(df); per image the score is the mean over references of
    the sum over n = 1..4 of the cosine of clipped tf-idf vectors times a
    Gaussian length penalty (sigma 6), divided by n, times 10; the result is the
    mean over images. Like the original it is 0 for a one-image corpus.
    """
    if len(hyps) != len(refs):
        raise ValueError("hyps and refs differ in length")
    if not hyps:
        return 0.0

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
    return sum(scores) / len(scores)
