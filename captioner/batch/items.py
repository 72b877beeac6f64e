"""What a batch captions: items listed from folders, globs, zip files, list files, URIs or uploads.

An item only says where its bytes are (a file, an entry of a zip, bytes in memory) and which
references it has; `read_item` fetches the bytes when the item's turn comes, so a run holds one
chunk of images at a time. Anything that can't be used becomes an item with a `problem`: a row
with its error, never a failed run.

Locations are local paths or URIs of any pyarrow filesystem (`s3://bucket/images/`, `gs://...`,
`file:///...`); pyarrow is imported only when a URI or a Parquet list is read.
"""

from __future__ import annotations

import csv
import functools
import glob
import io
import os
import stat
from dataclasses import asdict, dataclass, replace
from typing import Any, BinaryIO, Iterable, Iterator, Sequence

from captioner.archives import DEFAULT_MAX_TOTAL_BYTES, ArchiveError, read_image_archive
from captioner.files import format_bytes
from captioner.images import DEFAULT_MAX_BYTES, IMAGE_EXTENSIONS, ImageLoadError

LIST_EXTENSIONS = (".txt", ".csv", ".parquet")
REFERENCE_SEPARATOR = "|"  # several references in one `reference` cell of a CSV list: "a cat | a grey cat"


@dataclass(frozen=True)
class BatchItem:
    """One image to caption, or the reason an input gives none."""

    name: str  # what its row calls it: the path as given, or "archive.zip/inner/photo.png"
    path: str = ""  # the file (or zip) to read; "" when `data` holds the bytes
    member: str = ""  # the entry of the zip at `path`
    data: bytes | None = None  # bytes already in memory: an upload, an entry of an uploaded zip
    references: tuple[str, ...] = ()  # reference captions, for BLEU-4 and CIDEr-D
    problem: str = ""  # why this cannot be captioned; the row becomes an error row

    def to_record(self) -> dict[str, Any]:
        """A plain dict without the bytes (what a Ray dataset holds)."""
        return {**asdict(self), "data": None, "references": list(self.references)}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "BatchItem":
        return cls(**{**record, "references": tuple(record.get("references") or ())})


# -- locations: local paths and pyarrow filesystem URIs ------------------------------------------------
def is_uri(location: str) -> bool:
    return "://" in location


def filesystem_of(uri: str):
    """(pyarrow filesystem, path inside it, "scheme://") of a URI."""
    from pyarrow import fs

    filesystem, path = fs.FileSystem.from_uri(uri)
    return filesystem, path, uri[: uri.index("://") + 3]


def open_location(location: str) -> BinaryIO:
    """A local regular file or a URI, opened for reading. A FIFO or a device is refused, never read."""
    if is_uri(location):
        filesystem, path, _ = filesystem_of(location)
        return filesystem.open_input_stream(path)
    try:
        mode = os.stat(location).st_mode
    except FileNotFoundError:
        raise ImageLoadError(f"No such file: {location}", "missing") from None
    except OSError as e:
        raise ImageLoadError(f"The file {location} could not be read: {e.strerror or e}", "unreadable") from None
    if stat.S_ISDIR(mode):
        raise ImageLoadError(f"This is a folder, not a file: {location}", "missing")
    if not stat.S_ISREG(mode):
        raise ImageLoadError(f"Not a regular file (a pipe, socket or device): {location}", "unreadable")
    return open(location, "rb")


def read_location(location: str, max_bytes: int | None = DEFAULT_MAX_BYTES) -> bytes:
    """The bytes of a file, at most max_bytes + 1 of them (so that a check can say it is too large)."""
    try:
        with open_location(location) as f:
            return f.read() if max_bytes is None else f.read(max_bytes + 1)
    except ImageLoadError:
        raise
    except (OSError, ValueError) as e:  # pyarrow raises OSError (missing, denied) and ValueError (bad URI)
        raise ImageLoadError(f"{location} could not be read: {e}", "unreadable") from None


def _kind(location: str) -> str:
    """'folder', 'file' or 'missing'."""
    if is_uri(location):
        from pyarrow import fs

        filesystem, path, _ = filesystem_of(location)
        kind = filesystem.get_file_info(path).type
        return {fs.FileType.Directory: "folder", fs.FileType.File: "file"}.get(kind, "missing")
    if os.path.isdir(location):
        return "folder"
    return "file" if os.path.lexists(location) else "missing"


def _files_under(folder: str) -> Iterator[str]:
    """Every regular file below a folder, recursively, in sorted order; hidden files and folders left out."""
    if is_uri(folder):
        from pyarrow import fs

        filesystem, path, scheme = filesystem_of(folder)
        infos = filesystem.get_file_info(fs.FileSelector(path, recursive=True))
        for info in sorted((i for i in infos if i.type == fs.FileType.File), key=lambda i: _walk_order(i.path)):
            if not any(part.startswith(".") for part in info.path[len(path) :].split("/")):
                yield scheme + info.path
        return
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            full = os.path.join(root, name)
            if not name.startswith(".") and os.path.isfile(full):
                yield full


def _walk_order(path: str) -> list[tuple[int, str]]:
    """os.walk's order as a sort key: a folder's files (by name) before its subfolders (by name)."""
    *folders, name = path.split("/")
    return [(1, f) for f in folders] + [(0, name)]


def _is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


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
    except (OSError, ValueError) as e:  # a URI pyarrow can't open (scheme, credentials, network); a folder gone
        yield BatchItem(spec, path=spec, problem=f"{spec} could not be listed: {e}")


