"""`--weights external --partitions K`: the constants in `PREFIX.weights`, not in `.rodata`.

The back-end emits every constant (the model's and the kernels' packed copies) in the order
the layers first use it, and cuts that order into K partitions of about equal bytes, so a
partition is a run of consecutive layers. The file (codegen/c/weights_file.py; layout in
runtime/edgec_weights.h) is mapped read-only at `PREFIX_weights_open(path)`; `PREFIX_weights.h`
turns each constant's identifier into a pointer from a table filled at open time, so the
kernel templates are the same as for `.rodata`; `PREFIX_run` enters partition k
(`edgec_weights_enter`: MADV_WILLNEED on k and k+1, MADV_DONTNEED on the others) before the
first layer whose weights lie in it. A constant used again in a later partition is simply
paged in again from the file (clean file pages), so outputs never depend on the partitioning.

The model hash in the header is the SHA-256 of the constants (dtype, shape and bytes of each,
in file order): a weights file from another model, or another compile of a changed model, is
refused with EDGEC_WEIGHTS_EMODEL.
"""

from __future__ import annotations

import bisect
import hashlib

import numpy as np
from edgec.codegen.c.weights_file import build_weights_file

WEIGHTS_RUNTIME = ("edgec_weights.h", "edgec_weights.c")
MAX_PARTITIONS = 64


def cut_partitions(sizes: list[int], item_bytes: list[int], partitions: int,
                   may_start: list[bool] | None = None
                   ) -> tuple[list[int], dict[int, list[tuple[int, int]]]]:
    """Where the K partitions start, for constants of `sizes` bytes in file order: a partition
    starts at a constant where `may_start` allows it (the first constant of a layer: a layer's
    constants are entered together), or inside constant i at a multiple of `item_bytes[i]`
    (> 0: a layer that streams it item by item, threads.WorkSplit.stream; 0: never split).

    The largest partition is made as small as the cut points allow (a binary search for the
    smallest capacity a greedy cut fits into K partitions); each cut then aims at an equal
    share of the bytes left without exceeding that capacity. Returns (the partition of each
    constant's first byte, {constant: [(byte offset inside it, partition starting there)]}).
    """
    may_start = may_start or [True] * len(sizes)
    starts, points, pos = [], [], 0
    for index, (size, step) in enumerate(zip(sizes, item_bytes)):
        starts.append(pos)
        if may_start[index] or index == 0:
            points.append(pos)
        if step > 0:
            points += [pos + off for off in range(step, size, step)]
        pos += size
    total = pos
    points.append(total)

    def furthest(start: int, cap: int) -> int:
        return max(start, points[bisect.bisect_right(points, start + cap) - 1])

    def count(start: int, cap: int) -> int:
        used = 0
        while start < total:
            nxt = furthest(start, cap)
            if nxt == start:
                return partitions + 1
            start, used = nxt, used + 1
        return used

    lo, hi = 1, max(total, 1)
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if count(0, mid) <= partitions else (mid + 1, hi)
    cuts, start = [], 0
    for left in range(partitions, 1, -1):
        if start >= total:
            break
        aim = start + (total - start) / left
        options = [p for p in points if start < p <= start + lo and p < total
                   and count(p, lo) <= left - 1]
        if not options:
            break
        start = min(options, key=lambda p: (abs(p - aim), p))
        cuts.append(start)
    parts = [bisect.bisect_right(cuts, begin) for begin in starts]
    inner: dict[int, list[tuple[int, int]]] = {}
    for k, cut in enumerate(cuts, start=1):
        i = bisect.bisect_right(starts, cut) - 1  # the constant the cut falls in
        if starts[i] < cut:
            inner.setdefault(i, []).append((cut - starts[i], k))
    return parts, inner


def partition_of(sizes: list[int], partitions: int) -> list[int]:
    """Partition number of each constant (in file order) when no constant may be split."""
    return cut_partitions(sizes, [0] * len(sizes), partitions)[0]


def model_hash(arrays: list[np.ndarray]) -> bytes:
    """SHA-256 over every constant's dtype, shape and bytes (the header's model hash)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
    return h.digest()


def external_weights(weights: list[dict], first_use: dict[str, int], layers, partitions: int,
                     streams: dict[str, int] | None = None):
    """(weights in file order with their table index and partition, the file's bytes,
    {layer position: partition to enter before it}, {layer position: [(work item, partition to
    enter before it)]}, the model hash).

    `streams` maps a constant that its first layer reads work item by work item to the bytes
    of one item (threads.WorkSplit.stream): a partition may start inside it, and that layer
    enters the partition between two items. Within a layer such a constant comes last in the
    file, so the layer's other constants lie in the partition it enters first."""
    streams = streams or {}
    order = sorted(range(len(weights)), key=lambda i: (
        first_use.get(weights[i]["ident"], 0), weights[i]["ident"] in streams, i))
    ordered = [dict(weights[i]) for i in order]
    layer_of = [first_use.get(w["ident"], 0) for w in ordered]
    parts, inner = cut_partitions(
        [w["bytes"] for w in ordered], [streams.get(w["ident"], 0) for w in ordered],
        partitions, [i == 0 or layer_of[i] != layer_of[i - 1] for i in range(len(ordered))])
    arrays = [w["data"] for w in ordered]
    digest = model_hash(arrays)
    blob = build_weights_file(arrays, parts, digest, inner)
    part_of_ident, cuts_of_ident = {}, {}
    for index, (w, part) in enumerate(zip(ordered, parts)):
        w.update(index=index, partition=part,
                 last_partition=inner[index][-1][1] if index in inner else part)
        part_of_ident[w["ident"]] = part
        if index in inner:
            cuts_of_ident[w["ident"]] = [(off // streams[w["ident"]], k) for off, k in inner[index]]
    enter: dict[int, int] = {0: 0} if layers else {}
    inner_enter: dict[int, list[tuple[int, int]]] = {}
    current = 0
    for pos, layer in enumerate(layers):
        mine = [ident for ident, at in first_use.items()
                if at == layer.index and ident in part_of_ident]
        first = max((part_of_ident[ident] for ident in mine), default=-1)
        if first > current:
            current = first
            enter[pos] = current
        for ident in mine:
            if ident in cuts_of_ident:
                inner_enter[pos] = cuts_of_ident[ident]
                current = cuts_of_ident[ident][-1][1]
    return ordered, blob, enter, inner_enter, digest
