"""C kernels of QReduceMean (edgec/ops/quantized_reduce.py) and QLayerNorm
(edgec/ops/quantized_norm.py), portable only.

QReduceMean: the reduction plan of the float reductions (codegen/c/kernels/reduce.py) with an
int32 accumulator and TFLite MEAN's requantisation. QLayerNorm: exact integer row statistics,
then the reference's fixed-order float32 operations. Integer sums are exact and the float32
steps are correctly rounded in one order, so every C target equals the int8 reference."""

from __future__ import annotations

import numpy as np

from edgec.ir import Node
from edgec.ops import get_op
from edgec.ops.base import in_type
from edgec.ops.quantized_reduce import reduce_count
from edgec.codegen.c.kernel import PORTABLE, Candidate, ConstArray, Kernel, \
    register_candidates
from edgec.codegen.c.kernels.quantized import Q_RUNTIME
from edgec.codegen.c.kernels.reduce import reduction_plan


def qreduce_mean_params(op, node: Node, target) -> dict:
    """C template parameters of a QReduceMean node."""
    a = node.attrs
    count = reduce_count(node)
    plan = reduction_plan(in_type(node, 0).shape, a["axes"])
    return {**plan, "count": count, "zp_sum": count * a["x_zero_point"],
            "mult": a["multiplier"][0], "shift": a["shift"][0], "y_zp": a["y_zero_point"],
            "lo": a["act_min"], "hi": a["act_max"]}


def _qreduce_mean(node: Node, target, scratch) -> Kernel:
    return Kernel("ops/qreduce_mean.c.j2", qreduce_mean_params(None, node, target), Q_RUNTIME)


register_candidates("QReduceMean", PORTABLE, [Candidate("qreduce-mean", _qreduce_mean)])


def _qlayer_norm(node: Node, target, scratch) -> Kernel:
    a = node.attrs
    n = get_op("QLayerNorm").row_size(node)
    p = {"ROWS": in_type(node, 0).numel // n, "D": n, "x_zp": a["x_zero_point"],
         "eps_codes": a["eps_codes"], "lo": a["act_min"], "hi": a["act_max"],
         "gain": ConstArray(np.asarray(a["gain"], np.float32), "ln_gain"),
         "offset": ConstArray(np.asarray(a["offset"], np.float32), "ln_offset")}
    return Kernel("ops/qlayer_norm.c.j2", p, Q_RUNTIME)


register_candidates("QLayerNorm", PORTABLE, [Candidate("qlayer-norm", _qlayer_norm)])
