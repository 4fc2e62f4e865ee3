"""Two int4 weights per byte: the packing every int4 kernel reads (W4A8, `--weight-bits 4`).

A kernel's int8 weight layout (its panels, blocks or rows, as for int8) is cut into groups
of 2 * half values; group g becomes `half` bytes, byte j holding value j in its low nibble
and value j + half in its high nibble (two's complement, so [-8, 7]; edgec writes [-7, 7]).
`half` is what one load unpacks into two registers:
- portable C: half = 1, i.e. consecutive pairs, low nibble first (TFLite's INT4 order), each
  row padded to an even length so that rows start on a byte;
- x86 AVX2: half = 8 x vectors per k-pair: a vpmovsxbw of `half` bytes then a shift pair
  (low nibble) and a shift (high nibble) give the int16 (w_k, w_k+1) vectors of vpmaddwd;
- arm64 NEON: half = 16: one 16-byte load, SSHR(SHL 4) and SSHR give two consecutive int8
  vectors of the SDOT / SMULL layouts.
"""

from __future__ import annotations

import numpy as np

INT4_MIN, INT4_MAX = -8, 7


def pack_int4(values: np.ndarray, half: int) -> np.ndarray:
    """Flat int values in [-8, 7], length a multiple of 2 * half -> uint8 bytes (see above)."""
    v = np.asarray(values).reshape(-1).astype(np.int64)
    if v.size % (2 * half):
        raise ValueError(f"{v.size} int4 values do not fill groups of {2 * half}")
    if v.size and (v.min() < INT4_MIN or v.max() > INT4_MAX):
        raise ValueError("int4 weights must lie in [-8, 7]")
    groups = (v & 0xF).reshape(-1, 2, half)
    return np.ascontiguousarray((groups[:, 0, :] | (groups[:, 1, :] << 4)).reshape(-1)
                                .astype(np.uint8))


def unpack_int4(packed: np.ndarray, half: int) -> np.ndarray:
    """The inverse of pack_int4 (int8 values), for tests and reports."""
    b = np.asarray(packed, np.uint8).reshape(-1, half).astype(np.int16)
    lo = ((b & 0xF) ^ 8) - 8
    hi = ((b >> 4) ^ 8) - 8
    return np.stack([lo, hi], axis=1).reshape(-1).astype(np.int8)


def pack_rows(rows: np.ndarray) -> tuple[np.ndarray, int]:
    """[R, K] int4 values -> (bytes [R, ceil(K / 2)] flattened, bytes per row): consecutive
    pairs, low nibble first, an odd row padded with a zero weight."""
    r, k = rows.shape
    padded = np.zeros((r, k + (k & 1)), np.int64)
    padded[:, :k] = rows
    return pack_int4(padded, 1), (k + 1) // 2
