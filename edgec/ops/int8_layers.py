"""int8 facets of the layers with weights: Conv -> QConv, Gemm / MatMul -> QGemm, and MatMul
of two activations -> QMatMul (vocabulary in int8_facet.py, arithmetic in int8_scheme.py).

Quantize pass: weights become int8 symmetric per output channel (scale = max|w| / 127),
biases int32 with scale x_scale * w_scale[m], multipliers the 32-bit fixed-point form of
x_scale * w_scale[m] / y_scale. A fused relu/clip becomes act_min/act_max; another fused
activation was observed before it during calibration (NAME::pre) and becomes a QLookup (a
QPRelu for prelu) after the layer. import-qdq takes weights, scales and biases from the
model's DequantizeLinears instead.
"""

from __future__ import annotations

import numpy as np

from edgec.ir import DType, Node, Value
from edgec.ops.epilogue import activation_np
from edgec.ops.int8_elementwise import emit_qprelu
from edgec.ops.int8_facet import Int8Facet, QdqOutput, scale_of, zero_point_of
from edgec.ops.int8_scheme import (
    CLAMP_ACTIVATIONS,
    PRE_ACTIVATION,
    QMAX,
    QMIN,
    activation_range,
    lookup_table,
    quantize_bias,
    quantize_weights,
    requant_attrs,
)
from edgec.ops.tflite_activations import fixed_output_params, tflite_table, wants_tflite_table

CONV_GEOMETRY = ("dilations", "group", "kernel_shape", "pads", "strides", "layout")
# Fused activations applied after an int8 layer by a QLookup (prelu: a QPRelu).
LOOKUP_ACTIVATIONS = ("leaky_relu", "hardswish", "hardsigmoid", "sigmoid", "silu", "tanh",
                      "prelu")


def _epilogue_quantizable(node: Node, quantizer) -> bool:
    """A clamp epilogue, or one a lookup can follow (its pre-activation range was observed)."""
    act = node.attrs.get("activation", "none")
    return act in CLAMP_ACTIVATIONS or (
        act in LOOKUP_ACTIVATIONS and quantizer.has_stats(node.output.name + PRE_ACTIVATION))


def weight_bits_of(quantizer, node: Node, depthwise: bool = False) -> int:
    """4 or 8: the bit width the quantize options give this layer's weights (depthwise
    convolutions keep int8: 9 taps per channel lose too much at 15 levels and weigh little)."""
    ask = getattr(quantizer, "weight_bits", None)
    if ask is None or (depthwise and not getattr(quantizer.opts, "int4_depthwise", False)):
        return 8
    return ask(node)


def requant_layer(quantizer, node: Node, op: str, xq: Value, w_q: np.ndarray, w_scale,
                  bias, geometry: dict, bits: int = 8) -> Value:
    """QConv/QGemm with the fused clamp, plus a QLookup or QPRelu for other activations."""
    q = quantizer
    a = node.attrs
    xp = xq.quant
    act = a.get("activation", "none")
    lookup = act not in CLAMP_ACTIVATIONS
    yp = q.own_params(node.output.name + PRE_ACTIVATION) if lookup else \
        q.params_of(node.output)
    xs, xzp, ys, yzp = scale_of(xp), zero_point_of(xp), scale_of(yp), zero_point_of(yp)
    real = np.float64(xs) * w_scale.astype(np.float64) / np.float64(ys)
    lo, hi = activation_range(act if act in CLAMP_ACTIVATIONS else "none", ys, yzp,
                              a.get("act_alpha", 0.0), a.get("act_beta", 0.0))
    attrs = {**geometry, "x_zero_point": xzp, "y_zero_point": yzp,
             **requant_attrs(real), "act_min": lo, "act_max": hi, "x_scale": xs,
             "y_scale": ys, "w_scale": [float(s) for s in w_scale]}
    if bits != 8:
        attrs["weight_bits"] = bits
    b_q = quantize_bias(bias, xs, w_scale)
    inputs = [xq, q.g.const(w_q, node.name + "_w_int8"),
              q.g.const(b_q, node.name + "_bias_int32")]
    y = q.emit(node, op, inputs, attrs, yp,
               "" if not lookup else PRE_ACTIVATION.replace(":", "_"))
    extra = {"weight_bits": bits} if bits != 8 else {}
    q.record(node, op, xp, yp, w_scale_min=float(w_scale.min()),
             w_scale_max=float(w_scale.max()), activation=act, **extra)
    if act == "prelu":
        return emit_qprelu(q, node, y, a["act_slope"], q.params_of(node.output), "_act")
    if lookup and wants_tflite_table(q, act):  # --tflite-activations: TFLite's table
        final = q.forced[node.output.name] = fixed_output_params(act)
        table = tflite_table(act, ys, yzp)
    elif lookup:
        final = q.params_of(node.output)
        table = lookup_table(lambda v: activation_np(v, a, -1), ys, yzp, scale_of(final),
                             zero_point_of(final))
    if lookup:
        fs, fzp = scale_of(final), zero_point_of(final)
        y = q.emit(node, "QLookup", [y], {
            "table": table, "function": act, "x_scale": ys, "x_zero_point": yzp,
            "y_scale": fs, "y_zero_point": fzp}, final, "_act")
    return y


