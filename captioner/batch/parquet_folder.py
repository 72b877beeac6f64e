"""A folder (local path or allowed URI) of Parquet files of rows: what a Ray job writes, resumes and scores.

Only files that hold captions (the output's key columns) are read as rows; any other file in the
folder (an input list, a file that can't be read) is passed over with a note and never renamed,
rewritten or removed.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Iterator, Sequence

from captioner.batch.formats import KEY_COLUMNS, READ_CHUNK, records_table
from captioner.batch.locations import filesystem_of, is_uri
from captioner.batch.outputs import OutputError
from captioner.batch.resume import Slot, add_references, done_keys_of, row_slot, scores_of, with_references
from captioner.batch.rows import ReferenceScores


class ParquetFolder:
    """A folder (local path or URI) of Parquet files of rows: what resume and the metrics read back."""

    def __init__(self, location: str):
        from pyarrow import fs

        self.location = location.rstrip("/")
        self._noted: set[str] = set()
        if is_uri(location):
            try:
                self.filesystem, self.root, _ = filesystem_of(self.location)
            except ValueError as e:  # a refused URI (locations.LocationRefused)
                raise OutputError(str(e)) from None
        else:
            if os.path.isfile(location):
                raise OutputError(f"{location} is a file: --ray writes a folder of Parquet files.")
            self.filesystem, self.root = fs.LocalFileSystem(), os.path.abspath(self.location)

    def files(self) -> list[str]:
        """The Parquet files in the folder (names starting with _ or . left out, as pyarrow does)."""
        from pyarrow import fs

        infos = self.filesystem.get_file_info(fs.FileSelector(self.root, recursive=True, allow_not_found=True))
        return sorted(
            i.path
            for i in infos
            if i.type == fs.FileType.File and i.base_name.endswith(".parquet") and not i.base_name.startswith(("_", "."))
        )

    def records(self, files: Sequence[str] | None = None) -> Iterator[list[dict[str, Any]]]:
        """The rows of the folder's files of captions, a chunk at a time. Any other file (unreadable, or
        a Parquet file without the captions' columns, such as an input list) is passed over with a
        note and never renamed, rewritten or removed."""
        for path in self.files() if files is None else files:
            parquet = self._captions_file(path)
            if parquet is not None:
                for batch in parquet.iter_batches(batch_size=READ_CHUNK):
                    yield batch.to_pylist()

    def _captions_file(self, path: str):
        """The Parquet file at `path` if it holds captions (the output's key columns); None otherwise."""
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(self.filesystem.open_input_file(path))
        except Exception as e:
            if path not in self._noted:
                print(f"note: {path} could not be read ({e}); left as it is", file=sys.stderr)
                self._noted.add(path)
            return None
        if not set(KEY_COLUMNS) <= set(parquet.schema_arrow.names):
            if path not in self._noted:
                print(f"note: {path} is not a file of captions; left as it is", file=sys.stderr)
                self._noted.add(path)
            return None
        return parquet

    def done_keys(self, run_key: str) -> set[bytes]:
        return done_keys_of(self.records(), run_key)

    def drop_replaced(self, new_files: Sequence[str]) -> None:
        """Fold this run's files (`new_files`) into the folder: rows of older files that new rows replace
        (same image and run key: an error tried again, a changed file) are removed, and references that
        arrived for images captioned before (rows with status "references") are merged into their rows,
        so that the folder holds one row per image and settings. Only files of captions are rewritten."""
        import pyarrow.parquet as pq

        new_keys: set[Slot] = set()
        added: dict[Slot, list[str]] = {}
        for chunk in self.records(new_files):
            for r in chunk:
                if r["status"] == "references":
                    add_references(added, r)
                else:
                    new_keys.add(row_slot(r))
        for path in self.files():
            ours = path in set(new_files)
            if (not ours and not new_keys and not added) or self._captions_file(path) is None:
                continue
            table = pq.read_table(self.filesystem.open_input_file(path))
            heads = table.select(["run_key", "path", "status"]).to_pylist()  # the whole rows only when rewritten
            keys = [row_slot(r) for r in heads]
            keep = [r["status"] != "references" if ours else k not in new_keys for k, r in zip(keys, heads)]
            merge = not ours and any(k in added for k in keys)
            if all(keep) and not merge:
                continue
            if ours and not any(keep):
                self.filesystem.delete_file(path)  # this run wrote it, and it held only references
                continue
            rows = [r for r, k in zip(table.to_pylist(), keep) if k]
            if merge:
                rows = [with_references(r, added) for r in rows]
            head, name = path.rsplit("/", 1)
            tmp = f"{head}/_rewriting-{name}"
            with self.filesystem.open_output_stream(tmp) as f:
                pq.write_table(records_table(rows), f)
            self.filesystem.move(tmp, path)

    def scores(self, run_key: str) -> ReferenceScores | None:
        return scores_of(self.records(), run_key)
