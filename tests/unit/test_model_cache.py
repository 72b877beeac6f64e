"""The model cache: models kept within a memory budget, least recently used unloaded with a note, a model
larger than the budget refused in one line before it is loaded; sizes estimated from the weight files."""

from __future__ import annotations

import pytest

from captioner.loading import load_captioner
from captioner.models.cache import (
    BUDGET_ENV,
    DEFAULT_BUDGET_BYTES,
    ModelCache,
    ModelDoesNotFit,
    default_budget_bytes,
    estimate_bytes,
    model_bytes,
)
from tests.tiny_models import make_tiny_blip_dir, make_tiny_git_dir


@pytest.fixture(scope="module")
def specs(tmp_path_factory, tiny_hf_dir):
    return {
        "hf": str(tiny_hf_dir),
        "blip": str(make_tiny_blip_dir(tmp_path_factory.mktemp("blip"))),
        "git": str(make_tiny_git_dir(tmp_path_factory.mktemp("git"))),
    }


@pytest.fixture(scope="module")
def sizes(specs):
    return {name: model_bytes(load_captioner(spec)) for name, spec in specs.items()}


class CountingLoader:
    def __init__(self):
        self.loaded = []

    def __call__(self, spec, dtype):
        self.loaded.append((spec, dtype))
        return load_captioner(spec, dtype=dtype)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_estimate_from_the_files_is_the_loaded_size(specs, dtype):
    from pathlib import Path

    for spec in specs.values():
        measured = model_bytes(load_captioner(spec, dtype=dtype))
        assert measured > 0
        assert estimate_bytes(Path(spec), dtype) == pytest.approx(measured, rel=0.05)  # non-persistent buffers aside


def test_bfloat16_halves_the_parameter_bytes(specs):
    for spec in specs.values():
        fp32, bf16 = (model_bytes(load_captioner(spec, dtype=d)) for d in ("float32", "bfloat16"))
        assert bf16 == pytest.approx(fp32 / 2, rel=0.02)


def test_least_recently_used_is_unloaded_with_a_note(specs, sizes):
    loader = CountingLoader()
    budget = sizes["hf"] + sizes["blip"] + sizes["git"] - min(sizes.values()) // 2  # any two fit, not all three
    assert max(sizes["hf"] + sizes["blip"], sizes["hf"] + sizes["git"], sizes["blip"] + sizes["git"]) <= budget
    cache = ModelCache(budget, loader=loader)
    hf = cache.get(specs["hf"])
    cache.get(specs["blip"])
    assert cache.get(specs["hf"]) is hf  # cached: not loaded again, and now the most recently used
    cache.get(specs["git"])
    assert [spec for spec, _ in loader.loaded] == [specs["hf"], specs["blip"], specs["git"]]
    assert [spec for spec, _, _ in cache.cached()] == [specs["hf"], specs["git"]]
    assert sum(size for _, _, size in cache.cached()) <= budget
    (note,) = cache.notes
    assert note.startswith(f"Unloaded {specs['blip']} (float32, ") and f"to make room for {specs['git']}" in note
    cache.get(specs["blip"])  # back again: hf is now the least recently used
    assert [spec for spec, _, _ in cache.cached()] == [specs["git"], specs["blip"]] and len(cache.notes) == 2


def test_one_dtype_and_another_are_two_entries(specs, sizes):
    cache = ModelCache(10 * sizes["hf"])
    assert cache.get(specs["hf"], "float32") is not cache.get(specs["hf"], "bfloat16")
    assert [dtype for _, dtype, _ in cache.cached()] == ["float32", "bfloat16"]


def test_a_model_larger_than_the_budget_is_refused_before_loading(specs, sizes):
    loader = CountingLoader()
    cache = ModelCache(sizes["blip"] // 2, loader=loader)
    with pytest.raises(ModelDoesNotFit) as e:
        cache.get(specs["blip"])
    message = str(e.value)
    assert "\n" not in message and message.startswith(f"{specs['blip']} needs ") and "in float32 (bfloat16 halves it)" in message
    assert BUDGET_ENV in message and not loader.loaded and not cache.cached()


def test_a_model_whose_size_is_unknown_is_measured_after_loading(specs, sizes):
    cache = ModelCache(sizes["git"] // 2, locate=lambda spec: None)
    with pytest.raises(ModelDoesNotFit):
        cache.get(specs["git"])
    assert not cache.cached()


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2000", 2_000_000_000),
        ("0.5", 500_000),
        ("", DEFAULT_BUDGET_BYTES),
        ("lots", DEFAULT_BUDGET_BYTES),
        ("-1", DEFAULT_BUDGET_BYTES),
        ("nan", DEFAULT_BUDGET_BYTES),
        ("inf", DEFAULT_BUDGET_BYTES),
    ],
)
def test_the_budget_from_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv(BUDGET_ENV, value)
    assert default_budget_bytes() == expected


def test_a_slow_load_does_not_hold_up_a_cached_model_and_notes_go_to_their_own_caller(specs, sizes):
    """While one model loads (a download, say), another session's cached model is answered at once; each
    get hears only the evictions it caused."""
    import threading

    release = threading.Event()

    def loader(spec, dtype):
        if spec == specs["git"]:
            assert release.wait(30)  # held until the test has fetched the cached model
        return load_captioner(spec, dtype=dtype)

    cache = ModelCache(sizes["hf"] + sizes["git"] // 2, loader=loader, locate=lambda spec: None)
    hf = cache.get(specs["hf"])
    heard: list[str] = []
    slow = threading.Thread(target=lambda: cache.get(specs["git"], on_note=heard.append))
    slow.start()
    try:
        got = []
        fetch = threading.Thread(target=lambda: got.append(cache.get(specs["hf"])))
        fetch.start()
        fetch.join(10)
        assert got == [hf]  # answered while the other load was still running
        assert cache.cached() == [(specs["hf"], "float32", sizes["hf"])]
    finally:
        release.set()
        slow.join(60)
    assert len(heard) == 1 and specs["hf"] in heard[0] and list(cache.notes) == heard
    assert [spec for spec, _, _ in cache.cached()] == [specs["git"]]