def _qdq_requant_attrs(x_scale: float, x_zero_point: int, w_scale: np.ndarray,
                       out: QdqOutput) -> dict:
    return {"x_zero_point": x_zero_point, **out.requant_attrs(),
            **requant_attrs(np.float64(x_scale) * w_scale.astype(np.float64) / out.scale),
            "x_scale": x_scale, "y_scale": out.scale, "w_scale": [float(s) for s in w_scale]}


class ConvInt8(Int8Facet):
    """Conv (channels-last, constant weights, 1-D or 2-D) -> QConv."""

    role = "compute"
    category = "requantize"
    clamp_epilogue = True

    def plan(self, op, node: Node, quantizer) -> str | None:
        """QConv for NHWC data, constant weights and bias, and a quantisable epilogue."""
        a = node.attrs
        if not _epilogue_quantizable(node, quantizer):
            return None
        ok = (a["layout"] == "NHWC" and not a.get("input_layout")
              and node.input(1).is_const and len(node.inputs) <= 3
              and len(a["kernel_shape"]) in (1, 2)
              and (node.input(2) is None or node.input(2).is_const))
        return "conv" if ok else None

    def quantize(self, op, node: Node, quantizer) -> Value:
        """QConv [+ QLookup]."""
        xq = quantizer.int8_of(node.input(0), node)
        w_shape, group = node.input(1).shape, node.attrs["group"]
        depthwise = group > 1 and w_shape[1] == 1 and w_shape[0] == group
        bits = weight_bits_of(quantizer, node, depthwise)
        w_q, w_scale = quantize_weights(node.input(1).data, axis=0, bits=bits)
        b = node.input(2).data if node.input(2) is not None else None
        geometry = {k: node.attrs[k] for k in CONV_GEOMETRY}
        return requant_layer(quantizer, node, "QConv", xq, w_q, w_scale, b, geometry, bits)

    def from_qdq(self, op, node: Node, inputs, out: QdqOutput) -> Value | None:
        """QConv from DQ(x), DQ(int8 weights per channel) and a DQ'd or float bias."""
        a = node.attrs
        if len(node.inputs) > 3:
            return None
        x, w = inputs.act(0), inputs.weight(1, 0)
        if x is None or w is None or a.get("activation", "none") != "none":
            return None
        xv, xs, xzp = x
        bias = inputs.bias(2, xs, w[1])
        if bias is None:
            return None
        attrs = {**{k: a[k] for k in CONV_GEOMETRY}, **_qdq_requant_attrs(xs, xzp, w[1], out)}
        g = out.graph
        return g.add_node("QConv", [xv, g.const(w[0], node.name + "_w"),
                                    g.const(bias, node.name + "_b")],
                          attrs=attrs, name=node.name, before=out.before).output


def _qdq_fully_connected(node: Node, inputs, out: QdqOutput, gemm: bool) -> Value | None:
    """QGemm from a QDQ Gemm (`gemm`: transA=0, alpha=beta=1) or MatMul with 2-D int8
    weights."""
    a = node.attrs
    x = inputs.act(0)
    if x is None or len(node.inputs) > (3 if gemm else 2):
        return None
    if gemm and (a["transA"] or a["alpha"] != 1.0 or a["beta"] != 1.0):
        return None
    trans = gemm and a["transB"]
    w = inputs.weight(1, 0 if trans else 1)
    if w is None or w[0].ndim != 2:
        return None
    w_nk = w[0] if trans else np.ascontiguousarray(w[0].T)
    xv, xs, xzp = x
    bias = inputs.bias(2, xs, w[1]) if gemm else np.zeros(w[1].size, np.int32)
    if bias is None:
        return None
    g = out.graph
    return g.add_node("QGemm", [xv, g.const(w_nk, node.name + "_w"),
                                g.const(bias, node.name + "_b")],
                      attrs=_qdq_requant_attrs(xs, xzp, w[1], out), name=node.name,
                      before=out.before).output


