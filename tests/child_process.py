"""The command lines in a fresh interpreter, as a user runs them: offline, importing this checkout."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_python(
    *args, env_extra: dict[str, str] | None = None, cwd: Path = ROOT, stdin: str = "", timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """`python ARGS` in a child process, its text output captured; stdin holds `stdin` (empty unless given)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), **(env_extra or {})}
    command = [sys.executable, *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout, input=stdin)


def run_captioner(*args, **kwargs) -> subprocess.CompletedProcess[str]:
    """`python -m captioner ARGS` in a child process (keywords as for run_python)."""
    return run_python("-m", "captioner", *args, **kwargs)
