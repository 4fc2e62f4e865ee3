"""The external weights file (`PREFIX.weights`) that codegen/c/runtime/edgec_weights.c maps.

The layout is described once, at the top of edgec_weights.h; this module writes exactly that:
a 96-byte header, a tensor table, a partition table, then the tensors, each aligned. A partition
that starts at a tensor starts on a 64 KiB boundary, so the runtime can release its pages
without touching its neighbours'; one may also start inside a tensor (a layer that streams its
weights work item by work item enters it between two items), and the runtime then keeps the
page the two partitions share. The output depends only on the arrays, their partitions and the
model hash (byte-identical on every host).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

import numpy as np

MAGIC = b"EDGECWT1"
VERSION = 1
HEADER_BYTES = 96
TABLE_ENTRY_BYTES = 16
PARTITION_ALIGN = 65536


def _align(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def build_weights_file(arrays: Sequence[np.ndarray], partitions: Sequence[int],
                       model_hash: bytes, inner: dict[int, list[tuple[int, int]]] | None = None,
                       alignment: int = 64) -> bytes:
    """The file's bytes: `arrays[i]` (C order, its own dtype, little-endian) starting in
    partition `partitions[i]`; partitions are numbered 0..P-1 and non-decreasing along
    `arrays`. `inner[i]` lists (byte offset, partition) where a partition starts inside
    array i (a layer that enters it between two work items); such a partition does not start
    on a 64 KiB boundary."""
    inner = inner or {}
    if len(arrays) != len(partitions):
        raise ValueError("one partition number per array")
    if len(model_hash) != 32:
        raise ValueError("model_hash must be 32 bytes (SHA-256)")
    if list(partitions) != sorted(partitions):
        raise ValueError("partitions must be non-decreasing")
    count = len(arrays)
    n_parts = max([p + 1 for p in partitions] + [k + 1 for cuts in inner.values()
                                                  for _, k in cuts] + [1])
    tables_end = HEADER_BYTES + TABLE_ENTRY_BYTES * (count + n_parts)
    offsets, part_ranges = [], [[0, 0] for _ in range(n_parts)]
    pos, current = tables_end, -1
    for index, (arr, part) in enumerate(zip(arrays, partitions)):
        if part < current:
            raise ValueError("partitions must be non-decreasing (inner cuts included)")
        if part != current:
            pos = _align(pos, PARTITION_ALIGN)
            for skipped in range(current + 1, part + 1):
                part_ranges[skipped] = [pos, pos]
            current = part
        pos = _align(pos, alignment)
        offsets.append(pos)
        for offset, k in inner.get(index, []):
            if k <= current or not 0 < offset < np.asarray(arr).nbytes:
                raise ValueError("an inner cut must start a later partition inside its array")
            part_ranges[current][1] = pos + offset
            for skipped in range(current + 1, k + 1):
                part_ranges[skipped] = [pos + offset, pos + offset]
            current = k
        pos += np.asarray(arr).nbytes
        part_ranges[current][1] = pos
    for skipped in range(current + 1, n_parts):
        part_ranges[skipped] = [_align(pos, PARTITION_ALIGN)] * 2
    size = max([pos] + [end for _, end in part_ranges])
    buf = np.zeros(size, dtype=np.uint8)
    for arr, off in zip(arrays, offsets):
        data = np.ascontiguousarray(arr)
        raw = data.astype(data.dtype.newbyteorder("<"), copy=False).tobytes()
        buf[off:off + len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    table = b"".join(struct.pack("<QII", off, np.asarray(arr).nbytes, part)
                     for off, arr, part in zip(offsets, arrays, partitions))
    table += b"".join(struct.pack("<QQ", begin, end) for begin, end in part_ranges)
    buf[HEADER_BYTES:tables_end] = np.frombuffer(table, dtype=np.uint8)
    checksum = zlib.crc32(buf[tables_end:].tobytes())
    header = (MAGIC + struct.pack("<IIII", VERSION, count, n_parts, alignment)
              + struct.pack("<Q", size) + bytes(model_hash) + struct.pack("<Q", checksum))
    header += bytes(HEADER_BYTES - len(header))
    buf[:HEADER_BYTES] = np.frombuffer(header, dtype=np.uint8)
    return buf.tobytes()
