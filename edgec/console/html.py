"""Tables for notebooks: HTML for Jupyter (`_repr_html_`) and rich renderables (`__rich__`)
for the results of the Python API (edgec/api/). Every cell is escaped here, once, so a name
from a model cannot inject markup. rich is optional: without it `__rich__` gets plain text.
"""

from __future__ import annotations

import html

from edgec.console.tables import align_rows


def html_table(title: str, header: list[str], rows: list[list[object]],
               caption: str = "") -> str:
    """An HTML <table> with a bold title line above it and an optional caption below."""
    head = "".join(f"<th style='text-align:left'>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    note = f"<div>{html.escape(caption)}</div>" if caption else ""
    return (f"<div><b>{html.escape(title)}</b><table><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>{note}</div>")


def text_table(title: str, header: list[str], rows: list[list[object]],
               caption: str = "") -> str:
    """The same table as aligned plain text (repr, and `__rich__` without rich)."""
    lines = [title, *align_rows([[str(h) for h in header], *[[str(c) for c in r] for r in rows]])]
    return "\n".join(lines + ([caption] if caption else []))


def rich_table(title: str, header: list[str], rows: list[list[object]], caption: str = ""):
    """A rich.table.Table when rich is installed, else `text_table`'s text."""
    try:
        from rich.markup import escape  # on use: rich is optional and only notebooks want it
        from rich.table import Table
    except ImportError:
        return text_table(title, header, rows, caption)
    table = Table(title=escape(title), caption=escape(caption) or None)
    for h in header:
        table.add_column(escape(str(h)))
    for row in rows:
        table.add_row(*(escape(str(c)) for c in row))
    return table


class TableView:
    """Mixin for results shown as one table: `_table()` returns (title, header, rows[,
    caption]); notebooks get `_repr_html_`, rich consoles `__rich__`."""

    def _table(self) -> tuple:
        raise NotImplementedError

    def _repr_html_(self) -> str:
        return html_table(*self._table())

    def __rich__(self):
        return rich_table(*self._table())


class TextTableView(TableView):
    """`TableView` whose str() is the same table as aligned text."""

    def __str__(self) -> str:
        return text_table(*self._table())
