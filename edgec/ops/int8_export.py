"""Export facets of edgec's int8 ops: each written as DequantizeLinear -> float op -> Clip ->
QuantizeLinear with the scales edgec chose (`edgec export-qdq`, edgec/quant/qdq_export.py,
which hands its writer to `to_qdq`; vocabulary in int8_facet.py):

  QConv        DQ(x) -> Transpose to NCHW -> Conv(DQ(w int8, per channel), DQ(bias int32))
               -> Clip(act range) -> Transpose back -> Q
  QGemm        DQ(x) -> Gemm / MatMul + Add with DQ'd weights and bias -> Clip -> Q
  QAdd, QMul   DQ(a), DQ(b) -> Add / Mul -> Clip -> Q  (QMatMul likewise with MatMul)
  QAveragePool DQ -> AveragePool (NCHW) -> Clip -> Q;  QGlobalAveragePool: ReduceMean
  QRequantize  DQ -> Clip -> Q with the new parameters
  QLookup      exact: Gather(table, int32(x) + 128)
  QPRelu       DQ -> PRelu(slopes along the last axis) -> Clip -> Q
  QSoftmax     DQ -> Softmax(last axis) -> Q(1/256, -128)
  QReduceMean  DQ -> ReduceMean(axes, keepdims) -> Clip -> Q
  QLayerNorm   DQ -> LayerNormalization(axis, Scale = gain * y_scale, B = (offset - y_zp) *
               y_scale, epsilon = eps_codes * x_scale^2 / D^2) -> Clip -> Q
"""

from __future__ import annotations

import numpy as np

from edgec.ir import Node
from edgec.ops.int8_facet import Int8Facet


def _dq_input(writer, node: Node, index: int, prefix: str) -> str:
    """DequantizeLinear of input `index` with the node's `<prefix>_scale` / zero point."""
    a = node.attrs
    return writer.dq(writer.name_of(node.input(index)), np.float32(a[f"{prefix}_scale"]),
                     np.int8(a[f"{prefix}_zero_point"]))


def _clamp_and_quantize(writer, node: Node, y: str) -> None:
    """The float clamp of the node's act range, then QuantizeLinear into its output."""
    a = node.attrs
    y = writer.clip_float(y, a["act_min"], a["act_max"], a["y_scale"], a["y_zero_point"])
    writer.q(y, a["y_scale"], a["y_zero_point"], node.output.name)


class QConvExport(Int8Facet):
    """QConv written as a float Conv between DequantizeLinear and QuantizeLinear."""

    category = "requantize"

    def to_qdq(self, op, node: Node, writer) -> bool:
        """DQ(x) [-> NCHW] -> Conv(DQ(w), DQ(bias)) -> Clip [-> NHWC] -> Q."""
        a = node.attrs
        x, w, b = node.input(0), node.input(1), node.input(2)
        rank = len(x.shape)
        xs, ws = np.float32(a["x_scale"]), np.asarray(a["w_scale"], np.float32)
        xd = writer.dq(writer.name_of(x), xs, np.int8(a["x_zero_point"]))
        if a["layout"] == "NHWC":
            xd = writer.nchw(xd, rank)
        wd = writer.dq(writer.init(w.data, "w"), ws, np.zeros(ws.size, np.int8), axis=0)
        ins = [xd, wd]
        if b is not None:
            bs = (xs * ws).astype(np.float32)
            ins.append(writer.dq(writer.init(b.data.astype(np.int32), "b"), bs,
                                 np.zeros(ws.size, np.int32), axis=0))
        attrs = {k: a[k] for k in ("dilations", "group", "kernel_shape", "pads", "strides")}
        y = writer.add("Conv", ins, **attrs)
        y = writer.clip_float(y, a["act_min"], a["act_max"], a["y_scale"], a["y_zero_point"])
        if a["layout"] == "NHWC":
            y = writer.nhwc(y, rank)
        writer.q(y, a["y_scale"], a["y_zero_point"], node.output.name)
        return True


