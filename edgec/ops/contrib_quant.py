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
per-tensor constants. int8 and uint8 are both supported; int8 nodes become edgec's
internal int8 ops, uint8 nodes keep their own node with the same integer arithmetic clamped
to 0..255 (portable templates). Mixed int8/uint8 operands are refused with a one-line error.
DynamicQuantizeMatMul, MatMulIntegerToFloat and MatMulInteger16 live in
edgec/ops/contrib_matmul.py, DynamicQuantizeLSTM in edgec/ops/contrib_lstm.py.
"""

from __future__ import annotations

import numpy as np

from edgec import qmath
from edgec.errors import ShapeError, UnsupportedError
from edgec.ir import DType, Node, TensorType
from edgec.ops.base import Attr, OpDef, QuantRule, broadcast_shapes, in_type, normalize_axis
from edgec.ops.int8_scheme import qadd_attrs, qmul_attrs, requant_attrs
from edgec.ops.quantized import lookup_table_for_op
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

    def normalize_attrs(self, attrs: dict) -> dict:
        """The attributes are the target op's (set by import_onnx)."""
        return get_op(self.target_op).normalize_attrs(attrs)

    def infer(self, node: Node) -> list[TensorType]:
        """The target op's inference (the node has been rewritten)."""
        return get_op(node.op).infer(node)

    def reference(self, node: Node, *inputs):
        """The target op's semantics (used when the node folds)."""
        return get_op(node.op).reference(node, *inputs)


class _QLinearBinary(ContribImport):
    """QLinearAdd / QLinearMul: int8 -> QAdd / QMul. uint8 stays this node with the same
    integer arithmetic (QAdd's / QMul's attributes, clamp to 0..255) and template."""

    dtypes = {DType.INT8, DType.UINT8}

    def import_onnx(self, node: Node, opset: int) -> None:
        a = node.input(0)
        u8 = a is not None and a.dtype == DType.UINT8
        for i in (0, 2, 3, 5, 7):
            v = node.input(i)
            if v is not None and v.dtype != (DType.UINT8 if u8 else DType.INT8):
                raise UnsupportedError(f"{node.op} node '{node.name}': A, B, C and their zero "
                                       "points must all be int8 or all uint8")
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
        if u8:
            attrs.update({"act_min": 0, "act_max": 255})
        node.attrs = attrs
        node.inputs = [a, node.input(3)]
        if not u8:
            node.op = self.target_op

    def infer(self, node: Node) -> list[TensorType]:
        """uint8 form: broadcast shape, uint8; int8 form: the target op's."""
        if node.op != self.name:
            return get_op(node.op).infer(node)
        ta, tb = in_type(node, 0), in_type(node, 1)
        if ta.dtype != DType.UINT8 or tb.dtype != DType.UINT8:
            raise ShapeError(f"{node.op} node '{node.name}': the uint8 form needs uint8 A, B")
        return [TensorType(broadcast_shapes(ta.shape, tb.shape), DType.UINT8)]

    def reference(self, node: Node, *inputs):
        """uint8 form: QAdd's / QMul's integer arithmetic, clamped to 0..255."""
        if node.op != self.name:
            return get_op(node.op).reference(node, *inputs)
        y = get_op(self.target_op).np_fn(node, *inputs)
        return (np.broadcast_to(y, self.infer(node)[0].shape).astype(np.uint8),)


@register_op("QLinearAdd")
class QLinearAdd(_QLinearBinary):
    """com.microsoft QLinearAdd (int8 or uint8): QAdd's integer scheme (edgec's fixed point)."""

    target_op = "QAdd"


@register_op("QLinearMul")
class QLinearMul(_QLinearBinary):
    """com.microsoft QLinearMul (int8 or uint8): QMul's integer scheme (edgec's fixed point)."""

    target_op = "QMul"


