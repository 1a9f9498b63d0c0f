"""Small HTML builders for self-contained report pages: every text they are given is escaped here, once.

The pages are plain (no scripts, no styles) so they open from a run folder in any browser and diff well.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

__all__ = ["bullet_list", "heading", "image", "page", "preformatted", "table"]


def page(title: str, *parts: str) -> str:
    """A whole document: `title` in the tab, then the parts (from the builders below) in order."""
    return f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>" + "".join(parts) + "\n"


def heading(text: str, level: int = 1) -> str:
    if not 1 <= level <= 6:
        raise ValueError(f"level must be 1 to 6, got {level}")
    return f"<h{level}>{html.escape(text)}</h{level}>"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """A bordered table; cells are text (format numbers before)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table border=1><tr>{head}</tr>{body}</table>"


def bullet_list(items: Iterable[str], empty: str = "") -> str:
    """A bulleted list; `empty` is the one item shown when there are none (say so rather than show nothing)."""
    lines = [html.escape(item) for item in items] or ([html.escape(empty)] if empty else [])
    return "<ul>" + "".join(f"<li>{line}</li>" for line in lines) + "</ul>"


def preformatted(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"


def image(src: str) -> str:
    """An image next to the page (a file name in the same run folder)."""
    return f"<img src='{html.escape(src)}'>"
