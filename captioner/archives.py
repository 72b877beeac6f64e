"""Read the images out of an uploaded ZIP archive, safely.

Nothing is written to disk, so odd entry names ("../../x.png", "/etc/x.png") are
harmless: they only come back as names. Zip bombs are refused twice: first by the
sizes the archive declares, then by a hard cap on the bytes actually unpacked,
since declared sizes can lie.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field

from captioner.files import format_bytes
from captioner.images import IMAGE_EXTENSIONS, SUPPORTED_FORMATS_TEXT

__all__ = [
    "DEFAULT_MAX_FILES",
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_MAX_TOTAL_BYTES",
    "ArchiveContents",
    "ArchiveError",
    "read_image_archive",
    "unique_names",
]

DEFAULT_MAX_FILES = 200
DEFAULT_MAX_TOTAL_BYTES = 200_000_000  # all images together, unpacked
DEFAULT_MAX_FILE_BYTES = 25_000_000  # one image, unpacked (same as images.DEFAULT_MAX_BYTES)

_CHUNK = 1 << 20
_JUNK_NAMES = {"thumbs.db", "desktop.ini"}


class ArchiveError(ValueError):
    """The archive as a whole can't be used; ``str(err)`` is written for the person who uploaded it."""


@dataclass
class ArchiveContents:
    """What :func:`read_image_archive` found: image files in archive order, and files it left out."""

    images: list[tuple[str, bytes]] = field(default_factory=list)  # (name inside the archive, bytes)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, reason for a person)


class _TooLarge(Exception):
    pass


def read_image_archive(
    data: bytes | bytearray | memoryview,
    *,
    max_files: int = DEFAULT_MAX_FILES,
    max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
    max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
) -> ArchiveContents:
    """Return the image files in a ZIP archive, without decoding them.

    Folders and system files (``__MACOSX/``, hidden files, ``Thumbs.db``) are ignored
    silently; other non-image files, images over ``max_file_bytes`` and damaged or
    encrypted entries are listed in ``skipped`` with a reason. The bytes returned are
    not checked as images: pass each to :func:`captioner.images.load_image`.

    Raises:
        ArchiveError: not a readable ZIP, more than ``max_files`` images, or more than
            ``max_total_bytes`` once unpacked.
    """
    if not data:
        raise ArchiveError("The archive is empty.")
    try:
        archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
    except Exception as exc:  # BadZipFile, and struct/ValueError/OSError on mangled headers
        raise ArchiveError("This file is not a ZIP archive we can read.") from exc

    result = ArchiveContents()
    with archive:
        candidates = _image_entries(archive, result, max_file_bytes)
        if len(candidates) > max_files:
            raise ArchiveError(f"The archive has {len(candidates)} images; the limit is {max_files} per archive.")
        declared = sum(info.file_size for info in candidates)
        if declared > max_total_bytes:
            raise ArchiveError(
                f"The images in this archive take {format_bytes(declared)} unpacked; the limit is {format_bytes(max_total_bytes)}."
            )
        _unpack(archive, candidates, result, max_total_bytes, max_file_bytes)
    result.images = [(name, content) for name, (_, content) in zip(unique_names(n for n, _ in result.images), result.images)]
    return result


def unique_names(names) -> list[str]:
    """Names made unique in order: a zip may hold two entries of one name (two different pictures);
    the second `a.png` becomes `a.png#2` (then `#3`, ...), so that each has its own row."""
    taken: set[str] = set()
    out = []
    for name in names:
        unique, n = name, 1
        while unique in taken:
            n += 1
            unique = f"{name}#{n}"
        taken.add(unique)
        out.append(unique)
    return out


def _image_entries(archive: zipfile.ZipFile, result: ArchiveContents, max_file_bytes: int) -> list[zipfile.ZipInfo]:
    """The entries worth unpacking; the others that a person would miss are listed in ``result.skipped``."""
    candidates = []
    for info in archive.infolist():
        if info.is_dir() or _is_system_file(info.filename):
            continue
        if not info.filename.lower().endswith(IMAGE_EXTENSIONS):
            result.skipped.append((info.filename, f"not an image ({SUPPORTED_FORMATS_TEXT} are read)"))
        elif info.flag_bits & 0x1:
            result.skipped.append((info.filename, "encrypted (password-protected)"))
        elif info.file_size > max_file_bytes:
            result.skipped.append(
                (
                    info.filename,
                    f"too large: {format_bytes(info.file_size)} unpacked; the limit is {format_bytes(max_file_bytes)}",
                )
            )
        else:
            candidates.append(info)
    return candidates


def _unpack(
    archive: zipfile.ZipFile,
    candidates: list[zipfile.ZipInfo],
    result: ArchiveContents,
    max_total_bytes: int,
    max_file_bytes: int,
) -> None:
    """Unpack each entry within what is left of the budget, whatever its header claims."""
    total = 0
    for info in candidates:
        budget = min(max_file_bytes, max_total_bytes - total)
        try:
            content = _read_capped(archive, info, budget)
        except _TooLarge:
            if total + budget >= max_total_bytes:
                raise ArchiveError(
                    f"The archive unpacks to more than {format_bytes(max_total_bytes)}; that is the limit."
                ) from None
            result.skipped.append(
                (info.filename, f"too large: more than {format_bytes(max_file_bytes)} unpacked, though it claims less")
            )
            continue
        except NotImplementedError:
            result.skipped.append((info.filename, "packed with a compression method we can't unpack"))
            continue
        except Exception:  # BadZipFile (bad CRC), zlib.error, EOFError, RuntimeError, ...
            result.skipped.append((info.filename, "damaged: it could not be unpacked"))
            continue
        total += len(content)
        result.images.append((info.filename, content))


def _read_capped(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """Unpack one entry, stopping as soon as it exceeds ``limit`` bytes."""
    chunks, size = [], 0
    with archive.open(info) as stream:
        while chunk := stream.read(_CHUNK):
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            chunks.append(chunk)
    return b"".join(chunks)


def _is_system_file(name: str) -> bool:
    parts = [p for p in name.replace("\\", "/").split("/") if p]
    return (
        not parts
        or "__MACOSX" in parts
        or any(p.startswith(".") and p not in (".", "..") for p in parts)
        or parts[-1].lower() in _JUNK_NAMES
    )