class _QLinearUnary(ContribImport):
    """QLinearSigmoid / QLinearLeakyRelu: int8 -> QLookup; uint8 stays this node, a table
    y = table[x] of 256 uint8 entries (the int8 table of the codes shifted by 128: uint8 code
    u with zero point z means what int8 code u - 128 with zero point z - 128 means)."""

    quant = QuantRule.LOOKUP
    dtypes = {DType.INT8, DType.UINT8}
    target_op = "QLookup"
    function = ""

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
    """com.microsoft QLinearGlobalAveragePool (int8 or uint8, channels_last 0/1): exact
    int32 sum, fixed-point x_scale / (y_scale * count); int8 is QGlobalAveragePool, uint8
    stays this node (its own loop, clamped to 0..255)."""

    target_op = "QGlobalAveragePool"
    dtypes = {DType.INT8, DType.UINT8}

    def import_onnx(self, node: Node, opset: int) -> None:
        x = node.input(0)
        u8 = x is not None and x.dtype == DType.UINT8
        for i in (0, 2, 4):
            v = node.input(i)
            if v is not None and v.dtype != (DType.UINT8 if u8 else DType.INT8):
                raise UnsupportedError(f"{node.op} node '{node.name}': x and the zero points "
                                       "must all be int8 or all uint8")
        xs = self._scalar(node, 1, "x_scale", False)
        xzp = self._scalar(node, 2, "x_zero_point", True)
        ys = self._scalar(node, 3, "y_scale", False)
        yzp = self._scalar(node, 4, "y_zero_point", True)
        layout = "NHWC" if int(node.attrs.pop("channels_last", 0)) else "NCHW"
        if node.attrs:
            raise UnsupportedError(f"{node.op} node '{node.name}': unexpected attributes "
                                   f"{sorted(node.attrs)}")
        if x is None or x.type.rank < 3:
            raise ShapeError(f"{node.op} node '{node.name}': input needs spatial dims")
        node.attrs = {"layout": layout, "mode": "requantize",
                      **requant_attrs([xs / (ys * self._geometry(x.shape, layout)[2])]),
                      "x_zero_point": xzp, "y_zero_point": yzp, "x_scale": xs, "y_scale": ys}
        if u8:
            node.attrs.update({"act_min": 0, "act_max": 255})
        node.inputs = [x]
        if not u8:
            node.op = self.target_op

    @staticmethod
    def _geometry(shape, layout: str) -> tuple[int, int, int]:
        """(N, C, spatial count) of a channels-first or channels-last shape."""
        c = shape[1] if layout == "NCHW" else shape[-1]
        count = int(np.prod(shape[2:] if layout == "NCHW" else shape[1:-1]))
        return int(shape[0]), int(c), count

    def infer(self, node: Node) -> list[TensorType]:
        """uint8 form: [N, C, 1...] or [N, 1..., C] uint8; int8 form: the target op's."""
        if node.op != self.name:
            return get_op(node.op).infer(node)
        x = in_type(node, 0)
        nsp = x.rank - 2
        if x.dtype != DType.UINT8:
            raise ShapeError(f"{node.op} node '{node.name}': the uint8 form needs uint8 x")
        shape = (x.shape[0], x.shape[1], *[1] * nsp) if node.attrs["layout"] == "NCHW" \
            else (x.shape[0], *[1] * nsp, x.shape[-1])
        return [TensorType(shape, DType.UINT8)]

    def reference(self, node: Node, *inputs):
        """uint8 form: requantised sums over the spatial dims."""
        if node.op != self.name:
            return get_op(node.op).reference(node, *inputs)
        a = node.attrs
        axes = tuple(range(2, inputs[0].ndim)) if a["layout"] == "NCHW" else \
            tuple(range(1, inputs[0].ndim - 1))
        sums = (np.asarray(inputs[0], np.int64) - a["x_zero_point"]).sum(axis=axes,
                                                                         keepdims=True)
        y = qmath.requantize(sums, a["multiplier"][0], a["shift"][0], a["y_zero_point"], 0, 255)
        return (y.astype(np.uint8),)


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

    _scalar = ContribImport._scalar

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


# The com.microsoft ops edgec imports (edgec/frontend/onnx.py accepts them in that domain).
CONTRIB_OPS = frozenset({"QLinearAdd", "QLinearMul", "QLinearSigmoid", "QLinearLeakyRelu",
                         "QLinearGlobalAveragePool", "QLinearConcat", "DynamicQuantizeMatMul",
                         "MatMulIntegerToFloat", "MatMulInteger16",
                         "DynamicQuantizeLSTM"})
