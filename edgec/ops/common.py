"""Helpers shared by op definitions: broadcasting plans, strides, dtype checks."""

from __future__ import annotations

from edgec.errors import ShapeError, UnsupportedError
from edgec.ir import DType, Node


def row_major_strides(shape: tuple[int, ...]) -> list[int]:
    """Element strides of a dense row-major tensor."""
    strides = [1] * len(shape)
    for i in range(len(shape) - 2, -1, -1):
        strides[i] = strides[i + 1] * shape[i + 1]
    return strides


def broadcast_plan(out_shape: tuple[int, ...], in_shapes: list[tuple[int, ...]]):
    """Loop nest for an n-ary broadcast: (dims, per-input element strides).

    Inputs are right-aligned against the output; a broadcast dimension has stride 0.
    Adjacent dimensions that every operand treats alike are merged, so the common cases
    (same shape; per-channel vector on channels-last data) become one or two loops.
    """
    rank = len(out_shape)
    full = []
    for shape in in_shapes:
        padded = (1,) * (rank - len(shape)) + tuple(shape)
        strides = row_major_strides(padded)
        full.append([0 if padded[d] == 1 and out_shape[d] != 1 else strides[d]
                     for d in range(rank)])
    dims: list[int] = []
    strides_out: list[list[int]] = [[] for _ in in_shapes]
    for d in range(rank):
        if out_shape[d] == 1:
            continue
        if dims:
            mergeable = all(
                (s[d] == 0 and so[-1] == 0) or (s[d] != 0 and so[-1] == s[d] * out_shape[d])
                for s, so in zip(full, strides_out)
            )
            if mergeable:
                dims[-1] *= out_shape[d]
                for s, so in zip(full, strides_out):
                    so[-1] = s[d]
                continue
        dims.append(out_shape[d])
        for s, so in zip(full, strides_out):
            so.append(s[d])
    if not dims:
        dims = [1]
        strides_out = [[0] for _ in in_shapes]
    return dims, strides_out


def require_dtypes(node: Node, allowed: set[DType], indices=(0,)) -> None:
    """UnsupportedError unless the listed inputs have one of the allowed element types."""
    for i in indices:
        v = node.input(i)
        if v is not None and v.dtype not in allowed:
            names = ", ".join(sorted(d.value for d in allowed))
            raise UnsupportedError(
                f"{node.op} node '{node.name}': element type {v.dtype.value} is not supported "
                f"(supported: {names})"
            )


def check_window(node: Node, nsp: int, kernel, strides, dilations, pads=None) -> None:
    """ShapeError unless a windowed op's kernel, strides, dilations (and pads, when given)
    have one entry per spatial dim (two for pads), kernel, strides, dilations are >= 1 and
    pads >= 0."""
    named = {"kernel_shape": kernel, "strides": strides, "dilations": dilations}
    for key, values in named.items():
        if len(values) != nsp:
            raise ShapeError(f"{node.op} node '{node.name}': {key} {list(values)} does not fit "
                             f"{nsp} spatial dimension(s)")
        if any(v < 1 for v in values):
            raise ShapeError(f"{node.op} node '{node.name}': {key} {list(values)} must be 1 or "
                             "more; the model is invalid")
    if pads is not None and len(pads) != 2 * nsp:
        raise ShapeError(f"{node.op} node '{node.name}': pads {list(pads)} does not fit {nsp} "
                         "spatial dimension(s)")
    if pads is not None and any(v < 0 for v in pads):  # ONNX: pads are >= 0 (Pad crops)
        raise ShapeError(f"{node.op} node '{node.name}': pads {list(pads)} must be 0 or more; "
                         "the model is invalid")


FLOATS = {DType.FLOAT32}
NUMERIC = {DType.FLOAT32, DType.INT8, DType.UINT8, DType.INT16, DType.INT32, DType.INT64}
