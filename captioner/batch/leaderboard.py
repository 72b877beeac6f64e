"""Several models on one collection: references from a CSV, and a leaderboard of the output's rows per model.

`read_references` reads a CSV (or Parquet) laid out as a list file: a `path` column and a `reference`
column (several references in one cell separated by '|', or one row per reference). `attach_references`
gives each item of a run its references. `leaderboard` scores every model of an output file over its
rows: BLEU-4, CIDEr-D and ROUGE-L (coco-caption's, over the rows with references), exact match, mean
length in words, distinct-1 and distinct-2 (unique n-grams over all n-grams of the model's captions),
and images per second (rows over the seconds their timings add up to).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from typing import Any, Iterable, Iterator, Mapping, Sequence

from captioner.batch.items import BatchItem, _absolute, _list_items, is_uri
from captioner.metrics import bleu4_scores, cider_d_scores, distinct_n, exact_match, rouge_l_scores, word_tokens

References = dict[str, tuple[str, ...]]


def _key(location: str) -> str:
    return location if is_uri(location) else _absolute(location)  # the batch's own rule for one local name


def read_references(location: str) -> References:
    """Image location -> its references, from a CSV or Parquet with `path` and `reference` columns (paths
    relative to the file's folder). Raises ValueError with one line when the file cannot be read."""
    references: References = {}
    problems: list[str] = []
    for item in _list_items(location):  # the batch's own list reading: its caps, encodings and refusals
        if item.problem:
            problems.append(item.problem)
        elif item.references:
            key = _key(item.path)
            references[key] = references.get(key, ()) + item.references
    if not references and problems:
        raise ValueError(f"the references {location} could not be read: {problems[0]}")
    if not references:
        raise ValueError(f"the references {location} hold no reference captions (a 'path' and a 'reference' column)")
    return references


def attach_references(items: Iterable[BatchItem], references: References) -> Iterator[BatchItem]:
    """The items, each with its references: matched by location, else by file name when that is unique."""
    by_name: dict[str, tuple[str, ...] | None] = {}
    for key, refs in references.items():
        name = os.path.basename(key)
        by_name[name] = None if name in by_name else refs  # None: two images share the name
    for item in items:
        refs = None if item.problem else (references.get(_key(item.name)) or by_name.get(os.path.basename(item.name)))
        yield replace(item, references=tuple(refs)) if refs else item


@dataclass(frozen=True)
class ModelScores:
    """One model's line of the leaderboard (scores are None where no row has references)."""

    model: str
    images: int  # captioned rows
    scored: int  # of them, with references
    bleu4: float | None
    cider_d: float | None
    rouge_l: float | None
    exact_match: float | None
    mean_length: float
    distinct_1: float
    distinct_2: float
    images_per_second: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "images": self.images,
            "with references": self.scored,
            "BLEU-4": self.bleu4,
            "CIDEr-D": self.cider_d,
            "ROUGE-L": self.rouge_l,
            "exact match": self.exact_match,
            "mean length": self.mean_length,
            "distinct-1": self.distinct_1,
            "distinct-2": self.distinct_2,
            "images/s": self.images_per_second,
        }


def _as_list(value: Any) -> list[str]:
    if isinstance(value, str):  # a CSV cell holds the list as JSON
        try:
            value = json.loads(value) if value else []
        except ValueError:
            return [value]
    return [str(v) for v in value or []]


def timings_seconds(timings: Any) -> float | None:
    """The seconds a row's image took, every stage (read, preprocess, encode, decode) together, from its
    `timings` (JSON text or a mapping); None when it has none or they cannot be read."""
    try:
        values = json.loads(timings) if isinstance(timings, str) else dict(timings or {})
        return float(sum(float(v) for v in values.values())) if values else None
    except (ValueError, TypeError, AttributeError):
        return None


def model_scores(model: str, rows: Sequence[Mapping[str, Any]]) -> ModelScores:
    """The leaderboard line of one model's ok rows."""
    captions = [str(r.get("caption") or "") for r in rows]
    scored = [(c, _as_list(r.get("references"))) for c, r in zip(captions, rows)]
    scored = [(c, refs) for c, refs in scored if refs]
    hyps, refs = [c for c, _ in scored], [r for _, r in scored]
    seconds = sum(timings_seconds(r.get("timings")) or 0.0 for r in rows)
    return ModelScores(
        model=model,
        images=len(rows),
        scored=len(scored),
        bleu4=bleu4_scores(hyps, refs)[0] if scored else None,
        cider_d=cider_d_scores(hyps, refs)[0] if scored else None,
        rouge_l=rouge_l_scores(hyps, refs)[0] if scored else None,
        exact_match=sum(exact_match(h, r) for h, r in scored) / len(scored) if scored else None,
        mean_length=sum(len(word_tokens(c)) for c in captions) / len(captions) if captions else 0.0,
        distinct_1=distinct_n(captions, 1),
        distinct_2=distinct_n(captions, 2),
        images_per_second=len(rows) / seconds if seconds > 0 else None,
    )


def leaderboard(records: Iterable[list[dict[str, Any]]], runs: Sequence[tuple[str, str]]) -> list[ModelScores]:
    """One line per (model name, run key) of `runs`, in that order, from an output's records (ok rows only)."""
    wanted = {key: [] for _, key in runs}
    for chunk in records:
        for r in chunk:
            if r.get("run_key") in wanted and r.get("status") == "ok":
                wanted[r["run_key"]].append(r)
    return [model_scores(name, wanted[key]) for name, key in runs]


def format_leaderboard(lines: Sequence[ModelScores]) -> str:
    """The leaderboard as an aligned text table, best CIDEr-D first (models without references last)."""
    order = sorted(lines, key=lambda s: (s.cider_d is None, -(s.cider_d or 0.0)))
    header = ["model", "images", "BLEU-4", "CIDEr-D", "ROUGE-L", "exact", "length", "distinct-1", "distinct-2", "images/s"]

    def number(x: float | None, digits: int = 4) -> str:
        return "-" if x is None else f"{x:.{digits}f}"

    table = [header] + [
        [
            s.model,
            f"{s.scored}/{s.images}",
            number(s.bleu4),
            number(s.cider_d),
            number(s.rouge_l),
            number(s.exact_match, 3),
            number(s.mean_length, 1),
            number(s.distinct_1, 3),
            number(s.distinct_2, 3),
            number(s.images_per_second, 2),
        ]
        for s in order
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths))) for row in table
    )
