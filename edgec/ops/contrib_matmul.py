"""com.microsoft integer matmuls that onnxruntime's quantisers emit: with float output,
DynamicQuantizeMatMul (float A quantised at run time) and MatMulIntegerToFloat (integer A);
and MatMulInteger16 (int16 x int16 -> int32, its own kernel with a wrapping sum).
The float-output two take a constant int8/uint8 B [K, N] with per-tensor or per-column scale
and zero point and an optional bias; each has its own kernel, one float operation per C statement (no
contraction into fused multiply-adds), so the bits are the numpy reference's on every target.
"""

from __future__ import annotations

import numpy as np

from edgec.errors import ShapeError, UnsupportedError
from edgec.ir import DType, Node, TensorType
from edgec.ops.base import OpDef, QuantRule, in_type
from edgec.ops.common import require_dtypes
from edgec.ops.dynamic_quant import INT32_MAX, dynamic_qparams
from edgec.ops.onnx_quant import IntegerMatMulBase
from edgec.ops.registry import register_op


@register_op("DynamicQuantizeMatMul")
class DynamicQuantizeMatMul(OpDef):
    """com.microsoft DynamicQuantizeMatMul: A float [..., K] quantised at run time, times a
    constant int8/uint8 B [K, N] with per-tensor or per-column scale and zero point, + bias.

    Bits (float32 throughout, as edgec's DynamicQuantGemm): lo = min(min(A), 0), hi =
    max(max(A), 0), s = (hi - lo) / 255 (1 when 0), zp = clamp(-128 - rint(lo / s)),
    q = clamp(rint(a / s) + zp, -128, 127); acc = sum_k (q - zp)(B[k, n] - b_zp[n]) exactly;
    y = float(acc) * (s * b_scale[n]) + bias[n]. onnxruntime quantises A to uint8 instead:
    the same q - zp except when lo / s is exactly a half integer.
    """

    quant = QuantRule.FLOAT_ONLY
    dtypes = {DType.FLOAT32, DType.INT8, DType.UINT8}

    def import_onnx(self, node: Node, opset: int) -> None:
        if node.attrs:
            raise UnsupportedError(f"{node.op} node '{node.name}': unexpected attributes "
                                   f"{sorted(node.attrs)}")
        a, b = node.input(0), node.input(1)
        if a is None or a.dtype != DType.FLOAT32 or b is None or \
                b.dtype not in (DType.INT8, DType.UINT8):
            raise ShapeError(f"{node.op} node '{node.name}': needs float32 A and int8/uint8 B")
        self.const_input(node, 1, "B")
        for i, what in ((2, "b_scale"), (3, "b_zero_point")):
            self.const_input(node, i, what)

    def _params(self, node: Node):
        b = self.const_input(node, 1, "B")
        n = b.shape[1]
        scale = np.broadcast_to(np.asarray(self.const_input(node, 2, "b_scale"), np.float32)
                                .reshape(-1), (n,))
        zp_data = self.const_input(node, 3, "b_zero_point")
        zp = np.zeros(n, np.int64) if zp_data is None else \
            np.broadcast_to(np.asarray(zp_data, np.int64).reshape(-1), (n,))
        return b.astype(np.int64), scale, zp

    def infer(self, node: Node) -> list[TensorType]:
        a, b = in_type(node, 0), in_type(node, 1)
        if a.rank < 1 or b.rank != 2 or a.shape[-1] != b.shape[0]:
            raise ShapeError(f"{node.op} node '{node.name}': A {a.shape} and B {b.shape} do "
                             "not form a matrix product (B must be 2-D)")
        for i, what in ((2, "b_scale"), (3, "b_zero_point"), (4, "bias")):
            v = node.input(i)
            if v is not None and v.type.numel not in (1, b.shape[1]) or \
                    (i == 4 and v is not None and v.type.numel != b.shape[1]):
                raise ShapeError(f"{node.op} node '{node.name}': {what} must have 1 or "
                                 f"{b.shape[1]} values")
        k = b.shape[0]
        b_data, _, zp = self._params(node)
        if k * 255 * int(np.abs(b_data - zp).max(initial=0)) > INT32_MAX:
            raise UnsupportedError(f"{node.op} node '{node.name}': K={k} could overflow the "
                                   "int32 accumulator")
        return [TensorType(a.shape[:-1] + (b.shape[1],), DType.FLOAT32)]

    def reference(self, node: Node, x, b, b_scale, b_zp=None, bias=None):
        x = np.asarray(x, np.float32)
        b_data, scale_b, zp_b = self._params(node)
        s, zp = dynamic_qparams(x)
        q = np.clip(np.rint(x / s) + np.float32(zp), -128, 127).astype(np.int64)
        acc = (q - zp) @ (b_data - zp_b)
        y = acc.astype(np.float32) * (s * scale_b).astype(np.float32)
        if bias is not None:
            y = y + np.asarray(bias, np.float32).reshape(-1)
        return (y.astype(np.float32),)

    def macs(self, node: Node) -> int:
        return node.output.type.numel * in_type(node, 1).shape[0]


