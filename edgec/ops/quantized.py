"""edgec's internal int8 ops (TFLite int8 scheme), produced by the quantize pass.

Scheme: activations int8 asymmetric per tensor (real = scale * (q - zero_point)); weights
int8 symmetric per output channel (zero point 0, range [-127, 127]); bias int32 with scale
x_scale * w_scale[m]. Requantisation uses a 32-bit fixed-point multiplier and a shift
(edgec/qmath.py defines the bits; `multiplier`/`shift` attributes hold one value per output
channel, or one for the whole tensor): y = clamp(MBQM(acc, multiplier, shift) + y_zero_point,
act_min, act_max), where act_min/act_max carry the fused activation (relu: act_min = y_zp).

The `reference` of every op here is integer numpy and is the definition of the bits: the C
kernels (templates codegen/c/templates/ops/q*.c.j2) reproduce it exactly on every compiler
and optimisation level (all arithmetic is integer). Float attributes (x_scale, y_scale,
w_scale, a_scale...) are metadata for export and reports; no kernel reads them.

The integer attributes are computed from scales by edgec/ops/int8_scheme.py (the way
TFLite does).
"""

from __future__ import annotations

import numpy as np

from edgec import qmath
from edgec.errors import ShapeError
from edgec.ir import DType, Node, TensorType
from edgec.ops.base import Attr, OpDef, PruneRule, QuantRule, broadcast_shapes, in_type
from edgec.ops.conv import CONV_GEOMETRY_ATTRS, from_nchw, to_nchw
from edgec.ops.elementwise import ElementwiseOp
from edgec.ops.int8_export import (
    QADD_EXPORT,
    QCONV_EXPORT,
    QGEMM_EXPORT,
    QLOOKUP_EXPORT,
    QMATMUL_EXPORT,
    QMUL_EXPORT,
    QREQUANTIZE_EXPORT,
)
from edgec.ops.int8_scheme import QMAX, QMIN, lookup_table_of
from edgec.ops.quant_common import (
    conv_acc_nchw,
    conv_geometry,
    conv_infer,
    internal_op_import,
    requantize_fixed,
    require_int8,
)
from edgec.ops.registry import get_op, register_op

INT8 = {DType.INT8}
INT8_BIAS = {DType.INT8, DType.INT32}

# Requantisation of an accumulator to the output (fixed point, TFLite rounding).
REQUANT_ATTRS = {
    "y_zero_point": Attr("int", 0),
    "multiplier": Attr("ints"),  # Q0.31 mantissas, one per output channel or one in all
    "shift": Attr("ints"),  # power-of-two exponents (qmath.quantize_multiplier)
    "act_min": Attr("int", QMIN),  # clamp of the fused activation, in output integers
    "act_max": Attr("int", QMAX),
}
# Storage width of the constant weights (W4A8, `--weight-bits 4`): 4 means every weight lies
# in [-7, 7] and the C stores them two per byte; the arithmetic is the int8 one either way.
WEIGHT_BITS_ATTR = {"weight_bits": Attr("int", 8, choices=(4, 8))}
# Float metadata: for export and reports only, never read by a kernel.
SCALE_ATTRS = {"x_scale": Attr("float", 0.0), "y_scale": Attr("float", 0.0)}


# ------------------------------------------------------------------------------ helpers
def lookup_table_for_op(op: str, attrs: dict, x_scale: float, x_zero_point: int,
                        y_scale: float, y_zero_point: int) -> list[int]:
    """The QLookup table of a unary float op of the registry (Sigmoid, Tanh, LeakyRelu...)."""
    return lookup_table_of(op, get_op(op).reference, attrs, x_scale, x_zero_point, y_scale,
                           y_zero_point)


def _requant_fixed_attrs(node: Node) -> tuple[list[int], list[int]]:
    a = node.attrs
    if len(a["multiplier"]) != len(a["shift"]):
        raise ShapeError(f"{node.op} node '{node.name}': multiplier and shift differ in length")
    return a["multiplier"], a["shift"]


def check_weight_bits(node: Node) -> None:
    """ShapeError when weight_bits is 4 and the weights are not constants in [-7, 7]."""
    if node.attrs.get("weight_bits", 8) != 4:
        return
    w = node.input(1)
    if not w.is_const or (w.data.size and int(np.abs(w.data.astype(np.int16)).max()) > 7):
        raise ShapeError(f"{node.op} node '{node.name}': weight_bits 4 needs constant "
                         "weights in [-7, 7]")


