"""Tables as the page and the downloads show them: `readable` for st.table, `csv_bytes` for the CSV files."""

from __future__ import annotations

from typing import Sequence

import pandas as pd

from captioner.app.views.text import markdown_escape
from captioner.batch.formats import spreadsheet_cell


def readable(table: pd.DataFrame, digits: int = 3, wide: Sequence[str] = ("caption",)) -> "pd.io.formats.style.Styler":
    """A table for st.table: numbers to `digits` decimals, blanks for missing values, text escaped (names
    such as `*md*` are shown as typed), no index, and the `wide` columns kept wide enough to read on a
    narrow window."""
    style = table.style.format(precision=digits, na_rep="").hide(axis="index")
    text = [c for c in table.columns if table[c].dtype == object or pd.api.types.is_string_dtype(table[c])]  # st.table: Markdown
    style = style.format(lambda v: markdown_escape(v) if isinstance(v, str) else ("" if v is None else v), subset=text)
    columns = [c for c in wide if c in table.columns]
    return style.set_properties(subset=columns, **{"min-width": "14em"}) if columns else style


def csv_bytes(table: pd.DataFrame, drop: Sequence[str] = ("thumbnail",)) -> bytes:
    """A table as UTF-8 CSV, without the given columns; text cells safe in a spreadsheet (batch.formats.spreadsheet_cell)."""
    kept = table.drop(columns=[c for c in drop if c in table.columns])
    return kept.map(spreadsheet_cell).to_csv(index=False).encode("utf-8")
