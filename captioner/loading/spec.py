"""What kind of model a spec names: the one rule the loader, the CLI and the app share.

Light on purpose (no torch): the app asks it while drawing its model picker.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Literal

SpecKind = Literal["empty", "builtin", "file", "folder", "other", "hub", "missing"]
BUILTIN = "builtin"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".bin", ".safetensors", ".ckpt")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def spec_kind(spec: str | os.PathLike[str]) -> SpecKind:
    """Which kind of model `spec` names.

    "builtin"; an existing "file" or "folder" (or "other": a FIFO, a device, a broken link); a "hub" id
    (`owner/name`, when no such path exists and it does not look like a path or a checkpoint file);
    "missing" (a path that does not exist); "empty".
    """
    text = str(spec).strip()
    if not text:
        return "empty"
    if text == BUILTIN:
        return "builtin"
    path = Path(text).expanduser()
    if os.path.lexists(path):
        try:
            mode = os.stat(path).st_mode
        except OSError:
            return "other"
        return "folder" if stat.S_ISDIR(mode) else "file" if stat.S_ISREG(mode) else "other"
    if _HUB_ID.match(text) and not text.startswith((".", "/", "~")) and not text.endswith(CHECKPOINT_SUFFIXES):
        return "hub"
    return "missing"
