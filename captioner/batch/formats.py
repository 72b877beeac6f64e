"""Rows as Parquet, CSV and JSON Lines: the schema, writing, reading back, and what every cell may hold.

Every text cell is valid UTF-8: a name's bytes that are not UTF-8 are escaped (files.escape_name:
`\\xNN`, a backslash as `\\\\`). CSV cells are safe to open in a spreadsheet (`spreadsheet_cell`):
a cell of a text column that begins with `=`, `+`, `-`, `@`, a tab or a carriage return (a formula to Excel,
LibreOffice and Google Sheets) gets a leading `'`, as does one that begins with `'`, so that reading
the CSV back (`read_records`) takes exactly one `'` off and gives the original text.

pyarrow is imported only when Parquet is read or written.
"""

from __future__ import annotations

import csv
import json
import math
import os
from typing import Any, Iterable, Iterator, Sequence

from captioner.batch.rows import COLUMN_TYPES, OUTPUT_COLUMNS, chunks
from captioner.files import escape_name

READ_CHUNK = 4096
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
KEY_COLUMNS = ("path", "sha256", "run_key", "status")


def spreadsheet_cell(value: Any) -> Any:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula (the leading-quote rule)."""
    if isinstance(value, str) and value.startswith((*FORMULA_STARTS, "'")):
        return "'" + value
    return value


def from_spreadsheet_cell(value: Any) -> Any:
    """The text `spreadsheet_cell` was given."""
    return value[1:] if isinstance(value, str) and value.startswith("'") else value


# -- rows as Arrow, CSV and JSON ----------------------------------------------------------------------
def arrow_schema():
    import pyarrow as pa

    types = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(), "list[str]": pa.list_(pa.string())}
    return pa.schema([(name, types[kind]) for name, kind in COLUMN_TYPES.items()])


def records_table(records: Iterable[dict[str, Any]]):
    """Rows as a pyarrow Table with the output schema (what Parquet files and Ray blocks hold)."""
    import pyarrow as pa

    return pa.Table.from_pylist([clean(r) for r in records], schema=arrow_schema())


def clean(record: dict[str, Any]) -> dict[str, Any]:
    """The output columns only; a number that is not finite becomes null (strict JSON, typed Parquet);
    text that is not valid UTF-8 (a name's raw bytes inside an error message) is escaped."""
    out = {}
    for name in OUTPUT_COLUMNS:
        value = record.get(name)
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        elif isinstance(value, str):
            value = _utf8(value)
        elif isinstance(value, list):
            value = [_utf8(v) if isinstance(v, str) else v for v in value]
        out[name] = value
    return out


def _utf8(text: str) -> str:
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return escape_name(text)


def is_row(record: Any, statuses: Sequence[str] = ("ok", "error")) -> bool:
    """Whether a record read back is a row of the output schema (a damaged journal line is not)."""
    if not isinstance(record, dict) or record.get("status") not in statuses:
        return False
    if not all(isinstance(record.get(k), str) for k in ("path", "run_key")):
        return False
    return all(_of_type(record.get(name), kind) for name, kind in COLUMN_TYPES.items())


def _of_type(value: Any, kind: str) -> bool:
    if value is None:
        return True
    if kind == "list[str]":
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool) and abs(value) < 2**63
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, str)


def as_list(value: Any) -> list[str]:
    """A list column as read back: a list (Parquet, JSON Lines) or its JSON text (CSV)."""
    if isinstance(value, list):
        return value
    if isinstance(value, str) and value.startswith("["):
        return json.loads(value)
    return [value] if value else []


class Writer:
    """Rows into one file of any format, chunk by chunk."""

    def __init__(self, path: str, fmt: str):
        self.format = fmt
        if fmt == "parquet":
            import pyarrow.parquet as pq

            self._parquet = pq.ParquetWriter(path, arrow_schema())
            return
        self._file = open(path, "w", encoding="utf-8", newline="")
        if fmt == "csv":
            self._csv = csv.DictWriter(self._file, OUTPUT_COLUMNS, extrasaction="ignore")
            self._csv.writeheader()

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        if not records:
            return
        if self.format == "parquet":
            self._parquet.write_table(records_table(records))
        elif self.format == "csv":
            self._csv.writerows({k: _csv_cell(v, COLUMN_TYPES[k]) for k, v in clean(r).items()} for r in records)
        else:
            self._file.writelines(json.dumps(clean(r), ensure_ascii=False) + "\n" for r in records)

    def close(self) -> None:
        if self.format == "parquet":
            self._parquet.close()
        else:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()

    def abandon(self) -> None:
        """Close without caring whether it worked (the write failed; the file is removed next)."""
        try:
            (self._parquet if self.format == "parquet" else self._file).close()
        except Exception:
            pass


def _csv_cell(value: Any, kind: str) -> Any:
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    if value is None:
        return ""
    return spreadsheet_cell(value) if kind == "str" else value  # a number read back as text stays a number


def _from_csv_row(row: dict[str, Any]) -> dict[str, Any]:
    return {k: from_spreadsheet_cell(v) if COLUMN_TYPES.get(k) == "str" else v for k, v in row.items()}


def table_columns(path: str, fmt: str) -> list[str] | None:
    """The columns an output file declares (a Parquet schema, a CSV header), rows or none; None for JSON Lines."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    if fmt == "csv":
        with open(path, encoding="utf-8", newline="") as f:
            return next(csv.reader(f), [])
    return None


def read_records(path: str, fmt: str) -> Iterator[list[dict[str, Any]]]:
    """The rows of an output file, a chunk at a time (CSV values come back as text)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=READ_CHUNK):
            yield batch.to_pylist()
        return
    with open(path, encoding="utf-8", newline="") as f:
        if fmt == "csv":
            lines: Iterable[dict[str, Any]] = (_from_csv_row(r) for r in csv.DictReader(f))
        else:
            lines = (json.loads(x) for x in f if x.strip())
        yield from chunks(lines, READ_CHUNK)
