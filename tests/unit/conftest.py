"""Fixtures shared by the unit tests: the built-in model, the batch command run in this process, and a tiny
VisionGPT2 behind the cached engine and the no-cache reference."""

from __future__ import annotations

import pytest

# The runtime is imported inside each fixture, so that collecting a test file loads only what its tests use.


@pytest.fixture(scope="module")
def model():
    """The built-in captioner, loaded once per test module."""
    from captioner.loading import load_captioner

    return load_captioner("builtin")


@pytest.fixture
def run_cli(model, monkeypatch, capsys):
    """`python -m captioner.batch` as main() in this process with the already loaded built-in model.

    Returns run(*args) -> (exit status, stderr + stdout). Captions stop at 8 tokens unless the args give
    --max-new-tokens (short captions keep the tests quick; the limit is tested apart)."""
    from captioner.batch import __main__ as batch_cli

    monkeypatch.setattr(batch_cli, "_load_model", lambda spec, dtype: (model, "builtin"))

    def run(*args):
        args = [str(a) for a in args]
        if "--max-new-tokens" not in args:
            args += ["--max-new-tokens", "8"]
        status = batch_cli.main(args)
        captured = capsys.readouterr()
        return status, captured.err + captured.out

    return run


@pytest.fixture(scope="module")
def pair():
    """The same tiny VisionGPT2 behind the cached engine and behind the no-cache reference."""
    from captioner.models.base import ModelInfo
    from captioner.models.visiongpt2 import VisionGPT2Captioner
    from tests.reference import NoCacheVisionGPT2
    from tests.tiny_models import make_tiny_visiongpt2, make_word_tokenizer

    model = make_tiny_visiongpt2(seed=5)
    info = ModelInfo("tiny", "visiongpt2", "test", model.num_parameters(), "float32")
    tok = make_word_tokenizer()
    return VisionGPT2Captioner(model, tok, info), NoCacheVisionGPT2(model, tok, info)