class QuantizedOp(OpDef):
    """Common facets of the internal int8 ops."""

    quant = QuantRule.REQUANTIZE
    dtypes = INT8

    def import_onnx(self, node: Node, opset: int) -> None:
        internal_op_import(node)


# ------------------------------------------------------------------------------ QConv
@register_op("QConv")
class QConv(QuantizedOp):
    """int8 convolution: inputs [x int8, w int8 const [M, C/group, k...], bias int32 const].

    acc[m] = bias[m] + sum (x - x_zero_point) * w[m] (padding reads x_zero_point, i.e. real
    zero); y = clamp(MBQM(acc, multiplier[m], shift[m]) + y_zero_point, act_min, act_max).
    Geometry attributes as Conv (empty lists mean the ONNX defaults). Kernels: pointwise,
    depthwise and general, channels-last.
    """

    quant = QCONV_EXPORT

    attrs = {**CONV_GEOMETRY_ATTRS, "x_zero_point": Attr("int", 0), **REQUANT_ATTRS,
             **SCALE_ATTRS, "w_scale": Attr("floats", ()), **WEIGHT_BITS_ATTR}
    prune = PruneRule.PRODUCER
    spatial = True
    dtypes = INT8_BIAS

    def infer(self, node: Node) -> list[TensorType]:
        require_int8(node, (0, 1))
        w = in_type(node, 1)
        bias = node.input(2)
        if bias is not None and (bias.dtype != DType.INT32 or bias.type.numel != w.shape[0]):
            raise ShapeError(f"QConv node '{node.name}': bias must be int32 [{w.shape[0]}]")
        if len(node.attrs["multiplier"]) not in (1, w.shape[0]):
            raise ShapeError(f"QConv node '{node.name}': need 1 or {w.shape[0]} multipliers")
        check_weight_bits(node)
        return [conv_infer(node, in_type(node, 0), w.shape, DType.INT8)]

    def reference(self, node: Node, x, w, bias=None):
        a = node.attrs
        geo = conv_geometry(node, w.shape)
        xs = to_nchw(x, geo["layout"]).astype(np.int64) - a["x_zero_point"]
        acc = conv_acc_nchw(xs, w.astype(np.int64), bias, geo)
        mult, shift = _requant_fixed_attrs(node)
        y = requantize_fixed(acc, mult, shift, a["y_zero_point"], a["act_min"], a["act_max"],
                             axis=1)
        return (from_nchw(y.astype(np.int8), geo["layout"]),)

    def macs(self, node: Node) -> int:
        return node.output.type.numel * int(np.prod(in_type(node, 1).shape[1:]))


# ------------------------------------------------------------------------------ QGemm
@register_op("QGemm")
class QGemm(QuantizedOp):
    """int8 fully connected: inputs [x int8 [..., K], w int8 const [N, K], bias int32 [N]].

    The weight layout is [N, K] (output channel first, as TFLite FULLY_CONNECTED and ONNX
    Gemm with transB=1), per-channel along N. Leading dims of x are rows: y is [..., N].
    acc[r, n] = bias[n] + sum_k (x[r, k] - x_zero_point) * w[n, k];
    y = clamp(MBQM(acc, multiplier[n], shift[n]) + y_zero_point, act_min, act_max).
    """

    quant = QGEMM_EXPORT

    attrs = {"x_zero_point": Attr("int", 0), **REQUANT_ATTRS, **SCALE_ATTRS,
             "w_scale": Attr("floats", ()), **WEIGHT_BITS_ATTR}
    prune = PruneRule.PRODUCER
    dtypes = INT8_BIAS

    def infer(self, node: Node) -> list[TensorType]:
        require_int8(node, (0, 1))
        x, w = in_type(node, 0), in_type(node, 1)
        if w.rank != 2 or x.rank < 1 or x.shape[-1] != w.shape[1]:
            raise ShapeError(f"QGemm node '{node.name}': x {x.shape} and w {w.shape} (N, K) "
                             "do not fit")
        bias = node.input(2)
        if bias is not None and (bias.dtype != DType.INT32 or bias.type.numel != w.shape[0]):
            raise ShapeError(f"QGemm node '{node.name}': bias must be int32 [{w.shape[0]}]")
        if len(node.attrs["multiplier"]) not in (1, w.shape[0]):
            raise ShapeError(f"QGemm node '{node.name}': need 1 or {w.shape[0]} multipliers")
        check_weight_bits(node)
        return [TensorType(x.shape[:-1] + (w.shape[0],), DType.INT8)]

    def reference(self, node: Node, x, w, bias=None):
        a = node.attrs
        acc = (x.astype(np.int64) - a["x_zero_point"]) @ w.astype(np.int64).T
        if bias is not None:
            acc = acc + bias.astype(np.int64)
        mult, shift = _requant_fixed_attrs(node)
        y = requantize_fixed(acc, mult, shift, a["y_zero_point"], a["act_min"], a["act_max"])
        return (y.astype(np.int8),)

    def macs(self, node: Node) -> int:
        return node.output.type.numel * in_type(node, 1).shape[1]