def _expand(spec: str, keep_archive_bytes: bool) -> Iterator[BatchItem]:
    kind = _kind(spec)
    if kind == "missing" and not is_uri(spec) and glob.has_magic(spec):
        matches = sorted(glob.glob(spec, recursive=True))
        if not matches:
            yield BatchItem(spec, problem=f"No file matches {spec}")
        for match in matches:
            if os.path.isdir(match):
                continue  # `**` also matches folders; their images match the pattern on their own
            yield from _file_items(match, keep_archive_bytes)
    elif kind == "missing":
        yield BatchItem(spec, path=spec, problem=f"No such file or folder: {spec}")
    elif kind == "folder":
        for location in _files_under(spec):
            if _is_image_name(location):
                yield BatchItem(location, path=location)
    else:
        yield from _file_items(spec, keep_archive_bytes)


def _file_items(location: str, keep_archive_bytes: bool) -> Iterator[BatchItem]:
    lower = location.lower()
    if lower.endswith(".zip"):
        yield from _zip_items(location, keep_archive_bytes)
    elif lower.endswith(LIST_EXTENSIONS):
        yield from _list_items(location)
    else:  # named on its own: an image whatever its extension (load_image judges)
        yield BatchItem(location, path=location)


def _zip_items(location: str, keep_archive_bytes: bool) -> Iterator[BatchItem]:
    try:
        data = read_location(location, DEFAULT_MAX_TOTAL_BYTES)
        if len(data) > DEFAULT_MAX_TOTAL_BYTES:
            raise ArchiveError(f"The archive is larger than {format_bytes(DEFAULT_MAX_TOTAL_BYTES)}: "
                               "unpack it and pass the folder instead.")  # fmt: skip
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
def _list_items(location: str) -> Iterator[BatchItem]:
    """A .txt (one path per line), or a .csv / .parquet with a `path` and an optional `reference` column.

    Relative paths are relative to the list file's folder. Read as a stream: a list of millions of
    lines is never held in memory.
    """
    try:
        for entry, references in _list_entries(location):
            if entry:
                path = _beside(location, entry)
                yield BatchItem(path, path=path, references=references)
    except (ImageLoadError, OSError, ValueError, KeyError, csv.Error, UnicodeDecodeError) as e:
        yield BatchItem(location, path=location, problem=f"The list {location} could not be read: {e}")


def _beside(list_location: str, entry: str) -> str:
    """A list's entry as a location: relative paths are relative to the list's folder."""
    if is_uri(entry) or os.path.isabs(entry):
        return entry
    if is_uri(list_location):
        return list_location.rsplit("/", 1)[0] + "/" + entry
    return os.path.join(os.path.dirname(list_location), entry)


def _list_entries(location: str) -> Iterator[tuple[str, tuple[str, ...]]]:
    lower = location.lower()
    if lower.endswith(".parquet"):
        yield from _parquet_entries(location)
        return
    with open_location(location) as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", newline="") as text:
        if lower.endswith(".txt"):
            for line in text:
                line = line.strip()
                if line and not line.startswith("#"):
                    yield line, ()
            return
        reader = csv.DictReader(text)
        _require_path_column(reader.fieldnames or [], location)
        for record in reader:
            yield (record.get("path") or "").strip(), _references(record.get("reference"))


def _parquet_entries(location: str) -> Iterator[tuple[str, tuple[str, ...]]]:
    import pyarrow.parquet as pq

    with open_location(location) as f:
        parquet = pq.ParquetFile(f)
        names = parquet.schema_arrow.names
        _require_path_column(names, location)
        columns = ["path"] + (["reference"] if "reference" in names else [])
        for batch in parquet.iter_batches(batch_size=4096, columns=columns):
            for record in batch.to_pylist():
                yield str(record["path"] or "").strip(), _references(record.get("reference"))


def _require_path_column(names: Sequence[str], location: str) -> None:
    if "path" not in names:
        raise ValueError(f"it has no 'path' column (columns: {', '.join(map(str, names)) or 'none'})")


def _references(value: Any) -> tuple[str, ...]:
    """A `reference` cell: a string (several separated by '|') or a list of strings."""
    if value is None:
        return ()
    parts = value if isinstance(value, (list, tuple)) else str(value).split(REFERENCE_SEPARATOR)
    return tuple(p.strip() for p in parts if p is not None and str(p).strip())


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
            entries = _archive_entries(item.path, _signature(item.path))
        except OSError as e:
            raise ImageLoadError(f"{item.path} could not be read: {e}", "unreadable") from None
        if item.member not in entries:
            raise ImageLoadError(f"{item.member} is no longer in {item.path}", "missing")
        return entries[item.member]
    return read_location(item.path)


def _signature(location: str) -> tuple:
    """What tells that a file changed (size and time), so the archive cache reads it again."""
    if is_uri(location):
        filesystem, path, _ = filesystem_of(location)
        info = filesystem.get_file_info(path)
        return (info.size, info.mtime_ns)
    st = os.stat(location)
    return (st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=1)
def _archive_entries(location: str, signature: tuple) -> dict[str, bytes]:
    """The images of one zip, kept while its entries are read one chunk after another."""
    data = read_location(location, DEFAULT_MAX_TOTAL_BYTES)
    try:
        return dict(read_image_archive(data).images)
    except ArchiveError as e:
        raise ImageLoadError(str(e), "unreadable") from None
