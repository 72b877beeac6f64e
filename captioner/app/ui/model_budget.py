"""The app's model memory budget: the Streamlit secret `model_budget_mb`, else CAPTIONER_MODEL_BUDGET_MB, else the
cache's default (two full-size models in bfloat16 within Streamlit Community Cloud's memory, `models/cache.py`)."""

from __future__ import annotations

import math

import streamlit as st

from captioner.models.cache import default_budget_bytes

SECRET = "model_budget_mb"


def budget_from_megabytes(value: object) -> int | None:
    """A positive, finite number of megabytes as bytes; None for anything else (then the next source is used)."""
    if isinstance(value, bool):
        return None
    try:
        megabytes = float(str(value).strip())
    except ValueError:
        return None
    return int(megabytes * 1e6) if megabytes > 0 and math.isfinite(megabytes) else None


def budget_bytes() -> int:
    """The budget in bytes, read when the app's model cache is made."""
    try:
        secret = st.secrets.get(SECRET)
    except Exception:  # no secrets file at all: Streamlit raises rather than returning None
        secret = None
    from_secret = budget_from_megabytes(secret) if secret is not None else None
    return from_secret if from_secret is not None else default_budget_bytes()
