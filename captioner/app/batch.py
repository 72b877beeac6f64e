"""The Batch page's work without Streamlit: uploads in, rows out.

The page calls two functions, `expand_uploads` and `caption_items`; when `captioner.batch` (the
batch command's implementation) lands, these two become thin calls into it.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from dataclasses import dataclass
from typing import ContextManager, Iterator, Sequence

from PIL import Image

from captioner.archives import ArchiveError, read_image_archive
from captioner.config import DecodingConfig
from captioner.decoding import decode, encode_image
from captioner.images import ImageLoadError, load_image
from captioner.models.base import CaptionModel

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BatchItem:
    """One image file to caption (a zip's entries are named `archive.zip/inner/name.png`)."""

    name: str
    data: bytes

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()[:16]


@dataclass
class BatchRow:
    """One file of a batch: a caption, or the reason it got none."""

    name: str
    caption: str = ""
    score: float | None = None
    logprob: float | None = None
    confidence: float | None = None
    hit_limit: bool = False
    out_of_world: bool | None = None
    seconds: float | None = None
    image: Image.Image | None = None  # a small copy for the table's thumbnail
    problem: str = ""
    references: tuple[str, ...] = ()


def expand_uploads(files: Sequence[tuple[str, bytes]]) -> tuple[list[BatchItem], list[BatchRow]]:
    """Files and zip archives -> the image files to caption, and rows for what cannot be used."""
    items: list[BatchItem] = []
    problems: list[BatchRow] = []
    for name, data in files:
        if not name.lower().endswith(".zip"):
            items.append(BatchItem(name, data))
            continue
        try:
            contents = read_image_archive(data)
        except ArchiveError as e:
            problems.append(BatchRow(name, problem=str(e)))
            continue
        items += [BatchItem(f"{name}/{inner}", content) for inner, content in contents.images]
        problems += [BatchRow(f"{name}/{inner}", problem=why) for inner, why in contents.skipped]
    return items, problems


def caption_items(model: CaptionModel, items: Sequence[BatchItem], config: DecodingConfig,
                  lock: ContextManager | None = None) -> Iterator[BatchRow]:
    """One row per item, in order, as each is captioned; a file that fails gets its reason and the others go on.

    `lock` is held around each image's model work (sessions of the app share one model).
    """
    config = config.with_(output_attentions=False, num_alternatives=1).validate()
    for item in items:
        yield _caption_one(model, item, config, lock or contextlib.nullcontext())


def _caption_one(model: CaptionModel, item: BatchItem, config: DecodingConfig, lock: ContextManager) -> BatchRow:
    try:
        image = load_image(item.data)
        t0 = time.perf_counter()
        with lock:
            best = decode(model, encode_image(model, image), [config])[0].best
        seconds = time.perf_counter() - t0
    except ImageLoadError as e:
        return BatchRow(item.name, problem=str(e))
    except Exception as e:  # one broken image must not stop the batch
        log.exception("captioning %s failed", item.name)
        return BatchRow(item.name, problem=f"could not be captioned ({type(e).__name__})")
    image.thumbnail((96, 96))
    return BatchRow(item.name, best.text, best.score, best.logprob, best.confidence, best.hit_limit,
                    best.out_of_world, seconds, image)
