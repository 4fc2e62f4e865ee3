"""C kernels of the int8 average pools QAveragePool and QGlobalAveragePool
(edgec/ops/quantized_pool.py): channels-last, portable only.

The window sum is exact in int32; the division by the window's element count is either an
integer rounding division (`divide`, equal zero points) or a fixed-point multiplier and
shift per possible count (tables built at compile time by quantized_pool.table_for).
"""

from __future__ import annotations

import numpy as np

from edgec.errors import ShapeError, UnsupportedError
from edgec.ir import Node
from edgec.ops import get_op
from edgec.ops.base import in_type
from edgec.ops.quantized_pool import table_for
from edgec.codegen.c.kernel import PORTABLE, Candidate, Kernel, register_candidates, \
    register_guard
from edgec.codegen.c.kernels.quantized import Q_RUNTIME
from edgec.codegen.c.kernel import ConstArray


def _refuse_unsupported(node: Node) -> None:
    if node.attrs["layout"] != "NHWC":
        raise UnsupportedError(f"{node.op} node '{node.name}': C kernels need "
                               "channels-last data")
    if node.op == "QAveragePool" and len(node.attrs["kernel_shape"]) > 2:
        raise UnsupportedError(f"QAveragePool node '{node.name}': 3-D pooling has no C "
                               "kernel")


def _qavgpool(node: Node, target, scratch) -> Kernel:
    op = get_op(node.op)
    a = node.attrs
    x = in_type(node, 0)
    geo = op.geometry(node)
    div, valid = op.counts(node)
    if len(geo) == 1:
        geo = [(1, 1, 1, 1, 0, 0, 1)] + geo
        div, valid = [np.ones(1, np.int64)] + div, [np.ones(1, np.int64)] + valid
    (h, kh, sh, dh, pt, _, oh), (w, kw, sw, dw, pl, _, ow) = geo
    max_count = int(div[0].max() * div[1].max())
    p = {"N": x.shape[0], "H": h, "W": w, "C": x.shape[-1], "OH": oh, "OW": ow,
         "KH": kh, "KW": kw, "SH": sh, "SW": sw, "DH": dh, "DW": dw, "PT": pt, "PL": pl,
         "CB": min(x.shape[-1], 64), "mode": a["mode"], "x_zp": a["x_zero_point"],
         "y_zp": a["y_zero_point"], "lo": a["act_min"], "hi": a["act_max"],
         "div_h": ConstArray(div[0].astype(np.int32), "count_h"),
         "div_w": ConstArray(div[1].astype(np.int32), "count_w"),
         "valid_h": ConstArray(valid[0].astype(np.int32), "valid_h"),
         "valid_w": ConstArray(valid[1].astype(np.int32), "valid_w")}
    if a["mode"] == "divide":
        if a["x_zero_point"] != a["y_zero_point"]:
            raise ShapeError(f"QAveragePool node '{node.name}': mode 'divide' needs equal "
                             "input and output zero points")
    else:
        mult, shift = table_for(node, max_count)
        p["mult"] = ConstArray(mult[:max_count].astype(np.int32), "rq_mult")
        p["shift"] = ConstArray(shift[:max_count].astype(np.int8), "rq_shift")
    return Kernel("ops/qavgpool.c.j2", p, Q_RUNTIME)


def _qglobal_avgpool(node: Node, target, scratch) -> Kernel:
    a = node.attrs
    x = in_type(node, 0)
    count = int(np.prod(x.shape[1:-1]))
    p = {"N": x.shape[0], "P": count, "C": x.shape[-1], "mode": a["mode"],
         "x_zp": a["x_zero_point"], "y_zp": a["y_zero_point"], "lo": a["act_min"],
         "hi": a["act_max"]}
    if a["mode"] == "divide":
        if a["x_zero_point"] != a["y_zero_point"]:
            raise ShapeError(f"QGlobalAveragePool node '{node.name}': mode 'divide' needs "
                             "equal input and output zero points")
    else:
        mult, shift = table_for(node, count, single_count=count)
        p["mult_lit"], p["shift_lit"] = int(mult[count - 1]), int(shift[count - 1])
    return Kernel("ops/qglobal_avgpool.c.j2", p, Q_RUNTIME)


register_guard(("QAveragePool", "QGlobalAveragePool"), _refuse_unsupported)
register_candidates("QAveragePool", PORTABLE, [Candidate("qavgpool", _qavgpool)])
register_candidates("QGlobalAveragePool", PORTABLE, [
    Candidate("qglobal-avgpool", _qglobal_avgpool)])
