"""Reading files a user hands us: regular files only, with a size cap checked before any byte is read.

Images, configs, tokenizers and checkpoints all come through here, so the rules live once: symlinks
are resolved and their target checked; a FIFO, a device, a socket or a folder is refused at once with
a message that says what the path is (opening a FIFO would block, and /dev/zero never ends); a file
over its cap is refused from its size on disk. Errors are `FileRefused`, which callers turn into
their own error type (`ImageLoadError`, `ModelLoadError`).
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

__all__ = ["FileRefused", "check_regular_file", "describe_path", "escape_name", "read_regular_file", "unescape_name"]


class FileRefused(ValueError):
    """A path that is not a readable regular file within its size cap; ``str(err)`` is for a person.

    ``reason``: ``"missing"``, ``"not_regular"``, ``"too_large"`` or ``"unreadable"``.
    """

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISREG, "a regular file"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def describe_path(path: str | os.PathLike) -> str:
    """What a path is, in words: "a folder", "a FIFO (named pipe)", "a symlink to /dev/zero, a character device"..."""
    path = os.fspath(path)
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return "missing" if not os.path.lexists(path) else "a broken symlink"
    kind = _kind(mode)
    if os.path.islink(path):
        return f"a symlink to {os.path.realpath(path)}, {kind}"
    return kind


def _refuse_unless_regular(path: str, mode: int) -> None:
    if not stat.S_ISREG(mode):
        raise FileRefused(f"{path} is {describe_path(path)}, not a regular file.", "not_regular")


def _refuse_if_too_large(path: str, size: int, max_bytes: int | None, what: str) -> None:
    if max_bytes is not None and size > max_bytes:
        raise FileRefused(
            f"{path} is too large for {what}: {format_bytes(size)}; the limit is {format_bytes(max_bytes)}.", "too_large"
        )


def check_regular_file(path: str | os.PathLike, max_bytes: int | None, what: str = "a file") -> Path:
    """The resolved path of `path` if it is (or links to) a regular file of at most `max_bytes`; else FileRefused.

    Only the file's metadata is read, so a FIFO or a device never blocks and nothing is loaded.
    """
    path = os.fspath(path)
    try:
        info = os.stat(path)  # follows symlinks: the target is what gets checked
    except FileNotFoundError:
        reason = "a broken symlink" if os.path.lexists(path) else "missing"
        raise FileRefused(f"No such file: {path}" + (f" ({reason})" if reason != "missing" else ""), "missing") from None
    except OSError as e:
        raise FileRefused(f"{path} could not be read: {e.strerror or e}", "unreadable") from None
    _refuse_unless_regular(path, info.st_mode)
    _refuse_if_too_large(path, info.st_size, max_bytes, what)
    return Path(os.path.realpath(path))


def read_regular_file(path: str | os.PathLike, max_bytes: int | None, what: str = "a file") -> bytes:
    """The bytes of a regular file of at most `max_bytes`, or FileRefused.

    The file is opened without blocking and checked again through its descriptor (the path could
    have changed since a check), and never more than `max_bytes` + 1 bytes are read.
    """
    resolved = check_regular_file(path, max_bytes, what)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(resolved, flags)
    except OSError as e:
        raise FileRefused(f"{os.fspath(path)} could not be read: {e.strerror or e}", "unreadable") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        _refuse_unless_regular(os.fspath(path), info.st_mode)
        _refuse_if_too_large(os.fspath(path), info.st_size, max_bytes, what)
        try:
            data = f.read() if max_bytes is None else f.read(max_bytes + 1)
        except OSError as e:
            raise FileRefused(f"{os.fspath(path)} could not be read: {e.strerror or e}", "unreadable") from None
    _refuse_if_too_large(os.fspath(path), len(data), max_bytes, what)  # it grew while we read
    return data


def format_bytes(n_bytes: int) -> str:
    """A size as people read it: "812 bytes", "3.4 kB", "25 MB", "8.0 GB" (decimal units)."""
    if n_bytes >= 1_000_000_000:
        return f"{n_bytes / 1e9:.1f} GB"
    if n_bytes >= 1_000_000:
        return f"{round(n_bytes / 1e6, 1):g} MB"
    if n_bytes >= 1_000:
        return f"{round(n_bytes / 1e3, 1):g} kB"
    return f"{n_bytes} bytes"


# -- names that are not UTF-8 ---------------------------------------------------------------------------
_ESCAPED = re.compile(r"\\(?:\\|x([0-9a-f]{2})|u([0-9a-f]{4}))")


def escape_name(name: str) -> str:
    """A file name as text any UTF-8 writer accepts, reversibly (`unescape_name` gives `name` back).

    Python holds a name's bytes that are not UTF-8 as lone surrogates (os.fsdecode's surrogateescape):
    each becomes `\\xNN` (the byte), any other lone surrogate `\\uNNNN`, and a backslash `\\\\`. Names
    without a backslash or such bytes (nearly all) are unchanged.
    """
    if "\\" not in name and not _has_surrogates(name):
        return name
    out = []
    for ch in name:
        code = ord(ch)
        if ch == "\\":
            out.append("\\\\")
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def unescape_name(text: str) -> str:
    """The name that `escape_name` wrote as `text` (use it with os functions: bytes come back as on disk)."""

    def one(match: re.Match) -> str:
        byte, code = match.groups()
        if byte is not None:
            return chr(0xDC00 + int(byte, 16))
        return chr(int(code, 16)) if code is not None else "\\"

    return _ESCAPED.sub(one, text) if "\\" in text else text


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
