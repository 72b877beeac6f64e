"""`python -m captioner.batch INPUT... --out PATH`: caption a collection, resumably, locally or on Ray."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from captioner.batch.rows import DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE
from captioner.cli_options import add_decoding_options, add_model_options, decoding_from_args
from captioner.errors import unforeseen_line
from captioner.files import escape_name

EXIT_OK, EXIT_ROWS_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m captioner.batch",
        description="Caption a collection of images into a Parquet, CSV or JSON Lines file. Run it again with "
        "the same --out to continue: images already captioned with the same model and settings are skipped.",
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="folders (recursive), globs, zip files, list files (.txt: one path a line; .csv or "
        ".parquet: a 'path' column and an optional 'reference' column), images; paths or URIs",
    )
    p.add_argument(
        "--references",
        metavar="CSV",
        help="reference captions: a .csv or .parquet with a 'path' and a 'reference' column (several "
        "references separated by '|'), paths relative to it; images match by path, else by file name",
    )
    p.add_argument(
        "--out",
        required=True,
        help="output file: .parquet (default), .csv or .jsonl; with --ray a folder of Parquet files "
        "(a path or a URI such as s3://bucket/captions/)",
    )
    p.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        help=f"images captioned together, 1 to {MAX_BATCH_SIZE} (default {DEFAULT_BATCH_SIZE})",
    )
    p.add_argument("--ray", action="store_true", help="run on a local Ray with this machine's CPUs")
    p.add_argument("--ray-address", help="run on this Ray cluster (e.g. ray://head:10001 or auto)")
    p.add_argument("--workers", type=int, default=2, help="Ray workers, each holding the model once (default 2)")
    p.add_argument(
        "--worker-cpus", type=float, help="CPUs per Ray worker (default: the cluster's CPUs less one, shared by the workers)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar and no notices")
    add_model_options(p, several=True)
    add_decoding_options(p)  # a batch captions without a prefix, explanations or JSON Lines
    return p


@dataclass
class Summary:
    rows: int = 0  # rows written by this run
    errors: int = 0
    skipped: int = 0  # already captioned with these settings
    interrupted: bool = False


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    cpus_ok = args.worker_cpus is None or 0 <= args.worker_cpus < math.inf  # a NaN passed `< 0` and reached Ray
    if not 1 <= args.batch_size <= MAX_BATCH_SIZE or args.workers < 1 or not cpus_ok:
        parser.error(
            f"--batch-size must be 1 to {MAX_BATCH_SIZE} (each chunk's images are decoded and held "
            "together), --workers 1 or more, --worker-cpus a finite number of 0 or more"
        )
    on_ray = bool(args.ray or args.ray_address)
    if on_ray and args.references:
        parser.error("--references works for local runs; with --ray give references in a list file's 'reference' column")
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))
    references = None
    if args.references:
        from captioner.batch.leaderboard import read_references

        try:
            references = read_references(args.references)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_USAGE
    runs, codes = [], []
    for spec in list(dict.fromkeys(args.model or [None])):  # each model once, in the order given
        code, run = _caption_with(args, spec, on_ray, say, references)
        codes.append(code)
        if run is not None:
            runs.append((run.model, run.run_key))
        if code in (EXIT_USAGE, EXIT_INTERRUPTED):
            break
    if len(set(args.model or [])) > 1 and runs:
        _print_leaderboard(args.out, on_ray, runs)
    return max(codes, key=[EXIT_OK, EXIT_ROWS_FAILED, EXIT_USAGE, EXIT_INTERRUPTED].index)


def _caption_with(args: argparse.Namespace, model_spec: str | None, on_ray: bool, say, references) -> tuple[int, Any]:
    """Caption the inputs with one model into args.out: the exit code, and the run (None if it never started)."""
    from captioner.batch.outputs import OutputError
    from captioner.batch.rows import BatchRun
    from captioner.loading import ModelLoadError

    try:
        model, spec, config = _model_and_config(args, model_spec, on_ray, say)
    except (ModelLoadError, OutputError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE, None
    run = BatchRun.of(model, config)
    try:
        if on_ray:
            del model  # each Ray worker loads its own
            summary = _run_on_ray(args, spec, config, run)
        else:
            summary = run_local(
                args.inputs, args.out, model, config, run, batch_size=args.batch_size, quiet=args.quiet, references=references
            )
    except OutputError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE, run
    except KeyboardInterrupt:  # before the first chunk (reading what is done, listing): nothing was written
        print("interrupted before anything was captioned", file=sys.stderr)
        return EXIT_INTERRUPTED, run
    except Exception as e:  # Ray: a cluster that can't be reached, a job that fails as a whole
        if not on_ray:
            raise
        print(f"error: the Ray job failed: {unforeseen_line(e, limit=500)}", file=sys.stderr)
        return EXIT_USAGE, run
    _report(summary, args.out, say)
    if not _write_scores(args.out, on_ray, run):
        return EXIT_USAGE, run
    if summary.interrupted:
        return EXIT_INTERRUPTED, run
    return (EXIT_ROWS_FAILED if summary.errors else EXIT_OK), run


def _model_and_config(args: argparse.Namespace, model_spec: str | None, on_ray: bool, say) -> tuple[Any, str, Any]:
    """The model, the spec that loads it again and the settings a batch decodes with (within the model's limit,
    with a notice if that cut max_new_tokens). Raises ModelLoadError, OutputError or ValueError (ConfigError)."""
    from captioner.batch.outputs import output_format
    from captioner.batch.rows import batch_config

    if not on_ray:
        output_format(args.out)
    model, spec = _load_model(model_spec, args.dtype)
    asked = decoding_from_args(args, model.default_decoding)
    config = batch_config(model, asked)
    say(f"model: {model.info.name}" + (f" ({model.info.reason})" if model.info.reason else ""))
    if config.max_new_tokens < asked.max_new_tokens:
        say(f"notice: max_new_tokens {asked.max_new_tokens} is more than this model holds; using {config.max_new_tokens}")
    return model, spec, config


def _write_scores(out: str, on_ray: bool, run) -> bool:
    """With references: BLEU-4 and CIDEr-D written beside the output and printed. False if they could not be written."""
    from captioner.batch.outputs import metrics_path, write_metrics

    scores = _scores(out, on_ray, run)
    if scores is None:
        return True
    try:
        write_metrics(metrics_path(out), scores, run, out)
    except OSError as e:
        print(f"error: {metrics_path(out)} could not be written: {e.strerror or e}", file=sys.stderr)
        return False
    print(
        f"BLEU-4 {scores.bleu4:.4f}  CIDEr-D {scores.cider_d:.4f}  over {scores.images} images with references "
        f"(written to {escape_name(metrics_path(out))})",
        flush=True,
    )
    return True


def _print_leaderboard(out: str, on_ray: bool, runs: Sequence[tuple[str, str]]) -> None:
    from captioner.batch.leaderboard import format_leaderboard, leaderboard
    from captioner.batch.outputs import output_format, read_records
    from captioner.batch.parquet_folder import ParquetFolder

    if not on_ray and not os.path.exists(out):
        return
    records = ParquetFolder(out).records() if on_ray else read_records(out, output_format(out))
    lines = leaderboard(records, runs)
    print(format_leaderboard(lines), flush=True)
    if not on_ray:
        path = leaderboard_path(out)
        with open(path, "w", encoding="utf-8") as f:
            json.dump({"output": out, "models": [line.to_dict() for line in lines]}, f, indent=2)
        print(f"(leaderboard written to {path})", flush=True)


def leaderboard_path(out: str) -> str:
    """Where the leaderboard of several models is written: beside the output."""
    return os.path.splitext(out)[0] + ".leaderboard.json"


def _load_model(spec: str | None, dtype: str):
    """The model, and the spec that loads it again (what Ray workers are given)."""
    from captioner.loading import load_captioner, load_default_captioner, resolve_default_model

    if spec:
        return load_captioner(spec, dtype=dtype), spec
    model = load_default_captioner(dtype)
    return model, "builtin" if model.info.fell_back else resolve_default_model().spec


def run_local(
    inputs: Sequence[str],
    out: str,
    model,
    config,
    run,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    quiet: bool = False,
    references: Mapping[str, tuple[str, ...]] | None = None,
) -> Summary:
    """Caption the inputs into the output file `out` in this process, chunk by chunk, resuming what is there
    (`references`: read_references' mapping, given to the matching items)."""
    from tqdm import tqdm

    from captioner.batch.items import count_items, iter_items
    from captioner.batch.outputs import OutputFile
    from captioner.batch.rows import caption_chunk, chunks

    summary = Summary()
    with OutputFile(out) as output:
        done = output.done_keys(run.run_key)
        total = count_items(inputs)
        with tqdm(total=total, unit="img", disable=quiet, file=sys.stderr, dynamic_ncols=True) as bar:
            try:
                items = iter_items(inputs)
                if references:
                    from captioner.batch.leaderboard import attach_references

                    items = attach_references(items, references)
                for chunk in chunks(items, batch_size):
                    merged: list = []  # references for images captioned before: merged into their rows by finish()
                    rows, skipped = caption_chunk(
                        model, chunk, config, run, skip=done, seen=done, on_skipped_references=merged.append
                    )
                    output.append(rows + merged)
                    summary.rows += len(rows)
                    summary.errors += sum(not r.ok for r in rows)
                    summary.skipped += skipped
                    bar.update(len(chunk))
            except KeyboardInterrupt:
                summary.interrupted = True
        with _interrupts_wait(out, summary):
            output.finish()
    return summary


@contextmanager
def _interrupts_wait(out: str, summary: Summary):
    """While the output is rewritten, Ctrl-C says it is finishing and is remembered, not raised."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def remember(signum, frame):
        summary.interrupted = True
        print(f"\nstill writing {out}: it is done in a moment", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, remember)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _run_on_ray(args: argparse.Namespace, spec: str, config, run) -> Summary:
    from captioner.batch.ray_job import RayOptions, run_ray

    options = RayOptions(
        address=args.ray_address, workers=args.workers, worker_cpus=args.worker_cpus, batch_size=args.batch_size, quiet=args.quiet
    )
    result = run_ray(args.inputs, args.out, spec, args.dtype, config, run, options)
    return Summary(result.rows, result.errors, result.skipped)


def _report(summary: Summary, out: str, say) -> None:
    if summary.skipped:
        say(f"skipped {summary.skipped} images already captioned with this model and these settings")
    say(f"wrote {summary.rows} rows to {out}" + (f", {summary.errors} with errors" if summary.errors else ""))
    if summary.interrupted:
        say("interrupted: run the same command again to continue where it stopped")
    if summary.errors:
        images = "image" if summary.errors == 1 else "images"
        print(f"{summary.errors} {images} could not be captioned: see the 'error' column of {out}", file=sys.stderr)


def _scores(out: str, on_ray: bool, run):
    from captioner.batch.outputs import OutputFile
    from captioner.batch.parquet_folder import ParquetFolder

    return (ParquetFolder(out) if on_ray else OutputFile(out)).scores(run.run_key)


if __name__ == "__main__":
    sys.exit(main())
