"""Where a local run's rows go: a Parquet, CSV or JSON Lines file that a run can resume (a Ray job's
folder of Parquet files: captioner.batch.parquet_folder).

A local run appends each chunk's rows to a journal beside the output (`<out>.partial.jsonl`,
flushed to disk per chunk), so a run that is killed loses at most the chunk in hand. When the run
ends, the output file is written again from the old file and the journal, and replaces the old one
in one step (`os.replace`): the output is always a complete file. A new row replaces an older row
for the same image and settings (an error tried again); rows made with other settings stay.

pyarrow is imported only when Parquet is read or written.
"""

from __future__ import annotations

import errno
import fcntl
import glob
import json
import os
import re
import stat
import sys
from typing import Any, Iterator, Sequence

from captioner.batch.formats import KEY_COLUMNS, READ_CHUNK, Writer, clean, is_row, read_records, records_table, table_columns
from captioner.batch.locations import filesystem_of, is_uri
from captioner.batch.resume import Slot, add_references, done_keys_of, row_slot, scores_of, with_references
from captioner.batch.rows import BatchRun, CaptionRow, ReferenceScores

__all__ = [
    "JOURNAL_SUFFIX",
    "OutputError",
    "OutputFile",
    "metrics_path",
    "output_format",
    "read_records",
    "records_table",
    "write_metrics",
]

FORMATS = {".parquet": "parquet", ".pq": "parquet", "": "parquet", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}
JOURNAL_SUFFIX = ".partial.jsonl"
_TMP = ".tmp-"
_Writer = Writer  # the name the format tests use


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


def _write_error(path: str, e: OSError, kept: str) -> OutputError:
    why = "the disk is full" if e.errno in (errno.ENOSPC, errno.EDQUOT) else (e.strerror or str(e))
    return OutputError(f"{path} could not be written: {why}. {kept}")


