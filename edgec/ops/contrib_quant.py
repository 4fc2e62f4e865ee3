"""com.microsoft quantised contrib ops that onnxruntime's quantisers emit, imported onto
edgec's int8 ops (edgec/ops/quantized.py):

- QLinearAdd / QLinearMul (A, A_scale, A_zp, B, B_scale, B_zp, C_scale, C_zp) -> QAdd / QMul:
  TFLite's integer ADD / MUL scheme with multipliers from the model's scales;
- QLinearSigmoid / QLinearLeakyRelu (X, X_scale, X_zp, Y_scale, Y_zp) -> QLookup: a 256-entry
  table quantize(f(dequantize(q))) computed at compile time;
- QLinearGlobalAveragePool (channels_last 0/1) -> QGlobalAveragePool;
- QLinearConcat (Y_scale, Y_zp, then X, X_scale, X_zp per input) stays its own node: each
  input is requantised to the output's scale while it is copied.

The integer requantisation is edgec's fixed point (as for QDQ models, passes/import_qdq.py),
where onnxruntime computes in float: Add, Mul and Concat can differ from onnxruntime by 1 LSB;
the lookup tables are exact up to the float rounding of f. Scales and zero points must be
per-tensor constants. uint8 tensors are supported by the lookups and QLinearConcat; QLinearAdd,
QLinearMul and QLinearGlobalAveragePool on uint8 are refused with a one-line error (edgec's
int8 kernels are signed: quantise with onnxruntime's `activation_type=QuantType.QInt8`).
DynamicQuantizeMatMul and MatMulIntegerToFloat have their own kernels (float output).
"""

from __future__ import annotations

import numpy as np

from edgec.errors import ShapeError, UnsupportedError
from edgec.ir import DType, Node, TensorType
from edgec import qmath
from edgec.ops.base import Attr, ConstArray, OpDef, QuantRule, in_type, normalize_axis
from edgec.ops.dynamic_quant import INT32_MAX, dynamic_qparams
from edgec.ops.quantized import lookup_table_for_op, qadd_attrs, qmul_attrs, requant_attrs
from edgec.ops.registry import get_op, register_op

CONTRIB_DOMAIN = "com.microsoft"


class ContribImport(OpDef):
    """A contrib op that exists only at import: `import_onnx` rewrites the node into one of
    edgec's own ops, and every later facet is that op's."""

    quant = QuantRule.REQUANTIZE
    dtypes = {DType.INT8}
    target_op = ""

    def _scalar(self, node: Node, index: int, what: str, integer: bool) -> float | int:
        data = self.const_input(node, index, what)
        if data is None:
            if integer:
                return 0
            raise ShapeError(f"{node.op} node '{node.name}': input '{what}' is missing")
        data = np.asarray(data)
        if data.size != 1:
            raise UnsupportedError(f"{node.op} node '{node.name}': {what} must be per tensor "
                                   f"(one value), not of shape {list(data.shape)}")
        return int(data.reshape(-1)[0]) if integer else float(data.reshape(-1)[0])

    def _int8_only(self, node: Node, indices) -> None:
        for i in indices:
            v = node.input(i)
            if v is not None and v.dtype != DType.INT8:
                raise UnsupportedError(
                    f"{node.op} node '{node.name}': {v.dtype.value} tensors are not supported "
                    "(int8 only): quantise with signed int8 activations")

    def normalize_attrs(self, attrs: dict) -> dict:
        """The attributes are the target op's (set by import_onnx)."""
        return get_op(self.target_op).normalize_attrs(attrs)

    def infer(self, node: Node) -> list[TensorType]:
        """The target op's inference (the node has been rewritten)."""
        return get_op(node.op).infer(node)

    def reference(self, node: Node, *inputs):
        """The target op's semantics (used when the node folds)."""
        return get_op(node.op).reference(node, *inputs)

    def c_template_for(self, node: Node, target) -> str:
        """The target op's C template."""
        return get_op(node.op).c_template_for(node, target)

    def c_params(self, node: Node, target) -> dict:
        """The target op's C parameters."""
        return get_op(node.op).c_params(node, target)


