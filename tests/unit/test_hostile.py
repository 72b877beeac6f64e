"""Hostile input through the CLI, and load: shared model across threads, memory over many captions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from captioner.config import DecodingConfig
from captioner.decoding import caption_image
from captioner.images import load_image
from captioner.loading import load_captioner
from captioner.bench.soak import soak, soak_images
from tests.corpus import build_image_corpus

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_image_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.mark.slow
def test_every_image_case_through_the_cli(corpus, tiny_visiongpt2_dir):
    """One CLI call over the whole corpus: good files get a JSON line, bad ones their message, no traceback."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-m", "captioner", *[str(c.path) for c in corpus], "--json", "--max-new-tokens", "4",
         "--model", str(tiny_visiongpt2_dir / "captioner.pt")],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=300,
    )
    assert "Traceback" not in out.stderr
    captioned = {json.loads(line)["image"] for line in out.stdout.splitlines()}
    errors = {line.split(": ", 2)[1]: line.split(": ", 2)[2] for line in out.stderr.splitlines() if line.startswith("error: ")}
    for case in corpus:
        if case.expected == "ok":
            assert str(case.path) in captioned, f"{case.name}: no caption ({errors.get(str(case.path))})"
        else:
            assert str(case.path) not in captioned, case.name
            assert not case.error_problems(errors[str(case.path)]), (case.name, errors[str(case.path)])
    assert out.returncode == (1 if any(c.expected == "error" for c in corpus) else 0)


def test_good_corpus_images_caption_through_the_python_api(corpus, tiny_visiongpt2_dir):
    model = load_captioner(str(tiny_visiongpt2_dir / "captioner.pt"))
    for case in corpus:
        if case.expected == "ok":
            result = caption_image(model, load_image(case.path), [DecodingConfig(max_new_tokens=3)])[0]
            assert result.best.token_ids, case.name


def test_eight_threads_share_one_model(tiny_visiongpt2_dir):
    model = load_captioner(str(tiny_visiongpt2_dir / "captioner.pt"))
    images = soak_images(8)
    configs = [DecodingConfig(strategy="beam", num_beams=3, max_new_tokens=10),
               DecodingConfig(strategy="sample", top_k=10, seed=4, max_new_tokens=10)]

    def run(image):
        return [[c.token_ids for c in r.beams] for r in caption_image(model, image, configs)]

    sequential = [run(im) for im in images]
    with ThreadPoolExecutor(max_workers=8) as pool:
        for _ in range(3):
            assert list(pool.map(run, images)) == sequential


@pytest.mark.slow
def test_memory_stays_flat_over_many_captions(tiny_visiongpt2_dir):
    model = load_captioner(str(tiny_visiongpt2_dir / "captioner.pt"))
    report = soak(model, captions=120, every=30, warmup=20, log=lambda _: None)
    assert len(report.rss_mb) == 4
    assert report.growth_mb < 25, report.rss_mb
