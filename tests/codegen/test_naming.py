"""naming.py: the one escaping function for model text, and prefixes from model names.

The escapes are checked against gcc itself: a C program holding the escaped strings as
literals and comments (built with every warning an error and trigraphs on) must print back
exactly the UTF-8 bytes of the originals.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from c_lexer import c_tokens
from hypothesis import given, settings
from hypothesis import strategies as st

from edgec.codegen.c.naming import (
    SAFE_PUNCTUATION,
    c_identifier,
    c_string,
    c_text,
    comment_text,
    model_prefix,
)
from edgec.errors import EdgecError

HOSTILE = [
    '*\\ __attribute__((constructor))static void p(void){system("touch PWNED");}\\*',
    "*/ int x; /*", "// line", "a\\\nb", "??/", "??=define", "???/", "a\"b", "'c'",
    "\n#include",
    "\r\n", "\0", "nul\0inside", "tab\there", "\x7f\x1b[31m", "Ω≈ç√", "\u2028\u2029", "é\u0301",
    "\U0001F600", "a//b///c", "/*/", "*", "\\", "%s%n", "1\\0611", "\ud800", "trailing/",
    "x" * 300,
]
_ESCAPE = re.compile(r"\\[0-7]{3}")


def decode_c_escapes(text: str) -> bytes:
    """Bytes a C compiler makes of the inside of a string literal written by c_text."""
    out, i = bytearray(), 0
    while i < len(text):
        if text[i] == "\\":
            out.append(int(text[i + 1:i + 4], 8))
            i += 4
        else:
            out += text[i].encode("ascii")
            i += 1
    return bytes(out)


def utf8(text: str) -> bytes:
    """UTF-8 the way c_text encodes (lone surrogates kept rather than refused)."""
    return text.encode("utf-8", "surrogatepass")


def check_inert(escaped: str) -> None:
    """The character-level promise of c_text (see naming.py)."""
    assert escaped.isascii() and escaped.isprintable()
    for bad in ("*", '"', "?", "//", "\n", "\r"):
        assert bad not in escaped, (bad, escaped)
    rest = _ESCAPE.sub("", escaped)
    assert "\\" not in rest, escaped
    assert set(rest) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                            + SAFE_PUNCTUATION + "."), escaped


@settings(max_examples=300, derandomize=True, deadline=None, database=None)
@given(st.text() | st.lists(st.sampled_from(["*", "/", "\\", "?", '"', "\n", "\0", "0", "7", "a",
                                            "Ω", "'", "??/"]), max_size=12).map("".join))
def test_c_text_is_inert_and_exact(text):
    escaped = c_text(text)
    check_inert(escaped)
    assert decode_c_escapes(escaped) == utf8(text)
    # the comment and string forms are the same function, cut or quoted
    assert c_string(text) == f'"{escaped}"'
    short = comment_text(text, 20)
    check_inert(short)
    assert len(short) <= 20 and (short == escaped or short.endswith("..."))


def test_ordinary_names_pass_unchanged():
    for name in ("input", "conv1/weight", "/features/features.0/Conv_output_0", "onnx::Conv_12",
                 "x:0", "Identity (1)", "layer[3].bias", "a-b+c=d"):
        assert c_text(name) == name
        assert c_string(name) == f'"{name}"'


def test_examples():
    assert c_text('*\\ x */') == "\\052\\134 x \\052/"
    assert c_text("a//b") == "a/\\057b"
    assert c_text("??/") == "\\077\\077/"
    assert c_text("1\\0611") == "1\\1340611"  # the backslash is escaped, the digits stay
    assert c_text("Ω") == "\\316\\251"
    assert comment_text("x" * 100) == "x" * 77 + "..."
    assert comment_text("Ω" * 30, 11) == "\\316\\251..."  # never cut inside an escape
    assert comment_text("Ω" * 30, 10) == "..."


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc")
def test_gcc_reads_back_exact_bytes(tmp_path):
    lines = ["#include <stdio.h>", "int main(void)", "{"]
    for i, text in enumerate(HOSTILE):
        lit = c_string(text)
        lines += [f"    /* {comment_text(text)} */ // {comment_text(text)}",
                  f"    {{ static const char s{i}[] = {lit}; /* {c_text(text)} */",
                  f'      printf("%lu:", (unsigned long)(sizeof s{i} - 1));',
                  f"      fwrite(s{i}, 1, sizeof s{i} - 1, stdout); }}"]
    lines += ["    return 0;", "}", ""]
    src = tmp_path / "strings.c"
    src.write_text("\n".join(lines), encoding="ascii")
    c_tokens(src.read_text())  # the lexer accepts it: no trigraphs, splices, non-ASCII
    exe = tmp_path / "strings"
    subprocess.run(["gcc", "-std=c99", "-trigraphs", "-Wall", "-Wextra", "-Werror", "-pedantic",
                    "-Wcomment", "-Wtrigraphs", str(src), "-o", str(exe)], check=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True).stdout
    got = []
    while out:  # length-prefixed records: sizeof counts embedded NULs, so they come back too
        size, _, out = out.partition(b":")
        got.append(out[:int(size)])
        out = out[int(size):]
    assert got == [utf8(t) for t in HOSTILE]


def test_identifiers_and_prefixes():
    assert c_identifier("MobileNet-v2 (1)") == "mobilenet_v2_1"
    assert c_identifier("int") == "m_int"
    for name in ("resnet8", "dscnn", "digits_cnn", "test", "model"):
        assert model_prefix(name) == name
    assert model_prefix("stdint") == "stdint_model"
    assert model_prefix("String") == "string_model"
    assert model_prefix("stddef") == "stddef_model"
    assert model_prefix("arm_neon") == "arm_neon_model"
    assert model_prefix("edgec_harness") == "model_edgec_harness"
    assert model_prefix("edgec_os") == "model_edgec_os"
    assert model_prefix("***") == "model"
    assert model_prefix("*\\ x") == "x"
    assert model_prefix("my net", explicit=True) == "my_net"


@pytest.mark.parametrize("prefix", ["stdint", "edgec_harness", "EDGEC", "***", "", "math"])
def test_reserved_explicit_prefix_is_an_error(prefix):
    with pytest.raises(EdgecError, match="--prefix"):
        model_prefix(prefix, explicit=True)
