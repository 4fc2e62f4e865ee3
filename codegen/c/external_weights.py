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

import hashlib

import numpy as np
from edgec.codegen.c.weights_file import build_weights_file

WEIGHTS_RUNTIME = ("edgec_weights.h", "edgec_weights.c")
MAX_PARTITIONS = 64


def partition_of(sizes: list[int], partitions: int) -> list[int]:
    """Partition number of each constant (in file order): about total/K bytes each,
    non-decreasing, a constant never split."""
    total = max(sum(sizes), 1)
    parts, before = [], 0
    for n in sizes:
        parts.append(min(partitions - 1, before * partitions // total))
        before += n
    return parts


def model_hash(arrays: list[np.ndarray]) -> bytes:
    """SHA-256 over every constant's dtype, shape and bytes (the header's model hash)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes())
    return h.digest()


def external_weights(weights: list[dict], first_use: dict[str, int], layers,
                     partitions: int) -> tuple[list[dict], bytes, dict[int, int], bytes]:
    """(weights in file order with their table index and partition, the file's bytes,
    {layer position: partition to enter before it}, the model hash)."""
    order = sorted(range(len(weights)), key=lambda i: (first_use.get(weights[i]["ident"], 0), i))
    ordered = [dict(weights[i]) for i in order]
    parts = partition_of([w["bytes"] for w in ordered], partitions)
    arrays = [w["data"] for w in ordered]
    digest = model_hash(arrays)
    blob = build_weights_file(arrays, parts, digest)
    part_of_ident = {}
    for index, (w, part) in enumerate(zip(ordered, parts)):
        w.update(index=index, partition=part)
        part_of_ident[w["ident"]] = part
    enter: dict[int, int] = {0: 0} if layers else {}
    current = 0
    for pos, layer in enumerate(layers):
        mine = [part_of_ident[i] for i, at in first_use.items()
                if at == layer.index and i in part_of_ident]
        if mine and max(mine) > current:
            current = max(mine)
            enter[pos] = current
    return ordered, blob, enter, digest
