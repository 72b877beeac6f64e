"""Paths that are not regular files: a FIFO, a symbolic link, a folder."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def make_fifo(path: Path) -> None:
    os.mkfifo(path)


def make_symlink_to(target: str) -> Callable[[Path], None]:
    return lambda path: os.symlink(target, path)


def make_folder(path: Path) -> None:
    path.mkdir()
