"""C kernels of Pad, Gather and GatherElements (edgec/ops/indexing_ops.py), portable only:
source index tables or strides computed at compile time.
"""

from __future__ import annotations

import numpy as np

from edgec.ir import Node
from edgec.ops.base import in_type
from edgec.ops.common import row_major_strides
from edgec.codegen.c.kernel import PORTABLE, ConstArray, op_lowering, register_candidates
from edgec.codegen.c.kernels.copy import affine_index


def _index_table(values: np.ndarray, hint: str) -> ConstArray:
    """A compile-time index table, int32 unless the values need int64."""
    values = np.asarray(values, dtype=np.int64).reshape(-1)
    small = values.size == 0 or (values.min() >= -(2**31) and values.max() < 2**31)
    return ConstArray(values.astype(np.int32 if small else np.int64), hint)


def pad_params(op, node: Node, target) -> dict:
    """C template parameters of a Pad node (`op`: its registry entry)."""
    x = in_type(node, 0)
    out = node.output.shape
    widths = op._widths(node)
    maps = op.source_maps(node)
    identity = [w == (0, 0, 0, 0) for w in widths]
    k = len(out)
    while k > 0 and identity[k - 1]:
        k -= 1
    row = int(np.prod(out[k:], dtype=np.int64))
    value = node.attrs["value"]
    params = {"empty": node.output.type.numel == 0, "copy_all": k == 0, "row": row,
              "value": value if x.dtype.is_float else int(value)}
    if params["empty"] or k == 0:
        return params
    in_strides = row_major_strides(x.shape)
    outer_sizes = list(out[: k - 1])
    dst_strides = row_major_strides(tuple(outer_sizes) + (out[k - 1] * row,))[:-1]
    outer = []
    for d in range(k - 1):
        if not identity[d]:
            params[f"table{d}"] = _index_table(maps[d], f"pad_map{d}")
        outer.append({"size": out[d], "stride": in_strides[d], "mapped": not identity[d]})
    cb, ce, pb, _ = widths[k - 1]
    params.update(
        outer=outer,
        dst_index=affine_index(0, dst_strides),
        inner_size=out[k - 1], inner_begin=pb, inner_count=x.shape[k - 1] - cb - ce,
        inner_src=cb, constant=node.attrs["mode"] == "constant",
    )
    if out[k - 1] > params["inner_count"]:  # the innermost padded dimension has borders
        params["inner_table"] = _index_table(maps[k - 1], f"pad_map{k - 1}")
    return params


def gather_params(op, node: Node, target) -> dict:
    """C template parameters of a Gather node (`op`: its registry entry)."""
    x = in_type(node, 0)
    axis = node.attrs["axis"]
    table = op.normalized_indices(node)
    params = {
        "outer": int(np.prod(x.shape[:axis], dtype=np.int64)),
        "dim": x.shape[axis],
        "count": in_type(node, 1).numel,
        "inner": int(np.prod(x.shape[axis + 1:], dtype=np.int64)),
        "empty": node.output.type.numel == 0,
    }
    if table is not None:
        params["table"] = _index_table(table, "indices")
    return params


def gather_elements_params(op, node: Node, target) -> dict:
    """C template parameters of a GatherElements node (`op`: its registry entry)."""
    x, idx = in_type(node, 0), in_type(node, 1)
    axis = node.attrs["axis"]
    data_strides = row_major_strides(x.shape)
    loop_strides = [0 if d == axis else s for d, s in enumerate(data_strides)]
    table = op.normalized_indices(node)
    params = {
        "dims": list(idx.shape),
        "src_index": affine_index(0, loop_strides),
        "dst_index": affine_index(0, row_major_strides(idx.shape)),
        "axis_stride": data_strides[axis],
        "dim": x.shape[axis],
        "empty": idx.numel == 0,
    }
    if table is not None:
        params["table"] = _index_table(table, "indices")
    return params


register_candidates("Gather", PORTABLE, [op_lowering('ops/gather.c.j2', gather_params)])
register_candidates("GatherElements", PORTABLE,
                    [op_lowering('ops/gather_elements.c.j2', gather_elements_params)])
register_candidates("Pad", PORTABLE, [op_lowering('ops/pad.c.j2', pad_params)])
