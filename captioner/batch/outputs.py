"""Where rows go: a Parquet, CSV or JSON Lines file that a run can resume, or a Ray job's Parquet folder.

A local run appends each chunk's rows to a journal beside the output (`<out>.partial.jsonl`,
flushed to disk per chunk), so a run that is killed loses at most the chunk in hand. When the run
ends, the output file is written again from the old file and the journal, and replaces the old one
in one step (`os.replace`): the output is always a complete file. A new row replaces an older row
for the same image and settings (an error tried again); rows made with other settings stay.

pyarrow is imported only when Parquet is read or written.
"""

from __future__ import annotations

import csv
import fcntl
import json
import math
import os
import sys
from typing import Any, Iterable, Iterator, Sequence

from captioner.batch.items import filesystem_of, is_uri
from captioner.batch.rows import (COLUMN_TYPES, OUTPUT_COLUMNS, BatchRun, CaptionRow, ReferenceScores, chunks, done_key,
                                  reference_scores)  # fmt: skip

FORMATS = {".parquet": "parquet", ".pq": "parquet", "": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
JOURNAL_SUFFIX = ".partial.jsonl"
READ_CHUNK = 4096
_KEY_COLUMNS = ("path", "sha256", "run_key", "status")


class OutputError(ValueError):
    """The output can't be written or resumed; the message says why."""


def output_format(path: str) -> str:
    """'parquet', 'csv' or 'jsonl', from the file name's extension (none: Parquet)."""
    ext = os.path.splitext(path.rstrip("/"))[1].lower()
    if ext not in FORMATS:
        raise OutputError(f"{path}: the output's extension says its format: .parquet (the default), .csv or .jsonl.")
    return FORMATS[ext]


def metrics_path(out: str) -> str:
    """Where the BLEU-4 / CIDEr-D summary goes: beside the output, `captions.parquet` -> `captions.metrics.json`."""
    out = out.rstrip("/")
    stem, ext = os.path.splitext(out)
    return (stem if ext.lower() in FORMATS else out) + ".metrics.json"


# -- rows as Arrow, CSV and JSON ----------------------------------------------------------------------
def arrow_schema():
    import pyarrow as pa

    types = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
             "list[str]": pa.list_(pa.string())}  # fmt: skip
    return pa.schema([(name, types[kind]) for name, kind in COLUMN_TYPES.items()])


def records_table(records: Iterable[dict[str, Any]]):
    """Rows as a pyarrow Table with the output schema (what Parquet files and Ray blocks hold)."""
    import pyarrow as pa

    return pa.Table.from_pylist([_clean(r) for r in records], schema=arrow_schema())


def _clean(record: dict[str, Any]) -> dict[str, Any]:
    """The output columns only; a number that is not finite becomes null (strict JSON, typed Parquet)."""
    out = {}
    for name in OUTPUT_COLUMNS:
        value = record.get(name)
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        out[name] = value
    return out


def _as_list(value: Any) -> list[str]:
    """A list column as read back: a list (Parquet, JSON Lines) or its JSON text (CSV)."""
    if isinstance(value, list):
        return value
    if isinstance(value, str) and value.startswith("["):
        return json.loads(value)
    return [value] if value else []


class _Writer:
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
            self._csv.writerows({k: _csv_cell(v) for k, v in _clean(r).items()} for r in records)
        else:
            self._file.writelines(json.dumps(_clean(r), ensure_ascii=False) + "\n" for r in records)

    def close(self) -> None:
        if self.format == "parquet":
            self._parquet.close()
        else:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()


def _csv_cell(value: Any) -> Any:
    if isinstance(value, list):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else value


def read_records(path: str, fmt: str) -> Iterator[list[dict[str, Any]]]:
    """The rows of an output file, a chunk at a time (CSV values come back as text)."""
    if fmt == "parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=READ_CHUNK):
            yield batch.to_pylist()
        return
    with open(path, encoding="utf-8", newline="") as f:
        lines: Iterable[dict[str, Any]] = csv.DictReader(f) if fmt == "csv" else (json.loads(x) for x in f if x.strip())
        yield from chunks(lines, READ_CHUNK)