@register_op("MatMulIntegerToFloat")
class MatMulIntegerToFloat(OpDef):
    """com.microsoft MatMulIntegerToFloat: int8/uint8 A [..., K] times a constant int8/uint8
    B [K, N], y = float(acc) * m[n] (+ bias[n]) with acc = sum_k (A - a_zp)(B - b_zp[n])
    exact in int32 and m = a_scale * b_scale[n] in float32 (per-tensor a_scale, a_zp)."""

    quant = QuantRule.FLOAT_ONLY
    dtypes = {DType.FLOAT32, DType.INT8, DType.UINT8}

    def import_onnx(self, node: Node, opset: int) -> None:
        if node.attrs:
            raise UnsupportedError(f"{node.op} node '{node.name}': unexpected attributes "
                                   f"{sorted(node.attrs)}")
        a, b = node.input(0), node.input(1)
        if a is None or b is None or a.dtype not in (DType.INT8, DType.UINT8) or \
                b.dtype not in (DType.INT8, DType.UINT8):
            raise ShapeError(f"{node.op} node '{node.name}': A and B must be int8/uint8")
        for i, what in ((1, "B"), (2, "a_scale"), (3, "b_scale"), (4, "a_zero_point"),
                        (5, "b_zero_point")):
            self.const_input(node, i, what)
        if np.asarray(self.const_input(node, 2, "a_scale")).size != 1 or \
                (node.input(4) is not None and node.input(4).type.numel != 1):
            raise UnsupportedError(f"{node.op} node '{node.name}': a_scale and a_zero_point "
                                   "must be per tensor")

    def _params(self, node: Node):
        b = self.const_input(node, 1, "B")
        n = b.shape[1]
        a_s = np.float32(np.asarray(self.const_input(node, 2, "a_scale")).reshape(-1)[0])
        b_s = np.broadcast_to(np.asarray(self.const_input(node, 3, "b_scale"), np.float32)
                              .reshape(-1), (n,))
        a_zp = self.const_input(node, 4, "a_zero_point")
        a_zp = 0 if a_zp is None else int(np.asarray(a_zp).reshape(-1)[0])
        b_zp = self.const_input(node, 5, "b_zero_point")
        b_zp = np.zeros(n, np.int64) if b_zp is None else \
            np.broadcast_to(np.asarray(b_zp, np.int64).reshape(-1), (n,))
        return b.astype(np.int64), (a_s * b_s).astype(np.float32), a_zp, b_zp

    def infer(self, node: Node) -> list[TensorType]:
        a, b = in_type(node, 0), in_type(node, 1)
        if a.rank < 1 or b.rank != 2 or a.shape[-1] != b.shape[0]:
            raise ShapeError(f"{node.op} node '{node.name}': A {a.shape} and B {b.shape} do "
                             "not form a matrix product (B must be 2-D)")
        bias = node.input(6)
        if bias is not None and bias.type.numel != b.shape[1]:
            raise ShapeError(f"{node.op} node '{node.name}': bias needs {b.shape[1]} values")
        b_data, mult, _, b_zp = self._params(node)
        if mult.size != b.shape[1]:
            raise ShapeError(f"{node.op} node '{node.name}': b_scale must have 1 or "
                             f"{b.shape[1]} values")
        if b.shape[0] * 255 * int(np.abs(b_data - b_zp).max(initial=0)) > INT32_MAX:
            raise UnsupportedError(f"{node.op} node '{node.name}': K={b.shape[0]} could "
                                   "overflow the int32 accumulator")
        return [TensorType(a.shape[:-1] + (b.shape[1],), DType.FLOAT32)]

    def reference(self, node: Node, a, *rest):
        b_data, mult, a_zp, b_zp = self._params(node)
        acc = (np.asarray(a, np.int64) - a_zp) @ (b_data - b_zp)
        y = acc.astype(np.float32) * mult
        bias = rest[5] if len(rest) > 5 else None
        if bias is not None:
            y = y + np.asarray(bias, np.float32).reshape(-1)
        return (y.astype(np.float32),)

    def macs(self, node: Node) -> int:
        return node.output.type.numel * in_type(node, 1).shape[0]



@register_op("MatMulInteger16")
class MatMulInteger16(IntegerMatMulBase):
    """com.microsoft MatMulInteger16: int16 A times int16 B (numpy matmul shapes) -> int32.

    The contrib spec: "the production MUST never overflow; the accumulation may overflow if
    and only if in 32 bits". edgec's sum wraps modulo 2^32, as onnxruntime's int32
    accumulation does (its CPU kernel takes int16 x int16 -> int32 only, and so does edgec).
    """

    dtypes = {DType.INT16, DType.INT32}

    def import_onnx(self, node: Node, opset: int) -> None:
        if node.attrs:
            raise UnsupportedError(f"{node.op} node '{node.name}': unexpected attributes "
                                   f"{sorted(node.attrs)}")
        require_dtypes(node, {DType.INT16}, (0, 1))
        if in_type(node, 0).rank < 2 or in_type(node, 1).rank < 2:
            raise UnsupportedError(f"{node.op} node '{node.name}': 1-D operands are not "
                                   "supported")

    def infer(self, node: Node) -> list[TensorType]:
        return self.shapes_out(node, DType.INT32)

    def reference(self, node: Node, a, b):
        acc = self.accumulate(a, b, 0, np.zeros(1, np.int64))
        return (acc.astype(np.int32),)  # wraps modulo 2^32

    def uses_gemm(self, node: Node) -> bool:
        """Always the two-operand kernel (its own template, wrapping accumulation)."""
        return False
