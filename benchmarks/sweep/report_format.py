"""How the report shows itself: sections (title, text, tables, figures) rendered to report.md and report.html from
one description, so that both show the same text.

Tables: every number of a column at one precision (``decimals`` per column where the caller knows it, e.g. 2 for
ranks; else SIGNIFICANT digits of the column's median magnitude), integers as integers, NaN as an empty cell, no
index or axis names, and no column that is empty in every row.
"""
from __future__ import annotations

import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

SIGNIFICANT = 3  # as the paper prints its figures (0.635, 30.7)
MAX_DECIMALS = 4
WIDE = 800  # pixels: a figure wider than this gets a row of its own in report.html


@dataclass
class Table:
    frame: pd.DataFrame
    decimals: dict[str, int] = field(default_factory=dict)  # column -> places


@dataclass
class Section:
    """A heading (``level`` 2 or 3), paragraphs (markdown: `code`, **bold**) and items: Table, figure Path or
    subsection, in order."""
    title: str
    text: list[str] = field(default_factory=list)
    items: list = field(default_factory=list)
    level: int = 2


def column_decimals(values: pd.Series) -> int:
    """Places that give the column's median non-zero magnitude SIGNIFICANT digits (0 to MAX_DECIMALS)."""
    v = pd.to_numeric(values, errors="coerce").abs()
    v = v[np.isfinite(v) & (v > 0)]
    if v.empty:
        return 0
    return int(min(MAX_DECIMALS, max(0, SIGNIFICANT - 1 - math.floor(math.log10(float(v.median()))))))


def number(v, decimals: int) -> str:
    """One number at ``decimals`` places; '' for NaN/None/NA."""
    if v is None or pd.isna(v):
        return ""
    return f"{float(v):.{decimals}f}"


def p_value(v) -> str:
    """A p-value as the report prints it: 3 decimals, ``<0.001`` below; '' for NaN."""
    if v is None or not math.isfinite(float(v)):
        return ""
    return "<0.001" if float(v) < 0.001 else f"{float(v):.3f}"


def _column(s: pd.Series, decimals: int | None) -> pd.Series:
    if pd.api.types.is_bool_dtype(s):
        text = s.map(lambda v: "" if pd.isna(v) else str(bool(v)))
    elif pd.api.types.is_integer_dtype(s):
        text = s.map(lambda v: "" if pd.isna(v) else str(int(v)))
    elif pd.api.types.is_float_dtype(s):
        d = column_decimals(s) if decimals is None else decimals
        text = s.map(lambda v: number(v, d))
    else:
        text = s.map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    return text.astype(object)


def display(df: pd.DataFrame, decimals: dict[str, int] | None = None) -> pd.DataFrame:
    """``df`` as the strings the report prints (see the module doc)."""
    decimals = decimals or {}
    out = pd.DataFrame({str(c): _column(df[c], decimals.get(c)).to_numpy() for c in df.columns},
                       index=range(len(df)), columns=[str(c) for c in df.columns])
    return out[[c for c in out.columns if not len(out) or not (out[c] == "").all()]]


def markdown_table(df: pd.DataFrame, decimals: dict[str, int] | None = None) -> str:
    if df.empty:
        return "_(no rows)_\n"
    shown = display(df, decimals)
    lines = ["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
    lines += ["| " + " | ".join(v.replace("|", "\\|") for v in row) + " |" for row in shown.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def html_table(df: pd.DataFrame, decimals: dict[str, int] | None = None) -> str:
    if df.empty:
        return "<p><em>(no rows)</em></p>"
    return display(df, decimals).to_html(index=False, escape=True, border=0)


def slug(*parts) -> str:
    """A file name's part from any strings: runs of other characters than letters and digits as one ``_``."""
    return re.sub(r"[^A-Za-z0-9]+", "_", "_".join(map(str, parts))).strip("_")


def inline_html(text: str) -> str:
    """A paragraph's markdown (`code`, **bold**) as HTML."""
    text = html.escape(text, quote=False)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def to_markdown(sections: list[Section]) -> list[str]:
    out = []
    for s in sections:
        out += ["#" * s.level + " " + s.title, ""]
        for p in s.text:
            out += [p, ""]
        for item in s.items:
            if isinstance(item, Section):
                out += to_markdown([item])
            elif isinstance(item, Table):
                out += [markdown_table(item.frame, item.decimals)]
            else:
                out += [f"![{Path(item).stem}]({Path(item).name})", ""]
    return out


def png_width(path) -> int:
    """A PNG's width in pixels, from its header (0 if the file is no PNG)."""
    with open(path, "rb") as f:
        head = f.read(24)
    return int.from_bytes(head[16:20], "big") if head[:8] == b"\x89PNG\r\n\x1a\n" else 0


def to_html(sections: list[Section]) -> list[str]:
    """The sections as HTML; consecutive figures side by side, those wider than WIDE pixels (the depth profiles'
    panels) each across the page."""
    out = []
    for s in sections:
        out += [f"<h{s.level}>{html.escape(s.title)}</h{s.level}>"] + [f"<p>{inline_html(p)}</p>" for p in s.text]
        figures = []
        for item in [*s.items, None]:
            if isinstance(item, (str, Path)):
                wide = " class='wide'" if png_width(item) > WIDE else ""
                figures.append(f"<img{wide} src='{html.escape(Path(item).name)}' alt='{html.escape(Path(item).stem)}'>")
                continue
            if figures:
                out += ["<div class='figures'>" + "".join(figures) + "</div>"]
                figures = []
            if isinstance(item, Section):
                out += to_html([item])
            elif isinstance(item, Table):
                out += [html_table(item.frame, item.decimals)]
    return out
