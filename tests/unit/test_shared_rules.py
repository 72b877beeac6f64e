"""Rules written once and used across the runtime: what kind of model a spec names, an error as one line,
a byte size, a dtype's name, splitting attention heads."""

from __future__ import annotations

import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from captioner.errors import one_line, unforeseen_line
from captioner.files import format_bytes
from captioner.loading import ModelLoadError, load_captioner, spec_kind
from captioner.models.base import dtype_name, split_heads

PROPERTY = settings(
    derandomize=True, deadline=None, max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
NAME = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,12}", fullmatch=True)


def test_spec_kinds_on_disk(tmp_path):
    (tmp_path / "folder").mkdir()
    (tmp_path / "captioner.pt").write_bytes(b"x")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "broken").symlink_to(tmp_path / "nowhere")
    assert spec_kind("builtin") == spec_kind(" builtin ") == "builtin"
    assert spec_kind("") == spec_kind("   ") == "empty"
    assert spec_kind(tmp_path / "folder") == "folder"
    assert spec_kind(str(tmp_path / "captioner.pt")) == "file"
    assert spec_kind(tmp_path / "fifo") == spec_kind(tmp_path / "broken") == spec_kind("/dev/null") == "other"
    assert spec_kind(tmp_path / "missing.pt") == "missing"


def test_an_existing_folder_named_like_a_hub_id_is_a_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert spec_kind("owner/model") == "hub"
    (tmp_path / "owner" / "model").mkdir(parents=True)
    assert spec_kind("owner/model") == "folder"


@PROPERTY
@given(owner=NAME, name=NAME)
def test_owner_slash_name_is_a_hub_id_unless_it_looks_like_a_path(owner, name):
    spec = f"{owner}/{name}"
    looks_like_a_file = name.endswith((".pt", ".pth", ".bin", ".safetensors", ".ckpt"))
    if os.path.lexists(spec):
        return
    assert spec_kind(spec) == ("missing" if looks_like_a_file else "hub")
    for path_like in (f"./{spec}", f"/{spec}", f"~/{spec}", f"{spec}/more", f"{owner} {name}/x"):
        assert spec_kind(path_like) in ("missing", "folder", "file", "other")


@PROPERTY
@given(spec=st.text(max_size=40))
def test_the_loader_follows_the_spec_kind(spec, monkeypatch, tmp_path):
    """Whatever the text, the loader's one message matches what spec_kind says it is (nothing is fetched)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    kind = spec_kind(spec)
    if kind not in ("empty", "hub", "missing"):
        return  # real paths on this machine: the loading tests cover files and folders
    with pytest.raises(ModelLoadError) as e:
        load_captioner(spec)
    expected = {"empty": "No model given", "hub": "not in the local Hugging Face cache", "missing": "No such file or directory"}
    assert expected[kind] in str(e.value)


def test_one_line_keeps_the_first_line_and_caps_its_length():
    assert one_line(ValueError("first\nsecond")) == "first"
    assert one_line(ValueError("\n  spaced   out \n")) == "spaced out"
    assert one_line(KeyError()) == "KeyError"
    long = one_line(RuntimeError("x" * 1000), limit=50)
    assert len(long) == 50 and long.endswith("…")


def test_an_unforeseen_error_names_its_type_before_its_line():
    assert unforeseen_line(KeyError("size")) == "KeyError: 'size'"
    assert unforeseen_line(OSError("disk\nfull")) == "OSError: disk"
    assert unforeseen_line(RuntimeError("y" * 300), limit=20) == "RuntimeError: " + "y" * 19 + "…"


@settings(derandomize=True, deadline=None, max_examples=200)
@given(n=st.integers(0, 10**13))
def test_byte_sizes_read_as_people_write_them(n):
    text = format_bytes(n)
    number, unit = text.split(" ")
    scale = {"bytes": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}[unit]
    assert abs(float(number) * scale - n) <= 0.05 * scale + 1e-9 * n  # rounded to one decimal of its unit
    assert unit == "bytes" or float(number) >= 1


def test_byte_sizes_at_the_unit_edges():
    assert [format_bytes(n) for n in (0, 999, 1000, 25_000_000, 8_000_000_000)] == [
        "0 bytes",
        "999 bytes",
        "1 kB",
        "25 MB",
        "8.0 GB",
    ]


def test_a_dtype_is_named_without_its_torch_prefix():
    assert [dtype_name(d) for d in (torch.float32, torch.bfloat16, torch.int64)] == ["float32", "bfloat16", "int64"]
    assert dtype_name(torch.sparse_coo) == "sparse_coo"


@settings(derandomize=True, deadline=None, max_examples=40)
@given(b=st.integers(1, 3), t=st.integers(1, 5), heads=st.integers(1, 4), head_size=st.integers(1, 4))
def test_split_heads_gives_each_head_its_own_slice_of_the_width(b, t, heads, head_size):
    x = torch.randn(b, t, heads * head_size)
    y = split_heads(x, heads)
    assert y.shape == (b, heads, t, head_size)
    for h in range(heads):
        assert torch.equal(y[:, h], x[..., h * head_size : (h + 1) * head_size])
