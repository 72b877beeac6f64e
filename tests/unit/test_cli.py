"""The command line, run as a user runs it (a fresh interpreter, nothing on stdin): JSON Lines, the model's
own defaults and limits, hostile options, files and folders, and a hub that does not answer. Every
failure must be one line on stderr, never a traceback."""

from __future__ import annotations

import json
import os
import socket
import time

import pytest
from PIL import Image

from tests.child_process import run_captioner

pytestmark = pytest.mark.slow  # each test starts the CLI in a fresh interpreter


def strict_json(line: str) -> dict:
    """A JSON Lines record, refusing the NaN and Infinity that Python's json would accept."""

    def refuse(name):
        raise ValueError(f"{name} in the output")

    return json.loads(line, parse_constant=refuse)


def one_error_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli-images")
    Image.new("RGB", (50, 40), (200, 30, 30)).save(folder / "red.png")
    Image.new("RGB", (30, 60), (20, 30, 230)).save(folder / "blue.jpg")
    (folder / "broken.jpg").write_text("this is not a JPEG")
    os.mkfifo(folder / "pipe.png")
    return folder


def test_json_lines_record_each_image_its_sequences_timings_and_settings_used(gpt2_visiongpt2_file, images):
    out = run_captioner(
        images / "red.png",
        images / "blue.jpg",
        "--model",
        gpt2_visiongpt2_file,
        "--json",
        "--strategy",
        "beam",
        "--num-beams",
        "3",
        "--max-new-tokens",
        "6",
        "--min-new-tokens",
        "2",
        "--num-return-sequences",
        "2",
    )
    assert out.returncode == 0, out.stderr
    records = [strict_json(line) for line in out.stdout.splitlines()]
    assert [r["image"] for r in records] == [str(images / "red.png"), str(images / "blue.jpg")]
    for r in records:
        assert {"image", "caption", "token_ids", "token_probs", "score", "timings", "sequences", "decoding"} <= set(r)
        assert 2 <= len(r["token_ids"]) <= 6 and len(r["token_probs"]) == len(r["token_ids"])
        assert 356 not in r["token_ids"][:-1]  # no start token, the end token only last
        assert len(r["sequences"]) == 2 and r["sequences"][0]["score"] >= r["sequences"][1]["score"]
        assert {"preprocess", "encode", "decode"} <= set(r["timings"])
        used = r["decoding"]  # the settings actually used, recorded with the caption
        assert (used["strategy"], used["num_beams"], used["max_new_tokens"], used["num_return_sequences"]) == ("beam", 3, 6, 2)


def test_sampling_is_reproducible_from_the_command_line(gpt2_visiongpt2_file, images):
    args = [
        images / "red.png",
        "--model",
        gpt2_visiongpt2_file,
        "--json",
        "--strategy",
        "sample",
        "--top-p",
        "0.9",
        "--seed",
        "7",
        "--max-new-tokens",
        "8",
    ]
    first, second = run_captioner(*args), run_captioner(*args)
    assert first.returncode == 0 and strict_json(first.stdout)["token_ids"] == strict_json(second.stdout)["token_ids"]


