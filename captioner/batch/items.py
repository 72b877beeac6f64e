"""What a batch captions: items listed from folders, globs, zip files, list files, URIs or uploads.

An item only says where its bytes are (a file, an entry of a zip, bytes in memory) and which
references it has; `read_item` fetches the bytes when the item's turn comes, so a run holds one
chunk of images at a time. Anything that can't be used becomes an item with a `problem`: a row
with its error, never a failed run.

Locations are local paths or the URIs `captioner.batch.locations` allows (`s3://bucket/images/`,
`gs://...`, `file:///...`), read alike by `captioner.batch.storage`; pyarrow is imported only when a
URI or a Parquet list is read.
"""

from __future__ import annotations

import functools
import glob
import os
from dataclasses import asdict, dataclass, replace
from typing import Any, Iterable, Iterator, Sequence

from captioner.archives import DEFAULT_MAX_TOTAL_BYTES, ArchiveError, read_image_archive
from captioner.batch.lists import MAX_LIST_BYTES, REFERENCE_SEPARATOR, Entry, parquet_entries, text_entries
from captioner.batch.locations import LocationRefused, file_uri_path, filesystem_of, is_uri, scheme_of
from captioner.batch.storage import (
    absolute,
    files_under,
    kind_of,
    location_name,
    open_location,
    read_location,
    signature_of,
    size_of,
)
from captioner.errors import one_line
from captioner.files import escape_name, format_bytes, unescape_name
from captioner.images import IMAGE_EXTENSIONS, ImageLoadError

__all__ = [
    "REFERENCE_SEPARATOR",
    "BatchItem",
    "archive_items",
    "count_items",
    "expand_uploads",
    "iter_items",
    "list_items",
    "read_item",
]

LIST_EXTENSIONS = (".txt", ".csv", ".parquet")


@dataclass(frozen=True)
class BatchItem:
    """One image to caption, or the reason an input gives none."""

    name: str  # what its row calls it: the location, or "/abs/archive.zip/inner/photo.png"
    path: str = ""  # the file (or zip) to read; "" when `data` holds the bytes
    member: str = ""  # the entry of the zip at `path`
    data: bytes | None = None  # bytes already in memory: an upload, an entry of an uploaded zip
    references: tuple[str, ...] = ()  # reference captions, for BLEU-4 and CIDEr-D
    problem: str = ""  # why this cannot be captioned; the row becomes an error row

    def to_record(self) -> dict[str, Any]:
        """A plain dict without the bytes (what a Ray dataset holds); names escaped as UTF-8 (files.escape_name)."""
        return {
            **asdict(self),
            "data": None,
            "references": list(self.references),
            "name": escape_name(self.name),
            "path": escape_name(self.path),
            "member": escape_name(self.member),
            "problem": escape_name(self.problem),
        }

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "BatchItem":
        names = {k: unescape_name(record.get(k) or "") for k in ("name", "path", "member", "problem")}
        return cls(**{**record, **names, "references": tuple(record.get("references") or ())})


# -- inputs -> items ----------------------------------------------------------------------------------
def iter_items(inputs: Iterable[str], *, keep_archive_bytes: bool = True) -> Iterator[BatchItem]:
    """The items of the command line's inputs, in order: folders (recursively, image files only),
    globs, zip files, list files (.txt, .csv, .parquet), single images, URIs.

    `keep_archive_bytes`: zip entries carry their bytes (a local run captions them next);
    otherwise they name their entry and `read_item` unpacks it again (a Ray worker).
    """
    for spec in inputs:
        yield from _items_of(spec, keep_archive_bytes)


def count_items(inputs: Iterable[str]) -> int:
    """How many items `iter_items` gives (for a progress bar; zips are read, their bytes dropped)."""
    return sum(1 for _ in iter_items(inputs, keep_archive_bytes=False))


def _items_of(spec: str, keep_archive_bytes: bool) -> Iterator[BatchItem]:
    try:
        yield from _expand(spec, keep_archive_bytes)
    except Exception as e:  # a refused URI; pyarrow's own errors (scheme, credentials, network); a folder gone
        yield BatchItem(spec, path=spec, problem=f"{spec} could not be listed: {one_line(e)}")


def _expand(spec: str, keep_archive_bytes: bool) -> Iterator[BatchItem]:
    kind = kind_of(spec)
    if kind == "missing" and not is_uri(spec) and glob.has_magic(spec):
        matches = sorted(glob.glob(spec, recursive=True))  # the pattern as given: the cwd's name may hold [ or *
        if not matches:
            yield BatchItem(spec, problem=f"No file matches {spec}")
        for match in matches:
            if os.path.isdir(match):
                continue  # `**` also matches folders; their images match the pattern on their own
            yield from _file_items(absolute(match), keep_archive_bytes)
        return
    spec = location_name(spec)
    if kind == "missing":
        yield BatchItem(spec, path=spec, problem=f"No such file or folder: {spec}")
    elif kind == "folder":
        for location in files_under(spec):
            if location.lower().endswith(IMAGE_EXTENSIONS):
                yield BatchItem(location, path=location)
    else:
        yield from _file_items(spec, keep_archive_bytes)


def _file_items(location: str, keep_archive_bytes: bool) -> Iterator[BatchItem]:
    lower = location.lower()
    if lower.endswith(".zip"):
        yield from _zip_items(location, keep_archive_bytes)
    elif lower.endswith(LIST_EXTENSIONS):
        yield from list_items(location)
    else:  # named on its own: an image whatever its extension (load_image judges)
        yield BatchItem(location, path=location)


