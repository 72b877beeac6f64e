"""The batch module: every input kind, the rows, the three output formats, resume, error rows, the page's API."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from captioner.batch import (
    OUTPUT_COLUMNS,
    BatchItem,
    CaptionRow,
    batch_config,
    caption_chunk,
    caption_items,
    expand_uploads,
    iter_items,
    read_item,
    score_rows,
)
from captioner.batch import __main__ as batch_cli
from captioner.batch import rows as batch_rows
from captioner.batch.items import count_items
from captioner.batch.outputs import JOURNAL_SUFFIX, OutputFile, _Writer, metrics_path, read_records
from captioner.batch.rows import BatchRun
from captioner.images import ImageLoadError
from captioner.metrics import bleu4_scores, cider_d_scores
from tests.unit.batch_files import image_bytes, read_rows

ROOT = Path(__file__).resolve().parents[2]


# -- fixtures: a collection of images drawn in several formats and modes -------------------------------
@pytest.fixture(scope="module")
def collection(tmp_path_factory) -> Path:
    """A folder as people have them: nested, mixed formats, a hidden file, a text file, a broken image."""
    root = tmp_path_factory.mktemp("collection")
    (root / "trips" / "2024").mkdir(parents=True)
    (root / ".thumbnails").mkdir()
    (root / "red.png").write_bytes(image_bytes("PNG"))
    (root / "blue.jpg").write_bytes(image_bytes("JPEG", colour=(30, 40, 220), size=(120, 90)))
    (root / "trips" / "grey.gif").write_bytes(image_bytes("GIF", mode="P", colour=(90, 90, 90)))
    (root / "trips" / "2024" / "see-through.png").write_bytes(image_bytes("PNG", mode="RGBA", size=(40, 70)))
    (root / "trips" / "2024" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    (root / ".thumbnails" / "red.png").write_bytes(image_bytes("PNG"))
    (root / ".hidden.png").write_bytes(image_bytes("PNG"))
    (root / "notes.txt").write_text("not an image, not listed in a folder")
    return root


FOLDER_IMAGES = ["blue.jpg", "red.png", "trips/grey.gif", "trips/2024/broken.jpg", "trips/2024/see-through.png"]


def names(items):
    return [i.name for i in items]


# -- inputs ---------------------------------------------------------------------------------------------
def test_a_folder_gives_its_images_recursively_in_order(collection):
    items = list(iter_items([str(collection)]))
    assert names(items) == [str(collection / n) for n in FOLDER_IMAGES]
    assert all(not i.problem for i in items) and count_items([str(collection)]) == len(FOLDER_IMAGES)


def test_a_folder_as_a_file_uri_is_read_through_pyarrow(collection):
    items = list(iter_items([collection.as_uri()]))
    assert names(items) == [(collection / n).as_uri() for n in FOLDER_IMAGES]
    assert read_item(items[1]) == (collection / "red.png").read_bytes()


def test_globs_match_recursively_and_a_glob_matching_nothing_is_one_problem(collection):
    items = list(iter_items([str(collection / "**" / "*.png"), str(collection / "*.jpg")]))
    assert names(items) == [str(collection / n) for n in ["red.png", "trips/2024/see-through.png", "blue.jpg"]]
    (missing,) = iter_items([str(collection / "*.webp")])
    assert "No file matches" in missing.problem


def test_zip_files_are_read_safely_with_their_skipped_entries(tmp_path):
    archive = tmp_path / "holiday.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("beach/sea.png", image_bytes("PNG", colour=(20, 90, 200)))
        z.writestr("../escape.jpg", image_bytes("JPEG"))
        z.writestr("readme.md", "text")
        z.writestr("__MACOSX/._sea.png", b"junk")
    (tmp_path / "not-a-zip.zip").write_text("plain text")
    items = list(iter_items([str(archive), str(tmp_path / "not-a-zip.zip")]))
    assert names(items) == [
        f"{archive}/beach/sea.png",
        f"{archive}/../escape.jpg",
        f"{archive}/readme.md",
        str(tmp_path / "not-a-zip.zip"),
    ]
    assert items[0].data is not None and not items[0].problem
    assert "not an image" in items[2].problem and "not a ZIP archive" in items[3].problem
    # Without the bytes (what a Ray worker gets), the entry is unpacked again from the archive.
    lean = list(iter_items([str(archive)], keep_archive_bytes=False))
    assert lean[0].data is None and read_item(lean[0]) == items[0].data
    assert not (tmp_path / "escape.jpg").exists()  # nothing unpacked to disk


def test_list_files_txt_csv_and_parquet_with_references(collection, tmp_path):
    (tmp_path / "list.txt").write_text(f"# my picks\n{collection}/red.png\n\n  {collection}/blue.jpg  \n")
    (collection / "refs.csv").write_text(
        'path,reference\nred.png,a red ball | a red circle on white\n"blue.jpg","a blue, round dot"\ntrips/grey.gif,\n'
    )
    pq.write_table(
        pa.table({"path": ["red.png", "trips/grey.gif"], "reference": [["a red disc", "red"], None]}), collection / "refs.parquet"
    )
    pq.write_table(pa.table({"path": ["red.png"], "reference": ["a red disc | a dot"]}), tmp_path / "flat.parquet")
    txt = list(iter_items([str(tmp_path / "list.txt")]))
    assert names(txt) == [f"{collection}/red.png", f"{collection}/blue.jpg"] and txt[0].references == ()
    csv_items = list(iter_items([str(collection / "refs.csv")]))
    assert names(csv_items) == [str(collection / p) for p in ["red.png", "blue.jpg", "trips/grey.gif"]]
    assert [i.references for i in csv_items] == [("a red ball", "a red circle on white"), ("a blue, round dot",), ()]
    parquet_items = list(iter_items([str(collection / "refs.parquet")]))
    assert [i.references for i in parquet_items] == [("a red disc", "red"), ()]
    assert list(iter_items([str(tmp_path / "flat.parquet")]))[0].references == ("a red disc", "a dot")
    assert read_item(csv_items[0]) == (collection / "red.png").read_bytes()


def test_inputs_that_cannot_be_used_become_problems_not_failures(collection, tmp_path):
    (tmp_path / "no-path-column.csv").write_text("file,caption\nred.png,a dot\n")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9.png\n".encode("latin-1"))
    items = list(
        iter_items(
            [
                str(tmp_path / "nowhere"),
                str(tmp_path / "no-path-column.csv"),
                str(tmp_path / "latin1.txt"),
                "nosuch://bucket/photos/",
            ]
        )
    )
    assert "No such file or folder" in items[0].problem
    assert "no 'path' column" in items[1].problem
    # A Latin-1 byte in a list names the file of those bytes (surrogateescape); it is not there: read_item says so.
    assert items[2].name == str(tmp_path / "caf\udce9.png") and not items[2].problem
    assert "could not be listed" in items[3].problem and "nosuch:// is not read" in items[3].problem


def test_a_fifo_is_refused_and_never_blocks(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    (tmp_path / "pipes.txt").write_text("pipe.png\n")
    (item,) = iter_items([str(tmp_path / "pipes.txt")])
    with pytest.raises(ImageLoadError, match="not a regular file"):
        read_item(item)
    assert list(iter_items([str(tmp_path)])) == []  # a folder walk passes over it


def test_uploads_expand_like_the_command_line(tmp_path):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("a.png", image_bytes("PNG"))
        z.writestr("b.txt", "text")
    items = expand_uploads([("one.jpg", image_bytes("JPEG")), ("pack.zip", archive.getvalue()), ("bad.zip", b"PK\x03")])
    assert names(items) == ["one.jpg", "pack.zip/a.png", "pack.zip/b.txt", "bad.zip"]
    assert [bool(i.problem) for i in items] == [False, False, True, True]
    assert BatchItem.from_record(items[1].to_record()) == BatchItem("pack.zip/a.png", member="a.png")


# -- the batch function ------------------------------------------------------------------------------
def test_rows_in_order_with_error_rows(model, collection):
    items = list(iter_items([str(collection), str(collection / "missing.png")]))
    config = batch_config(model, model.default_decoding.with_(max_new_tokens=10))
    rows, skipped = caption_chunk(model, items, config, BatchRun.of(model, config))
    assert skipped == 0 and [r.path for r in rows] == names(items)
    by_name = {Path(r.path).name: r for r in rows}
    assert [by_name[n].status for n in ["red.png", "blue.jpg", "grey.gif", "see-through.png"]] == ["ok"] * 4
    assert by_name["broken.jpg"].status == "error" and "truncated or corrupt" in by_name["broken.jpg"].error
    assert by_name["missing.png"].status == "error" and by_name["missing.png"].sha256 is None
    blue = by_name["blue.jpg"]
    assert (blue.width, blue.height) == (120, 90) and blue.caption and blue.captions == [blue.caption]
    assert blue.token_count == len(blue.caption.split())  # the built-in model's tokens are words
    assert blue.sha256 == hashlib.sha256((collection / "blue.jpg").read_bytes()).hexdigest()
    assert 0 <= blue.confidence <= 1 and blue.hit_limit == (blue.token_count == config.max_new_tokens)
    assert set(json.loads(blue.timings)) >= {"read", "encode", "decode"}
    assert json.loads(blue.settings)["strategy"] == model.default_decoding.strategy


def test_an_image_the_model_fails_on_is_one_error_row(model, monkeypatch):
    real = batch_rows.caption_images

    def fails_on_wide_images(m, images, configs):
        if any(image.width > 100 for image in images):
            raise RuntimeError("shape mismatch")
        return real(m, images, configs)

    monkeypatch.setattr(batch_rows, "caption_images", fails_on_wide_images)
    items = [BatchItem("wide.png", data=image_bytes(size=(160, 40))), BatchItem("ok.png", data=image_bytes())]
    config = batch_config(model, model.default_decoding.with_(max_new_tokens=8))
    rows, _ = caption_chunk(model, items, config, BatchRun.of(model, config))
    assert [r.status for r in rows] == ["error", "ok"]
    assert rows[0].error == "could not be captioned: RuntimeError: shape mismatch"


def test_batch_config_holds_the_models_limit(model):
    config = batch_config(model, model.default_decoding.with_(max_new_tokens=128, min_new_tokens=100))
    assert config.max_new_tokens == model.max_new_tokens_limit and config.min_new_tokens <= config.max_new_tokens
    assert config.output_attentions is False


# -- the Batch page's API -------------------------------------------------------------------------------
def test_caption_items_in_chunks_under_the_lock_with_thumbnails(model, monkeypatch):
    """The Batch page's call: rows in order, each chunk of `batch_size` captioned while the model's lock
    is held, the lock free afterwards (a Stop between chunks is the page's own: tests/app/test_app.py)."""
    items = expand_uploads([(f"{i}.png", image_bytes(colour=(30 * i, 100, 50))) for i in range(5)])
    lock, calls = threading.Lock(), []
    real = batch_rows.caption_images
    monkeypatch.setattr(
        batch_rows, "caption_images", lambda m, images, c: calls.append((len(images), lock.locked())) or real(m, images, c)
    )
    rows = caption_items(
        model,
        items,
        model.default_decoding.with_(strategy="beam", num_beams=2, max_new_tokens=8),
        batch_size=2,
        model_lock=lock,
        thumbnail_side=32,
    )
    assert [r.path for r in rows] == names(items) and all(r.ok for r in rows)
    assert calls == [(2, True), (2, True), (1, True)] and not lock.locked()
    assert max(rows[0].thumbnail.size) == 32 and json.loads(rows[0].settings)["num_beams"] == 2


def test_every_strategy_through_the_page_api(model):
    items = expand_uploads([("a.png", image_bytes()), ("b.png", image_bytes(colour=(10, 200, 10)))])
    short = model.default_decoding.with_(max_new_tokens=8)
    sample = short.with_(strategy="sample", top_p=0.9, temperature=0.7, seed=3, num_return_sequences=3)
    greedy = short.with_(strategy="greedy", repetition_penalty=1.3, no_repeat_ngram_size=2)
    for config, returned in [(sample, 3), (greedy, 1)]:
        first, again = caption_items(model, items, config), caption_items(model, items, config)
        assert all(r.ok and len(r.captions) == returned for r in first)
        assert [r.captions for r in first] == [r.captions for r in again]  # seeded: the same every time


def test_score_rows_per_image_and_corpus():
    rows = [
        CaptionRow("a", caption="a red ball on grass", references=["a red ball on the grass", "a ball"]),
        CaptionRow("b", caption="a dog", references=["a dog running", "a brown dog"]),
        CaptionRow("c", caption="a cat"),
        CaptionRow("d", status="error", error="bad", references=["x"]),
    ]
    scored, corpus = score_rows(rows)
    hyps, refs = ["a red ball on grass", "a dog"], [rows[0].references, rows[1].references]
    assert corpus.images == 2 and corpus.bleu4 == bleu4_scores(hyps, refs)[0]
    assert corpus.cider_d == pytest.approx(cider_d_scores(hyps, refs)[0])
    assert [r.bleu4 for r in scored[:2]] == bleu4_scores(hyps, refs)[1]
    assert [r.cider_d for r in scored[:2]] == pytest.approx(cider_d_scores(hyps, refs)[1])
    assert scored[2].bleu4 is None and scored[3].cider_d is None and rows[0].bleu4 is None  # rows not changed
    assert score_rows(rows[2:]) == (rows[2:], None)


@pytest.mark.slow  # a fresh interpreter imports torch
def test_importing_the_batch_module_imports_neither_ray_nor_pyarrow():
    code = (
        "import sys, captioner.batch, captioner.batch.outputs, captioner.batch.ray_job; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'ray', 'pyarrow'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr


# -- the command: outputs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["captions.parquet", "captions.csv", "captions.jsonl"])
def test_outputs_have_the_columns_and_a_row_per_image(run_cli, collection, tmp_path, name):
    out = tmp_path / name
    status, err = run_cli(collection, "--out", out, "--batch-size", "3", "--quiet")
    assert status == 1 and "1 image could not be captioned" in err  # broken.jpg
    rows = read_rows(out)
    assert list(rows[0]) == list(OUTPUT_COLUMNS)
    assert [r["path"] for r in rows] == [str(collection / n) for n in FOLDER_IMAGES]
    assert [r["status"] for r in rows] == ["ok", "ok", "ok", "error", "ok"]
    assert not (tmp_path / (name + JOURNAL_SUFFIX)).exists()
    if name.endswith(".parquet"):
        assert pq.read_schema(out).field("width").type == pa.int64()


def test_exit_status_zero_when_every_row_is_captioned(run_cli, collection, tmp_path):
    status, _ = run_cli(collection / "red.png", collection / "trips", "--out", tmp_path / "c.jsonl", "--quiet")
    assert status == 1  # trips/ holds broken.jpg
    status, err = run_cli(collection / "red.png", collection / "blue.jpg", "--out", tmp_path / "d.jsonl")
    assert status == 0 and "wrote 2 rows" in err


def test_references_give_bleu_and_cider_beside_the_output(run_cli, collection, tmp_path):
    (collection / "refs2.csv").write_text("path,reference\nred.png,a red circle | a red ball\nblue.jpg,a blue dot\n")
    out = tmp_path / "scored.csv"
    status, err = run_cli(collection / "refs2.csv", "--out", out)
    rows = read_rows(out)
    written = json.loads(Path(metrics_path(str(out))).read_text())
    refs = [json.loads(r["references"]) for r in rows]
    assert status == 0 and written["images"] == 2 and refs[0] == ["a red circle", "a red ball"]
    assert written["BLEU-4"] == bleu4_scores([r["caption"] for r in rows], refs)[0]
    assert written["CIDEr-D"] == pytest.approx(cider_d_scores([r["caption"] for r in rows], refs)[0])
    assert f"CIDEr-D {written['CIDEr-D']:.4f}" in err and metrics_path(str(out)) == str(tmp_path / "scored.metrics.json")


def test_metrics_that_cannot_be_written_are_one_line_and_exit_2(run_cli, collection, tmp_path):
    (collection / "refs3.csv").write_text("path,reference\nred.png,a red circle\n")
    out = tmp_path / "scored.csv"
    Path(metrics_path(str(out))).mkdir()  # where the metrics go is taken by a folder
    status, err = run_cli(collection / "refs3.csv", "--out", out, "--quiet")
    assert status == 2 and f"error: {metrics_path(str(out))} could not be written: Is a directory" in err
    assert "Traceback" not in err and [r["status"] for r in read_rows(out)] == ["ok"]  # the caption is written all the same


def test_bad_options_and_outputs_are_messages(run_cli, collection, tmp_path):
    assert run_cli(collection, "--out", tmp_path / "x.txt")[0] == 2
    (tmp_path / "mine.csv").write_text("name,notes\nfoo,bar\n")
    status, err = run_cli(collection, "--out", tmp_path / "mine.csv")
    assert status == 2 and "not a table of captions" in err
    assert (tmp_path / "mine.csv").read_text() == "name,notes\nfoo,bar\n"  # left as it was
    assert run_cli(collection, "--out", tmp_path / "y.csv", "--top-p", "2")[0] == 2


# -- resume -------------------------------------------------------------------------------------------
def test_a_second_run_skips_what_is_done_and_retries_errors(run_cli, collection, tmp_path):
    collection = Path(shutil.copytree(collection, tmp_path / "collection"))
    out = tmp_path / "c.parquet"
    run_cli(collection, "--out", out, "--quiet")
    first = read_rows(out)
    status, err = run_cli(collection, "--out", out)
    assert status == 1 and "skipped 4 images" in err and "wrote 1 rows" in err  # broken.jpg tried again
    assert read_rows(out) == [r for r in first if r["status"] == "ok"] + [first[3]]  # replaced, not doubled
    # Other settings: every image again, beside the first rows.
    status, err = run_cli(collection, "--out", out, "--strategy", "beam", "--num-beams", "2")
    rows = read_rows(out)
    assert "skipped" not in err and len(rows) == 10 and len({r["run_key"] for r in rows}) == 2
    # A changed file is captioned again.
    (collection / "red.png").write_bytes(image_bytes(colour=(250, 120, 0)))
    _, err = run_cli(collection, "--out", out, "--quiet")
    assert [r["path"] for r in read_rows(out)].count(str(collection / "red.png")) == 2  # one per settings


def test_a_half_written_journal_line_is_cut_and_its_image_captioned(run_cli, collection, tmp_path):
    out = tmp_path / "c.jsonl"
    row = CaptionRow(str(collection / "red.png"), sha256="0" * 64, caption="stale", run_key="other")
    (tmp_path / ("c.jsonl" + JOURNAL_SUFFIX)).write_text(json.dumps(row.to_record()) + "\n" + '{"path": "/x", "sha')
    status, err = run_cli(collection / "blue.jpg", "--out", out)
    rows = read_rows(out)
    assert status == 0 and [r["caption"] for r in rows][0] == "stale" and len(rows) == 2


def test_ctrl_c_writes_what_is_done_and_the_next_run_goes_on(run_cli, collection, tmp_path, monkeypatch):
    real, calls = batch_rows.caption_chunk, []

    def interrupted_on_the_third_chunk(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(batch_rows, "caption_chunk", interrupted_on_the_third_chunk)
    out = tmp_path / "c.csv"
    status, err = run_cli(collection, "--out", out, "--batch-size", "1")
    assert status == 130 and "run the same command again" in err and len(read_rows(out)) == 2
    monkeypatch.setattr(batch_rows, "caption_chunk", real)
    status, err = run_cli(collection, "--out", out, "--batch-size", "1")
    assert "skipped 2 images" in err and [r["path"] for r in read_rows(out)] == [str(collection / n) for n in FOLDER_IMAGES]


def test_a_caption_longer_than_the_model_holds_is_cut_with_a_notice(run_cli, collection, tmp_path):
    status, err = run_cli(collection / "red.png", "--out", tmp_path / "c.jsonl", "--max-new-tokens", "100")
    (row,) = read_rows(tmp_path / "c.jsonl")
    assert status == 0 and "notice: max_new_tokens 100 is more than this model holds" in err
    assert json.loads(row["settings"])["max_new_tokens"] < 100


def test_two_runs_cannot_write_the_same_output(tmp_path):
    with OutputFile(str(tmp_path / "c.csv")):
        with pytest.raises(ValueError, match="Another run"):
            OutputFile(str(tmp_path / "c.csv")).__enter__()


@pytest.mark.slow
def test_a_killed_run_continues_where_it_stopped_and_captions_nothing_twice(model, tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(40):
        (folder / f"{i:03d}.png").write_bytes(image_bytes(colour=(6 * i, 255 - 6 * i, 90), size=(64 + i, 48)))
    out = tmp_path / "captions.parquet"
    journal = tmp_path / ("captions.parquet" + JOURNAL_SUFFIX)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    args = [
        sys.executable,
        "-m",
        "captioner.batch",
        str(folder),
        "--out",
        str(out),
        "--model",
        "builtin",
        "--batch-size",
        "2",
        "--quiet",
    ]
    process = subprocess.Popen(args, cwd=ROOT, env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 240
        while (not journal.exists() or journal.read_text().count("\n") < 6) and process.poll() is None:
            assert time.monotonic() < deadline, "the run wrote nothing"
            time.sleep(0.2)
    finally:
        process.kill()
        process.wait()
    assert not out.exists()  # killed before the end: only the journal holds rows
    done_before = [json.loads(line)["path"] for line in journal.read_text().splitlines()]
    assert 6 <= len(done_before) < 40

    config = batch_config(model, model.default_decoding)
    captioned = []
    real = batch_rows.caption_images
    batch_rows.caption_images = lambda m, images, configs: captioned.extend(images) or real(m, images, configs)
    try:
        status = batch_cli.main([str(folder), "--out", str(out), "--model", "builtin", "--quiet"])
    finally:
        batch_rows.caption_images = real
    rows = read_rows(out)
    assert status == 0 and sorted(r["path"] for r in rows) == sorted(str(p) for p in folder.iterdir())
    assert len(captioned) == 40 - len(done_before)  # none captioned twice
    assert {r["run_key"] for r in rows} == {BatchRun.of(model, config).run_key}


# -- formats at their limits ---------------------------------------------------------------------------
text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
record = st.fixed_dictionaries(
    {
        "path": text,
        "sha256": st.none() | text,
        "width": st.none() | st.integers(0, 2**40),
        "caption": st.none() | text,
        "captions": st.lists(text, max_size=3),
        "score": st.none() | st.floats(allow_nan=True, allow_infinity=True),
        "out_of_world": st.none() | st.booleans(),
        "references": st.lists(text, max_size=3),
        "run_key": text,
        "status": st.sampled_from(["ok", "error"]),
    }
)


@settings(max_examples=40, deadline=None)
@given(st.lists(record, min_size=1, max_size=5), st.sampled_from(["parquet", "csv", "jsonl"]))
def test_any_text_and_numbers_survive_every_format(tmp_path_factory, records, fmt):
    """Commas, quotes, newlines, unicode in paths and captions; NaN and infinite scores become empty."""
    path = str(tmp_path_factory.mktemp("formats") / f"rows.{fmt}")
    writer = _Writer(path, fmt)
    writer.write(records)
    writer.close()
    back = [r for chunk in read_records(path, fmt) for r in chunk]
    assert len(back) == len(records)
    for wrote, got in zip(records, back):
        score = wrote["score"] if wrote["score"] is not None and math.isfinite(wrote["score"]) else None
        if fmt == "csv":
            assert got["path"] == wrote["path"] and json.loads(got["references"]) == wrote["references"]
            assert got["score"] == ("" if score is None else repr(score))
        else:
            assert got["path"] == wrote["path"] and got["references"] == wrote["references"] and got["score"] == score
            assert got["width"] == wrote["width"] and got["out_of_world"] == wrote["out_of_world"]
