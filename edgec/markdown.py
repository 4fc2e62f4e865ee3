"""Generated sections of hand-written markdown files (docs/benchmarks.md is shared by several
measurement tools: each owns the text between its own begin/end markers)."""

from __future__ import annotations

from pathlib import Path


def replace_section(path: str | Path, begin: str, end: str, section: str,
                    title: str = "# edgec benchmarks\n\n") -> None:
    """Write `section` (which starts with `begin` and ends with `end`) into `path`, replacing
    the old text between the markers or appending it; everything else is kept."""
    path = Path(path)
    text = path.read_text() if path.exists() else title
    if begin in text and end in text:
        before, rest = text.split(begin, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        text = before + section + ("\n" + after if after else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)
