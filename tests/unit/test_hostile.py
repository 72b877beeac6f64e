"""Hostile input: every model case of the corpus (a one-line ModelLoadError, nothing run, bounded memory),
every image case through the CLI and in bounded memory, errors inside captioning, and load: a shared
model across threads, memory over many captions.

Memory bounds are measured in a child process (peak resident memory above the process's own baseline
after warming up), never wall-clock times."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from captioner.config import DecodingConfig
from captioner.decoding import caption_image
from captioner.images import load_image
from captioner.loading import ModelLoadError, load_captioner
from captioner.bench.soak import soak, soak_images
from tests.child_process import run_captioner, run_python
from tests.corpus import MODEL_CASES, build_image_corpus, build_model_corpus

MEMORY_BOUND = 500 * 2**20  # bytes above the baseline a hostile file may cost


@pytest.fixture(scope="module")
def model_corpus(tmp_path_factory):
    return {case.name: (case, spec) for case, spec in build_model_corpus(tmp_path_factory.mktemp("models"))}


@pytest.mark.parametrize("name", [c.name for c in MODEL_CASES])
def test_model_case(model_corpus, name):
    """Each hostile model file or folder: one line naming the file and what is wrong; nothing from it runs."""
    case, spec = model_corpus[name]
    with pytest.raises(ModelLoadError) as caught:
        load_captioner(str(spec))
    message = str(caught.value)
    assert case.message_contains.lower() in message.lower(), message
    assert "\n" not in message and len(message) < 600
    folder = spec if spec.is_dir() else spec.parent
    assert str(spec) == "/dev/zero" or not (folder / "RAN").exists()


# Loads every item in one fresh interpreter after warming up on good ones; prints each outcome ("ok",
# "error" for the module's own error class, anything else by name) and its peak resident memory above
# the resident memory just before it (Linux: the peak is reset through /proc/self/clear_refs, read as
# VmHWM). Per item, because memory a case frees may stay with the allocator and raise the next baseline.
LOAD_ALL = """
import gc, importlib, json, re, sys
import psutil
module = importlib.import_module(sys.argv[1])
load, expected = getattr(module, sys.argv[2]), getattr(module, sys.argv[3])
for item in json.loads(sys.argv[4]):
    load(item)
results = {}
for name, item in json.loads(sys.argv[5]).items():
    gc.collect()
    start = psutil.Process().memory_info().rss
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak
    try:
        load(item)
        outcome = "ok"
    except expected:
        outcome = "error"
    except BaseException as e:
        outcome = f"{type(e).__name__}: {e}"
    with open("/proc/self/status") as f:
        peak = int(re.search(r"VmHWM:\\s+(\\d+) kB", f.read()).group(1)) * 1024
    results[name] = [outcome, peak - start]
print(json.dumps(results))
"""


def load_all_in_a_child(function: str, error: str, warm: list[str], items: dict[str, str]) -> dict:
    module, name = function.rsplit(".", 1)
    out = run_python("-c", LOAD_ALL, module, name, error, json.dumps(warm), json.dumps(items), timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])  # name -> [outcome, bytes above the baseline]


@pytest.mark.slow
def test_model_cases_stay_within_memory(model_corpus, gpt2_visiongpt2_file, tiny_hf_dir):
    """All model cases in one process, after loading a good model of each family: each is refused with a
    ModelLoadError, and together they never take 500 MB above the warmed-up process."""
    report = load_all_in_a_child(
        "captioner.loading.load_captioner",
        "ModelLoadError",
        [str(gpt2_visiongpt2_file), str(tiny_hf_dir)],
        {name: str(spec) for name, (_, spec) in model_corpus.items()},
    )
    print(f"model cases, most above the baseline: {max(mb for _, mb in report.values()) / 2**20:.0f} MB")
    assert {name: outcome for name, (outcome, _) in report.items()} == dict.fromkeys(model_corpus, "error")
    assert {name: mb for name, (_, mb) in report.items() if mb >= MEMORY_BOUND} == {}


@pytest.mark.slow
def test_image_cases_stay_within_memory(tmp_path):
    """Every image case, the 49-megapixel float and 16-bit TIFFs and the tile bomb included, in one process:
    never 500 MB above the process's baseline (the tile bomb alone cost 2 GB, the float TIFF 1.7 GB)."""
    corpus = build_image_corpus(tmp_path, heavy=True, paths=True)
    report = load_all_in_a_child(
        "captioner.images.load_image", "ImageLoadError", [str(tmp_path / "plain.png")], {c.name: str(c.path) for c in corpus}
    )
    print(f"image cases, most above the baseline: {max(mb for _, mb in report.values()) / 2**20:.0f} MB")
    assert {name: outcome for name, (outcome, _) in report.items()} == {c.name: c.expected for c in corpus}
    assert {name: mb for name, (_, mb) in report.items() if mb >= MEMORY_BOUND} == {}