class QGemmExport(Int8Facet):
    """QGemm written as a float Gemm (2-D input) or MatMul + Add between DQ and Q."""

    category = "requantize"

    def to_qdq(self, op, node: Node, writer) -> bool:
        """DQ(x) -> Gemm(DQ(w), DQ(bias)) or MatMul(DQ(w^T)) + DQ(bias) -> Clip -> Q."""
        a = node.attrs
        x, w, b = node.input(0), node.input(1), node.input(2)
        xs, ws = np.float32(a["x_scale"]), np.asarray(a["w_scale"], np.float32)
        xd = writer.dq(writer.name_of(x), xs, np.int8(a["x_zero_point"]))
        zeros = np.zeros(ws.size, np.int8)
        bias = None
        if b is not None:
            bias = writer.dq(writer.init(b.data.astype(np.int32), "b"),
                             (xs * ws).astype(np.float32), np.zeros(ws.size, np.int32), axis=0)
        if len(x.shape) == 2:
            wd = writer.dq(writer.init(w.data, "w"), ws, zeros, axis=0)
            y = writer.add("Gemm", [xd, wd] + ([bias] if bias else []), transB=1)
        else:
            wd = writer.dq(writer.init(np.ascontiguousarray(w.data.T), "w"), ws, zeros, axis=1)
            y = writer.add("MatMul", [xd, wd])
            if bias:
                y = writer.add("Add", [y, bias])
        _clamp_and_quantize(writer, node, y)
        return True


class QBinaryExport(Int8Facet):
    """QAdd / QMul / QMatMul written as the float op of the two dequantised operands."""

    category = "requantize"

    def __init__(self, name: str, float_op: str):
        super().__init__(name)
        self.float_op = float_op

    def to_qdq(self, op, node: Node, writer) -> bool:
        """DQ(a), DQ(b) -> float op -> Clip -> Q."""
        ad = _dq_input(writer, node, 0, "a")
        bd = _dq_input(writer, node, 1, "b")
        _clamp_and_quantize(writer, node, writer.add(self.float_op, [ad, bd]))
        return True


class QPoolExport(Int8Facet):
    """QAveragePool (AveragePool, NCHW) / QGlobalAveragePool (ReduceMean over every spatial
    axis: `global_pool`) between DQ and Q."""

    category = "requantize"

    def __init__(self, name: str, global_pool: bool):
        super().__init__(name)
        self.global_pool = global_pool

    def to_qdq(self, op, node: Node, writer) -> bool:
        """DQ(x) -> AveragePool or ReduceMean -> Clip -> Q."""
        a = node.attrs
        rank = len(node.input(0).shape)
        xd = _dq_input(writer, node, 0, "x")
        if self.global_pool:
            axes = list(range(1, rank - 1)) if a["layout"] == "NHWC" else list(range(2, rank))
            y = writer.add("ReduceMean", [xd], axes=axes, keepdims=1)
        else:
            if a["layout"] == "NHWC":
                xd = writer.nchw(xd, rank)
            attrs = {k: a[k] for k in ("ceil_mode", "count_include_pad", "kernel_shape", "pads",
                                       "strides") if a.get(k) not in (None, [], ())}
            if a.get("dilations") and any(d != 1 for d in a["dilations"]):
                attrs["dilations"] = a["dilations"]
            y = writer.add("AveragePool", [xd], **attrs)
            if a["layout"] == "NHWC":
                y = writer.nhwc(y, rank)
        _clamp_and_quantize(writer, node, y)
        return True


class QRequantizeExport(Int8Facet):
    """QRequantize: DQ with the old parameters, Clip, Q with the new ones."""

    category = "requantize"

    def to_qdq(self, op, node: Node, writer) -> bool:
        """DQ(x) -> Clip -> Q."""
        _clamp_and_quantize(writer, node, _dq_input(writer, node, 0, "x"))
        return True


class QPReluExport(Int8Facet):
    """QPRelu: a float PRelu with the slopes along the last axis between DQ and Q."""

    category = "requantize"

    def to_qdq(self, op, node: Node, writer) -> bool:
        """DQ(x) -> PRelu(slopes) -> Clip -> Q."""
        xd = _dq_input(writer, node, 0, "x")
        slopes = writer.init(np.asarray(node.attrs["alpha"], np.float32), "slope")
        _clamp_and_quantize(writer, node, writer.add("PRelu", [xd, slopes]))
        return True