def _zip_items(location: str, keep_archive_bytes: bool) -> Iterator[BatchItem]:
    try:
        data = read_location(location, DEFAULT_MAX_TOTAL_BYTES)
        if len(data) > DEFAULT_MAX_TOTAL_BYTES:
            raise ArchiveError(
                f"The archive is larger than {format_bytes(DEFAULT_MAX_TOTAL_BYTES)}: unpack it and pass the folder instead."
            )
    except (ImageLoadError, ArchiveError) as e:
        yield BatchItem(location, path=location, problem=str(e))
        return
    for item in archive_items(location, data, path=location):
        yield item if keep_archive_bytes else replace(item, data=None)


def archive_items(name: str, data: bytes, path: str = "") -> list[BatchItem]:
    """The images of a zip (read safely by captioner.archives), then its skipped entries as problems."""
    try:
        contents = read_image_archive(data)
    except ArchiveError as e:
        return [BatchItem(name, path=path, problem=str(e))]
    items = [BatchItem(f"{name}/{inner}", path=path, member=inner, data=content) for inner, content in contents.images]
    return items + [BatchItem(f"{name}/{inner}", problem=why) for inner, why in contents.skipped]


def expand_uploads(files: Sequence[tuple[str, bytes]]) -> list[BatchItem]:
    """Uploaded files (name, bytes) and zip archives -> items, in order (the Batch page's input).

    A zip gives its images, then its skipped entries and the archive's own errors as items with a
    `problem` (they become error rows).
    """
    items: list[BatchItem] = []
    for name, data in files:
        if name.lower().endswith(".zip"):
            items += archive_items(name, data)
        else:
            items.append(BatchItem(name, data=data))
    return items


# -- list files -----------------------------------------------------------------------------------------
def list_items(location: str) -> Iterator[BatchItem]:
    """A .txt (one path per line), or a .csv / .parquet with a `path` and an optional `reference` column
    (captioner.batch.lists: caps, encodings, types).

    Relative paths are relative to the list file's folder. Read as a stream: a list of millions of
    lines is never held in memory. A row that can't be used is one error row named `LIST:line N`;
    a list that can't be read at all is one error row named after the list.
    """
    try:
        size = size_of(location)
        if size > MAX_LIST_BYTES:
            raise ValueError(f"it has {size:,} bytes; the limit is {MAX_LIST_BYTES:,}")
        with open_location(location) as stream:
            lower = location.lower()
            entries = parquet_entries(stream) if lower.endswith(".parquet") else text_entries(stream, lower.endswith(".csv"))
            for entry in entries:
                item = _item_of_entry(location, entry)
                if item is not None:
                    yield item
    except Exception as e:  # not a list we can read (no path column, not Parquet, a URI refused, ...)
        yield BatchItem(location, path=location, problem=f"The list {location} could not be read: {one_line(e)}")


def _item_of_entry(list_location: str, entry: Entry) -> BatchItem | None:
    if entry.problem:
        return BatchItem(
            f"{list_location}:{entry.where}", problem=f"{list_location}: {entry.problem}", references=entry.references
        )
    if not entry.location:
        return None
    try:
        path = _beside(list_location, entry.location)
    except LocationRefused as e:
        return BatchItem(f"{list_location}:{entry.where}", problem=f"{list_location}, {entry.where}: {e}")
    if is_uri(path):
        try:  # refused before any filesystem is made for it (captioner.batch.locations)
            filesystem_of(path)
        except LocationRefused as e:
            return BatchItem(f"{list_location}:{entry.where}", problem=f"{list_location}, {entry.where}: {e}")
    return BatchItem(path, path=path, references=entry.references)


def _beside(list_location: str, entry: str) -> str:
    """A list's entry as a location: relative paths are relative to the list's folder."""
    if is_uri(entry):
        return entry
    if is_uri(list_location):
        if scheme_of(list_location) == "file":
            return absolute(os.path.join(os.path.dirname(file_uri_path(list_location)), entry))
        if os.path.isabs(entry):
            raise LocationRefused(f"the absolute path {entry[:200]} in a list in object storage is refused")
        return list_location.rsplit("/", 1)[0] + "/" + entry
    return absolute(os.path.join(os.path.dirname(list_location), entry))


# -- reading an item's bytes ----------------------------------------------------------------------------
def read_item(item: BatchItem) -> bytes:
    """The bytes of an item's image (not yet checked as an image: pass them to load_image).

    Raises ImageLoadError with a message for a person when the item can't be read.
    """
    if item.problem:
        raise ImageLoadError(item.problem, "unreadable")
    if item.data is not None:
        return item.data
    if item.member:
        try:
            entries = _archive_entries(item.path, signature_of(item.path))
        except ImageLoadError:
            raise
        except Exception as e:  # the zip is gone, or object storage does not answer
            raise ImageLoadError(f"{item.path} could not be read: {one_line(e)}", "unreadable") from None
        if item.member not in entries:
            raise ImageLoadError(f"{item.member} is no longer in {item.path}", "missing")
        return entries[item.member]
    return read_location(item.path)


@functools.lru_cache(maxsize=1)
def _archive_entries(location: str, signature: tuple) -> dict[str, bytes]:
    """The images of one zip, kept while its entries are read one chunk after another."""
    data = read_location(location, DEFAULT_MAX_TOTAL_BYTES)
    try:
        return dict(read_image_archive(data).images)
    except ArchiveError as e:
        raise ImageLoadError(str(e), "unreadable") from None
