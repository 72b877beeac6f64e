"""The Batch page's table: one row per file with its thumbnail, caption, scores and a note, as the page
shows it (blanks as text, the columns that fit) and as its CSV keeps it (numbers, every column)."""

from __future__ import annotations

import base64
from typing import Any, Container, Sequence

import pandas as pd
from PIL import Image

from captioner.app.views.images import display_image, png_bytes
from captioner.batch.leaderboard import timings_seconds
from captioner.batch.rows import CaptionRow
from captioner.metrics import exact_match

# Shown in the image cell of a file that got no caption (an empty cell reads "None").
NO_IMAGE_URI = (
    "data:image/svg+xml;base64,"
    + base64.b64encode(
        b'<svg xmlns="http://www.w3.org/2000/svg" width="96" height="96"><rect width="96" height="96" fill="#eee"/>'
        b'<path d="M30 30L66 66M66 30L30 66" stroke="#b33" stroke-width="6"/></svg>'
    ).decode()
)


def thumbnail_uri(image: Image.Image, side: int = 96) -> str:
    """A small PNG as a data URI (for st.column_config.ImageColumn)."""
    thumb = image.convert("RGB")
    thumb.thumbnail((side, side))
    if max(thumb.size) < side // 2:
        thumb = display_image(thumb, side)
    return "data:image/png;base64," + base64.b64encode(png_bytes(thumb)).decode()


def row_seconds(row: CaptionRow) -> float | None:
    """The seconds a row's image took, every stage (read, preprocess, encode, decode) together."""
    return timings_seconds(row.timings)


def batch_table(rows: Sequence[CaptionRow], unsure: Container[str] = (), changed: Sequence[str] = ()) -> pd.DataFrame:
    """The batch results, one row per file; per-image BLEU-4 and exact match when references are given
    (the rows as `captioner.batch.rows.score_rows` scored them). `unsure`: the files whose caption is unsure
    because of the settings `changed` from the model's own (their image looks like its world)."""
    with_refs = any(r.references for r in rows)
    records = []
    for r in rows:
        scored = bool(r.references) and r.ok
        seconds = row_seconds(r)
        caption = (r.caption or "") + (" ✂" if r.hit_limit else "") if r.ok else "✕ no caption (see the note)"
        record: dict[str, Any] = {
            "thumbnail": thumbnail_uri(r.thumbnail) if r.thumbnail is not None else NO_IMAGE_URI,
            "file": r.path,
            "caption": caption,
            "confidence": None if r.confidence is None else round(r.confidence, 3),
        }
        if with_refs:
            record["BLEU-4"] = None if r.bleu4 is None else round(r.bleu4, 3)
            record["matches a reference"] = exact_match(r.caption or "", r.references) if scored else None
            record["references"] = " | ".join(r.references)
        record.update(
            {
                "log-prob": None if r.logprob is None else round(r.logprob, 3),
                "time (s)": None if seconds is None else round(seconds, 3),
                "note": r.error or _row_note(r, r.path in unsure, changed),
            }
        )
        records.append(record)
    return pd.DataFrame(records)


def _row_note(row: CaptionRow, unsure: bool = False, changed: Sequence[str] = ()) -> str:
    notes = []
    if row.hit_limit:
        notes.append("stopped at the token limit")
    if row.out_of_world:
        notes.append("outside the built-in model's world: a guess")
    elif unsure:
        notes.append(f"unsure because of the settings ({', '.join(changed) or 'not the model’s own'})")
    return "; ".join(notes)


def batch_display(table: pd.DataFrame, columns: Sequence[str] = ("confidence", "BLEU-4")) -> pd.DataFrame:
    """The batch table as the page shows it: the number columns with blanks as text (3 decimals, which sort
    as the numbers do in [0, 1]), since st.dataframe writes "None" in an empty number cell. The CSV keeps numbers."""
    shown = table.copy()
    for c in columns:
        if c in shown.columns:
            shown[c] = [f"{v:.3f}" if isinstance(v, (int, float)) and v == v else "" for v in shown[c]]
    return shown


def batch_columns_shown(table: pd.DataFrame) -> list[str]:
    """The batch table's columns that fit the page's width (the CSV keeps them all, log-prob and time
    included); notes only when there are some."""
    shown = ["thumbnail", "file", "caption", "confidence", "BLEU-4", "matches a reference", "references", "note"]
    return [c for c in shown if c in table.columns and (c != "note" or table[c].astype(bool).any())]
