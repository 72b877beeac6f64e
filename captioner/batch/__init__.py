"""Caption collections: items in, rows out, for the batch command, its Ray job and the Batch page.

- `items`: what to caption (folders, globs, zips, list files, URIs, uploads) as `BatchItem`s;
  `locations` (which URIs may be contacted) and `storage` (reading a path or a URI alike) below it.
- `rows`: the one batch function (`caption_chunk`), `CaptionRow`, and the Batch page's
  `caption_items` and `score_rows`.
- `outputs`: Parquet / CSV / JSON Lines files that a run resumes; `parquet_folder`: a Ray job's
  Parquet folder; `resume`: their rows read back (captioned already, which row replaces which).
- `ray_job`: the same work on Ray Data.
- `__main__`: `python -m captioner.batch INPUT... --out PATH`.

Importing this package imports neither ray nor pyarrow (the app does not depend on them).
"""

from captioner.batch.items import BatchItem, expand_uploads, iter_items, read_item
from captioner.batch.rows import (
    DEFAULT_BATCH_SIZE,
    OUTPUT_COLUMNS,
    BatchRun,
    CaptionRow,
    ReferenceScores,
    batch_config,
    caption_chunk,
    caption_items,
    score_rows,
)

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "OUTPUT_COLUMNS",
    "BatchItem",
    "BatchRun",
    "CaptionRow",
    "ReferenceScores",
    "batch_config",
    "caption_chunk",
    "caption_items",
    "expand_uploads",
    "iter_items",
    "read_item",
    "score_rows",
]
