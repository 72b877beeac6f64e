"""The Compare page's tables and note: one row per decoding configuration, every sample, every beam.

Log-prob is the model's own yardstick for every row; score is what each strategy ranked by (`compare_note`).
"""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from captioner.app.views.text import config_label, score_basis
from captioner.decoding import Caption, DecodeResult
from captioner.metrics import distinct_n

# The units of the Compare tables' number columns, in their headers on the page (the files keep plain names).
COMPARE_HEADERS = {"log-prob": "log-prob (nats)", "score": "score (nats)", "time (s)": "time (s)"}


def num_tokens(caption: Caption) -> int:
    """Generated tokens, the end token included: what the score's length penalty divides by."""
    return len(caption.token_ids)


def compare_note(length_penalty: float) -> str:
    """What the Compare tables' numbers are, in words that hold for every row (greedy, beam and sampled)."""
    return (
        "**log-prob (nats)**: the model's own log-probability of the caption, summed over its tokens: the "
        "same yardstick for every row, so compare rows by log-prob. **score (nats)**: what the strategy ranked its "
        "candidates by: the log-probabilities of the distribution it chose from, after the processors named "
        "in *score uses* (temperature, top-k, top-p, repetition penalty, no-repeat n-grams), summed and divided "
        f"by tokens ** length penalty ({length_penalty:g}). Where *score uses* says *model's own* and the "
        "penalty is 0 it equals the log-prob; otherwise it can be higher or lower. **tokens** count the end token."
    )


def with_units(table: pd.DataFrame) -> pd.DataFrame:
    """`table` with COMPARE_HEADERS as its column names."""
    return table.rename(columns=COMPARE_HEADERS)


def comparison_table(results: Sequence[DecodeResult]) -> pd.DataFrame:
    """One row per configuration: its best caption, log-probability, score (and what it uses), tokens, time."""
    rows = []
    for r in results:
        texts = [c.text for c in r.captions]
        rows.append(
            {
                "strategy": config_label(r.config),
                "caption": r.best.text + (" ✂" if r.best.hit_limit else ""),
                "log-prob": round(r.best.logprob, 3),
                "score": round(r.best.score, 3),
                "score uses": score_basis(r.config),
                "tokens": num_tokens(r.best),
                "confidence": round(r.best.confidence, 3),
                "samples": len(r.captions),
                "seed": str(r.config.seed) if r.config.strategy == "sample" else "",  # text: 2**64 - 1 in full
                "distinct-1": round(distinct_n(texts, 1), 3) if len(texts) > 1 else None,
                "distinct-2": round(distinct_n(texts, 2), 3) if len(texts) > 1 else None,
                "time (s)": round(r.timings.get("decode", 0.0), 3),
            }
        )
    table = pd.DataFrame(rows)
    if len(table) > 1 and table["time (s)"].nunique() == 1:  # decoded in one call: its time is said once
        table = table.drop(columns="time (s)")
    return table


def samples_table(results: Sequence[DecodeResult]) -> pd.DataFrame:
    """Every sample of the sampling configurations."""
    return _captions_table(results, "sample", ["strategy", "sample", "caption", "log-prob", "score", "tokens"])


def beams_table(results: Sequence[DecodeResult]) -> pd.DataFrame:
    """Every finished beam hypothesis of the beam configurations, best first, with its score."""
    return _captions_table(results, "beam", ["strategy", "rank", "caption", "score", "log-prob", "tokens", "ended"])


def _captions_table(results: Sequence[DecodeResult], strategy: str, columns: list[str]) -> pd.DataFrame:
    """The captions of the `strategy` configurations (their samples, or their beams best first), numbered
    in the column after "strategy", with the given columns in that order."""
    rows = []
    for r in results:
        if r.config.strategy != strategy:
            continue
        for i, c in enumerate(r.beams if strategy == "beam" else r.captions):
            cells = {
                "strategy": config_label(r.config),
                columns[1]: i + 1,
                "caption": c.text,
                "score": round(c.score, 4),
                "log-prob": round(c.logprob, 3),
                "tokens": num_tokens(c),
                "ended": c.finished,
            }
            rows.append({k: cells[k] for k in columns})
    return pd.DataFrame(rows, columns=columns)


def every_caption_table(results: Sequence[DecodeResult]) -> pd.DataFrame:
    """Every caption of every configuration (each sample, each finished beam): what Compare's CSV holds."""
    rows = []
    for r in results:
        kind = {"beam": "beam", "sample": "sample"}.get(r.config.strategy, "greedy")
        for i, c in enumerate(r.beams if r.config.strategy == "beam" else r.captions):
            rows.append(
                {
                    "strategy": config_label(r.config),
                    "kind": kind,
                    "rank": i + 1,
                    "caption": c.text,
                    "log-prob": c.logprob,
                    "score": c.score,
                    "score uses": score_basis(r.config),
                    "tokens": num_tokens(c),
                    "ended": c.finished,
                    "confidence": c.confidence,
                }
            )
    return pd.DataFrame(rows)
