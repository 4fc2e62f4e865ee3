"""C kernel of QSoftmax (edgec/ops/quantized_softmax.py): `ops/qsoftmax`, portable only.

The row function lives in runtime/edgec_qsoftmax.h (a transcription of
edgec/ops/softmax_fixed_point.py); the template calls it once per row of the last axis.
"""

from __future__ import annotations

from edgec.codegen.c.kernel import PORTABLE, Candidate, Kernel, register_candidates

from edgec.ir import Node
from edgec.ops.base import in_type

QSOFTMAX_RUNTIME = ("edgec_qsoftmax.h",)


def _qsoftmax(node: Node, target, scratch) -> Kernel:
    a = node.attrs
    shape = in_type(node, 0).shape
    depth = int(shape[-1])
    params = {"rows": in_type(node, 0).numel // depth, "depth": depth,
              "multiplier": int(a["multiplier"]), "left_shift": int(a["left_shift"]),
              "diff_min": int(a["diff_min"])}
    return Kernel("ops/qsoftmax.c.j2", params, QSOFTMAX_RUNTIME)


register_candidates("QSoftmax", PORTABLE, [Candidate("qsoftmax", _qsoftmax)])
