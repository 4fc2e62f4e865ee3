"""C kernels of data movement (edgec/ops/shape_ops.py, views.py), portable only: Concat,
Split, Slice, Expand, Tile, DepthToSpace and SpaceToDepth as strided copies
(`ops/strided_copy`), views that are not elided as a flat copy (`ops/copy`), Transpose as
an elementwise odometer.
"""

from __future__ import annotations

import numpy as np

from edgec.errors import UnsupportedError
from edgec.ir import Node
from edgec.ops.base import in_type, normalize_axis
from edgec.ops.common import row_major_strides
from edgec.codegen.c.kernel import PORTABLE, op_lowering, register_candidates

STRIDED_COPY = "ops/strided_copy.c.j2"


def affine_index(base: int, strides) -> str:
    """C index `base + i0 * s0 - i1 * s1 ...` over loop counters i0, i1, ... in size_t.

    Negative strides are subtracted after every positive term; unsigned arithmetic wraps, so
    the value is exact whenever the true index is in range.
    """
    terms = [f"{base}u"] if base else []
    terms += [f"i{d}" if s == 1 else f"i{d} * {s}u" for d, s in enumerate(strides) if s > 0]
    text = " + ".join(terms) or "0"
    for d, s in enumerate(strides):
        if s < 0:
            text += f" - i{d}" if s == -1 else f" - i{d} * {-s}u"
    return text


def copy_box(src: int, dst: int, dims, src_strides, dst_strides, src_offset: int = 0,
             dst_offset: int = 0) -> dict | None:
    """One box of a strided copy as the template wants it (None when it moves nothing).

    `src` indexes the op's inputs, `dst` its outputs; strides and offsets count elements.
    """
    if any(n == 0 for n in dims):
        return None
    merged: list[list[int]] = []
    for n, s, t in zip(dims, src_strides, dst_strides):
        if n == 1:
            continue
        if merged and merged[-1][1] == s * n and merged[-1][2] == t * n:
            merged[-1] = [merged[-1][0] * n, s, t]
        else:
            merged.append([n, s, t])
    run = 1
    if merged and merged[-1][1] == 1 and merged[-1][2] == 1:
        run = merged.pop()[0]
    return {
        "src": src, "dst": dst, "dims": [m[0] for m in merged], "run": run,
        "src_index": affine_index(src_offset, [m[1] for m in merged]),
        "dst_index": affine_index(dst_offset, [m[2] for m in merged]),
    }


def copy_params(boxes, n_inputs: int, n_outputs: int) -> dict:
    """Template parameters of the strided-copy template; remembers which tensors no box touches."""
    boxes = [b for b in boxes if b is not None]
    return {
        "boxes": boxes,
        "idle_inputs": [i for i in range(n_inputs) if all(b["src"] != i for b in boxes)],
        "idle_outputs": [i for i in range(n_outputs) if all(b["dst"] != i for b in boxes)],
    }


def concat_params(op, node: Node, target) -> dict:
    """C template parameters of a Concat node (`op`: its registry entry)."""
    shape = node.output.shape
    axis = normalize_axis(node.attrs["axis"], len(shape), node)
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    total = shape[axis] * inner
    boxes, offset = [], 0
    for k, v in enumerate(node.inputs):
        n = v.shape[axis] * inner
        boxes.append(copy_box(k, 0, [outer, n], [n, 1], [total, 1], 0, offset))
        offset += n
    return copy_params(boxes, len(node.inputs), 1)


def split_params(op, node: Node, target) -> dict:
    """C template parameters of a Split node (`op`: its registry entry)."""
    shape = in_type(node, 0).shape
    axis = normalize_axis(node.attrs["axis"], len(shape), node)
    outer = int(np.prod(shape[:axis], dtype=np.int64))
    inner = int(np.prod(shape[axis + 1:], dtype=np.int64))
    total = shape[axis] * inner
    boxes, offset = [], 0
    for k, size in enumerate(node.attrs["split"]):
        n = size * inner
        boxes.append(copy_box(0, k, [outer, n], [total, 1], [n, 1], offset, 0))
        offset += n
    return copy_params(boxes, 1, len(node.outputs))


def slice_params(op, node: Node, target) -> dict:
    """C template parameters of a Slice node (`op`: its registry entry)."""
    strides = row_major_strides(in_type(node, 0).shape)
    bounds = op._bounds(node)
    offset = sum(b[0] * s for b, s in zip(bounds, strides))
    out = node.output.shape
    box = copy_box(0, 0, out, [b[2] * s for b, s in zip(bounds, strides)],
                   row_major_strides(out), offset)
    return copy_params([box], 1, 1)


def expand_params(op, node: Node, target) -> dict:
    """C template parameters of a Expand node (`op`: its registry entry)."""
    out = node.output.shape
    x = in_type(node, 0).shape
    padded = (1,) * (len(out) - len(x)) + tuple(x)
    src = [0 if n == 1 else s for n, s in zip(padded, row_major_strides(padded))]
    return copy_params([copy_box(0, 0, out, src, row_major_strides(out))], 1, 1)


