"""C kernels of the normalisations (edgec/ops/norm.py), portable only: BatchNormalization as
a per-channel scale and shift folded at compile time, InstanceNormalization and
LayerNormalization over their reduced axes (two passes, mean then variance).
"""

from __future__ import annotations

import numpy as np

from edgec.errors import UnsupportedError
from edgec.ir import Node
from edgec.ops.base import in_type
from edgec.codegen.c.kernel import PORTABLE, ConstArray, op_lowering, register_candidates


def _flit(x: float) -> str:
    """An exact float32 C literal."""
    return f"{float(np.float32(x)):#.9g}f"


def _affine_operand(op, node: Node, index: int, d: int, what: str):
    """A ConstArray of LayerNormalization's Scale/B values broadcast to D, or None to read
    the input (a computed one must hold the whole normalised shape)."""
    v = node.input(index)
    if v is None:
        return None
    if v.is_const:
        x = in_type(node, 0)
        axis, _, _ = op.split(node)
        full = np.broadcast_to(v.data.astype(np.float32), x.shape[axis:])
        return ConstArray(np.ascontiguousarray(full).reshape(d), what.lower())
    if v.type.numel != d:
        raise UnsupportedError(f"LayerNormalization node '{node.name}': a computed {what} "
                               "must hold the whole normalised shape")
    return None


def _require_channels_last(node: Node) -> None:
    x = in_type(node, 0)
    if x.rank > 2 and node.attrs["layout"] != "NHWC":
        raise UnsupportedError(f"{node.op} node '{node.name}': C kernels need channels-last data")


def batch_normalization_template(op, node: Node, target) -> str:
    """The C template of a BatchNormalization node (`op`: its registry entry)."""
    _require_channels_last(node)
    return "ops/batch_norm.c.j2"


def batch_normalization_params(op, node: Node, target) -> dict:
    """C template parameters of a BatchNormalization node (`op`: its registry entry)."""
    x = in_type(node, 0)
    factor, shift = op.folded(node)
    c = x.shape[-1]
    return {"ROWS": x.numel // c, "C": c, "scale": ConstArray(factor, "scale"),
            "shift": ConstArray(shift, "shift")}


def instance_normalization_template(op, node: Node, target) -> str:
    """The C template of a InstanceNormalization node (`op`: its registry entry)."""
    _require_channels_last(node)
    return "ops/instance_norm.c.j2"


def instance_normalization_params(op, node: Node, target) -> dict:
    """C template parameters of a InstanceNormalization node (`op`: its registry entry)."""
    x = in_type(node, 0)
    hw = int(np.prod(x.shape[1:-1]))
    return {"N": x.shape[0], "HW": hw, "C": x.shape[-1], "inv_hw": _flit(1.0 / hw),
            "eps": _flit(node.attrs["epsilon"])}


def layer_normalization_template(op, node: Node, target) -> str:
    """The C template of a LayerNormalization node (`op`: its registry entry)."""
    return "ops/layer_norm.c.j2"


def layer_normalization_params(op, node: Node, target) -> dict:
    """C template parameters of a LayerNormalization node (`op`: its registry entry)."""
    _, rows, d = op.split(node)
    p = {"ROWS": rows, "D": d, "inv_d": _flit(1.0 / d), "eps": _flit(node.attrs["epsilon"]),
         "has_bias": node.input(2) is not None}
    for index, what in ((1, "Scale"), (2, "B")):
        packed = _affine_operand(op, node, index, d, what)
        if packed is not None:
            p[what.lower()] = packed
    return p


register_candidates("BatchNormalization", PORTABLE,
                    [op_lowering(batch_normalization_template, batch_normalization_params)])
register_candidates("InstanceNormalization", PORTABLE,
                    [op_lowering(instance_normalization_template, instance_normalization_params)])
register_candidates("LayerNormalization", PORTABLE,
                    [op_lowering(layer_normalization_template, layer_normalization_params)])