class _QLinearBinary(ContribImport):
    """QLinearAdd / QLinearMul -> QAdd / QMul."""

    def import_onnx(self, node: Node, opset: int) -> None:
        self._int8_only(node, (0, 2, 3, 5, 7))
        a_s = self._scalar(node, 1, "A_scale", False)
        a_zp = self._scalar(node, 2, "A_zero_point", True)
        b_s = self._scalar(node, 4, "B_scale", False)
        b_zp = self._scalar(node, 5, "B_zero_point", True)
        c_s = self._scalar(node, 6, "C_scale", False)
        c_zp = self._scalar(node, 7, "C_zero_point", True)
        if node.attrs:
            raise UnsupportedError(f"{node.op} node '{node.name}': unexpected attributes "
                                   f"{sorted(node.attrs)}")
        make = qadd_attrs if self.target_op == "QAdd" else qmul_attrs
        attrs = make(a_s, b_s, c_s)
        attrs.update({"a_zero_point": a_zp, "b_zero_point": b_zp, "y_zero_point": c_zp})
        node.attrs = attrs
        node.inputs = [node.input(0), node.input(3)]
        node.op = self.target_op


@register_op("QLinearAdd")
class QLinearAdd(_QLinearBinary):
    """com.microsoft QLinearAdd (int8): imported as QAdd (edgec's fixed point)."""

    target_op = "QAdd"


@register_op("QLinearMul")
class QLinearMul(_QLinearBinary):
    """com.microsoft QLinearMul (int8): imported as QMul (edgec's fixed point)."""

    target_op = "QMul"


class _QLinearUnary(ContribImport):
    """QLinearSigmoid / QLinearLeakyRelu: int8 -> QLookup; uint8 stays this node, a table
    y = table[x] of 256 uint8 entries (the int8 table of the codes shifted by 128: uint8 code
    u with zero point z means what int8 code u - 128 with zero point z - 128 means)."""

    quant = QuantRule.LOOKUP
    dtypes = {DType.INT8, DType.UINT8}
    target_op = "QLookup"
    function = ""
    c_template = "ops/contrib_lut_u8.c.j2"

    def import_onnx(self, node: Node, opset: int) -> None:
        x = node.input(0)
        u8 = x is not None and x.dtype == DType.UINT8
        for i in (0, 2, 4):
            v = node.input(i)
            if v is not None and v.dtype != (DType.UINT8 if u8 else DType.INT8):
                raise UnsupportedError(f"{node.op} node '{node.name}': x, x_zero_point and "
                                       "y_zero_point must all be int8 or all uint8")
        xs = self._scalar(node, 1, "X_scale", False)
        xzp = self._scalar(node, 2, "X_zero_point", True)
        ys = self._scalar(node, 3, "Y_scale", False)
        yzp = self._scalar(node, 4, "Y_zero_point", True)
        fattrs = {}
        if self.function == "LeakyRelu":
            fattrs = {"alpha": float(node.attrs.pop("alpha", 0.01))}
        if node.attrs:
            raise UnsupportedError(f"{node.op} node '{node.name}': unexpected attributes "
                                   f"{sorted(node.attrs)}")
        shift = 128 if u8 else 0
        table = lookup_table_for_op(self.function, fattrs, xs, xzp - shift, ys, yzp - shift)
        node.attrs = {"table": [t + shift for t in table], "function": self.function,
                      "x_scale": xs, "x_zero_point": xzp, "y_scale": ys, "y_zero_point": yzp}
        node.inputs = [x]
        if not u8:
            node.op = self.target_op

    def normalize_attrs(self, attrs: dict) -> dict:
        """QLookup's schema, without its int8 range check on the table."""
        return get_op(self.target_op).normalize_attrs(attrs)

    def _table(self, node: Node) -> np.ndarray:
        table = np.asarray(node.attrs["table"], np.int64)
        if table.size != 256 or table.min() < 0 or table.max() > 255:
            raise ShapeError(f"{node.op} node '{node.name}': table needs 256 uint8 entries")
        return table.astype(np.uint8)

    def infer(self, node: Node) -> list[TensorType]:
        """uint8 form: same shape, uint8; int8 form: QLookup's."""
        if node.op != self.name:
            return get_op(node.op).infer(node)
        x = node.input(0)
        if x is None or x.dtype != DType.UINT8:
            raise ShapeError(f"{node.op} node '{node.name}': the table form needs uint8 x")
        return [TensorType(x.shape, DType.UINT8)]

    def reference(self, node: Node, *inputs):
        """uint8 form: y = table[x]."""
        if node.op != self.name:
            return get_op(node.op).reference(node, *inputs)
        return (self._table(node)[np.asarray(inputs[0]).astype(np.int64)],)

    def c_template_for(self, node: Node, target) -> str:
        """The uint8 table template, or QLookup's."""
        if node.op != self.name:
            return get_op(node.op).c_template_for(node, target)
        return self.c_template

    def c_params(self, node: Node, target) -> dict:
        """The uint8 table as a constant array."""
        if node.op != self.name:
            return get_op(node.op).c_params(node, target)
        return {"table": ConstArray(self._table(node), "lut"), "count": node.output.type.numel}


