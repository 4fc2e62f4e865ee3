"""Turning model-supplied text into safe C: identifiers are derived, text is escaped once.

Names from an ONNX file (nodes, values, inputs, outputs, the file name) are arbitrary
strings; they never become C identifiers and never reach C code. Identifiers are built from
indices and a prefix that `model_prefix` derives from the model's file name; model text
appears only inside comments and string literals, and only after `c_text`, the one escaping
function, has made it inert:

  - letters, digits, space and the punctuation in `SAFE_PUNCTUATION` pass through unchanged;
  - every other character becomes the octal escapes `\\ooo` of its UTF-8 bytes (always three
    digits, so the escape ends where it should and the next character is never absorbed);
  - a `/` that follows a `/` is escaped too.

So the output never holds `*`, `"`, `?`, a line break, a control character or a `\\` that is
not the start of a three-digit octal escape. That is why it is inert everywhere it goes:
inside `/* */` (no `*`, so no `*/`, and no `/*` for -Wcomment), after `//` (no line break,
and a `\\` is always followed by a digit, never by a newline), inside "..." (no `"`, no line
break, escapes are complete and decode to the exact bytes of the name) and in every
translation phase before those (no `??` trigraphs, no backslash-newline splices).
Templates keep model text away from `*` and `/` of their own (a space or quote in between).
A NUL in a name becomes `\\000`: exact in the literal, but it ends the string for strlen.
"""

from __future__ import annotations

import re

from edgec.errors import EdgecError

SAFE_PUNCTUATION = " _-.,:;+=()[]<>@#!&|^~'/"
_SAFE = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
                  + SAFE_PUNCTUATION)
_IDENT_BAD = re.compile(r"[^A-Za-z0-9_]")
_C_KEYWORDS = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else",
    "enum", "extern", "float", "for", "goto", "if", "inline", "int", "long", "register",
    "restrict", "return", "short", "signed", "sizeof", "static", "struct", "switch",
    "typedef", "union", "unsigned", "void", "volatile", "while", "main",
}
# Header and file names a prefix must not take: the output folder is on the include path,
# so `stdint.h` written there would hide the system header, and edgec's own files
# (edgec_harness.c, edgec_os.c, runtime headers) must not be overwritten.
_RESERVED_FILE_STEMS = {
    # C standard library headers (C89 .. C23)
    "assert", "complex", "ctype", "errno", "fenv", "float", "inttypes", "iso646", "limits",
    "locale", "math", "setjmp", "signal", "stdalign", "stdarg", "stdatomic", "stdbit",
    "stdbool", "stdckdint", "stddef", "stdint", "stdio", "stdlib", "stdnoreturn", "string",
    "tgmath", "threads", "time", "uchar", "wchar", "wctype",
    # POSIX and other common system headers
    "aio", "alloca", "arpa", "cpio", "dirent", "dlfcn", "endian", "fcntl", "features",
    "fnmatch", "ftw", "getopt", "glob", "grp", "iconv", "langinfo", "libgen", "malloc",
    "memory", "monetary", "mqueue", "netdb", "nl_types", "poll", "pthread", "pwd", "regex",
    "sched", "search", "semaphore", "spawn", "strings", "stropts", "syslog", "sys", "tar",
    "termios", "trace", "ulimit", "unistd", "utime", "utmpx", "wordexp", "linux", "net",
    "netinet", "err", "error", "execinfo", "stdfix",
    # compiler and vendor intrinsics headers
    "arm_acle", "arm_neon", "arm_sve", "arm_mve", "arm_fp16", "arm_bf16", "arm_math",
    "immintrin", "x86intrin", "xmmintrin", "emmintrin", "pmmintrin", "tmmintrin",
    "smmintrin", "nmmintrin", "wmmintrin", "ammintrin", "avxintrin", "avx2intrin", "cpuid",
    "intrin", "omp", "cmsis_compiler", "cmsis_gcc", "windows",
    # CMake's reserved target names (CMakeLists.txt declares add_library(PREFIX ...)); not
    # "test", which CMake reserves only under enable_testing() and is a common model name
    "all", "clean", "help", "install", "package", "package_source", "edit_cache",
    "rebuild_cache", "depend", "preinstall", "list_install_components",
    # Windows device names: a file con.h or nul.c cannot be created there
    "con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)), *(f"lpt{i}" for i in range(10)),
}
_PREFIX_MAX_LEN = 40