def _done_keys(chunks: Iterable[list[dict[str, Any]]], run_key: str) -> set[bytes]:
    return {done_key(r["path"], r["sha256"]) for chunk in chunks for r in chunk
            if r.get("run_key") == run_key and r.get("status") == "ok"}  # fmt: skip


def _scores(chunks: Iterable[list[dict[str, Any]]], run_key: str) -> ReferenceScores | None:
    captions, references = [], []
    for chunk in chunks:
        for r in chunk:
            refs = _as_list(r.get("references"))
            if r.get("run_key") == run_key and r.get("status") == "ok" and refs:
                captions.append(r.get("caption") or "")
                references.append(refs)
    return reference_scores(captions, references)


def write_metrics(location: str, scores: ReferenceScores, run: BatchRun, output: str) -> None:
    """The corpus scores as JSON at `location` (a path or a URI)."""
    text = json.dumps({**scores.to_dict(), "model": run.model, "settings": json.loads(run.settings),
                       "run_key": run.run_key, "output": output}, indent=2)  # fmt: skip
    if is_uri(location):
        filesystem, path, _ = filesystem_of(location)
        with filesystem.open_output_stream(path) as f:
            f.write(text.encode())
    else:
        with open(location, "w", encoding="utf-8") as f:
            f.write(text + "\n")