# ------------------------------------------------------------------------------ QMatMul
@register_op("QMatMul")
class QMatMul(QuantizedOp):
    """int8 product of two activations (numpy matmul shapes, per-tensor parameters).

    acc = sum_k (a - a_zero_point) * (b - b_zero_point);
    y = clamp(MBQM(acc, multiplier, shift) + y_zero_point, act_min, act_max).
    """

    quant = QMATMUL_EXPORT

    attrs = {"a_zero_point": Attr("int", 0), "b_zero_point": Attr("int", 0), **REQUANT_ATTRS,
             "a_scale": Attr("float", 0.0), "b_scale": Attr("float", 0.0),
             "y_scale": Attr("float", 0.0)}

    def infer(self, node: Node) -> list[TensorType]:
        require_int8(node, (0, 1))
        if len(node.attrs["multiplier"]) != 1:
            raise ShapeError(f"QMatMul node '{node.name}': one multiplier expected")
        return [TensorType(get_op("MatMul").infer(node)[0].shape, DType.INT8)]

    def reference(self, node: Node, a, b):
        at = node.attrs
        acc = np.matmul(a.astype(np.int64) - at["a_zero_point"],
                        b.astype(np.int64) - at["b_zero_point"])
        y = qmath.requantize(acc, at["multiplier"][0], at["shift"][0], at["y_zero_point"],
                             at["act_min"], at["act_max"])
        return (y.astype(np.int8),)

    def macs(self, node: Node) -> int:
        from edgec.ops.gemm import MatMul

        batch, m, k, n, _, _ = MatMul.shapes(node)
        return int(np.prod(batch, dtype=np.int64)) * m * k * n


# ------------------------------------------------------------------------------ QAdd / QMul
class QBinaryOp(ElementwiseOp):
    """Common facets of QAdd and QMul: numpy broadcasting, int8 operands."""

    arity = 2
    quant = QuantRule.REQUANTIZE
    dtypes = INT8

    def import_onnx(self, node: Node, opset: int) -> None:
        internal_op_import(node)

    def infer(self, node: Node) -> list[TensorType]:
        require_int8(node, (0, 1))
        return [TensorType(broadcast_shapes(in_type(node, 0).shape, in_type(node, 1).shape),
                           DType.INT8)]


@register_op("QAdd")
class QAdd(QBinaryOp):
    """TFLite int8 ADD with broadcasting.

    a' = MBQM((a - a_zero_point) * 2^left_shift, a_multiplier, a_shift), b' likewise;
    y = clamp(MBQM(a' + b', multiplier, shift) + y_zero_point, act_min, act_max).
    `qadd_attrs` derives the multipliers from the scales as TFLite does.
    """

    quant = QADD_EXPORT

    attrs = {
        "a_zero_point": Attr("int", 0), "b_zero_point": Attr("int", 0),
        "y_zero_point": Attr("int", 0), "left_shift": Attr("int", 20),
        "a_multiplier": Attr("int"), "a_shift": Attr("int"),
        "b_multiplier": Attr("int"), "b_shift": Attr("int"),
        "multiplier": Attr("int"), "shift": Attr("int"),
        "act_min": Attr("int", QMIN), "act_max": Attr("int", QMAX),
        "a_scale": Attr("float", 0.0), "b_scale": Attr("float", 0.0),
        "y_scale": Attr("float", 0.0),
    }

    def np_fn(self, node: Node, a, b):
        at = node.attrs
        shifted_a = (a.astype(np.int64) - at["a_zero_point"]) * (1 << at["left_shift"])
        shifted_b = (b.astype(np.int64) - at["b_zero_point"]) * (1 << at["left_shift"])
        sa = qmath.multiply_by_quantized_multiplier(shifted_a, at["a_multiplier"], at["a_shift"])
        sb = qmath.multiply_by_quantized_multiplier(shifted_b, at["b_multiplier"], at["b_shift"])
        return qmath.requantize(sa + sb, at["multiplier"], at["shift"], at["y_zero_point"],
                                at["act_min"], at["act_max"])


