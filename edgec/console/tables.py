"""Every table edgec prints: aligned columns (`align_rows`), and status-coloured tables for
the golden, per-layer and report commands (`table`; colour only on a terminal, and never with
NO_COLOR set), with the cell formats they share (errors, SNR, shortened names).
"""

from __future__ import annotations

import math
import os
import sys

from edgec.console import visible

__all__ = ["align_rows", "colour", "fmt_err", "fmt_snr", "shorten", "table", "use_colour"]

COLOURS = {"green": "32", "red": "31", "yellow": "33", "bold": "1", "dim": "2"}
STATUS_COLOURS = {
    "pass": "green", "ok": "green", "recorded": "green", "bit-exact": "green",
    "regression": "red", "model-changed": "red", "error": "red", "MISMATCH": "red",
    "DIVERGES": "red", "mismatch": "red", "skipped": "yellow", "not compared": "dim",
}


def use_colour(stream=None) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set."""
    stream = stream or sys.stdout
    return hasattr(stream, "isatty") and stream.isatty() and "NO_COLOR" not in os.environ


def colour(text: str, name: str | None, enabled: bool) -> str:
    """`text` wrapped in an ANSI colour when `enabled` and `name` is known."""
    code = COLOURS.get(name or "")
    return f"\033[{code}m{text}\033[0m" if enabled and code else text


def fmt_err(x: float | None, missing: str = "-") -> str:
    """An error value for a table: 3 significant digits, `missing` when absent, 'inf'."""
    if x is None:
        return missing
    if isinstance(x, float) and math.isinf(x):
        return "inf"
    return "0" if x == 0 else f"{x:.3g}"


def fmt_snr(x: float | None) -> str:
    """An SNR in dB for a table ('inf' when identical, '-' when absent)."""
    if x is None:
        return "-"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.1f}"


def shorten(text: str, width: int) -> str:
    """`text` cut from the left to `width` characters ('...' marks the cut): the end of a
    hierarchical ONNX name is the informative part."""
    return text if len(text) <= width else "..." + text[len(text) - width + 3:]


def align_rows(rows: list[list[str]] | list[tuple[str, ...]], right: set[int] | None = None,
               indent: str = "", strip: bool = True) -> list[str]:
    """Rows of plain text cells as aligned lines: each column as wide as its widest cell,
    two spaces between columns, the `right` columns right-aligned; trailing blanks cut when
    `strip`. Cells are printed as given (callers make model names visible)."""
    right = right or set()
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [indent + "  ".join(c.rjust(w) if i in right else c.ljust(w)
                                for i, (c, w) in enumerate(zip(r, widths))) for r in rows]
    return [line.rstrip() for line in lines] if strip else lines


def table(header: list[str], rows: list[list[str]], right: set[int] | None = None,
          status_col: int | None = None, indent: str = "  ", stream=None) -> str:
    """An aligned text table; the `status_col` cells are coloured by STATUS_COLOURS. Cells
    are made visible (edgec.console.visible): a newline in a node name cannot break a row."""
    right = right or set()
    on = use_colour(stream)
    all_rows = [[visible(cell) for cell in r] for r in [header] + rows]  # names from models
    widths = [max(len(r[i]) for r in all_rows) for i in range(len(header))]
    lines = []
    for n, r in enumerate(all_rows):
        cells = []
        for i, (cell, w) in enumerate(zip(r, widths)):
            text = cell.rjust(w) if i in right else cell.ljust(w)
            if n and i == status_col:
                text = colour(text, STATUS_COLOURS.get(cell.split()[0] if cell else ""), on)
            elif n == 0:
                text = colour(text, "bold", on)
            cells.append(text)
        lines.append((indent + "  ".join(cells)).rstrip())
    return "\n".join(lines)
