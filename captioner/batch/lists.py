"""List files (.txt, .csv, .parquet) read as a stream, each row on its own: one bad row is one error row.

Caps (README "Limits and safety"): a list file of at most MAX_LIST_BYTES; a line of a .txt or .csv
list of at most MAX_LINE_BYTES (a longer line is skipped unread, an error row says which); a path of
at most MAX_PATH_CHARS; at most MAX_REFERENCES references of at most MAX_REFERENCE_CHARS each; a
Parquet row group of at most MAX_ROW_GROUP_BYTES unpacked. Text lists are UTF-8 (a BOM is
dropped); bytes that are not UTF-8 stay the same bytes in paths (surrogateescape, so `caf\\xe9.png`
written in Latin-1 names that file on disk) and become U+FFFD in references. A Parquet list's
`path` must be text and its `reference` text or lists of text; any other type is one error row.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from typing import Any, BinaryIO, Iterator

MAX_LIST_BYTES = 1_000_000_000
MAX_LINE_BYTES = 1_000_000
MAX_PATH_CHARS = 4096
MAX_REFERENCES = 100
MAX_REFERENCE_CHARS = 2000
MAX_ROW_GROUP_BYTES = 256_000_000
REFERENCE_SEPARATOR = "|"  # several references in one `reference` cell of a CSV list: "a cat | a grey cat"
_BLOCK = 1 << 20


@dataclass(frozen=True)
class Entry:
    """One row of a list: a location and its references, or the reason the row can't be used."""

    where: str  # "line 12" / "row 12", for messages and the error row's name
    location: str = ""
    references: tuple[str, ...] = ()
    problem: str = ""


def text_entries(stream: BinaryIO, csv_format: bool) -> Iterator[Entry]:
    """The entries of a .txt list (one path a line, `#` comments) or a .csv list (`path`, `reference`)."""
    long_lines: list[int] = []

    def lines() -> Iterator[str]:
        for number, raw in _lines(stream):
            if raw is None:
                long_lines.append(number)
                yield "\n"
                continue
            text = raw.decode("utf-8", "surrogateescape")
            yield (text[1:] if number == 1 and text.startswith("\ufeff") else text) + "\n"

    def too_long() -> Iterator[Entry]:
        for number in long_lines:
            yield Entry(f"line {number}", problem=f"line {number} is longer than {MAX_LINE_BYTES:,} bytes: skipped unread")
        long_lines.clear()

    if not csv_format:
        for number, line in enumerate(lines(), 1):
            yield from too_long()
            line = line.strip()
            if line and not line.startswith("#"):
                yield list_entry(f"line {number}", line, None)
        return
    reader = csv.reader(lines())
    header = next(reader, None) or []
    columns = [c.strip() for c in header]
    if "path" not in columns:
        raise ValueError(f"it has no 'path' column (columns: {', '.join(columns) or 'none'})")
    path_at, reference_at = columns.index("path"), columns.index("reference") if "reference" in columns else None
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:  # a field over csv's own limit, a NUL byte: this row only
            yield from too_long()
            yield Entry(f"line {reader.line_num}", problem=f"line {reader.line_num} could not be read as CSV: {e}")
            continue
        yield from too_long()
        if not row:
            continue
        yield list_entry(f"line {reader.line_num}", _cell(row, path_at) or "", _cell(row, reference_at))
    yield from too_long()


def parquet_entries(source: Any) -> Iterator[Entry]:
    """The entries of a .parquet list (a seekable file), row group by row group."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(source)
    schema = parquet.schema_arrow
    if "path" not in schema.names:
        raise ValueError(f"it has no 'path' column (columns: {', '.join(map(str, schema.names)) or 'none'})")
    text = (pa.string(), pa.large_string())
    reference = schema.field("reference").type if "reference" in schema.names else None
    if schema.field("path").type not in text:
        raise ValueError(f"its 'path' column holds {schema.field('path').type}, not text")
    if reference is not None and not (
        reference in text
        or pa.types.is_null(reference)
        or ((pa.types.is_list(reference) or pa.types.is_large_list(reference)) and reference.value_type in text)
    ):
        raise ValueError(
            f"its 'reference' column holds {reference}; it must hold text (several separated by "
            f"'{REFERENCE_SEPARATOR}') or lists of text"
        )
    columns = ["path"] + (["reference"] if reference is not None else [])
    row = 0
    for group in range(parquet.num_row_groups):
        meta = parquet.metadata.row_group(group)
        if meta.total_byte_size > MAX_ROW_GROUP_BYTES:
            yield Entry(
                f"rows {row + 1}-{row + meta.num_rows}",
                problem=f"rows {row + 1} to {row + meta.num_rows} take {meta.total_byte_size:,} bytes unpacked; "
                f"the limit is {MAX_ROW_GROUP_BYTES:,} per row group",
            )
            row += meta.num_rows
            continue
        for batch in parquet.iter_batches(batch_size=1024, row_groups=[group], columns=columns):
            for record in batch.to_pylist():
                row += 1
                yield list_entry(f"row {row}", record["path"] or "", record.get("reference"))


def _cell(row: list[str], at: int | None) -> str | None:
    return row[at] if at is not None and at < len(row) else None


def list_entry(where: str, path: str, reference: Any) -> Entry:
    """One row of a list (or a reference line typed in the app) checked against the caps: `reference` is a
    cell (several references separated by '|') or a list of text."""
    path = path.strip()
    if len(path) > MAX_PATH_CHARS:
        return Entry(where, problem=f"the path at {where} has {len(path):,} characters; the limit is {MAX_PATH_CHARS:,}")
    references = _references(reference)
    if len(references) > MAX_REFERENCES:
        return Entry(where, path, problem=f"{where} has {len(references):,} references; the limit is {MAX_REFERENCES}")
    longest = max((len(r) for r in references), default=0)
    if longest > MAX_REFERENCE_CHARS:
        return Entry(
            where, path, problem=f"a reference at {where} has {longest:,} characters; the limit is {MAX_REFERENCE_CHARS:,}"
        )
    return Entry(where, path, references)


def _references(value: Any) -> tuple[str, ...]:
    """A `reference` cell: text (several separated by '|') or a list of text; bytes not UTF-8 become U+FFFD."""
    if value is None:
        return ()
    parts = value if isinstance(value, (list, tuple)) else str(value).split(REFERENCE_SEPARATOR)
    cleaned = (str(p).encode("utf-8", "surrogateescape").decode("utf-8", "replace").strip() for p in parts if p is not None)
    return tuple(p for p in cleaned if p)


def _lines(stream: BinaryIO) -> Iterator[tuple[int, bytes | None]]:
    """(number, line without its newline) of a byte stream; None for a line over MAX_LINE_BYTES, which
    is never held whole (at most one block more than the limit is in memory)."""
    carry, skipping, number = b"", False, 0
    while block := stream.read(_BLOCK):
        parts = (carry + block).split(b"\n")
        carry = parts.pop()
        for part in parts:
            number += 1
            yield number, None if skipping or len(part) > MAX_LINE_BYTES else part.rstrip(b"\r")
            skipping = False
        if len(carry) > MAX_LINE_BYTES:
            skipping, carry = True, b""
    if carry or skipping:
        yield number + 1, None if skipping else carry.rstrip(b"\r")