def c_text(text: object, max_len: int | None = None) -> str:
    """Model text made inert for any C comment or string literal (see the module docstring).

    The result is the exact text when it holds only safe characters; otherwise the unsafe
    characters are octal escapes of their UTF-8 bytes, which a string literal decodes back to
    the exact bytes. With `max_len`, a longer result is cut (never inside an escape) and
    ends in "...".
    """
    s = str(text)
    pieces: list[str] = []
    prev = ""
    for ch in s:
        if ch in _SAFE and not (ch == "/" and prev == "/"):
            pieces.append(ch)
        else:
            try:
                raw = ch.encode("utf-8", "surrogateescape")  # os.fsdecode'd bytes: exact
            except UnicodeEncodeError:
                raw = ch.encode("utf-8", "surrogatepass")
            pieces.append("".join(f"\\{b:03o}" for b in raw))
        prev = ch
    if max_len is not None and sum(map(len, pieces)) > max_len:
        kept, size = [], 0
        for piece in pieces:
            if size + len(piece) > max(max_len - 3, 0):
                break
            kept.append(piece)
            size += len(piece)
        pieces = kept + ["..."]
    return "".join(pieces)


def comment_text(text: object, max_len: int = 80) -> str:
    """Model text for a C comment: `c_text`, shortened to `max_len` characters."""
    return c_text(text, max_len)


def c_string(text: object, max_len: int | None = None) -> str:
    """A C string literal (with its quotes) of `text`: exact bytes unless cut at `max_len`."""
    return f'"{c_text(text, max_len)}"'


def c_identifier(text: str, fallback: str = "model", max_len: int = _PREFIX_MAX_LEN) -> str:
    """A valid, lower-case C identifier derived from `text` (for prefixes and file names)."""
    ident = _IDENT_BAD.sub("_", text).strip("_").lower()
    ident = re.sub(r"_+", "_", ident)[:max_len].strip("_")
    if not ident:
        ident = fallback
    if not ident:
        return ident
    if ident[0].isdigit():
        ident = f"m_{ident}"
    if ident in _C_KEYWORDS or ident.startswith("__"):
        ident = f"m_{ident}"
    return ident


def reserved_reason(ident: str) -> str | None:
    """Why `ident` cannot be the prefix of the generated files and API (None: it can)."""
    low = ident.lower()
    if low in _RESERVED_FILE_STEMS:
        return f"'{ident}.h' would hide a system or toolchain header of the same name"
    if low == "edgec" or low.startswith("edgec_"):
        return "names starting with 'edgec' belong to edgec's own files and macros"
    if low in _C_KEYWORDS:
        return f"'{ident}' is a C keyword"
    return None


def model_prefix(name: str, explicit: bool = False) -> str:
    """The prefix of the generated files and C API for a model called `name`.

    Derived from the model's file name (`explicit=False`): sanitised by `c_identifier`, and a
    reserved name gets a `_model` suffix (`stdint` -> `stdint_model`; names in edgec's own
    namespace get a `model_` prefix instead: `edgec_harness` -> `model_edgec_harness`).
    Given by the user (`--prefix`): sanitised the same way, but a name that sanitises to
    nothing or to a reserved name is an EdgecError rather than silently renamed.
    """
    ident = c_identifier(str(name), fallback="" if explicit else "model")
    if explicit:
        why = "it has no letters or digits" if not ident else reserved_reason(ident)
        if why:
            raise EdgecError(f"--prefix '{c_text(name, 60)}' cannot be used: {why}; choose "
                             "another C identifier such as 'my_model'")
        return ident
    if reserved_reason(ident):
        ident = f"model_{ident}" if ident.startswith("edgec") else f"{ident}_model"
    return ident
