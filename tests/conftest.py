"""Shared fixtures: tiny random models saved to temporary directories (no network needed)."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest
import torch

from tests.tiny_models import (
    make_gpt2_visiongpt2_dir,
    make_tiny_blip_dir,
    make_tiny_git_dir,
    make_tiny_hf_dir,
    make_tiny_visiongpt2_dir,
)


@pytest.fixture(scope="session")
def tiny_visiongpt2_dir(tmp_path_factory):
    return make_tiny_visiongpt2_dir(tmp_path_factory.mktemp("tiny-visiongpt2"))


@pytest.fixture(scope="session")
def gpt2_visiongpt2_file(tmp_path_factory):
    """A tiny captioner.pt with GPT-2's special tokens and tokenizer files beside it, as transformers 4.x saved them."""
    return make_gpt2_visiongpt2_dir(tmp_path_factory.mktemp("gpt2-visiongpt2"))


@pytest.fixture(scope="session")
def tiny_hf_dir(tmp_path_factory):
    return make_tiny_hf_dir(tmp_path_factory.mktemp("tiny-hf"))


@pytest.fixture(scope="session")
def blip_git_dirs(tmp_path_factory) -> dict:
    """A tiny BLIP and a tiny GIT captioning folder in the hub layout, by family."""
    return {"blip": make_tiny_blip_dir(tmp_path_factory.mktemp("blip")), "git": make_tiny_git_dir(tmp_path_factory.mktemp("git"))}


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.manual_seed(0)
    yield