# -- a local output file with its journal -------------------------------------------------------------
class OutputFile:
    """A resumable output file: `done_keys`, `append` per chunk, `finish` at the end (a context manager
    that holds a lock, so two runs can't write the same output)."""

    def __init__(self, path: str):
        if is_uri(path):
            raise OutputError(f"{path}: a local run writes a local file; use --ray to write to a URI.")
        if os.path.isdir(path):
            raise OutputError(f"{path} is a folder: give a file name (a folder of Parquet files is what --ray writes).")
        self.path = path
        self.format = output_format(path)
        self.journal_path = path + JOURNAL_SUFFIX
        self._journal = None

    def __enter__(self) -> "OutputFile":
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._journal = open(self.journal_path, "a+b")
        try:
            fcntl.flock(self._journal.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._journal.close()
            raise OutputError(f"Another run is writing {self.path} right now.") from None
        self._repair_journal()
        return self

    def __exit__(self, *exc) -> None:
        if self._journal is not None:
            self._journal.close()  # releases the lock
            self._journal = None

    def _repair_journal(self) -> None:
        """Cut a line that a killed run left half written."""
        journal = self._journal
        journal.seek(0)
        data = journal.read()
        end = data.rfind(b"\n") + 1
        if end != len(data):
            journal.truncate(end)
        journal.seek(0, os.SEEK_END)

    def _journal_records(self) -> Iterator[list[dict[str, Any]]]:
        if os.path.exists(self.journal_path):
            yield from read_records(self.journal_path, "jsonl")

    def _output_records(self) -> Iterator[list[dict[str, Any]]]:
        if not os.path.exists(self.path):
            return
        try:
            for chunk in read_records(self.path, self.format):
                if chunk and not set(_KEY_COLUMNS) <= set(chunk[0]):
                    raise OutputError(f"{self.path} exists and is not a table of captions: it has no "
                                      f"{', '.join(c for c in _KEY_COLUMNS if c not in chunk[0])} column.")  # fmt: skip
                yield chunk
        except OutputError:
            raise
        except Exception as e:  # pyarrow, csv or json errors on a file that is not ours
            raise OutputError(f"{self.path} exists and could not be read as {self.format}: {e}") from None

    def done_keys(self, run_key: str) -> set[bytes]:
        """Keys (`rows.done_key`) of the images already captioned with this run key, in the output or the journal."""
        return _done_keys(self._output_records(), run_key) | _done_keys(self._journal_records(), run_key)

    def append(self, rows: Sequence[CaptionRow]) -> None:
        """Add a chunk's rows to the journal, on disk before this returns."""
        if rows:
            lines = "".join(json.dumps(_clean(r.to_record()), ensure_ascii=False) + "\n" for r in rows)
            self._journal.write(lines.encode())
            self._journal.flush()
            os.fsync(self._journal.fileno())

    def finish(self) -> None:
        """Write the output from the old output and the journal, replace it, drop the journal."""
        self._repair_journal()  # an interrupt may have cut the last append short
        latest: dict[tuple[str, str], int] = {}  # (run_key, path) -> its last line in the journal
        for i, record in enumerate(r for chunk in self._journal_records() for r in chunk):
            latest[(record["run_key"], record["path"])] = i
        if not latest and os.path.exists(self.path):
            self._drop_journal()
            return
        tmp = f"{self.path}.tmp-{os.getpid()}"
        writer = _Writer(tmp, self.format)
        try:
            for chunk in self._output_records():
                writer.write([r for r in chunk if (r["run_key"], r["path"]) not in latest])
            line = 0
            for chunk in self._journal_records():
                writer.write([r for i, r in enumerate(chunk, line) if latest[(r["run_key"], r["path"])] == i])
                line += len(chunk)
            writer.close()
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        self._drop_journal()

    def _drop_journal(self) -> None:
        self._journal.truncate(0)
        os.remove(self.journal_path)

    def scores(self, run_key: str) -> ReferenceScores | None:
        """BLEU-4 and CIDEr-D over the output's rows of this run key that have references."""
        return _scores(self._output_records(), run_key)


# -- a folder of Parquet files (what a Ray job writes) ------------------------------------------------
class ParquetFolder:
    """A folder (local path or URI) of Parquet files of rows: what resume and the metrics read back."""

    def __init__(self, location: str):
        from pyarrow import fs

        self.location = location.rstrip("/")
        if is_uri(location):
            self.filesystem, self.root, _ = filesystem_of(self.location)
        else:
            if os.path.isfile(location):
                raise OutputError(f"{location} is a file: --ray writes a folder of Parquet files.")
            self.filesystem, self.root = fs.LocalFileSystem(), os.path.abspath(self.location)

    def files(self) -> list[str]:
        """The Parquet files in the folder (names starting with _ or . left out, as pyarrow does)."""
        from pyarrow import fs

        infos = self.filesystem.get_file_info(fs.FileSelector(self.root, recursive=True, allow_not_found=True))
        return sorted(i.path for i in infos if i.type == fs.FileType.File and i.base_name.endswith(".parquet")
                      and not i.base_name.startswith(("_", ".")))  # fmt: skip

    def records(self, files: Sequence[str] | None = None) -> Iterator[list[dict[str, Any]]]:
        """The rows of the files, a chunk at a time. A file a killed job left unreadable is moved
        aside (renamed `_unreadable-...`) with a warning, so that it stops every later reader."""
        import pyarrow.parquet as pq

        for path in self.files() if files is None else files:
            try:
                parquet = pq.ParquetFile(self.filesystem.open_input_file(path))
            except Exception as e:
                head, name = path.rsplit("/", 1)
                self.filesystem.move(path, f"{head}/_unreadable-{name}")
                print(f"warning: {path} could not be read ({e}); moved aside as _unreadable-{name}", file=sys.stderr)
                continue
            for batch in parquet.iter_batches(batch_size=READ_CHUNK):
                yield batch.to_pylist()

    def done_keys(self, run_key: str) -> set[bytes]:
        return _done_keys(self.records(), run_key)

    def drop_replaced(self, new_files: Sequence[str]) -> None:
        """Remove from the older files the rows that rows in `new_files` replace (same image and run key:
        an error tried again, a changed file), so that the folder holds one row per image and settings."""
        import pyarrow.parquet as pq

        new_keys = {(r["run_key"], r["path"]) for chunk in self.records(new_files) for r in chunk}
        for path in [f for f in self.files() if f not in set(new_files)] if new_keys else []:
            table = pq.read_table(self.filesystem.open_input_file(path))
            keep = [key not in new_keys for key in zip(table["run_key"].to_pylist(), table["path"].to_pylist())]
            if all(keep):
                continue
            head, name = path.rsplit("/", 1)
            tmp = f"{head}/_rewriting-{name}"
            with self.filesystem.open_output_stream(tmp) as f:
                pq.write_table(table.filter(keep), f)
            self.filesystem.move(tmp, path)

    def scores(self, run_key: str) -> ReferenceScores | None:
        return _scores(self.records(), run_key)
