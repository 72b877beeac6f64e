"""Items in, rows out: the one batch function that the command, the Ray workers and the Batch page run.

A chunk of items is read (bytes, content hash, `load_image`), captioned together by
`captioner.decoding.caption_images` (one batched decode where the engine batches), and turned into
one `CaptionRow` per item. A file that can't be read or decoded, or an image the model fails on,
is a row with `status="error"` and the message; the other images of the chunk go on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from contextlib import nullcontext
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Container, ContextManager, Iterable, Iterator, Sequence, TypeVar

from PIL import Image

from captioner.batch.identity import model_fingerprint
from captioner.batch.items import BatchItem, read_item
from captioner.config import DecodingConfig
from captioner.errors import unforeseen_line
from captioner.files import escape_name
from captioner.decoding import DecodeResult, caption_images
from captioner.images import ImageLoadError, load_image
from captioner.metrics import bleu4_scores, cider_d_scores
from captioner.models.base import CaptionModel

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 8
MAX_BATCH_SIZE = 64  # images decoded and held together: 64 photos of 1024 x 768 take about 150 MB
# Decoding records the engine can skip in a batch: rows keep the caption, its probabilities and scores.
_LEAN = {"output_attentions": False, "num_alternatives": 1}


@dataclass
class CaptionRow:
    """One input image's row in the output (Parquet, CSV, JSON Lines) and on the Batch page."""

    path: str  # the item's name (files.escape_name): its location, or "/abs/archive.zip/inner/photo.png"
    sha256: str | None = None  # of the file's bytes (None when they could not be read whole)
    width: int | None = None
    height: int | None = None
    caption: str | None = None  # the best caption
    captions: list[str] = field(default_factory=list)  # every returned caption, best first
    score: float | None = None  # the search's score of the best caption
    logprob: float | None = None  # its sum of token log-probabilities
    token_count: int | None = None  # its generated tokens, the end token not counted
    confidence: float | None = None  # Caption.confidence, in [0, 1]
    out_of_world: bool | None = None  # Caption.out_of_world (None: the model has no calibration)
    hit_limit: bool | None = None  # stopped at max_new_tokens
    references: list[str] = field(default_factory=list)
    timings: str = "{}"  # JSON: seconds per stage (read, preprocess, encode, decode)
    model: str = ""  # the model's name
    settings: str = ""  # JSON: the dtype and every decoding setting used
    run_key: str = ""  # hash of the model's weights and the settings: resume skips rows with the same key
    status: str = "ok"  # "ok" or "error" (in a run's journal also "references": references for a row captioned before)
    error: str | None = None  # why there is no caption
    # For the Batch page only (not written to files):
    bleu4: float | None = field(default=None, metadata={"written": False})
    cider_d: float | None = field(default=None, metadata={"written": False})
    thumbnail: Image.Image | None = field(default=None, repr=False, compare=False, metadata={"written": False})

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_record(self) -> dict[str, Any]:
        """The written columns (OUTPUT_COLUMNS) as a plain dict."""
        return {name: getattr(self, name) for name in OUTPUT_COLUMNS}


OUTPUT_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(CaptionRow) if f.metadata.get("written", True))
# Column -> type name ("str", "int", "float", "bool", "list[str]"), read from the annotations.
COLUMN_TYPES: dict[str, str] = {
    f.name: str(f.type).replace(" | None", "") for f in fields(CaptionRow) if f.name in OUTPUT_COLUMNS
}


@dataclass(frozen=True)
class BatchRun:
    """What every row of a run records about how it was captioned; `run_key` is what resume compares:
    the model's content (identity.model_fingerprint: weights and vocabulary, not the path) and the settings."""

    model: str
    settings: str
    run_key: str

    @classmethod
    def of(cls, model: CaptionModel, config: DecodingConfig) -> "BatchRun":
        info = model.info
        settings = config.cache_key(leave_out=_LEAN, dtype=info.dtype)
        identity = json.dumps([info.family, model_fingerprint(model), settings])
        return cls(info.name, settings, hashlib.sha256(identity.encode()).hexdigest()[:16])