@register_op("QMul")
class QMul(QBinaryOp):
    """TFLite int8 MUL with broadcasting.

    y = clamp(MBQM((a - a_zero_point) * (b - b_zero_point), multiplier, shift) + y_zero_point,
    act_min, act_max); `qmul_attrs` gives multiplier/shift for a_scale * b_scale / y_scale.
    """

    quant = QMUL_EXPORT

    attrs = {
        "a_zero_point": Attr("int", 0), "b_zero_point": Attr("int", 0),
        "y_zero_point": Attr("int", 0), "multiplier": Attr("int"), "shift": Attr("int"),
        "act_min": Attr("int", QMIN), "act_max": Attr("int", QMAX),
        "a_scale": Attr("float", 0.0), "b_scale": Attr("float", 0.0),
        "y_scale": Attr("float", 0.0),
    }

    def np_fn(self, node: Node, a, b):
        at = node.attrs
        prod = (a.astype(np.int64) - at["a_zero_point"]) * (b.astype(np.int64) - at["b_zero_point"])
        return qmath.requantize(prod, at["multiplier"], at["shift"], at["y_zero_point"],
                                at["act_min"], at["act_max"])


# ------------------------------------------------------------------------------ unary
class QUnaryOp(ElementwiseOp):
    """Common facets of int8 -> int8 elementwise maps (flat loop, may run in place)."""

    prune = PruneRule.PASSTHROUGH
    dtypes = INT8

    def import_onnx(self, node: Node, opset: int) -> None:
        internal_op_import(node)

    def infer(self, node: Node) -> list[TensorType]:
        require_int8(node)
        return [TensorType(in_type(node, 0).shape, DType.INT8)]

    def in_place_inputs(self, node: Node) -> list[int]:
        """The output may overwrite input 0 (each element is read before it is written)."""
        return [0]

    def sink_transpose(self, node: Node, perm: list[int]) -> dict | None:
        """Elementwise: a Transpose moves below unchanged."""
        return dict(node.attrs)


@register_op("QLookup")
class QLookup(QUnaryOp):
    """Any unary float function on int8 data: y = table[x + 128] (256 int8 entries).

    The table is computed at compile time (`lookup_table`/`lookup_table_for_op`) as
    quantize(f(dequantize(q))), so it is exact by construction. `function` names f for
    reports; the scale attributes are metadata.
    """

    attrs = {"table": Attr("ints"), "function": Attr("str", ""),
             "x_scale": Attr("float", 0.0), "x_zero_point": Attr("int", 0),
             "y_scale": Attr("float", 0.0), "y_zero_point": Attr("int", 0)}
    quant = QLOOKUP_EXPORT

    def _table(self, node: Node) -> np.ndarray:
        table = np.asarray(node.attrs["table"], dtype=np.int64)
        if table.size != 256 or table.min() < QMIN or table.max() > QMAX:
            raise ShapeError(f"QLookup node '{node.name}': table needs 256 int8 entries")
        return table.astype(np.int8)

    def np_fn(self, node: Node, x):
        return self._table(node)[x.astype(np.int64) - QMIN]


@register_op("QRequantize")
class QRequantize(QUnaryOp):
    """int8 -> int8 with new quantisation parameters.

    y = clamp(MBQM(x - x_zero_point, multiplier, shift) + y_zero_point, act_min, act_max),
    multiplier/shift from x_scale / y_scale (`requant_attrs`).
    """

    attrs = {"x_zero_point": Attr("int", 0), **REQUANT_ATTRS, **SCALE_ATTRS}
    quant = QREQUANTIZE_EXPORT

    def infer(self, node: Node) -> list[TensorType]:
        if len(node.attrs["multiplier"]) != 1:
            raise ShapeError(f"QRequantize node '{node.name}': one multiplier expected")
        return super().infer(node)

    def np_fn(self, node: Node, x):
        a = node.attrs
        return qmath.requantize(x.astype(np.int64) - a["x_zero_point"], a["multiplier"][0],
                                a["shift"][0], a["y_zero_point"], a["act_min"], a["act_max"])