def test_bad_files_among_good_ones(gpt2_visiongpt2_file, images):
    """A FIFO, a broken file and a missing one: each named, and the images after them still captioned."""
    out = run_captioner(
        images / "pipe.png",
        images / "broken.jpg",
        images / "red.png",
        images / "missing.png",
        images / "blue.jpg",
        "--model",
        gpt2_visiongpt2_file,
        "--json",
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert f"{images / 'pipe.png'}: {images / 'pipe.png'} is a FIFO (named pipe), not a regular file." in out.stderr
    assert "broken.jpg: This file is not an image we can read" in out.stderr
    assert "missing.png: No such file" in out.stderr
    assert [strict_json(line)["image"] for line in out.stdout.splitlines()] == [str(images / "red.png"), str(images / "blue.jpg")]


@pytest.mark.parametrize(
    "args,message",
    [
        (["--model", "/nonexistent/captioner.pt"], "No such file or directory"),
        (["--model", "/dev/zero"], "/dev/zero is a character device, not a model file or folder."),
        (["--num-beams", "0", "--strategy", "beam"], "num_beams must be a whole number from 1 to 16, not 0"),
        (["--max-new-tokens", "5000"], "max_new_tokens must be a whole number from 1 to 128, not 5000"),
        (["--top-p", "1.5"], "top_p must be a number above 0 and at most 1, not 1.5"),
        (["--temperature", "nan", "--strategy", "sample"], "temperature must be a number from 0.01 to 100, not nan"),
        (["--temperature", "1e-40", "--strategy", "sample"], "temperature must be a number from 0.01 to 100, not 1e-40"),
        (["--repetition-penalty", "nan"], "repetition_penalty must be a number from 0.01 to 100, not nan"),
        (["--length-penalty", "1e308", "--strategy", "beam"], "length_penalty must be a number from -2 to 3, not 1e+308"),
        (["--length-penalty", "-8", "--strategy", "beam"], "length_penalty must be a number from -2 to 3, not -8"),
        (
            ["--seed", "18446744073709551616", "--strategy", "sample"],
            "seed must be a whole number from 0 to 18446744073709551615",
        ),
        (["--num-return-sequences", "3"], "num_return_sequences must be 1 with greedy decoding"),
        (["--min-p", "1.5", "--strategy", "sample"], "min_p must be a number from 0 to 1, not 1.5"),
        (["--typical-p", "0", "--strategy", "sample"], "typical_p must be a number above 0 and at most 1, not 0"),
        (["--eta-cutoff", "1", "--strategy", "sample"], "eta_cutoff must be a number from 0 to 0.99, not 1"),
        (["--strategy", "group_beam", "--num-beams", "4", "--num-beam-groups", "3"], "num_beam_groups must divide num_beams (4)"),
        (["--strategy", "contrastive", "--top-k", "0"], "top_k must be from 1 to 16 with contrastive search"),
        (
            ["--strategy", "contrastive", "--top-k", "4", "--penalty-alpha", "2"],
            "penalty_alpha must be a number from 0 to 1, not 2",
        ),
        (["--prefix", " ".join(["a"] * 45)], "the prefix has 45 tokens; this model holds at most 39 after its start token"),
    ],
)
def test_bad_options_are_one_line(gpt2_visiongpt2_file, images, args, message):
    if "--model" not in args:
        args = args + ["--model", str(gpt2_visiongpt2_file)]
    out = run_captioner(images / "red.png", *args)
    assert out.returncode == 2
    assert message in one_error_line(out.stderr)
    assert out.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        [
            "--length-penalty",
            "-2",
            "--strategy",
            "beam",
            "--num-beams",
            "16",
            "--min-new-tokens",
            "39",
            "--repetition-penalty",
            "100",
        ],
        ["--length-penalty", "3", "--strategy", "beam", "--num-beams", "16", "--num-return-sequences", "16"],
        ["--temperature", "0.01", "--strategy", "sample", "--top-k", "1000000"],
        ["--repetition-penalty", "100", "--no-repeat-ngram-size", "1"],
        ["--seed", "18446744073709551615", "--strategy", "sample", "--num-return-sequences", "16"],
    ],
)
def test_settings_at_their_limits_give_strict_json(gpt2_visiongpt2_file, images, args):
    out = run_captioner(images / "red.png", "--model", gpt2_visiongpt2_file, "--json", "--max-new-tokens", "39", *args)
    assert out.returncode == 0 and "Traceback" not in out.stderr, out.stderr
    record = strict_json(out.stdout)
    assert record["token_ids"] and all(p == p for p in record["token_probs"])


