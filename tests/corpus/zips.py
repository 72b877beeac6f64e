"""ZIP archives built by hand, so that names, sizes, CRCs and flags can be anything (bombs, liars)."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from dataclasses import dataclass


def zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return buf.getvalue()


@dataclass
class RawEntry:
    name: str
    payload: bytes  # as stored (already compressed when method == 8)
    crc: int
    size: int  # declared unpacked size (may lie)
    method: int = 8  # 0 stored, 8 deflate
    flags: int = 0  # bit 0: encrypted


def raw_zip(entries: list[RawEntry]) -> bytes:
    """Write a ZIP by hand, so that names, sizes, CRCs and flags can be anything we like."""
    out, central = bytearray(), bytearray()
    date = (1 << 5) | 1  # 1980-01-01
    for e in entries:
        name = e.name.encode()
        offset = len(out)
        out += (
            struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, e.flags, e.method, 0, date, e.crc, len(e.payload), e.size, len(name), 0)
            + name
            + e.payload
        )
        central += (
            struct.pack(
                "<4s6H3L5H2L",
                b"PK\x01\x02",
                20,
                20,
                e.flags,
                e.method,
                0,
                date,
                e.crc,
                len(e.payload),
                e.size,
                len(name),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + name
        )
    eocd = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), len(out), 0)
    return bytes(out + central + eocd)


def deflated_zeros(mib: int) -> bytes:
    """Raw deflate of ``mib`` MiB of zeros, built without ever holding them in memory."""
    # After a full flush the compressor's state is reset, so every 1 MiB block compresses
    # to the same ~1 KB: compress one and repeat it.
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return block * mib + compressor.flush(zlib.Z_FINISH)


def zeros_crc(mib: int) -> int:
    crc, block = 0, bytes(1 << 20)
    for _ in range(mib):
        crc = zlib.crc32(block, crc)
    return crc


CRC_500_MIB_ZEROS = 0x876BEF2A  # zeros_crc(500), precomputed: computing it takes ~0.5 s


def zip_bomb() -> bytes:
    return raw_zip([RawEntry("bomb.png", deflated_zeros(500), CRC_500_MIB_ZEROS, 500 << 20)])


def zip_bomb_many() -> bytes:
    payload, crc = deflated_zeros(23), zeros_crc(23)  # 24.1 MB each: under the per-file limit
    return raw_zip([RawEntry(f"part{i}.png", payload, crc, 23 << 20) for i in range(10)])


def zip_lying_size() -> bytes:
    """Declares 1000 bytes, holds 10 MiB of zeros."""
    return raw_zip([RawEntry("liar.png", deflated_zeros(10), zeros_crc(10), 1000)])


def stored_entry(name: str, content: bytes, *, crc: int | None = None, flags: int = 0) -> RawEntry:
    return RawEntry(name, content, zlib.crc32(content) if crc is None else crc, len(content), method=0, flags=flags)
