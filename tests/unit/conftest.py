"""Fixtures shared by the unit tests: the built-in model, and the batch command run in this process."""

from __future__ import annotations

import pytest

from captioner.batch import __main__ as batch_cli
from captioner.loading import load_captioner


@pytest.fixture(scope="module")
def model():
    """The built-in captioner, loaded once per test module."""
    return load_captioner("builtin")


@pytest.fixture
def run_cli(model, monkeypatch, capsys):
    """`python -m captioner.batch` as main() in this process with the already loaded built-in model.

    Returns run(*args) -> (exit status, stderr + stdout). Captions stop at 8 tokens unless the args give
    --max-new-tokens (short captions keep the tests quick; the limit is tested apart)."""
    monkeypatch.setattr(batch_cli, "_load_model", lambda spec, dtype: (model, "builtin"))

    def run(*args):
        args = [str(a) for a in args]
        if "--max-new-tokens" not in args:
            args += ["--max-new-tokens", "8"]
        status = batch_cli.main(args)
        captured = capsys.readouterr()
        return status, captured.err + captured.out

    return run