def batch_config(model: CaptionModel, config: DecodingConfig) -> DecodingConfig:
    """The settings a batch decodes with: no attention maps or alternatives, at most the model's limit."""
    return config.with_(**_LEAN).validate().within_limit(model.max_new_tokens_limit)[0]


def done_key(path: str, sha256: str | None) -> bytes:
    """The key resume keeps for an image captioned with the run's settings: its location (the row's
    `path`, absolute) and its content."""
    return hashlib.blake2b(f"{path}\0{sha256}".encode(), digest_size=12).digest()


# -- the batch function -------------------------------------------------------------------------------
def caption_chunk(
    model: CaptionModel,
    items: Sequence[BatchItem],
    config: DecodingConfig,
    run: BatchRun,
    *,
    skip: Container[bytes] = frozenset(),
    seen: set[bytes] | None = None,
    thumbnail_side: int = 0,
    on_skipped_references: Callable[[CaptionRow], None] | None = None,
) -> tuple[list[CaptionRow], int]:
    """Rows for one chunk of items, in order, and how many items were skipped.

    `config` should come from `batch_config`. An item whose `done_key` is in `skip` (captioned with
    these settings before) or in `seen` is skipped; the keys of this chunk's images are added to
    `seen`, so an image listed twice in a run is captioned once. A skipped item that brings references
    is passed to `on_skipped_references` as a row with status "references" (references are data of
    the image: the output merges them into its row). `thumbnail_side` > 0 keeps a small copy of each
    image in its row.
    """
    rows: list[CaptionRow] = []
    images: list[tuple[CaptionRow, Image.Image]] = []
    skipped = 0
    for item in items:
        row = CaptionRow(
            escape_name(item.name), references=list(item.references), model=run.model, settings=run.settings, run_key=run.run_key
        )
        t0 = time.perf_counter()
        try:
            data = read_item(item)
            row.sha256 = hashlib.sha256(data).hexdigest()
            if not _first_time(done_key(row.path, row.sha256), skip, seen):
                skipped += 1
                if row.references and on_skipped_references is not None:
                    row.status = "references"
                    on_skipped_references(row)
                continue
            image = load_image(data)
        except Exception as e:  # whatever reading throws, this image is an error row and the others go on
            rows.append(_read_failure(row, e))
            continue
        rows.append(_with_image(row, image, time.perf_counter() - t0, thumbnail_side))
        images.append((row, image))
    for (row, _), result in zip(images, _caption_all(model, [image for _, image in images], config)):
        _fill(row, result)
    return rows, skipped


def _first_time(key: bytes, skip: Container[bytes], seen: set[bytes] | None) -> bool:
    """False for an image captioned before (its key in `skip`) or earlier in this run (in `seen`); else
    True, and the key is added to `seen`."""
    if key in skip or (seen is not None and key in seen):
        return False
    if seen is not None:
        seen.add(key)
    return True


def _read_failure(row: CaptionRow, e: Exception) -> CaptionRow:
    """The row of an item that could not be read or decoded: an image's own message, or the error's type and line."""
    if isinstance(e, ImageLoadError):
        return _failed(row, str(e), keep_hash=e.reason != "too_large")
    log.exception("reading %s failed", row.path)
    return _failed(row, f"could not be read: {unforeseen_line(e)}")


def _with_image(row: CaptionRow, image: Image.Image, read_seconds: float, thumbnail_side: int) -> CaptionRow:
    """The row with the image's size, the time reading took and, when `thumbnail_side` > 0, a small copy."""
    row.width, row.height = image.size
    row.timings = json.dumps({"read": read_seconds})
    if thumbnail_side > 0:
        row.thumbnail = image.copy()
        row.thumbnail.thumbnail((thumbnail_side, thumbnail_side))
    return row


