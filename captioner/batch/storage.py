"""Reading a location, local path or allowed URI alike: open, read, size, kind, a folder's files.

`captioner.batch.locations` says which URIs may be contacted; this module reads them (and local
paths) the same way for the rest of the batch. A local file is opened non-blocking and checked
through its descriptor, so a FIFO or a device is refused, never read. pyarrow is imported only for
a URI. Local paths are named absolute (`location_name`), so `imgs`, `./imgs/` and `$PWD/imgs` are
one place.
"""

from __future__ import annotations

import os
import stat
from typing import BinaryIO, Iterator

from captioner.batch.locations import file_uri, file_uri_path, filesystem_of, is_uri, scheme_of
from captioner.errors import one_line
from captioner.images import DEFAULT_MAX_BYTES, ImageLoadError


def local_path(location: str) -> str | None:
    """The local path of a location (a path, or a file:// URI), None for object storage."""
    if not is_uri(location):
        return location
    return file_uri_path(location) if scheme_of(location) == "file" else None


def absolute(path: str) -> str:
    """A local path as one name however it is spelled (`imgs`, `./imgs/`, `$PWD/imgs`); symlinks kept as named."""
    return os.path.abspath(path) if path else path


def location_name(location: str) -> str:
    """The one name of a location: a URI as given, a local path absolute."""
    return location if is_uri(location) else absolute(location)


def open_location(location: str) -> BinaryIO:
    """A local regular file or an allowed URI, opened for reading. A FIFO or a device is refused, never
    opened for blocking reads (the file is opened non-blocking and checked through its descriptor)."""
    local = local_path(location)
    if local is None:
        filesystem, path, _ = filesystem_of(location)
        return filesystem.open_input_file(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(local, flags)
    except FileNotFoundError:
        raise ImageLoadError(f"No such file: {location}", "missing") from None
    except OSError as e:
        raise ImageLoadError(f"The file {location} could not be read: {e.strerror or e}", "unreadable") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        what = "a folder, not a file" if stat.S_ISDIR(mode) else "not a regular file (a pipe, socket or device)"
        raise ImageLoadError(f"This is {what}: {location}", "missing" if stat.S_ISDIR(mode) else "unreadable")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def read_location(location: str, max_bytes: int | None = DEFAULT_MAX_BYTES) -> bytes:
    """The bytes of a file, at most max_bytes + 1 of them (so that a check can say it is too large)."""
    try:
        with open_location(location) as f:
            return f.read() if max_bytes is None else f.read(max_bytes + 1)
    except ImageLoadError:
        raise
    except Exception as e:  # pyarrow's errors (OSError, ValueError, NotImplementedError, ...), a refused URI
        raise ImageLoadError(f"{location} could not be read: {one_line(e)}", "unreadable") from None


def size_of(location: str) -> int:
    """The size of a file in bytes."""
    local = local_path(location)
    if local is not None:
        return os.stat(local).st_size
    filesystem, path, _ = filesystem_of(location)
    return filesystem.get_file_info(path).size or 0


def signature_of(location: str) -> tuple[int, int]:
    """What tells that a file changed (size and time), so that a cache of its contents reads it again."""
    local = local_path(location)
    if local is None:
        filesystem, path, _ = filesystem_of(location)
        info = filesystem.get_file_info(path)
        return (info.size, info.mtime_ns)
    st = os.stat(local)
    return (st.st_size, st.st_mtime_ns)


def kind_of(location: str) -> str:
    """'folder', 'file' or 'missing'."""
    local = local_path(location)
    if local is None:
        from pyarrow import fs

        filesystem, path, _ = filesystem_of(location)
        kind = filesystem.get_file_info(path).type
        return {fs.FileType.Directory: "folder", fs.FileType.File: "file"}.get(kind, "missing")
    if os.path.isdir(local):
        return "folder"
    return "file" if os.path.lexists(local) else "missing"


def files_under(folder: str) -> Iterator[str]:
    """Every regular file below a folder, recursively, in sorted order; hidden files and folders left out."""
    local = local_path(folder)
    if local is None:
        from pyarrow import fs

        filesystem, path, scheme = filesystem_of(folder)
        infos = filesystem.get_file_info(fs.FileSelector(path, recursive=True))
        for info in sorted((i for i in infos if i.type == fs.FileType.File), key=lambda i: _walk_order(i.path)):
            if not any(part.startswith(".") for part in info.path[len(path) :].split("/")):
                yield scheme + info.path
        return
    for root, dirs, files in os.walk(local):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            full = os.path.join(root, name)
            if not name.startswith(".") and os.path.isfile(full):
                yield file_uri(full) if is_uri(folder) else full


def _walk_order(path: str) -> list[tuple[int, str]]:
    """os.walk's order as a sort key: a folder's files (by name) before its subfolders (by name)."""
    *folders, name = path.split("/")
    return [(1, f) for f in folders] + [(0, name)]
