"""A run's rows read back: which images are captioned already, which row takes another's place, and
references that arrived for an image captioned before.

Written once for both kinds of output: a local file with its journal (`outputs.OutputFile`) and a
Ray job's folder of Parquet files (`parquet_folder.ParquetFolder`). Records are rows as read back
(plain dicts), a chunk at a time.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from captioner.batch.formats import as_list
from captioner.batch.rows import ReferenceScores, done_key, reference_scores

Records = Iterable[list[dict[str, Any]]]
Slot = tuple[str, str]  # (run key, path): an output holds one row per image and settings


def captioned(record: Mapping[str, Any], run_key: str) -> bool:
    """A row that holds a caption made with this run key's model and settings."""
    return record.get("run_key") == run_key and record.get("status") == "ok"


def done_keys_of(chunks: Records, run_key: str) -> set[bytes]:
    """The `rows.done_key` of every image captioned with this run key: what resume skips."""
    return {done_key(r["path"], r["sha256"]) for chunk in chunks for r in chunk if captioned(r, run_key)}


def scores_of(chunks: Records, run_key: str) -> ReferenceScores | None:
    """BLEU-4 and CIDEr-D over the images captioned with this run key that have references."""
    captions, references = [], []
    for chunk in chunks:
        for r in chunk:
            refs = as_list(r.get("references"))
            if captioned(r, run_key) and refs:
                captions.append(r.get("caption") or "")
                references.append(refs)
    return reference_scores(captions, references)


def row_slot(record: Mapping[str, Any]) -> Slot:
    """Where a row belongs: a newer row for the same image and run key (an error tried again) takes its place."""
    return (record["run_key"], record["path"])


def merged_references(old: list[str], new: Iterable[str]) -> list[str]:
    """References in order, each once: the old ones, then the new ones not among them."""
    return old + [r for r in new if r not in old]


def add_references(added: dict[Slot, list[str]], record: Mapping[str, Any]) -> None:
    """Keep the references a row with status "references" brings for its image's row."""
    slot = row_slot(record)
    added[slot] = merged_references(added.get(slot, []), record.get("references") or [])


def with_references(record: dict[str, Any], added: Mapping[Slot, list[str]]) -> dict[str, Any]:
    """A row with the references that arrived for it merged in."""
    more = added.get(row_slot(record))
    if not more:
        return record
    return {**record, "references": merged_references(as_list(record.get("references")), more)}
