"""Writing the file cases into a folder."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from tests.corpus.archive_cases import ARCHIVE_CASES
from tests.corpus.case import Case
from tests.corpus.hostile_images import HOSTILE_IMAGE_CASES
from tests.corpus.readable_images import READABLE_IMAGE_CASES


IMAGE_CASES: list[Case] = READABLE_IMAGE_CASES + HOSTILE_IMAGE_CASES
CASES: list[Case] = IMAGE_CASES + ARCHIVE_CASES
assert len({c.filename for c in CASES}) == len(CASES), "file names must be unique (one folder for all)"
assert len({c.name for c in CASES}) == len(CASES), "case names must be unique"


def _build(cases: list[Case], directory: str | Path) -> list[Case]:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    built = []
    for case in cases:
        path = directory / case.filename
        if os.path.lexists(path):
            path.unlink() if not path.is_dir() or path.is_symlink() else path.rmdir()
        if case.special is not None:
            case.special(path)
        else:
            path.write_bytes(case.make())
        built.append(replace(case, path=path))
    return built


def _chosen(cases: list[Case], heavy: bool, paths: bool) -> list[Case]:
    return [c for c in cases if (heavy or not c.heavy) and (paths or c.special is None)]


def build_image_corpus(directory: str | Path, heavy: bool = False, paths: bool = False) -> list[Case]:
    """Write the image cases (for ``load_image``) under ``directory``; return them with ``path`` set.

    Only when asked: the ``heavy`` cases (49-megapixel TIFFs: seconds and ~200 MB each to write), and the
    ``paths`` cases that exist only as paths, not bytes (a FIFO, links, a folder: ``data()`` would block
    or fail on them, so they are for callers that pass paths, as the CLI does)."""
    return _build(_chosen(IMAGE_CASES, heavy, paths), directory)


def build_archive_corpus(directory: str | Path) -> list[Case]:
    """Write the ZIP cases (for ``read_image_archive``) under ``directory``."""
    return _build(ARCHIVE_CASES, directory)


def build_corpus(directory: str | Path, heavy: bool = False, paths: bool = False) -> list[Case]:
    """Write every case under ``directory`` (the ``heavy`` and ``paths`` ones only when asked)."""
    return _build(_chosen(CASES, heavy, paths), directory)
