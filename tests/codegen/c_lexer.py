"""A small C lexer for tests: the token stream of a C file with comments and literals removed.

It implements what generated C may contain (block and line comments, string and character
literals with escapes, identifiers, pp-numbers, punctuators, backslash-newline splices as in
translation phase 2) and refuses what it does not implement instead of guessing: trigraphs,
non-ASCII bytes and characters that are no C token raise AssertionError, so a file it
accepts is tokenised the way a C compiler's translation phases 1-3 would.
"""

from __future__ import annotations

import re

_TRIGRAPH = re.compile(r"\?\?[=(/)'<!>-]")
_SPLICE = re.compile(r"\\\r?\n")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PPNUMBER = re.compile(r"\.?[0-9](?:[eEpP][+-]|[A-Za-z0-9_.])*")
_PUNCT = sorted("""
... <<= >>= -> ++ -- << >> <= >= == != && || *= /= %= += -= &= ^= |= ## <: :> <% %> %:
[ ] ( ) { } . & * + - ~ ! / % < > ^ | ? : ; = , #
""".split(), key=len, reverse=True)
STRING = "<string>"
CHAR = "<char>"


def _literal_end(code: str, i: int, quote: str) -> int:
    """Index just past the literal starting at code[i] (the opening quote)."""
    i += 1
    while True:
        assert i < len(code), "unterminated literal"
        ch = code[i]
        assert ch not in "\r\n", "line break inside a literal"
        if ch == "\\":
            i += 2
        elif ch == quote:
            return i + 1
        else:
            i += 1


def c_tokens(code: str) -> list[str]:
    """Tokens of `code`; comments vanish, every string/char literal becomes STRING/CHAR."""
    assert code.isascii(), "non-ASCII text in generated C"
    assert not _TRIGRAPH.search(code), "trigraph in generated C"
    code = _SPLICE.sub("", code)  # phase 2 (multi-line macros of the runtime headers)
    tokens: list[str] = []
    i, n = 0, len(code)
    while i < n:
        ch = code[i]
        two = code[i:i + 2]
        if ch in " \t\r\n\f\v":
            i += 1
        elif two == "/*":
            end = code.find("*/", i + 2)
            assert end >= 0, "unterminated comment"
            i = end + 2
        elif two == "//":
            end = code.find("\n", i)
            i = n if end < 0 else end
        elif ch == '"':
            i = _literal_end(code, i, '"')
            tokens.append(STRING)
        elif ch == "'":
            i = _literal_end(code, i, "'")
            tokens.append(CHAR)
        else:
            m = _PPNUMBER.match(code, i) or _IDENT.match(code, i)
            if m:
                tokens.append(m.group())
                i = m.end()
                continue
            punct = next((p for p in _PUNCT if code.startswith(p, i)), None)
            assert punct is not None, f"no C token at {code[i:i + 20]!r}"
            tokens.append(punct)
            i += len(punct)
    return tokens

