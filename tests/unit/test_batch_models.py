"""Several models on one collection: `python -m captioner.batch DIR --model A --model B --references refs.csv`
writes one row per (image, model), resumes per model, and prints a leaderboard whose scores are the
metrics of each model's rows."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

from captioner.batch import __main__ as batch_cli
from captioner.batch.leaderboard import distinct_n, model_scores, read_references
from captioner.metrics import bleu4_scores, cider_d_scores, exact_match, rouge_l_scores
from tests.tiny_models import make_tiny_blip_dir
from tests.unit.batch_files import read_rows

REFERENCES = {"im0.png": ["a red ball", "a ball on grass"], "im1.png": ["w1 w2 w3"], "im2.png": ["a dog | a brown dog"]}


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    root = tmp_path_factory.mktemp("collection")
    images = root / "images"
    images.mkdir()
    for i in range(3):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(images / f"im{i}.png")
    with open(root / "refs.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["path", "reference"])
        for name, refs in REFERENCES.items():
            for ref in refs:  # one row per reference, and one cell with several
                writer.writerow([f"images/{name}", ref])
    blip = make_tiny_blip_dir(tmp_path_factory.mktemp("blip"))
    return root, str(blip)


def run(collection, out, *models, capsys=None):
    root, _ = collection
    args = [str(root / "images"), "--out", str(out), "--references", str(root / "refs.csv"), "--quiet", "--max-new-tokens", "6"]
    for m in models:
        args += ["--model", m]
    return batch_cli.main(args)


def test_two_models_give_a_row_per_image_and_model_and_a_leaderboard(collection, tmp_path, capsys, tiny_visiongpt2_dir):
    _, blip = collection
    out = tmp_path / "captions.csv"
    assert run(collection, out, str(tiny_visiongpt2_dir), blip) == 0
    rows = read_rows(out)
    assert len(rows) == 6 and {r["model"] for r in rows} == {"captioner.pt", blip}
    assert {(r["path"].rsplit("/", 1)[-1], r["model"]) for r in rows} == {
        (f"im{i}.png", m) for i in range(3) for m in ("captioner.pt", blip)
    }
    printed = capsys.readouterr().out
    board = json.loads((tmp_path / "captions.leaderboard.json").read_text())["models"]
    assert [line["model"] for line in board] == ["captioner.pt", blip]
    for line in board:
        mine = [r for r in rows if r["model"] == line["model"]]
        hyps = [r["caption"] for r in mine]
        refs = [json.loads(r["references"]) for r in mine]
        by_image = {r["path"].rsplit("/", 1)[-1]: json.loads(r["references"]) for r in mine}
        assert by_image["im0.png"] == ["a red ball", "a ball on grass"] and by_image["im2.png"] == ["a dog", "a brown dog"]
        assert line["with references"] == 3 and line["images"] == 3
        assert line["BLEU-4"] == pytest.approx(bleu4_scores(hyps, refs)[0])
        assert line["CIDEr-D"] == pytest.approx(cider_d_scores(hyps, refs)[0])
        assert line["ROUGE-L"] == pytest.approx(rouge_l_scores(hyps, refs)[0])
        assert line["exact match"] == pytest.approx(sum(exact_match(h, r) for h, r in zip(hyps, refs)) / 3)
        assert line["images/s"] > 0
        assert line["model"] in printed
    assert "CIDEr-D" in printed and "ROUGE-L" in printed and "distinct-2" in printed


def test_references_match_by_path_and_split_on_the_separator(collection):
    root, _ = collection
    refs = read_references(str(root / "refs.csv"))
    by_name = {k.rsplit("/", 1)[-1]: v for k, v in refs.items()}
    assert by_name == {
        "im0.png": ("a red ball", "a ball on grass"),
        "im1.png": ("w1 w2 w3",),
        "im2.png": ("a dog", "a brown dog"),
    }


def test_resume_is_per_model(collection, tmp_path, tiny_visiongpt2_dir, capsys):
    _, blip = collection
    out = tmp_path / "captions.csv"
    assert run(collection, out, str(tiny_visiongpt2_dir)) == 0
    first = {(r["path"], r["model"]): (r["caption"], r["timings"]) for r in read_rows(out)}
    assert len(first) == 3 and not (tmp_path / "captions.leaderboard.json").exists()  # one model: no leaderboard
    assert run(collection, out, str(tiny_visiongpt2_dir), blip) == 0  # the first model's images are skipped
    rows = read_rows(out)
    assert len(rows) == 6
    # The first model's rows are the first run's (their timings too): skipped, not captioned again.
    assert {(r["path"], r["model"]): (r["caption"], r["timings"]) for r in rows if r["model"] == "captioner.pt"} == first
    assert run(collection, out, str(tiny_visiongpt2_dir), blip) == 0
    assert len(read_rows(out)) == 6  # nothing new the third time


def test_bad_references_are_one_line_and_exit_2(collection, tmp_path, capsys):
    root, blip = collection
    bad = tmp_path / "refs.csv"
    bad.write_text("image,caption\nx.png,a cat\n")
    status = batch_cli.main([str(root / "images"), "--out", str(tmp_path / "o.csv"), "--references", str(bad), "--model", blip])
    err = capsys.readouterr().err.strip()
    assert status == 2 and err.startswith("error: the references") and "no 'path' column" in err and "\n" not in err
    assert not (tmp_path / "o.csv").exists()
    with pytest.raises(SystemExit) as e:
        batch_cli.main([str(root / "images"), "--out", str(tmp_path / "o"), "--references", str(root / "refs.csv"), "--ray"])
    assert e.value.code == 2


def test_model_scores_of_known_rows():
    rows = [
        {"caption": "a cat on a mat", "references": ["a cat on a mat"], "timings": json.dumps({"encode": 0.5, "decode": 0.5})},
        {"caption": "a cat", "references": [], "timings": json.dumps({"decode": 1.0})},
        {"caption": "a dog on a mat", "references": '["a cat"]', "timings": "{}"},
    ]
    scores = model_scores("m", rows)
    assert (scores.images, scores.scored) == (3, 2)
    assert scores.exact_match == 0.5 and scores.mean_length == pytest.approx((5 + 2 + 5) / 3)
    assert scores.images_per_second == pytest.approx(3 / 2.0)
    assert scores.distinct_1 == pytest.approx(distinct_n([r["caption"] for r in rows], 1))
    assert distinct_n(["a a a", "a b"], 1) == pytest.approx(2 / 5) and distinct_n(["a a a", "a b"], 2) == pytest.approx(2 / 3)
    assert distinct_n([""], 2) == 0.0
    assert model_scores("none", []).bleu4 is None