def tile_params(op, node: Node, target) -> dict:
    """C template parameters of a Tile node (`op`: its registry entry)."""
    # Output viewed as [r0, d0, r1, d1, ...]: the repeat dimensions have source stride 0.
    x = in_type(node, 0).shape
    dims, src = [], []
    for n, r, s in zip(x, node.attrs["repeats"], row_major_strides(x)):
        dims += [r, n]
        src += [0, s]
    return copy_params([copy_box(0, 0, dims, src, row_major_strides(tuple(dims)))], 1, 1)


def block_rearrange_template(op, node: Node, target) -> str:
    """The C template of a BlockRearrange node (`op`: its registry entry)."""
    if node.attrs["layout"] != "NHWC":
        raise UnsupportedError(f"{node.op} node '{node.name}': C kernels need "
                               "channels-last data")
    return STRIDED_COPY


def depth_to_space_params(op, node: Node, target) -> dict:
    """C template parameters of a DepthToSpace node (`op`: its registry entry)."""
    # Output [N, H, bh, W, bw, C'] row-major; input channel (bh*b + bw)*C' + c (DCR) or
    # c*b*b + bh*b + bw (CRD).
    n, h, w, c = op.nhwc_dims(node)
    b = node.attrs["blocksize"]
    co = c // (b * b)
    dims = [n, h, b, w, b, co]
    if node.attrs["mode"] == "DCR":
        src = [h * w * c, w * c, b * co, c, co, 1]
    else:
        src = [h * w * c, w * c, b, c, 1, b * b]
    return copy_params([copy_box(0, 0, dims, src, row_major_strides(tuple(dims)))], 1, 1)


def space_to_depth_params(op, node: Node, target) -> dict:
    """C template parameters of a SpaceToDepth node (`op`: its registry entry)."""
    # Output [N, H/b, W/b, bh, bw, C] (DCR) or [N, H/b, W/b, C, bh, bw] (CRD) row-major
    # reads input pixel (h*b + bh, w*b + bw), channel c.
    n, h, w, c = op.nhwc_dims(node)
    b = node.attrs["blocksize"]
    if node.attrs["mode"] == "DCR":
        dims = [n, h // b, w // b, b, b, c]
        src = [h * w * c, b * w * c, b * c, w * c, c, 1]
    else:
        dims = [n, h // b, w // b, c, b, b]
        src = [h * w * c, b * w * c, b * c, 1, w * c, c]
    return copy_params([copy_box(0, 0, dims, src, row_major_strides(tuple(dims)))], 1, 1)


def transpose_params(op, node: Node, target) -> dict:
    """C template parameters of a Transpose node (`op`: its registry entry)."""
    x = in_type(node, 0)
    perm = op.perm(node)
    out_shape = node.output.shape
    in_strides = [1] * x.rank
    for i in range(x.rank - 2, -1, -1):
        in_strides[i] = in_strides[i + 1] * x.shape[i + 1]
    # Loop over output dims (dropping size-1 ones), merging runs that stay contiguous.
    dims, strides = [], []
    for d in range(len(out_shape)):
        if out_shape[d] == 1:
            continue
        s = in_strides[perm[d]]
        if dims and strides[-1] == s * out_shape[d]:
            dims[-1] *= out_shape[d]
            strides[-1] = s
        else:
            dims.append(out_shape[d])
            strides.append(s)
    if not dims:
        dims, strides = [1], [0]
    out_strides = [1] * len(dims)
    for i in range(len(dims) - 2, -1, -1):
        out_strides[i] = out_strides[i + 1] * dims[i + 1]
    return {"dims": dims, "in_strides": [strides], "out_strides": out_strides,
            "operands": ["a"], "expr": "a"}


register_candidates("Concat", PORTABLE, [op_lowering('ops/strided_copy.c.j2', concat_params)])
register_candidates("DepthToSpace", PORTABLE,
                    [op_lowering(block_rearrange_template, depth_to_space_params)])
register_candidates("Expand", PORTABLE, [op_lowering('ops/strided_copy.c.j2', expand_params)])
register_candidates(("Flatten", "Reshape", "Squeeze", "Unsqueeze"), PORTABLE,
                    [op_lowering('ops/copy.c.j2', None)])
register_candidates("Slice", PORTABLE, [op_lowering('ops/strided_copy.c.j2', slice_params)])
register_candidates("SpaceToDepth", PORTABLE,
                    [op_lowering(block_rearrange_template, space_to_depth_params)])
register_candidates("Split", PORTABLE, [op_lowering('ops/strided_copy.c.j2', split_params)])
register_candidates("Tile", PORTABLE, [op_lowering('ops/strided_copy.c.j2', tile_params)])
register_candidates("Transpose", PORTABLE, [op_lowering('ops/elementwise.c.j2', transpose_params)])