def write_metrics(location: str, scores: ReferenceScores, run: BatchRun, output: str) -> None:
    """The corpus scores as JSON at `location` (a path or a URI)."""
    text = json.dumps(
        {**scores.to_dict(), "model": run.model, "settings": json.loads(run.settings), "run_key": run.run_key, "output": output},
        indent=2,
    )
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
    that holds a lock, so two runs can't write the same output).

    A symlink is written through: its target is the output (the link stays). A name ending in `/`, a
    folder, a FIFO or a device is refused before anything is created; a refused output leaves no
    journal. Temporary files that a killed rewrite left are removed by the next run.
    """

    def __init__(self, path: str):
        if is_uri(path):
            raise OutputError(f"{path}: a local run writes a local file; use --ray to write to a URI.")
        if path.endswith(("/", os.sep)) or os.path.isdir(path):
            raise OutputError(
                f"{path} is a folder: give a file name such as captions.parquet (a folder of Parquet files is what --ray writes)."
            )
        self.shown = path
        self.path = os.path.realpath(path)  # a symlink: write its target
        self.format = output_format(path)
        self.journal_path = self.path + JOURNAL_SUFFIX
        for what in (self.path, self.journal_path):
            if os.path.exists(what) and not stat.S_ISREG(os.stat(what).st_mode):
                raise OutputError(f"{what} is not a regular file (a FIFO, device or socket): give another --out.")
        self._journal = None
        self._damaged = 0

    def __enter__(self) -> "OutputFile":
        try:
            os.makedirs(os.path.dirname(self.path), exist_ok=True)
            self._journal = _open_journal(self.journal_path)
        except OutputError:
            raise
        except OSError as e:
            raise _write_error(self.shown, e, "Nothing was written.") from None
        try:
            fcntl.flock(self._journal.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._journal.close()
            raise OutputError(f"Another run is writing {self.shown} right now.") from None
        try:
            self._remove_stale_temporaries()
            self._repair_journal()
            next(self._output_records(), None)  # an output that is not ours is refused now, not at the end
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        if self._journal is not None:
            if os.path.exists(self.journal_path) and os.fstat(self._journal.fileno()).st_size == 0:
                os.remove(self.journal_path)  # nothing in it: a refused or empty run leaves no journal
            self._journal.close()  # releases the lock
            self._journal = None

    def _remove_stale_temporaries(self) -> None:
        """The lock is ours, so a temporary file of this output is from a run that was killed."""
        pattern = re.compile(re.escape(os.path.basename(self.path) + _TMP) + r"\d+$")
        for stale in glob.glob(glob.escape(self.path) + _TMP + "*"):
            if pattern.match(os.path.basename(stale)) and os.path.isfile(stale) and not os.path.islink(stale):
                os.remove(stale)

    def _repair_journal(self) -> None:
        """Cut a line that a killed run left half written."""
        journal = self._journal
        journal.seek(0, os.SEEK_END)
        size = journal.tell()
        end, position = 0, size
        while position > 0:  # the last newline, read from the end a block at a time
            step = min(READ_CHUNK * 16, position)
            journal.seek(position - step)
            block = journal.read(step)
            if (i := block.rfind(b"\n")) >= 0:
                end = position - step + i + 1
                break
            position -= step
        if end != size:
            journal.truncate(end)
        journal.seek(0, os.SEEK_END)

    def _journal_records(self, statuses: Sequence[str] = ("ok", "error")) -> Iterator[list[dict[str, Any]]]:
        """The journal's rows, a chunk at a time; a damaged line (NUL bytes, `{}`, `null`, a wrong type)
        is skipped and counted, never fatal."""
        if not os.path.exists(self.journal_path):
            return
        damaged, chunk = 0, []
        with open(self.journal_path, "rb") as f:
            for line in f:
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                if is_row(record, ("ok", "error", "references")):
                    if record["status"] in statuses:
                        chunk.append(record)
                else:
                    damaged += 1
                if len(chunk) == READ_CHUNK:
                    yield chunk
                    chunk = []
        if chunk:
            yield chunk
        if damaged and not self._damaged:
            print(f"note: {damaged} damaged lines of {self.journal_path} were skipped", file=sys.stderr)
        self._damaged = damaged

    def _output_records(self) -> Iterator[list[dict[str, Any]]]:
        if not os.path.exists(self.path):
            return
        try:
            columns = table_columns(self.path, self.format) if os.path.getsize(self.path) else None
            if columns is not None and not set(KEY_COLUMNS) <= set(columns):  # a header-only file is someone's too
                raise OutputError(
                    f"{self.shown} exists and is not a table of captions: it has no "
                    f"{', '.join(c for c in KEY_COLUMNS if c not in columns)} column."
                )
            for chunk in read_records(self.path, self.format):
                if chunk and not set(KEY_COLUMNS) <= set(chunk[0]):
                    raise OutputError(
                        f"{self.shown} exists and is not a table of captions: it has no "
                        f"{', '.join(c for c in KEY_COLUMNS if c not in chunk[0])} column."
                    )
                yield chunk
        except OutputError:
            raise
        except Exception as e:  # pyarrow, csv or json errors on a file that is not ours
            raise OutputError(f"{self.shown} exists and could not be read as {self.format}: {e}") from None

    def done_keys(self, run_key: str) -> set[bytes]:
        """Keys (`rows.done_key`) of the images already captioned with this run key, in the output or the journal."""
        return done_keys_of(self._output_records(), run_key) | done_keys_of(self._journal_records(), run_key)

    def append(self, rows: Sequence[CaptionRow]) -> None:
        """Add a chunk's rows to the journal, on disk before this returns (rows with status "references"
        add references to an image's row when the output is written)."""
        if rows:
            lines = "".join(json.dumps(clean(r.to_record()), ensure_ascii=False) + "\n" for r in rows)
            try:
                _durable_write(self._journal, lines.encode())
            except OSError as e:
                raise _write_error(
                    self.journal_path, e, "The rows before this chunk are kept in it; run again when it can be written."
                ) from None

    def finish(self) -> None:
        """Write the output from the old output and the journal, replace it, drop the journal."""
        self._repair_journal()  # an interrupt may have cut the last append short
        latest: dict[Slot, int] = {}  # a row's slot -> its last row in the journal
        added: dict[Slot, list[str]] = {}  # references that arrived for a row
        for i, record in enumerate(r for chunk in self._journal_records(("ok", "error", "references")) for r in chunk):
            if record["status"] == "references":
                add_references(added, record)
            else:
                latest[row_slot(record)] = i
        if not latest and not added and os.path.exists(self.path):
            self._drop_journal()
            return
        tmp = f"{self.path}{_TMP}{os.getpid()}"
        try:
            writer = Writer(tmp, self.format)
            try:
                for chunk in self._output_records():
                    writer.write([with_references(r, added) for r in chunk if row_slot(r) not in latest])
                line = 0
                for chunk in self._journal_records(("ok", "error", "references")):
                    rows = [r for i, r in enumerate(chunk, line) if latest.get(row_slot(r)) == i]
                    line += len(chunk)
                    writer.write([with_references(r, added) for r in rows if r["status"] != "references"])
                writer.close()
            except BaseException:
                writer.abandon()
                raise
            os.replace(tmp, self.path)
        except OSError as e:
            raise _write_error(
                self.shown,
                e,
                f"It is as it was before this run; this run's rows are kept in "
                f"{self.journal_path}: run again when it can be written.",
            ) from None
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        self._drop_journal()

    def _drop_journal(self) -> None:
        self._journal.truncate(0)
        os.remove(self.journal_path)

    def scores(self, run_key: str) -> ReferenceScores | None:
        """BLEU-4 and CIDEr-D over the output's rows of this run key that have references."""
        return scores_of(self._output_records(), run_key)


def _open_journal(path: str):
    """The journal opened for appending without blocking on a FIFO; anything but a regular file is refused."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0), 0o644)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OutputError(f"{path} is not a regular file (a FIFO, device or socket): remove it or give another --out.")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "a+b")


def _durable_write(f, data: bytes) -> None:
    """Write and fsync (a chunk's rows are on disk when append returns)."""
    f.write(data)
    f.flush()
    os.fsync(f.fileno())
