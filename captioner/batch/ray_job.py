"""The batch job on Ray Data: list inputs -> Ray Dataset -> map_batches(RayCaptioner) -> Parquet folder.

Each worker is an actor that loads the model once and runs the same `caption_chunk` as a local
run, so the rows are the same. Ray retries a batch whose worker died on a restarted worker
(actors of an ActorPoolStrategy restart and retry without limit), so every image is written once.
The output is a folder of Parquet files, local or any pyarrow filesystem URI (s3://, gs://, ...);
resume reads the rows already there and workers skip those images.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any, Iterable

from captioner.batch.items import BatchItem, iter_items
from captioner.batch.formats import records_table
from captioner.batch.parquet_folder import ParquetFolder
from captioner.batch.resume import merged_references
from captioner.batch.rows import DEFAULT_BATCH_SIZE, BatchRun, caption_chunk
from captioner.config import DecodingConfig

ROWS_PER_FILE = 1000


class RayCaptioner:
    """map_batches' callable class: the model is loaded once per worker; a batch of items in, rows out."""

    def __init__(self, spec: str, dtype: str, config: DecodingConfig, run: BatchRun, done: frozenset[bytes]):
        from captioner.loading import load_captioner

        self.model = load_captioner(spec, dtype=dtype)
        self.config, self.run, self.done = config, run, done

    def __call__(self, batch: Any) -> Any:  # pyarrow.Table -> pyarrow.Table
        items = [BatchItem.from_record(record) for record in batch.to_pylist()]
        # `seen` is per batch: a batch that Ray runs again (its worker died) must not skip its own images.
        # References for images captioned before come back as rows with status "references"; the driver
        # merges them into those rows (ParquetFolder.drop_replaced).
        references: list = []
        rows, _ = caption_chunk(
            self.model, items, self.config, self.run, skip=self.done, seen=set(), on_skipped_references=references.append
        )
        return records_table(row.to_record() for row in rows + references)


@dataclass
class RayOptions:
    address: str | None = None  # join this cluster; None: start a local Ray with this machine's CPUs
    workers: int = 2
    worker_cpus: float | None = None  # None: (the cluster's CPUs - 1) / workers, so reading and writing keep a CPU
    batch_size: int = DEFAULT_BATCH_SIZE
    quiet: bool = False
    runtime_env: dict[str, Any] = field(default_factory=dict)


def start_ray(options: RayOptions) -> None:
    """Join `options.address`, or start a local Ray that can import this checkout's `captioner`."""
    import ray

    if ray.is_initialized():
        return
    package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = {"env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}}
    level = logging.WARNING if options.quiet else logging.INFO
    if options.address:
        ray.init(address=options.address, runtime_env=options.runtime_env or None, logging_level=level)
    else:
        ray.init(
            num_cpus=os.cpu_count(), include_dashboard=False, runtime_env={**env, **options.runtime_env}, logging_level=level
        )


def worker_cpus(options: RayOptions) -> float:
    import ray

    if options.worker_cpus is not None:
        return options.worker_cpus
    total = float(ray.cluster_resources().get("CPU", 1.0))
    return round(max(total - 1.0, 0.0) / options.workers, 3)


def caption_dataset(
    records: list[dict[str, Any]],
    spec: str,
    dtype: str,
    config: DecodingConfig,
    run: BatchRun,
    done: frozenset[bytes],
    options: RayOptions,
):
    """The lazy Ray Dataset of rows for item records (`BatchItem.to_record`)."""
    import ray
    from ray.data import ActorPoolStrategy

    return ray.data.from_items(records).map_batches(
        RayCaptioner,
        fn_constructor_kwargs={"spec": spec, "dtype": dtype, "config": config, "run": run, "done": done},
        batch_size=options.batch_size,
        batch_format="pyarrow",
        compute=ActorPoolStrategy(size=options.workers),
        num_cpus=worker_cpus(options),
    )


@dataclass
class RayResult:
    rows: int  # written by this run
    errors: int
    skipped: int


def run_ray(
    inputs: Iterable[str], out: str, spec: str, dtype: str, config: DecodingConfig, run: BatchRun, options: RayOptions
) -> RayResult:
    """Caption the inputs on Ray and add the rows to the Parquet folder `out`."""
    import ray

    folder = ParquetFolder(out)
    done = frozenset(folder.done_keys(run.run_key))
    listed = 0
    records: dict[str, dict[str, Any]] = {}  # an image listed twice is captioned once, as in a local run
    for item in iter_items(inputs, keep_archive_bytes=False):
        listed += 1
        record = records.setdefault(item.name, item.to_record())
        record["references"] = merged_references(record["references"], item.references)  # data of the image
    before = set(folder.files())
    start_ray(options)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = not options.quiet
    context.print_on_execution_start = not options.quiet
    if options.quiet:  # Ray Data sets up its own logger when it is first imported (just above)
        logging.getLogger("ray.data").setLevel(logging.ERROR)
    if records:
        rows = caption_dataset(list(records.values()), spec, dtype, config, run, done, options)
        # The folder's own filesystem (locations.filesystem_of): Ray is never handed a URI to resolve itself.
        rows.write_parquet(folder.root, filesystem=folder.filesystem, min_rows_per_file=ROWS_PER_FILE)
    new_files = [f for f in folder.files() if f not in before]
    folder.drop_replaced(new_files)
    written = errors = 0
    for chunk in folder.records(new_files):
        written += len(chunk)
        errors += sum(r["status"] != "ok" for r in chunk)
    return RayResult(written, errors, listed - written)
