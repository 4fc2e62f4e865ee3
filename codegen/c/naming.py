"""Turning model-supplied names into safe C: identifiers are derived, comments are escaped.

Names from an ONNX file are arbitrary strings; they never become C identifiers. Identifiers
are built from indices and a sanitised prefix, and names appear only inside comments after
`comment_text` has removed anything that could end the comment or confuse a reader.
"""

from __future__ import annotations

import re

_IDENT_BAD = re.compile(r"[^A-Za-z0-9_]")
_C_KEYWORDS = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
    "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
    "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch",
    "typedef", "union", "unsigned", "void", "volatile", "while", "main",
}


def c_identifier(text: str, fallback: str = "model", max_len: int = 40) -> str:
    """A valid, lower-case C identifier derived from `text` (for prefixes and file names)."""
    ident = _IDENT_BAD.sub("_", text).strip("_").lower()
    ident = re.sub(r"_+", "_", ident)[:max_len].strip("_")
    if not ident:
        ident = fallback
    if ident[0].isdigit():
        ident = f"m_{ident}"
    if ident in _C_KEYWORDS or ident.startswith("__"):
        ident = f"m_{ident}"
    return ident


def comment_text(text: str, max_len: int = 80) -> str:
    """Printable ASCII safe inside /* */: no comment terminators, trigraphs or line breaks."""
    out = []
    for ch in str(text):
        code = ord(ch)
        out.append(ch if 32 <= code < 127 else "?")
    safe = "".join(out).replace("*/", "* /").replace("/*", "/ *")
    while "??" in safe:  # one pass leaves "??" behind in runs such as "?????"
        safe = safe.replace("??", "?-?")
    safe = safe.replace("\\", "/")
    if len(safe) > max_len:
        safe = safe[: max_len - 3] + "..."
    return safe


def c_string(text: str, max_len: int = 120) -> str:
    """A C string literal (with quotes) holding a printable-ASCII rendering of `text`."""
    safe = comment_text(text, max_len).replace('"', "'")
    return f'"{safe}"'
