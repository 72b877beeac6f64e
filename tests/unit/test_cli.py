"""The command line: JSON Lines output, several images, and the error path (message, no traceback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

pytestmark = pytest.mark.slow  # each test starts the CLI in a fresh interpreter

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args, env_extra=None):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "captioner", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=240)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli-images")
    Image.new("RGB", (50, 40), (200, 30, 30)).save(folder / "red.png")
    Image.new("RGB", (30, 60), (20, 30, 230)).save(folder / "blue.jpg")
    (folder / "broken.jpg").write_text("this is not a JPEG")
    return folder


def test_json_lines(tiny_visiongpt2_dir, images):
    model = tiny_visiongpt2_dir / "captioner.pt"
    out = run_cli(images / "red.png", images / "blue.jpg", "--model", model, "--json", "--strategy", "beam",
                  "--num-beams", "3", "--max-new-tokens", "6", "--num-return-sequences", "2")
    assert out.returncode == 0, out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["image"] for r in records] == [str(images / "red.png"), str(images / "blue.jpg")]
    for r in records:
        assert {"image", "caption", "token_ids", "token_probs", "score", "timings", "sequences"} <= set(r)
        assert 1 <= len(r["token_ids"]) <= 6 and len(r["token_probs"]) == len(r["token_ids"])
        assert 0 not in r["token_ids"][:-1]  # no start token, end token only last
        assert len(r["sequences"]) == 2 and r["sequences"][0]["score"] >= r["sequences"][1]["score"]
        assert {"preprocess", "encode", "decode"} <= set(r["timings"])


def test_sampling_is_reproducible_from_the_command_line(tiny_visiongpt2_dir, images):
    args = [images / "red.png", "--model", tiny_visiongpt2_dir / "captioner.pt", "--json", "--strategy", "sample",
            "--top-p", "0.9", "--seed", "7", "--max-new-tokens", "8"]
    first, second = run_cli(*args), run_cli(*args)
    assert first.returncode == 0 and json.loads(first.stdout)["token_ids"] == json.loads(second.stdout)["token_ids"]


def test_bad_image_among_good_ones(tiny_visiongpt2_dir, images):
    out = run_cli(images / "broken.jpg", images / "red.png", images / "missing.png",
                  "--model", tiny_visiongpt2_dir / "captioner.pt", "--json")
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert "broken.jpg: This file is not an image we can read" in out.stderr
    assert "missing.png: No such file" in out.stderr
    records = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["image"] for r in records] == [str(images / "red.png")]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--model", "/nonexistent/captioner.pt"], "No such file or directory"),
        (["--num-beams", "0", "--strategy", "beam"], "num_beams must be between 1 and 16"),
        (["--max-new-tokens", "5000"], "max_new_tokens must be between 1 and 128"),
        (["--top-p", "1.5"], "top_p must be in (0, 1]"),
    ],
)
def test_bad_options(tiny_visiongpt2_dir, images, args, message):
    if "--model" not in args:
        args = args + ["--model", str(tiny_visiongpt2_dir / "captioner.pt")]
    out = run_cli(images / "red.png", *args)
    assert out.returncode == 2
    assert message in out.stderr and "Traceback" not in out.stderr