@register_op("QLinearSigmoid")
class QLinearSigmoid(_QLinearUnary):
    """com.microsoft QLinearSigmoid (int8 or uint8): a 256-entry table (QLookup for int8)."""

    function = "Sigmoid"


@register_op("QLinearLeakyRelu")
class QLinearLeakyRelu(_QLinearUnary):
    """com.microsoft QLinearLeakyRelu (int8 or uint8, attribute alpha): a 256-entry table."""

    function = "LeakyRelu"


@register_op("QLinearGlobalAveragePool")
class QLinearGlobalAveragePool(ContribImport):
    """com.microsoft QLinearGlobalAveragePool (int8, channels_last 0/1): imported as
    QGlobalAveragePool (exact int32 sum, fixed-point x_scale / (y_scale * count))."""

    target_op = "QGlobalAveragePool"

    def import_onnx(self, node: Node, opset: int) -> None:
        self._int8_only(node, (0, 2, 4))
        xs = self._scalar(node, 1, "x_scale", False)
        xzp = self._scalar(node, 2, "x_zero_point", True)
        ys = self._scalar(node, 3, "y_scale", False)
        yzp = self._scalar(node, 4, "y_zero_point", True)
        layout = "NHWC" if int(node.attrs.pop("channels_last", 0)) else "NCHW"
        if node.attrs:
            raise UnsupportedError(f"{node.op} node '{node.name}': unexpected attributes "
                                   f"{sorted(node.attrs)}")
        x = node.input(0)
        if x is None or x.type.rank < 3:
            raise ShapeError(f"{node.op} node '{node.name}': input needs spatial dims")
        count = int(np.prod(x.shape[2:] if layout == "NCHW" else x.shape[1:-1]))
        node.attrs = {"layout": layout, "mode": "requantize",
                      **requant_attrs([xs / (ys * count)]), "x_zero_point": xzp,
                      "y_zero_point": yzp, "x_scale": xs, "y_scale": ys}
        node.inputs = [x]
        node.op = self.target_op


