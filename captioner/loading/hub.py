"""The Hugging Face hub: offline mode, the local cache, and snapshots fetched within a time limit.

The environment is read at each call (huggingface_hub reads it once, at import), so that a process
that sets HF_HOME or HF_HUB_OFFLINE later is followed.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable

from captioner.loading.errors import ModelLoadError, one_line

HUB_TIMEOUT = 2.0  # seconds the hub has to answer before we say it did not


def hub_offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set: the hub is never asked."""
    return any(
        os.environ.get(k, "").strip().lower() in ("1", "true", "yes", "on") for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def hub_cache_dir() -> Path:
    """The Hugging Face hub cache: HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME", "~/.cache"), "huggingface")
    return Path(home).expanduser() / "hub"


def _hub_endpoint() -> str | None:
    return os.environ.get("HF_ENDPOINT") or None


def cached_snapshot(repo_id: str) -> Path | None:
    """The folder of `repo_id`'s snapshot in the local cache, or None (not cached, or a damaged entry)."""
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(repo_id, cache_dir=hub_cache_dir(), local_files_only=True))
    except Exception:  # not cached (LocalEntryNotFoundError), or a damaged cache entry
        return None


def _hub_model_info(repo_id: str, timeout: float) -> Any:
    """The hub's record of `repo_id` (a huggingface_hub ModelInfo), or one ModelLoadError that says why there is none."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        return HfApi(endpoint=_hub_endpoint()).model_info(repo_id, timeout=timeout)
    except GatedRepoError:
        raise ModelLoadError(f"{repo_id} is a gated model on the Hugging Face hub: log in and accept its terms first.") from None
    except RepositoryNotFoundError:
        raise ModelLoadError(f"There is no model {repo_id} on the Hugging Face hub (or it is private).") from None
    except Exception as e:
        where = _hub_endpoint() or "huggingface.co"
        raise ModelLoadError(
            f"The Hugging Face hub ({where}) did not answer within {timeout:g} s ({type(e).__name__})."
        ) from None


def hub_answers(repo_id: str, timeout: float) -> bool:
    """Whether the hub answers for `repo_id` within `timeout` seconds (never asked when offline)."""
    if hub_offline():
        return False
    try:
        _hub_model_info(repo_id, timeout)
        return True
    except ModelLoadError:
        return False


def hub_snapshot(
    repo_id: str, patterns: list[str] | None, complete: Callable[[Path], bool], timeout: float = HUB_TIMEOUT
) -> Path:
    """A local folder with `repo_id`'s files: the cached snapshot when `complete`, else downloaded.

    Fails with one ModelLoadError, within `timeout` seconds when the hub does not answer.
    """
    from huggingface_hub import snapshot_download

    cached = cached_snapshot(repo_id)
    if cached is not None and complete(cached):
        return cached
    if hub_offline():
        raise ModelLoadError(f"{repo_id} is not in the local Hugging Face cache ({hub_cache_dir()}), and HF_HUB_OFFLINE is set.")
    try:
        info = _hub_model_info(repo_id, timeout)
    except ModelLoadError as e:
        raise ModelLoadError(f"{repo_id} is not in the local Hugging Face cache, and it cannot be downloaded: {e}") from None
    if patterns is None:
        names = {s.rfilename for s in (info.siblings or [])}
        weights = "*.safetensors" if any(n.startswith("model.safetensors") for n in names) else "pytorch_model*.bin*"
        patterns = ["*.json", "*.txt", weights]
    try:
        folder = Path(
            snapshot_download(
                repo_id, cache_dir=hub_cache_dir(), allow_patterns=patterns, etag_timeout=timeout, endpoint=_hub_endpoint()
            )
        )
    except Exception as e:
        raise ModelLoadError(f"{repo_id} could not be downloaded from the Hugging Face hub: {one_line(e)}") from None
    if not complete(folder):
        raise ModelLoadError(f"{repo_id} on the Hugging Face hub lacks the files a captioner needs.")
    return folder
