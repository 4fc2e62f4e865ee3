"""C kernel of RNN, GRU and LSTM (edgec/ops/recurrent.py; DynamicQuantizeLSTM becomes an LSTM
at import), portable only: one template stepping each direction over the sequence with the
gates' activations.
"""

from __future__ import annotations

import numpy as np

from edgec.errors import UnsupportedError
from edgec.ir import Node
from edgec.codegen.c.kernel import PORTABLE, op_lowering, register_candidates


def activation_c(name: str, alpha: float, beta: float, v: str) -> str:
    """The same activation as a C99 float expression of `v` (a simple identifier)."""
    a, b = _lit(alpha), _lit(beta)
    return {
        "Relu": f"({v} > 0.0f ? {v} : 0.0f)",
        "Tanh": f"tanhf({v})",
        "Sigmoid": f"(1.0f / (1.0f + expf(-{v})))",
        "Softsign": f"({v} / (1.0f + fabsf({v})))",
        "Softplus": f"(log1pf(expf(-fabsf({v}))) + ({v} > 0.0f ? {v} : 0.0f))",
        "Affine": f"({a} * {v} + {b})",
        "LeakyRelu": f"({v} >= 0.0f ? {v} : {a} * {v})",
        "ThresholdedRelu": f"({v} > {a} ? {v} : 0.0f)",
        "ScaledTanh": f"({a} * tanhf({b} * {v}))",
        "HardSigmoid": f"fminf(fmaxf({a} * {v} + {b}, 0.0f), 1.0f)",
        "Elu": f"({v} >= 0.0f ? {v} : {a} * expm1f({v}))",
    }[name]


def _lit(x: float) -> str:
    x = float(np.float32(x))
    if not np.isfinite(x):
        raise UnsupportedError("recurrent activation parameters must be finite")
    return f"{x!r}f"


def recurrent_op_params(op, node: Node, target) -> dict:
    """C template parameters of a RecurrentOp node (`op`: its registry entry)."""
    k = op.dims(node)
    acts = op.activation_params(node)
    per_dir = len(op.default_activations)
    return {**k, "kind": node.op, "gates": op.gates, "layout": node.attrs["layout"],
            "directions": ["reverse" if node.attrs["direction"] == "reverse" or di == 1
                           else "forward" for di in range(k["D"])],
            "act": [[activation_c(n, a, b, "v") for n, a, b in acts[di * per_dir:
                                                                      (di + 1) * per_dir]]
                    for di in range(k["D"])],
            "clip": None if node.attrs.get("clip") is None else _lit(node.attrs["clip"]),
            "input_forget": int(node.attrs.get("input_forget", 0)),
            "lbr": int(node.attrs.get("linear_before_reset", 0))}


register_candidates(("GRU", "LSTM", "RNN", "DynamicQuantizeLSTM"), PORTABLE,
                    [op_lowering('ops/recurrent.c.j2', recurrent_op_params)])