def test_an_error_inside_captioning_names_the_image_and_the_next_one_goes_on(gpt2_visiongpt2_file, tmp_path, monkeypatch, capsys):
    import captioner.decoding
    from captioner.__main__ import main

    for name in ("first.png", "second.png"):
        Image.new("RGB", (20, 20), (10, 200, 10)).save(tmp_path / name)
    real = captioner.decoding.caption_image

    def fails_on_the_first(model, image, configs=None, *rest):
        if image.getpixel((0, 0)) == (10, 200, 10) and not fails_on_the_first.done:
            fails_on_the_first.done = True
            raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
        return real(model, image, configs)

    fails_on_the_first.done = False
    monkeypatch.setattr(captioner.decoding, "caption_image", fails_on_the_first)
    code = main([str(tmp_path / "first.png"), str(tmp_path / "second.png"), "--model", str(gpt2_visiongpt2_file), "--json"])
    out = capsys.readouterr()
    assert code == 1
    assert f"error: {tmp_path / 'first.png'}: captioning failed: RuntimeError: probability tensor contains" in out.err
    assert [json.loads(line)["image"] for line in out.out.splitlines()] == [str(tmp_path / "second.png")]


def test_a_non_finite_number_never_reaches_the_json_output(gpt2_visiongpt2_file, tmp_path, monkeypatch, capsys):
    import captioner.decoding
    from captioner.__main__ import json_line, main

    with pytest.raises(ValueError):
        json_line({"score": float("nan")})
    Image.new("RGB", (20, 20)).save(tmp_path / "a.png")
    real = captioner.decoding.caption_image

    def nan_score(model, image, configs=None, *rest):
        results = real(model, image, configs, *rest)
        results[0].best.score = float("nan")
        return results

    monkeypatch.setattr(captioner.decoding, "caption_image", nan_score)
    code = main([str(tmp_path / "a.png"), "--model", str(gpt2_visiongpt2_file), "--json"])
    out = capsys.readouterr()
    assert code == 1 and out.out == ""
    assert "captioning failed: ValueError: Out of range float values are not JSON compliant" in out.err


def test_an_unforeseen_failure_while_loading_is_one_line(monkeypatch, capsys, tmp_path):
    import captioner.loading
    from captioner.__main__ import main

    def broken(*args, **kwargs):
        raise RuntimeError("something nobody foresaw")

    monkeypatch.setattr(captioner.loading, "load_captioner", broken)
    assert main([str(tmp_path / "a.png"), "--model", "x"]) == 2
    assert capsys.readouterr().err == "error: the model could not be loaded: RuntimeError: something nobody foresaw\n"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return build_image_corpus(tmp_path_factory.mktemp("corpus"), paths=True)


@pytest.mark.slow
def test_every_image_case_through_the_cli(corpus, gpt2_visiongpt2_file):
    """One CLI call over the whole corpus: good files get a JSON line, bad ones their message, no traceback.
    The corpus holds a FIFO, a link to /dev/zero and a folder among the images: they must not block the rest."""
    out = run_captioner(*[c.path for c in corpus], "--json", "--max-new-tokens", 4, "--model", gpt2_visiongpt2_file, timeout=300)
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


def test_good_corpus_images_caption_through_the_python_api(corpus, gpt2_visiongpt2_file):
    model = load_captioner(str(gpt2_visiongpt2_file))
    for case in corpus:
        if case.expected == "ok":
            result = caption_image(model, load_image(case.path), [DecodingConfig(max_new_tokens=3)])[0]
            assert result.best.token_ids, case.name


def test_eight_threads_share_one_model(gpt2_visiongpt2_file):
    model = load_captioner(str(gpt2_visiongpt2_file))
    images = soak_images(8)
    configs = [
        DecodingConfig(strategy="beam", num_beams=3, max_new_tokens=10),
        DecodingConfig(strategy="sample", top_k=10, seed=4, max_new_tokens=10),
    ]

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