@register_op("QLinearConcat")
class QLinearConcat(OpDef):
    """com.microsoft QLinearConcat (int8 or uint8): inputs requantised to the output's scale while
    copied (edgec's fixed point, like QRequantize); kept as its own IR node.

    ONNX inputs (Y_scale, Y_zp, X_0, X_0_scale, X_0_zp, ...) become inputs X_0.. and the
    attributes `multiplier`, `shift`, `x_zero_point` (one per input) and `y_zero_point`.
    """

    attrs = {"axis": Attr("int"), "multiplier": Attr("ints"), "shift": Attr("ints"),
             "x_zero_point": Attr("ints"), "y_zero_point": Attr("int", 0),
             "x_scale": Attr("floats", ()), "y_scale": Attr("float", 0.0)}
    quant = QuantRule.REQUANTIZE
    dtypes = {DType.INT8, DType.UINT8}
    c_template = "ops/qconcat.c.j2"
    c_runtime = ("edgec_qmath.h",)

    _scalar = ContribImport._scalar
    _int8_only = ContribImport._int8_only

    def import_onnx(self, node: Node, opset: int) -> None:
        ins = list(node.inputs)
        if len(ins) < 5 or (len(ins) - 2) % 3:
            raise ShapeError(f"QLinearConcat node '{node.name}': needs Y_scale, Y_zero_point "
                             "and (X, X_scale, X_zero_point) triples")
        ys = self._scalar(node, 0, "Y_scale", False)
        yzp = self._scalar(node, 1, "Y_zero_point", True)
        want = ins[2].dtype if ins[2] is not None else DType.INT8
        for j in [1] + [j for j in range(2, len(ins)) if (j - 2) % 3 != 1]:
            if ins[j] is not None and (ins[j].dtype != want or want not in self.dtypes):
                raise UnsupportedError(f"QLinearConcat node '{node.name}': inputs and zero "
                                       "points must all be int8 or all uint8")
        xs, data, mult, shift, zps = [], [], [], [], []
        for j in range(2, len(ins), 3):
            s = self._scalar(node, j + 1, "X_scale", False)
            m, sh = qmath.quantize_multiplier(s / ys)
            xs.append(s)
            data.append(ins[j])
            mult.append(m)
            shift.append(sh)
            zps.append(self._scalar(node, j + 2, "X_zero_point", True))
        node.attrs = {"axis": int(node.attrs.get("axis", 0)), "multiplier": mult,
                      "shift": shift, "x_zero_point": zps, "y_zero_point": yzp,
                      "x_scale": xs, "y_scale": ys}
        node.inputs = data

    def _axis(self, node: Node) -> int:
        return normalize_axis(node.attrs["axis"], in_type(node, 0).rank, node)

    def infer(self, node: Node) -> list[TensorType]:
        types = [v.type for v in node.inputs]
        if types[0].dtype not in self.dtypes or any(t.dtype != types[0].dtype for t in types):
            raise ShapeError(f"QLinearConcat node '{node.name}': inputs must all be int8 or "
                             "all uint8")
        axis = self._axis(node)
        first = types[0].shape
        for t in types[1:]:
            if t.rank != len(first) or any(a != b for d, (a, b) in
                                            enumerate(zip(t.shape, first)) if d != axis):
                raise ShapeError(f"QLinearConcat node '{node.name}': shapes {first} and "
                                 f"{t.shape} differ outside axis {axis}")
        out = list(first)
        out[axis] = sum(t.shape[axis] for t in types)
        return [TensorType(tuple(out), types[0].dtype)]

    def reference(self, node: Node, *xs):
        a = node.attrs
        dt = in_type(node, 0).dtype.np
        lo, hi = int(np.iinfo(dt).min), int(np.iinfo(dt).max)
        parts = [qmath.requantize(np.asarray(x, np.int64) - zp, m, s, a["y_zero_point"], lo, hi)
                 for x, zp, m, s in zip(xs, a["x_zero_point"], a["multiplier"], a["shift"])]
        return (np.concatenate(parts, axis=self._axis(node)).astype(dt),)

    def c_params(self, node: Node, target) -> dict:
        axis = self._axis(node)
        shapes = [v.shape for v in node.inputs]
        inner = [int(np.prod(s[axis:])) for s in shapes]
        offsets = [int(sum(inner[:i])) for i in range(len(inner))]
        a = node.attrs
        dt = in_type(node, 0).dtype
        return {"outer": int(np.prod(shapes[0][:axis])), "inner": inner, "offset": offsets,
                "out_inner": int(sum(inner)), "x_zp": a["x_zero_point"],
                "mult": a["multiplier"], "shift": a["shift"], "y_zp": a["y_zero_point"],
                "qlo": int(np.iinfo(dt.np).min), "qhi": int(np.iinfo(dt.np).max),
                "ctype": dt.ctype}


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
    c_template = "ops/contrib_dq_matmul.c.j2"
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

    def c_params(self, node: Node, target) -> dict:
        x = in_type(node, 0)
        k, n = in_type(node, 1).shape
        _, scale, zp = self._params(node)
        return {"COUNT": x.numel, "ROWS": x.numel // k if k else 0, "K": k, "N": n,
                "b_scale": ConstArray(np.ascontiguousarray(scale, np.float32), "b_scale"),
                "b_zp": ConstArray(np.ascontiguousarray(zp, np.int32), "b_zp"),
                "has_bias": node.input(4) is not None,
                "bias_index": sum(v is not None for v in node.inputs[:4])}


@register_op("MatMulIntegerToFloat")
class MatMulIntegerToFloat(OpDef):
    """com.microsoft MatMulIntegerToFloat: int8/uint8 A [..., K] times a constant int8/uint8
    B [K, N], y = float(acc) * m[n] (+ bias[n]) with acc = sum_k (A - a_zp)(B - b_zp[n])
    exact in int32 and m = a_scale * b_scale[n] in float32 (per-tensor a_scale, a_zp)."""

    quant = QuantRule.FLOAT_ONLY
    c_template = "ops/contrib_int_matmul_f.c.j2"
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

    def c_params(self, node: Node, target) -> dict:
        x = in_type(node, 0)
        k, n = in_type(node, 1).shape
        _, mult, a_zp, b_zp = self._params(node)
        return {"ROWS": x.numel // k if k else 0, "K": k, "N": n, "a_zp": a_zp,
                "mult": ConstArray(np.ascontiguousarray(mult, np.float32), "mult"),
                "b_zp": ConstArray(np.ascontiguousarray(b_zp, np.int32), "b_zp"),
                "has_bias": node.input(6) is not None,
                "bias_index": sum(v is not None for v in node.inputs[:6])}


# The com.microsoft ops edgec imports (edgec/frontend/onnx.py accepts them in that domain).
CONTRIB_OPS = frozenset({"QLinearAdd", "QLinearMul", "QLinearSigmoid", "QLinearLeakyRelu",
                         "QLinearGlobalAveragePool", "QLinearConcat", "DynamicQuantizeMatMul",
                         "MatMulIntegerToFloat"})
