"""`python -m captioner.batch INPUT... --out PATH`: caption a collection, resumably, locally or on Ray."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Sequence

from captioner.__main__ import build_parser as build_cli_parser
from captioner.__main__ import decoding_from_args
from captioner.batch.rows import DEFAULT_BATCH_SIZE

EXIT_OK, EXIT_ROWS_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _cli_options() -> argparse.ArgumentParser:
    """The CLI's model and decoding options (`python -m captioner --help`), without its image list, --json and --prefix (a batch captions without one)."""
    cli = build_cli_parser()
    parent = argparse.ArgumentParser(add_help=False)
    for action in cli._actions:  # argparse has no public way to take some of another parser's options
        if action.option_strings and action.dest not in ("help", "json", "prefix"):
            parent._add_action(action)
    return parent


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m captioner.batch",
        parents=[_cli_options()],
        description="Caption a collection of images into a Parquet, CSV or JSON Lines file. Run it again with "
        "the same --out to continue: images already captioned with the same model and settings are skipped.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="folders (recursive), globs, zip files, list files (.txt: one path a line; .csv or "
                        ".parquet: a 'path' column and an optional 'reference' column), images; paths or URIs")
    p.add_argument("--out", required=True,
                   help="output file: .parquet (default), .csv or .jsonl; with --ray a folder of Parquet files "
                        "(a path or a URI such as s3://bucket/captions/)")
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                   help=f"images captioned together (default {DEFAULT_BATCH_SIZE})")
    p.add_argument("--ray", action="store_true", help="run on a local Ray with this machine's CPUs")
    p.add_argument("--ray-address", help="run on this Ray cluster (e.g. ray://head:10001 or auto)")
    p.add_argument("--workers", type=int, default=2, help="Ray workers, each holding the model once (default 2)")
    p.add_argument("--worker-cpus", type=float,
                   help="CPUs per Ray worker (default: the cluster's CPUs less one, shared by the workers)")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no notices")  # fmt: skip
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
    if args.batch_size < 1 or args.workers < 1 or (args.worker_cpus is not None and args.worker_cpus < 0):
        parser.error("--batch-size and --workers must be 1 or more, --worker-cpus 0 or more")
    on_ray = bool(args.ray or args.ray_address)
    say = (lambda *a: None) if args.quiet else (lambda *a: print(*a, file=sys.stderr, flush=True))

    from captioner.batch.outputs import OutputError, metrics_path, output_format, write_metrics
    from captioner.batch.rows import BatchRun, batch_config
    from captioner.loading import ModelLoadError

    try:
        if not on_ray:
            output_format(args.out)
        model, spec = _load_model(args.model, args.dtype)
        asked = decoding_from_args(args, model.default_decoding)
        config = batch_config(model, asked)
    except (ModelLoadError, OutputError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    say(f"model: {model.info.name}" + (f" ({model.info.reason})" if model.info.reason else ""))
    if config.max_new_tokens < asked.max_new_tokens:
        say(f"notice: max_new_tokens {asked.max_new_tokens} is more than this model holds; using {config.max_new_tokens}")
    run = BatchRun.of(model, config)
    try:
        if on_ray:
            del model  # each Ray worker loads its own
            summary = _run_on_ray(args, spec, config, run)
        else:
            summary = run_local(args.inputs, args.out, model, config, run, batch_size=args.batch_size, quiet=args.quiet)
    except OutputError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as e:  # Ray: a cluster that can't be reached, a job that fails as a whole
        if not on_ray:
            raise
        print(f"error: the Ray job failed: {type(e).__name__}: {str(e)[:500]}", file=sys.stderr)
        return EXIT_USAGE
    _report(summary, args.out, say)
    scores = _scores(args.out, on_ray, run)
    if scores is not None:
        write_metrics(metrics_path(args.out), scores, run, args.out)
        print(f"BLEU-4 {scores.bleu4:.4f}  CIDEr-D {scores.cider_d:.4f}  over {scores.images} images with references "
              f"(written to {metrics_path(args.out)})", flush=True)  # fmt: skip
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_ROWS_FAILED if summary.errors else EXIT_OK


def _load_model(spec: str | None, dtype: str):
    """The model, and the spec that loads it again (what Ray workers are given)."""
    from captioner.loading import load_captioner, load_default_captioner, resolve_default_model

    if spec:
        return load_captioner(spec, dtype=dtype), spec
    model = load_default_captioner(dtype)
    return model, "builtin" if model.info.fell_back else resolve_default_model().spec


def run_local(inputs: Sequence[str], out: str, model, config, run, *, batch_size: int = DEFAULT_BATCH_SIZE, quiet: bool = False) -> Summary:
    """Caption the inputs into the output file `out` in this process, chunk by chunk, resuming what is there."""
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
                for chunk in chunks(iter_items(inputs), batch_size):
                    rows, skipped = caption_chunk(model, chunk, config, run, skip=done, seen=done)
                    output.append(rows)
                    summary.rows += len(rows)
                    summary.errors += sum(not r.ok for r in rows)
                    summary.skipped += skipped
                    bar.update(len(chunk))
            except KeyboardInterrupt:
                summary.interrupted = True
        output.finish()
    return summary


def _run_on_ray(args: argparse.Namespace, spec: str, config, run) -> Summary:
    from captioner.batch.ray_job import RayOptions, run_ray

    options = RayOptions(address=args.ray_address, workers=args.workers, worker_cpus=args.worker_cpus,
                         batch_size=args.batch_size, quiet=args.quiet)  # fmt: skip
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
    from captioner.batch.outputs import OutputFile, ParquetFolder

    return (ParquetFolder(out) if on_ray else OutputFile(out)).scores(run.run_key)


if __name__ == "__main__":
    sys.exit(main())
