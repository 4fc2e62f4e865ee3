"""Cortex-M int8 pools and addition on the DSP (cortex-m4/m7) and Helium (cortex-m55) ISAs:
QAveragePool, QGlobalAveragePool, MaxPool and GlobalMaxPool of int8 (channels-last, 2-D)
and QAdd of two same-shape int8 tensors, written for edgec in codegen/c/runtime/edgec_cm_pool.h (bit-exact with the
portable kernels, whose parameters they share: codegen/c/kernels/qpool.py, quantized.py).
Other layers (3-D pools, broadcasting adds, Helium adds with a left shift of a multiplier)
fall back to the portable kernels."""

from __future__ import annotations

import numpy as np
from edgec.codegen.c.isa.cortexm import KERNEL_ISAS
from edgec.codegen.c.kernel import Candidate, ConstArray, Kernel, register_candidates
from edgec.codegen.c.kernels.qpool import _qavgpool, _qglobal_avgpool
from edgec.codegen.c.kernels.quantized import Q_RUNTIME

from edgec.ir import Node
from edgec.ops.base import in_type

CORTEX_M = "cortex-m"
MVE = "armv8.1m-mve"
RUNTIME = Q_RUNTIME + ("edgec_cm_requant.h", "edgec_cm_conv.h", "edgec_cm_pool.h")


def _runtime(target) -> tuple[str, ...]:
    return RUNTIME + (KERNEL_ISAS[target.isa],)


def _on_kernel_isa(target) -> bool:
    return getattr(target, "isa", "") in KERNEL_ISAS


def _avgpool_accepts(node: Node, target, scratch) -> bool:
    x = in_type(node, 0)
    return _on_kernel_isa(target) and node.attrs.get("layout") == "NHWC" and \
        x.dtype.value == "int8" and len(x.shape) == 4 and \
        (node.op == "QGlobalAveragePool" or len(node.attrs["kernel_shape"]) == 2)


def _avgpool(node: Node, target, scratch) -> Kernel:
    if node.op == "QGlobalAveragePool":
        p = dict(_qglobal_avgpool(node, target, scratch).params)
        x = in_type(node, 0)
        h, w = x.shape[1], x.shape[2]
        p.update({"H": h, "W": w, "OH": 1, "OW": 1, "KH": h, "KW": w, "SH": 1, "SW": 1,
                  "DH": 1, "DW": 1, "PT": 0, "PL": 0, "count_base": p["P"],
                  "div_h": ConstArray(np.array([h], np.int32), "count_h"),
                  "div_w": ConstArray(np.array([w], np.int32), "count_w"),
                  "valid_h": ConstArray(np.array([h], np.int32), "valid_h"),
                  "valid_w": ConstArray(np.array([w], np.int32), "valid_w")})
        if p["mode"] != "divide":
            p["mult"] = ConstArray(np.array([p["mult_lit"]], np.int32), "rq_mult")
            p["shift"] = ConstArray(np.array([p["shift_lit"]], np.int8), "rq_shift")
    else:
        p = dict(_qavgpool(node, target, scratch).params)
        p["count_base"] = 1
    return Kernel("ops/cortexm/qavgpool.c.j2", p, _runtime(target))


def _maxpool_accepts(node: Node, target, scratch) -> bool:
    x = in_type(node, 0)
    return _on_kernel_isa(target) and node.attrs.get("layout") == "NHWC" and \
        x.dtype.value == "int8" and len(x.shape) == 4 and len(node.outputs) == 1 and \
        (node.op == "GlobalMaxPool" or len(node.attrs["kernel_shape"]) == 2)


def _maxpool(node: Node, target, scratch) -> Kernel:
    x, y = in_type(node, 0), node.output.type
    a = node.attrs
    n, h, w, c = x.shape
    if node.op == "GlobalMaxPool":
        geo = (h, w, 1, 1, 1, 1, 1, 1, 0, 0)
    else:
        geo = (*a["kernel_shape"], *a["strides"], *a["dilations"], a["pads"][0], a["pads"][1])
    p = {"N": n, "H": h, "W": w, "C": c, "OH": y.shape[1], "OW": y.shape[2],
         "geo": ", ".join(str(int(v)) for v in geo)}
    return Kernel("ops/cortexm/maxpool.c.j2", p, _runtime(target))


def _add_params(node: Node, target) -> dict | None:
    """The QAdd kernel's parameters, or None when the layer is not for it."""
    a = node.attrs
    ta, tb, ty = in_type(node, 0), in_type(node, 1), node.output.type
    if not _on_kernel_isa(target) or ta.shape != tb.shape or ta.shape != ty.shape or \
            not all(t.dtype.value == "int8" for t in (ta, tb, ty)):
        return None
    shifts = (a["a_shift"], a["b_shift"], a["shift"])
    if target.isa == MVE and (max(shifts) > 0 or a["left_shift"] > 24):
        return None  # edgec_cm_mve_requant4 takes shifts <= 0; (x - zp) 2^L in int32
    if a["left_shift"] > 23:
        return None
    return {"count": ta.numel, "left": 2 ** a["left_shift"]}


def _add(node: Node, target, scratch) -> Kernel:
    return Kernel("ops/cortexm/qadd.c.j2", _add_params(node, target), _runtime(target))


register_candidates(("QAveragePool", "QGlobalAveragePool"), CORTEX_M,
                    [Candidate("cortexm-avgpool", _avgpool, _avgpool_accepts)])
register_candidates(("MaxPool", "GlobalMaxPool"), CORTEX_M,
                    [Candidate("cortexm-maxpool", _maxpool, _maxpool_accepts)])
register_candidates("QAdd", CORTEX_M, [Candidate(
    "cortexm-add", _add, lambda n, t, s: _add_params(n, t) is not None)])