def test_prefix_and_the_beam_tree_in_json(images):
    out = run_captioner(
        images / "red.png", "--model", "builtin", "--json", "--strategy", "beam", "--num-beams", "3", "--prefix", "A big"
    )
    assert out.returncode == 0, out.stderr
    record = strict_json(out.stdout)
    assert record["caption"].startswith("a big") and record["forced"][:2] == [True, True] and not any(record["forced"][2:])
    tree = record["beam_tree"]
    nodes = {n["id"]: n for n in tree["nodes"]}
    best, path = tree["returned"][0], []
    while best > 0:
        path.append(nodes[best]["token_id"])
        best = nodes[best]["parent"]
    assert path[::-1] == record["token_ids"]
    unknown = run_captioner(images / "red.png", "--model", "builtin", "--prefix", "a purple elephant")
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert "words this model's tokenizer does not know: 'elephant'" in one_error_line(unknown.stderr)


def test_max_new_tokens_beyond_the_model_is_clamped_with_a_notice(gpt2_visiongpt2_file, images):
    out = run_captioner(
        images / "red.png", "--model", gpt2_visiongpt2_file, "--json", "--max-new-tokens", "64", "--min-new-tokens", "50"
    )
    assert out.returncode == 0, out.stderr
    assert "note: max_new_tokens 64 is more than the model holds after its start token (39); using 39." in out.stderr
    record = strict_json(out.stdout)
    assert record["decoding"]["max_new_tokens"] == 39 and len(record["token_ids"]) == 39


def test_generation_defaults_are_used_unless_options_say_otherwise(tmp_path, images):
    from transformers import GenerationConfig

    from tests.tiny_models import make_gpt2_visiongpt2_dir

    model = make_gpt2_visiongpt2_dir(tmp_path)
    GenerationConfig(max_length=7, num_beams=4, no_repeat_ngram_size=2).save_pretrained(str(tmp_path))
    used = strict_json(run_captioner(images / "red.png", "--model", model, "--json").stdout)["decoding"]
    assert (used["strategy"], used["num_beams"], used["max_new_tokens"], used["no_repeat_ngram_size"]) == ("beam", 4, 6, 2)
    used = strict_json(
        run_captioner(images / "red.png", "--model", model, "--json", "--strategy", "greedy", "--max-new-tokens", "3").stdout
    )["decoding"]
    assert (used["strategy"], used["max_new_tokens"], used["no_repeat_ngram_size"]) == ("greedy", 3, 2)


def test_model_code_is_never_run_even_when_stdin_says_yes(tmp_path, images):
    from tests.corpus import MODEL_CASES

    case = next(c for c in MODEL_CASES if c.name == "tokenizer_auto_map")
    spec = case.build(tmp_path)
    out = run_captioner(images / "red.png", "--model", spec, stdin="y\ny\n")
    assert out.returncode == 2 and "tokenization_evil.py" in one_error_line(out.stderr)
    assert "Do you wish to run" not in out.stdout + out.stderr
    assert not (tmp_path / "RAN").exists()


def test_default_model_is_the_captioner_pt_in_the_working_directory(tmp_path, images):
    from tests.tiny_models import make_gpt2_visiongpt2_dir

    make_gpt2_visiongpt2_dir(tmp_path)
    out = run_captioner(images / "red.png", cwd=tmp_path, env_extra={"CAPTIONER_MODEL": ""})
    assert out.returncode == 0, out.stderr
    assert f"model: captioner.pt (captioner.pt found in the current directory ({tmp_path}))" in out.stderr


@pytest.fixture
def silent_hub():
    """A hub address that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def test_a_hub_that_does_not_answer_is_one_message(tmp_path, images, silent_hub):
    env = {"HF_HUB_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0", "HF_ENDPOINT": silent_hub, "HF_HOME": str(tmp_path / "hf-home")}
    start = time.monotonic()
    out = run_captioner(images / "red.png", "--model", "nlpconnect/vit-gpt2-image-captioning", env_extra=env)
    print(f"failed after {time.monotonic() - start:.1f} s (interpreter start included)")  # a figure for the report, not asserted
    assert out.returncode == 2
    error = one_error_line(out.stderr)
    assert error == (
        "error: nlpconnect/vit-gpt2-image-captioning is not in the local Hugging Face cache, and it cannot be "
        f"downloaded: The Hugging Face hub ({silent_hub}) did not answer within 2 s (ReadTimeout)."
    )
