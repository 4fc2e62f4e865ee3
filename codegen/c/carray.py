"""Formatting numpy arrays as C99 initializers, exactly and deterministically."""

from __future__ import annotations

import numpy as np

_PER_LINE = 8


def _float_tokens(arr: np.ndarray) -> list[str]:
    flat = arr.astype(np.float32).reshape(-1)
    if np.all(np.isfinite(flat)):
        # '#' keeps the decimal point so that the 'f' suffix always forms a float literal;
        # 9 significant digits round-trip every float32 exactly.
        text = ("%#.9g\n" * flat.size) % tuple(flat.tolist())
        return [t + "f" for t in text.split("\n")[:-1]]
    out = []
    for x in flat.tolist():
        if np.isnan(x):
            out.append("NAN")
        elif np.isinf(x):
            out.append("INFINITY" if x > 0 else "-INFINITY")
        else:
            out.append("%#.9gf" % x)
    return out


def _int_tokens(arr: np.ndarray) -> list[str]:
    flat = arr.reshape(-1)
    if flat.dtype == np.int64:
        return [f"INT64_C({v})" for v in flat.tolist()]
    if flat.dtype == np.int32:
        return [f"{v}" if v != -(2**31) else "(-2147483647 - 1)" for v in flat.tolist()]
    if flat.dtype == np.uint32:
        return [f"{v}u" for v in flat.tolist()]
    return [str(int(v)) for v in flat.tolist()]


def c_initializer(arr: np.ndarray) -> str:
    """The `{ ... }` initializer text of a dense array, 8 values per line."""
    arr = np.asarray(arr)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    if arr.dtype == np.float16:  # stored as uint16_t: emit the IEEE half bits
        arr = arr.view(np.uint16)
    if arr.dtype == np.float64:
        tokens = [c_scalar(x, "double") for x in arr.reshape(-1).tolist()]
    elif arr.dtype.kind == "f":
        tokens = _float_tokens(arr)
    else:
        tokens = _int_tokens(arr)
    if not tokens:
        tokens = ["0"]
    lines = [", ".join(tokens[i : i + _PER_LINE]) for i in range(0, len(tokens), _PER_LINE)]
    return "{\n    " + ",\n    ".join(lines) + "\n}"


def c_scalar(x, ctype: str = "float") -> str:
    """One value as a C literal of `ctype`."""
    if ctype in ("float", "double"):
        x = float(x)
        if np.isnan(x):
            return "NAN"
        if np.isinf(x):
            return "INFINITY" if x > 0 else "(-INFINITY)"
        if ctype == "double":
            return "%#.17g" % x  # 17 significant digits round-trip every double
        return ("%#.9g" % x) + "f"
    if ctype == "int64_t":
        return f"INT64_C({int(x)})"
    return str(int(x))