def _caption_all(model: CaptionModel, images: list[Image.Image], config: DecodingConfig) -> list[DecodeResult | str]:
    """Each image's result, batched; if the batch fails, image by image, so that one bad image is one error."""
    if not images:
        return []
    try:
        return [per_image[0] for per_image in caption_images(model, images, [config])]
    except Exception as e:  # MemoryError included
        if len(images) == 1:
            log.exception("captioning an image failed")
            return [_failure_message(e)]
    return [_caption_all(model, [image], config)[0] for image in images]


def _failure_message(e: Exception) -> str:
    if isinstance(e, MemoryError):
        return "could not be captioned: out of memory"
    return f"could not be captioned: {unforeseen_line(e)}"


def _fill(row: CaptionRow, result: DecodeResult | str) -> None:
    if isinstance(result, str):
        _failed(row, result)
        return
    best = result.best
    row.caption, row.captions = best.text, [c.text for c in result.captions]
    row.score, row.logprob = best.score, best.logprob
    row.token_count = len(best.token_ids) - (1 if best.finished else 0)
    row.confidence, row.out_of_world, row.hit_limit = best.confidence, best.out_of_world, best.hit_limit
    row.timings = json.dumps({**json.loads(row.timings), **result.timings})


def _failed(row: CaptionRow, message: str, keep_hash: bool = True) -> CaptionRow:
    row.status, row.error = "error", message
    if not keep_hash:
        row.sha256 = None
    return row


# -- the Batch page's entry points --------------------------------------------------------------------
T = TypeVar("T")


def chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of `size` items (the last one shorter)."""
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def caption_items(
    model: CaptionModel,
    items: Sequence[BatchItem],
    config: DecodingConfig,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    model_lock: ContextManager | None = None,
    thumbnail_side: int = 0,
) -> list[CaptionRow]:
    """Caption items with any decoding settings: one row per item, in order (the Batch page's work).

    `model_lock` is held while a chunk of `batch_size` items is captioned, so that other users of a
    shared model take turns between chunks. No item is skipped: resume is the command's business.
    """
    config = batch_config(model, config)
    run = BatchRun.of(model, config)
    rows: list[CaptionRow] = []
    for chunk in chunks(items, max(1, batch_size)):
        with model_lock if model_lock is not None else nullcontext():
            rows += caption_chunk(model, chunk, config, run, thumbnail_side=thumbnail_side)[0]
    return rows


@dataclass(frozen=True)
class ReferenceScores:
    """Corpus BLEU-4 and CIDEr-D over the captioned images that have references."""

    images: int
    bleu4: float
    cider_d: float

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "BLEU-4": self.bleu4, "CIDEr-D": self.cider_d}


def reference_scores(captions: Sequence[str], references: Sequence[Sequence[str]]) -> ReferenceScores | None:
    """BLEU-4 and CIDEr-D of a corpus (None when it is empty)."""
    if not captions:
        return None
    return ReferenceScores(len(captions), bleu4_scores(captions, references)[0], cider_d_scores(captions, references)[0])


def score_rows(rows: Sequence[CaptionRow]) -> tuple[list[CaptionRow], ReferenceScores | None]:
    """The rows with per-image `bleu4` and `cider_d` set where a caption has references, and the corpus scores.

    Per-image CIDEr-D depends on the corpus (its idf comes from all the references), as in coco-caption.
    """
    scored = [i for i, r in enumerate(rows) if r.ok and r.references and r.caption is not None]
    captions = [rows[i].caption or "" for i in scored]
    references = [rows[i].references for i in scored]
    out = list(rows)
    if not scored:
        return out, None
    bleu, bleu_each = bleu4_scores(captions, references)
    cider, cider_each = cider_d_scores(captions, references)
    for i, b, c in zip(scored, bleu_each, cider_each):
        out[i] = replace(rows[i], bleu4=b, cider_d=c)
    return out, ReferenceScores(len(scored), bleu, cider)
