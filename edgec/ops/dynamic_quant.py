"""DynamicQuantGemm: dynamic int8 quantisation of a fully connected layer (torch's
quantize_dynamic for Linear), produced by the quantize pass in `--quant dynamic` mode.

Inputs [x float32 [..., K], w int8 const [N, K], bias float32 const [N] (optional)];
attributes `w_scale` (one float per output column n, weights symmetric per channel) and a
clamp epilogue (`activation` none / relu / clip with act_alpha, act_beta).

Per call, over the whole tensor x (float32 arithmetic throughout):
  lo = min(min(x), 0); hi = max(max(x), 0); scale = (hi - lo) / 255 (1 when 0)
  zp = clamp(-128 - rint(lo / scale), -128, 127)
  q[r, k] = clamp(rint(x[r, k] / scale) + zp, -128, 127)                (rint: half to even)
  acc[r, n] = sum_k (q[r, k] - zp) * w[n, k]                           (exact int32)
  m[n] = scale * w_scale[n];  y = float(acc) * m[n];  y = y + bias[n];  y = clamp(y)
The C kernel performs the same float32 operations, one per statement (no contraction into
fused multiply-adds: gcc in ISO C mode and clang contract only within one expression), with
nearbyint under the default rounding mode (half to even), so it is bit-identical to this
reference.
"""

from __future__ import annotations

import numpy as np

from edgec.errors import ShapeError, UnsupportedError
from edgec.ir import DType, Node, TensorType
from edgec.ops.base import Attr, OpDef, PruneRule, QuantRule, in_type
from edgec.ops.registry import register_op

ACTIVATIONS = ("none", "relu", "clip")
INT32_MAX = 2**31 - 1


def dynamic_qparams(x: np.ndarray) -> tuple[np.float32, int]:
    """(scale, zero point) of a float32 tensor, as the kernel computes them at run time."""
    x = np.asarray(x, np.float32)
    lo = np.minimum(x.min(), np.float32(0)) if x.size else np.float32(0)
    hi = np.maximum(x.max(), np.float32(0)) if x.size else np.float32(0)
    scale = np.float32((hi - lo) / np.float32(255))
    if not scale > 0:
        scale = np.float32(1)
    zp = np.float32(-128) - np.rint(np.float32(lo / scale))
    return scale, int(np.clip(zp, -128, 127))


@register_op("DynamicQuantGemm")
class DynamicQuantGemm(OpDef):
    """Dynamic int8 fully connected layer (see the module docstring)."""

    attrs = {"w_scale": Attr("floats"), "activation": Attr("str", "none", ACTIVATIONS),
             "act_alpha": Attr("float", 0.0), "act_beta": Attr("float", 0.0)}
    quant = QuantRule.FLOAT_ONLY
    prune = PruneRule.PRODUCER
    dtypes = {DType.FLOAT32}

    def import_onnx(self, node: Node, opset: int) -> None:
        raise UnsupportedError(f"DynamicQuantGemm node '{node.name}': an edgec-internal op, "
                               "not an ONNX operator")

    def infer(self, node: Node) -> list[TensorType]:
        x, w = in_type(node, 0), in_type(node, 1)
        if x.dtype != DType.FLOAT32 or w.dtype != DType.INT8 or w.rank != 2 or x.rank < 1 \
                or x.shape[-1] != w.shape[1]:
            raise ShapeError(f"DynamicQuantGemm node '{node.name}': x {x} and w {w} (int8 "
                             "[N, K]) do not fit")
        if len(node.attrs["w_scale"]) != w.shape[0]:
            raise ShapeError(f"DynamicQuantGemm node '{node.name}': need {w.shape[0]} scales")
        b = node.input(2)
        if b is not None and b.type.numel != w.shape[0]:
            raise ShapeError(f"DynamicQuantGemm node '{node.name}': bias must have "
                             f"{w.shape[0]} values")
        return [TensorType(x.shape[:-1] + (w.shape[0],), DType.FLOAT32)]

    def reference(self, node: Node, x, w, bias=None):
        a = node.attrs
        x = np.asarray(x, np.float32)
        scale, zp = dynamic_qparams(x)
        q = np.clip(np.rint(x / scale) + np.float32(zp), -128, 127).astype(np.int64)
        acc = (q - zp) @ w.astype(np.int64).T
        m = (scale * np.asarray(a["w_scale"], np.float32)).astype(np.float32)
        y = acc.astype(np.float32) * m
        if bias is not None:
            y = y + np.asarray(bias, np.float32).reshape(-1)
        if a["activation"] == "relu":
            y = np.maximum(y, np.float32(0))
        elif a["activation"] == "clip":
            y = np.minimum(np.maximum(y, np.float32(a["act_alpha"])), np.float32(a["act_beta"]))
        return (y.astype(np.float32),)

    def macs(self, node: Node) -> int:
        return node.output.type.numel * in_type(node, 1).shape[1]