class GemmInt8(Int8Facet):
    """Gemm (constant B, transA=0, C one value per output column) -> QGemm [N, K]."""

    role = "compute"
    category = "requantize"
    clamp_epilogue = True

    @staticmethod
    def column_bias(node: Node) -> np.ndarray | None:
        """beta * C as one value per output column, or None when C varies along rows."""
        c = node.input(2)
        n = node.output.shape[-1]
        data = np.asarray(c.data, np.float32)
        full = np.broadcast_to(data, node.output.shape)
        if not np.all(full == full[:1]):
            return None
        return np.float32(node.attrs["beta"]) * full[0].reshape(n)

    def plan(self, op, node: Node, quantizer) -> str | None:
        """QGemm for constant weights and a per-column bias."""
        if not _epilogue_quantizable(node, quantizer):
            return None
        c = node.input(2)
        ok = (node.attrs["transA"] == 0 and node.input(1).is_const and len(node.inputs) <= 3
              and (c is None or (c.is_const and self.column_bias(node) is not None)))
        return "gemm" if ok else None

    def quantize(self, op, node: Node, quantizer) -> Value:
        """QGemm [+ QLookup] with weights alpha * B as [N, K]."""
        a = node.attrs
        b = node.input(1).data.astype(np.float32)
        w_nk = (b if a["transB"] else b.T) * np.float32(a["alpha"])
        bits = weight_bits_of(quantizer, node)
        w_q, w_scale = quantize_weights(w_nk, axis=0, bits=bits)
        bias = self.column_bias(node) if node.input(2) is not None else None
        xq = quantizer.int8_of(node.input(0), node)
        return requant_layer(quantizer, node, "QGemm", xq, w_q, w_scale, bias, {}, bits)

    def from_qdq(self, op, node: Node, inputs, out: QdqOutput) -> Value | None:
        """QGemm from the model's int8 weights and int32 (or float) bias."""
        return _qdq_fully_connected(node, inputs, out, gemm=True)

    def dynamic_weights(self, node: Node):
        """alpha * B as [N, K] and beta * C per column (None when C varies along rows)."""
        a = node.attrs
        c = node.input(2)
        if a["transA"] != 0 or not node.input(1).is_const or len(node.inputs) > 3:
            return None
        b = node.input(1).data.astype(np.float32)
        w_nk = (b if a["transB"] else b.T) * np.float32(a["alpha"])
        bias = None
        if c is not None:
            if not c.is_const:
                return None
            full = np.broadcast_to(np.asarray(c.data, np.float32), node.output.shape)
            if not np.all(full == full[:1]):
                return None
            bias = (np.float32(a["beta"]) * full[0]).astype(np.float32)
        return w_nk, bias


class MatMulInt8(Int8Facet):
    """MatMul: constant 2-D B -> QGemm (rows = leading dims of x); two activations ->
    QMatMul with per-tensor parameters."""

    role = "compute"
    category = "requantize"
    clamp_epilogue = True

    def plan(self, op, node: Node, quantizer) -> str | None:
        """"qmatmul" for two float activations without epilogue, "matmul" for constant B."""
        if not _epilogue_quantizable(node, quantizer):
            return None
        x, b = node.input(0), node.input(1)
        if not b.is_const and b.dtype == DType.FLOAT32 and len(node.inputs) <= 2 \
                and node.attrs.get("activation", "none") == "none":
            return "qmatmul"
        ok = b.is_const and b.type.rank == 2 and len(node.inputs) <= 2 and x.type.rank >= 1
        return "matmul" if ok else None

    def quantize(self, op, node: Node, quantizer) -> Value:
        """QGemm with B^T as weights, or QMatMul of the two int8 operands."""
        if not node.input(1).is_const:
            return self._quantize_two_activations(node, quantizer)
        bits = weight_bits_of(quantizer, node)
        w_q, w_scale = quantize_weights(node.input(1).data.astype(np.float32).T, axis=0,
                                        bits=bits)
        xq = quantizer.int8_of(node.input(0), node)
        return requant_layer(quantizer, node, "QGemm", xq, w_q, w_scale, None, {}, bits)

    @staticmethod
    def _quantize_two_activations(node: Node, quantizer) -> Value:
        aq, bq = (quantizer.int8_of(v, node) for v in node.inputs)
        ap, bp, yp = aq.quant, bq.quant, quantizer.params_of(node.output)
        a_s, b_s, y_s = scale_of(ap), scale_of(bp), scale_of(yp)
        attrs = {"a_zero_point": zero_point_of(ap), "b_zero_point": zero_point_of(bp),
                 "y_zero_point": zero_point_of(yp), **requant_attrs([a_s * b_s / y_s]),
                 "act_min": QMIN, "act_max": QMAX, "a_scale": a_s, "b_scale": b_s,
                 "y_scale": y_s}
        quantizer.record(node, "QMatMul", ap, yp, b_scale=b_s, b_zero_point=zero_point_of(bp))
        return quantizer.emit(node, "QMatMul", [aq, bq], attrs, yp)

    def from_qdq(self, op, node: Node, inputs, out: QdqOutput) -> Value | None:
        """QGemm from the model's int8 weights."""
        return _qdq_fully_connected(node, inputs, out, gemm=False)

    def dynamic_weights(self, node: Node):
        """B^T as [N, K] for a constant 2-D B (no bias)."""
        b = node.input(1)
        if not b.is_const or b.type.rank != 2 or len(node.inputs) > 2:
            return None
        return np.ascontiguousarray(b.data.astype(np.float32).T), None


CONV_INT8 = ConvInt8("conv")
GEMM_INT8 = GemmInt8("gemm")
MATMUL_INT8 = MatMulInt8("matmul")