class QLookupExport(Int8Facet):
    """QLookup exactly: Gather(table, int32(x) + 128)."""

    category = "lookup"

    def to_qdq(self, op, node: Node, writer) -> bool:
        """Cast -> Add 128 -> Gather from the int8 table."""
        idx = writer.add("Cast", [writer.name_of(node.input(0))], to=writer.ONNX_INT32)
        idx = writer.add("Add", [idx, writer.init(np.int32(128), "offset")])
        table = np.asarray(node.attrs["table"], np.int64).astype(np.int8)
        writer.add("Gather", [writer.init(table, "lut"), idx], [node.output.name], axis=0)
        return True


class QSoftmaxExport(Int8Facet):
    """QSoftmax: a float Softmax over the last axis between DQ and Q (TFLite's fixed output
    parameters; onnxruntime's float result can differ from the integer kernel by an LSB)."""

    category = "requantize"

    def to_qdq(self, op, node: Node, writer) -> bool:
        """DQ(x) -> Softmax(axis=-1) -> Q(1/256, -128)."""
        y = writer.add("Softmax", [_dq_input(writer, node, 0, "x")], axis=-1)
        writer.q(y, np.float32(1.0 / 256.0), np.int8(-128), node.output.name)
        return True


class QReduceMeanExport(Int8Facet):
    """QReduceMean: a float ReduceMean over the same axes between DQ and Q."""

    category = "requantize"

    def to_qdq(self, op, node: Node, writer) -> bool:
        """DQ(x) -> ReduceMean(axes, keepdims) -> Clip -> Q."""
        y = writer.add("ReduceMean", [_dq_input(writer, node, 0, "x")],
                       axes=list(node.attrs["axes"]), keepdims=node.attrs["keepdims"])
        _clamp_and_quantize(writer, node, y)
        return True


class QLayerNormExport(Int8Facet):
    """QLayerNorm: a float LayerNormalization (Scale, B and epsilon recovered from the int8
    form) between DQ and Q."""

    category = "requantize"

    def to_qdq(self, op, node: Node, writer) -> bool:
        """DQ(x) -> LayerNormalization -> Clip -> Q."""
        a = node.attrs
        shape = node.input(0).shape
        norm_shape = shape[a["axis"]:]
        rows = int(np.prod(norm_shape))
        ys = np.float64(a["y_scale"])
        scale = (np.asarray(a["gain"], np.float64) * ys).astype(np.float32)
        bias = ((np.asarray(a["offset"], np.float64) - a["y_zero_point"]) * ys).astype(
            np.float32)
        eps = float(a["eps_codes"]) * float(a["x_scale"]) ** 2 / float(rows) ** 2
        y = writer.add("LayerNormalization", [
            _dq_input(writer, node, 0, "x"), writer.init(scale.reshape(norm_shape), "scale"),
            writer.init(bias.reshape(norm_shape), "bias")], axis=a["axis"], epsilon=eps)
        _clamp_and_quantize(writer, node, y)
        return True


QCONV_EXPORT = QConvExport("qconv")
QGEMM_EXPORT = QGemmExport("qgemm")
QADD_EXPORT = QBinaryExport("qadd", "Add")
QMUL_EXPORT = QBinaryExport("qmul", "Mul")
QMATMUL_EXPORT = QBinaryExport("qmatmul", "MatMul")
QAVERAGE_POOL_EXPORT = QPoolExport("qaveragepool", global_pool=False)
QGLOBAL_AVERAGE_POOL_EXPORT = QPoolExport("qglobalaveragepool", global_pool=True)
QREQUANTIZE_EXPORT = QRequantizeExport("qrequantize")
QPRELU_EXPORT = QPReluExport("qprelu")
QLOOKUP_EXPORT = QLookupExport("qlookup")
QSOFTMAX_EXPORT = QSoftmaxExport("qsoftmax")
QREDUCE_MEAN_EXPORT = QReduceMeanExport("qreducemean")
QLAYER_NORM_EXPORT = QLayerNormExport("qlayernorm")
