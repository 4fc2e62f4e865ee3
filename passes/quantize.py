"""quantize: rewrite a calibrated fp32 graph into edgec's int8 ops (TFLite int8 scheme).

Input: the graph after the target's fp32 pipeline (fused epilogues, channels-last) and the
pipeline's `PassOptions.quant`, an `edgec.quant.config.QuantOptions` holding the calibration
statistics of every float value (mode "static"; mode "dynamic" is passes/_quantize_dynamic.py).
Output: the same function on int8 data, with float32 graph inputs and outputs (QuantizeLinear
after the inputs, DequantizeLinear before the outputs); what was done is written to
`PassOptions.quant_record` (per-layer records, float value -> int8 value).

Algorithm:
1. Classify every node: a *compute* node that has an int8 form (Conv/Gemm/MatMul with
   constant weights, MatMul of two activations, Add, Mul, AveragePool, GlobalAveragePool,
   unary functions as lookup tables) becomes int8 unless `--keep-float` names it or its op. A *same-scale* node
   (views, Transpose, MaxPool, Pad, Slice, Concat, Relu/Clip...) becomes int8 when its data
   input is produced in int8, or when one of its readers is int8 (fixpoint): so a Transpose
   between the graph input and the first Conv runs on int8 data. Everything else is float.
2. Quantisation parameters: each value an int8 compute node writes gets scale and zero point
   from its calibrated range (qmath.choose_qparams, asymmetric int8). Same-scale nodes keep
   their input's parameters. A Concat's inputs that are written by int8 compute nodes for the
   Concat alone are given the Concat's parameters (no requantisation); other mismatching
   inputs get a QRequantize.
3. Rewrite in execution order. Weights become int8 symmetric per output channel (scale =
   max|w| / 127), biases int32 with scale x_scale * w_scale[m], multipliers the 32-bit
   fixed-point form of x_scale * w_scale[m] / y_scale. Fused relu/clip become act_min/act_max;
   other fused activations become a QLookup after the layer (their input range was observed
   during calibration). A standalone Relu/Clip after an int8 layer is folded into its clamp,
   else it becomes an integer Clip (Relu's bound is the zero point, not 0).
   Wherever a float node reads an int8 value a DequantizeLinear is inserted, and wherever an
   int8 node reads a float value a QuantizeLinear (once per value).
"""

from __future__ import annotations

import numpy as np

from edgec import qmath
from edgec.errors import EdgecError
from edgec.ir import DType, Graph, Node, QuantParams, Value
from edgec.ops import get_op
from edgec.ops.base import QuantRule
from edgec.ops.epilogue import activation_np
from edgec.ops.int8_scheme import (
    CLAMP_ACTIVATIONS,
    PRE_ACTIVATION,
    QMAX,
    QMIN,
    activation_range,
    average_pool_attrs,
    lookup_table,
    params_from_range,
    qadd_attrs,
    qmul_attrs,
    quantize_bias,
    quantize_weights,
    requant_attrs,
)
from edgec.ops.quantized import lookup_table_for_op
from edgec.passes._quantize_dynamic import quantize_dynamic
from edgec.passes._quantize_prelu import emit_qprelu, standalone_slopes
from edgec.passes.registry import PassOptions, register_pass

LOOKUP_ACTIVATIONS = ("leaky_relu", "hardswish", "hardsigmoid", "sigmoid", "silu", "tanh",
                      "prelu")  # prelu: a QPRelu after the layer (passes/_quantize_prelu.py)
CONV_GEOMETRY = ("dilations", "group", "kernel_shape", "pads", "strides", "layout")
POOL_GEOMETRY = ("ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads",
                 "strides", "layout")
COMPUTE_KINDS = ("conv", "gemm", "matmul", "qmatmul", "add", "mul", "avgpool", "gap", "lookup",
                 "prelu")


# ------------------------------------------------------------------------------ helpers
def _scale(p: QuantParams) -> float:
    return float(p.scale[0])


def _zp(p: QuantParams) -> int:
    return int(p.zero_point[0])


def _same_params(a: QuantParams, b: QuantParams) -> bool:
    return _scale(a) == _scale(b) and _zp(a) == _zp(b)


# ------------------------------------------------------------------------------ the pass
class Quantizer:
    """One run of the quantize pass over a graph (see the module docstring)."""

    def __init__(self, g: Graph, options, record):
        self.g = g
        self.opts = options
        self.record_to = record  # QuantRecord: layer records and the value map
        self.cal = options.calibration
        self.params: dict[str, QuantParams] = {}
        self.forced: dict[str, QuantParams] = {}
        self.qval: dict[str, Value] = {}  # float value name -> its int8 replacement
        self.fval: dict[str, Value] = {}  # int8-only value name -> dequantised float value
        self.kind: dict[int, str | None] = {}  # by id(node)
        self.int8: set[int] = set()  # id() of int8 nodes
        self._layer_index: dict[str, list[dict]] = {}  # output value -> record_to.layers
        self._layers_indexed = 0  # how many of record_to.layers are in _layer_index

    # ---------------------------------------------------------------- classification
    def classify(self, node: Node) -> str | None:
        """The int8 rewrite kind of `node`, or None when it stays float."""
        if self.opts.keeps_float(node.name, node.op):
            return None
        x = node.input(0)
        if x is None or x.dtype != DType.FLOAT32 or any(
                v.dtype != DType.FLOAT32 for v in node.outputs):
            return None
        a = node.attrs
        op = node.op
        if op in ("Conv", "Gemm", "MatMul"):
            act = a.get("activation", "none")
            if act not in CLAMP_ACTIVATIONS and (
                    act not in LOOKUP_ACTIVATIONS
                    or node.output.name + PRE_ACTIVATION not in self.cal.stats):
                return None
            if op == "Conv":
                ok = (a["layout"] == "NHWC" and not a.get("input_layout")
                      and node.input(1).is_const and len(node.inputs) <= 3
                      and len(a["kernel_shape"]) in (1, 2)
                      and (node.input(2) is None or node.input(2).is_const))
                return "conv" if ok else None
            if op == "Gemm":
                c = node.input(2)
                ok = (a["transA"] == 0 and node.input(1).is_const and len(node.inputs) <= 3
                      and (c is None or (c.is_const and self._gemm_bias(node) is not None)))
                return "gemm" if ok else None
            b = node.input(1)
            if not b.is_const and b.dtype == DType.FLOAT32 and len(node.inputs) <= 2 \
                    and a.get("activation", "none") == "none":
                return "qmatmul"  # two activations: per-tensor int8 product
            ok = b.is_const and b.type.rank == 2 and len(node.inputs) <= 2 and x.type.rank >= 1
            return "matmul" if ok else None
        if op in ("Add", "Mul") and len(node.inputs) == 2:
            if all(v.dtype == DType.FLOAT32 for v in node.inputs) and \
                    not all(v.is_const for v in node.inputs):
                return op.lower()
            return None
        if op == "AveragePool" and a.get("layout") == "NHWC" and len(a["kernel_shape"]) <= 2:
            return "avgpool"
        if op == "GlobalAveragePool" and a.get("layout") == "NHWC":
            return "gap"
        if op == "PRelu":
            return "prelu" if standalone_slopes(node) is not None else None
        opdef = get_op(op)
        if opdef.quant == QuantRule.LOOKUP and len(node.inputs) == 1 and \
                type(opdef).__module__.endswith("elementwise"):
            return "lookup"
        if op == "Concat":
            return "concat" if all(v.dtype == DType.FLOAT32 and not v.is_const
                                   for v in node.inputs) else None
        if op in ("Relu", "Clip"):
            return "clamp"
        if opdef.quant == QuantRule.SAME_AS_INPUT and DType.INT8 in getattr(opdef, "dtypes", ()):
            others = [v for v in node.inputs[1:] if v is not None]
            if any(v.dtype.is_float and not v.is_const for v in others):
                return None
            return "same"
        return None

    def plan(self) -> None:
        """Decide which nodes run in int8 (step 1 of the module docstring)."""
        g = self.g
        for node in g.nodes:
            self.kind[id(node)] = self.classify(node)
            if self.kind[id(node)] in COMPUTE_KINDS:
                self.int8.add(id(node))
        changed = True
        while changed:
            changed = False
            for node in g.nodes:
                k = self.kind[id(node)]
                if k not in ("same", "concat", "clamp") or id(node) in self.int8:
                    continue
                data = [node.input(0)] if k != "concat" else list(node.inputs)
                fed = any(v.producer is not None and id(v.producer) in self.int8 for v in data)
                wanted = any(id(u) in self.int8 for v in node.outputs for u in v.users)
                if fed or wanted:
                    self.int8.add(id(node))
                    changed = True

    # ---------------------------------------------------------------- parameters
    def own_params(self, name: str) -> QuantParams:
        """Parameters from the calibrated range of value `name`."""
        if name in self.forced:
            return self.forced[name]
        if name not in self.params:
            lo, hi = self.cal.range_of(name)
            self.params[name] = params_from_range(lo, hi)
        return self.params[name]

    def params_of(self, v: Value) -> QuantParams:
        """Parameters of value `v` in its int8 form (same-scale ops inherit their input's)."""
        if v.name in self.forced:
            return self.forced[v.name]
        node = v.producer
        if node is not None and id(node) in self.int8 and \
                self.kind[id(node)] in ("same", "clamp"):
            return self.params_of(node.input(0))
        return self.own_params(v.name)

    def foldable_clamp(self, node: Node) -> bool:
        """A Relu/Clip reading the sole output use of an int8 layer with a clamp epilogue."""
        x = node.input(0)
        prod = x.producer
        return (id(node) in self.int8 and self.kind[id(node)] == "clamp"
                and prod is not None and id(prod) in self.int8 and len(x.uses) == 1
                and x not in self.g.outputs
                and self.kind[id(prod)] in ("conv", "gemm", "matmul", "qmatmul", "add", "mul",
                                            "avgpool", "gap")
                and prod.attrs.get("activation", "none") in CLAMP_ACTIVATIONS)

    def fold_clamp_params(self) -> None:
        """A layer whose Relu/Clip folds into its clamp writes with the clamp output's scale."""
        for node in self.g.nodes:
            if self.foldable_clamp(node):
                self.forced[node.input(0).name] = self.own_params(node.output.name)

    def force_concat_params(self) -> None:
        """Concat inputs written only for the Concat by int8 compute nodes share its scale."""
        for node in reversed(self.g.nodes):
            if id(node) not in self.int8 or self.kind[id(node)] != "concat":
                continue
            out = self.forced.get(node.output.name) or self.own_params(node.output.name)
            for v in node.inputs:
                prod = v.producer
                if prod is not None and id(prod) in self.int8 and len(v.uses) == 1 \
                        and v not in self.g.outputs \
                        and self.kind[id(prod)] in ("conv", "gemm", "matmul", "qmatmul", "add",
                                                    "mul", "avgpool", "gap", "concat") \
                        and prod.attrs.get("activation", "none") in CLAMP_ACTIVATIONS:
                    self.forced[v.name] = out

    # ---------------------------------------------------------------- value access
    def int8_of(self, v: Value, before: Node) -> Value:
        """The int8 form of float value `v` (a QuantizeLinear, or compile-time constant)."""
        if v.name in self.qval:
            return self.qval[v.name]
        p = self.params_of(v) if not v.is_const else self._const_params(v)
        if v.is_const:
            q = qmath.quantize_float(v.data, _scale(p), _zp(p)).astype(np.int8)
            qv = self.g.const(q, v.name + "_int8")
        else:
            node = self.g.add_node(
                "QuantizeLinear",
                [v, self.g.const(np.float32(_scale(p)), v.name + "_scale"),
                 self.g.const(np.int8(_zp(p)), v.name + "_zp")],
                attrs={"output_dtype": 3}, name=f"{v.name}_quantize", before=before,
                output_names=[v.name + "_int8"])
            qv = node.output
        qv.quant = p
        self.qval[v.name] = qv
        return qv

    def _const_params(self, v: Value) -> QuantParams:
        data = np.asarray(v.data, np.float32)
        return params_from_range(float(data.min()), float(data.max()))

    def float_of(self, v: Value, before: Node) -> Value:
        """The float form of `v` (a DequantizeLinear when `v` exists only in int8)."""
        if v.name not in self.qval or (v.producer is not None and id(v.producer) not in self.int8):
            return v
        if v.name not in self.fval:
            q = self.qval[v.name]
            p = q.quant
            node = self.g.add_node(
                "DequantizeLinear",
                [q, self.g.const(np.float32(_scale(p)), v.name + "_dq_scale"),
                 self.g.const(np.int8(_zp(p)), v.name + "_dq_zp")],
                name=f"{v.name}_dequantize", before=before, output_names=[v.name + "_deq"])
            self.fval[v.name] = node.output
        return self.fval[v.name]

    def free_name(self, node: Node) -> str:
        """Rename the float node being replaced, so that its int8 form can take its name."""
        if "source_name" not in node.meta:
            node.meta["source_name"] = node.name
            self.g._node_names.discard(node.name)
            node.name = self.g.unique_node_name(node.name + "__float")
            self.g._node_names.add(node.name)
        return node.meta["source_name"]

    def _emit(self, node: Node, op: str, inputs, attrs: dict, out_params: QuantParams,
              suffix: str = "") -> Value:
        name = self.free_name(node) + suffix
        new = self.g.add_node(op, inputs, attrs=attrs, name=name, before=node,
                              output_names=[node.output.name + (suffix or "_int8")])
        new.output.quant = out_params
        return new.output

    def _record(self, node: Node, op: str, x: QuantParams, y: QuantParams, **extra) -> None:
        self.record_to.layers.append({"node": node.meta.get("source_name", node.name),
                                 "value": node.outputs[0].name,
                                 "source_op": node.op, "op": op,
                                 "x_scale": _scale(x), "x_zero_point": _zp(x),
                                 "y_scale": _scale(y), "y_zero_point": _zp(y), **extra})

    def _take_layers_writing(self, name: str) -> list[dict]:
        """The layer records whose output value is `name`, removed from the index (which
        takes in records added since the last call): O(1) amortised, not a scan of all."""
        layers = self.record_to.layers
        if self._layers_indexed > len(layers):  # the list was replaced: index it afresh
            self._layer_index, self._layers_indexed = {}, 0
        for rec in layers[self._layers_indexed:]:
            self._layer_index.setdefault(rec["value"], []).append(rec)
        self._layers_indexed = len(layers)
        return self._layer_index.pop(name, [])

    # ---------------------------------------------------------------- rewrites
    def _requant_layer(self, node: Node, op: str, xq: Value, w_q: np.ndarray, w_scale,
                       bias, geometry: dict) -> Value:
        """QConv/QGemm with fused clamp, plus a QLookup for other activations."""
        a = node.attrs
        xp = xq.quant
        act = a.get("activation", "none")
        lookup = act not in CLAMP_ACTIVATIONS
        yp = self.own_params(node.output.name + PRE_ACTIVATION) if lookup else \
            self.params_of(node.output)
        real = np.float64(_scale(xp)) * w_scale.astype(np.float64) / np.float64(_scale(yp))
        lo, hi = activation_range(act if act in CLAMP_ACTIVATIONS else "none", _scale(yp),
                                  _zp(yp), a.get("act_alpha", 0.0), a.get("act_beta", 0.0))
        attrs = {**geometry, "x_zero_point": _zp(xp), "y_zero_point": _zp(yp),
                 **requant_attrs(real), "act_min": lo, "act_max": hi, "x_scale": _scale(xp),
                 "y_scale": _scale(yp), "w_scale": [float(s) for s in w_scale]}
        b_q = quantize_bias(bias, _scale(xp), w_scale)
        inputs = [xq, self.g.const(w_q, node.name + "_w_int8"),
                  self.g.const(b_q, node.name + "_bias_int32")]
        y = self._emit(node, op, inputs, attrs, yp,
                       "" if not lookup else PRE_ACTIVATION.replace(":", "_"))
        self._record(node, op, xp, yp, w_scale_min=float(w_scale.min()),
                     w_scale_max=float(w_scale.max()), activation=act)
        if act == "prelu":
            return emit_qprelu(self, node, y, a["act_slope"], self.params_of(node.output),
                               "_act")
        if lookup:
            final = self.params_of(node.output)
            axis = -1
            table = lookup_table(lambda v: activation_np(v, a, axis), _scale(yp), _zp(yp),
                                 _scale(final), _zp(final))
            y = self._emit(node, "QLookup", [y], {
                "table": table, "function": act, "x_scale": _scale(yp), "x_zero_point": _zp(yp),
                "y_scale": _scale(final), "y_zero_point": _zp(final)}, final, "_act")
        return y

    def rewrite_conv(self, node: Node) -> Value:
        """Conv (NHWC, constant weights) -> QConv [+ QLookup]."""
        xq = self.int8_of(node.input(0), node)
        w_q, w_scale = quantize_weights(node.input(1).data, axis=0)
        b = node.input(2).data if node.input(2) is not None else None
        geometry = {k: node.attrs[k] for k in CONV_GEOMETRY}
        return self._requant_layer(node, "QConv", xq, w_q, w_scale, b, geometry)

    def _gemm_bias(self, node: Node) -> np.ndarray | None:
        """beta * C as one value per output column, or None when C varies along rows."""
        c = node.input(2)
        n = node.output.shape[-1]
        data = np.asarray(c.data, np.float32)
        full = np.broadcast_to(data, node.output.shape)
        if not np.all(full == full[:1]):
            return None
        return np.float32(node.attrs["beta"]) * full[0].reshape(n)

    def rewrite_gemm(self, node: Node) -> Value:
        """Gemm (constant B, transA=0) -> QGemm with weights [N, K]."""
        a = node.attrs
        b = node.input(1).data.astype(np.float32)
        w_nk = (b if a["transB"] else b.T) * np.float32(a["alpha"])
        w_q, w_scale = quantize_weights(w_nk, axis=0)
        bias = self._gemm_bias(node) if node.input(2) is not None else None
        xq = self.int8_of(node.input(0), node)
        return self._requant_layer(node, "QGemm", xq, w_q, w_scale, bias, {})

    def rewrite_matmul(self, node: Node) -> Value:
        """MatMul with a constant 2-D B -> QGemm (rows = leading dims of x)."""
        w_q, w_scale = quantize_weights(node.input(1).data.astype(np.float32).T, axis=0)
        xq = self.int8_of(node.input(0), node)
        return self._requant_layer(node, "QGemm", xq, w_q, w_scale, None, {})

    def rewrite_qmatmul(self, node: Node) -> Value:
        """MatMul of two activations -> QMatMul (per-tensor parameters)."""
        aq, bq = (self.int8_of(v, node) for v in node.inputs)
        ap, bp, yp = aq.quant, bq.quant, self.params_of(node.output)
        attrs = {"a_zero_point": _zp(ap), "b_zero_point": _zp(bp), "y_zero_point": _zp(yp),
                 **requant_attrs([_scale(ap) * _scale(bp) / _scale(yp)]),
                 "act_min": QMIN, "act_max": QMAX, "a_scale": _scale(ap),
                 "b_scale": _scale(bp), "y_scale": _scale(yp)}
        self._record(node, "QMatMul", ap, yp, b_scale=_scale(bp), b_zero_point=_zp(bp))
        return self._emit(node, "QMatMul", [aq, bq], attrs, yp)

    def rewrite_binary(self, node: Node) -> Value:
        """Add / Mul -> QAdd / QMul (constant operands quantised per tensor)."""
        aq, bq = (self.int8_of(v, node) for v in node.inputs)
        ap, bp, yp = aq.quant, bq.quant, self.params_of(node.output)
        if node.op == "Add":
            attrs = qadd_attrs(_scale(ap), _scale(bp), _scale(yp))
            op = "QAdd"
        else:
            attrs = qmul_attrs(_scale(ap), _scale(bp), _scale(yp))
            op = "QMul"
        attrs.update({"a_zero_point": _zp(ap), "b_zero_point": _zp(bp), "y_zero_point": _zp(yp),
                      "act_min": QMIN, "act_max": QMAX})
        self._record(node, op, ap, yp, b_scale=_scale(bp), b_zero_point=_zp(bp))
        return self._emit(node, op, [aq, bq], attrs, yp)

    def rewrite_avgpool(self, node: Node) -> Value:
        """AveragePool -> QAveragePool (a multiplier per window count)."""
        xq = self.int8_of(node.input(0), node)
        xp, yp = xq.quant, self.params_of(node.output)
        max_count = int(np.prod(node.attrs["kernel_shape"]))
        attrs = {k: node.attrs[k] for k in POOL_GEOMETRY if k in node.attrs}
        attrs.update(average_pool_attrs(_scale(xp), _scale(yp), max_count))
        attrs.update({"x_zero_point": _zp(xp), "y_zero_point": _zp(yp)})
        self._record(node, "QAveragePool", xp, yp)
        return self._emit(node, "QAveragePool", [xq], attrs, yp)

    def rewrite_gap(self, node: Node) -> Value:
        """GlobalAveragePool -> QGlobalAveragePool (one multiplier for the window size)."""
        xq = self.int8_of(node.input(0), node)
        xp, yp = xq.quant, self.params_of(node.output)
        count = int(np.prod(node.input(0).shape[1:-1]))
        mult = requant_attrs([_scale(xp) / (_scale(yp) * count)])
        attrs = {"layout": node.attrs["layout"], "mode": "requantize", **mult,
                 "x_zero_point": _zp(xp), "y_zero_point": _zp(yp), "x_scale": _scale(xp),
                 "y_scale": _scale(yp)}
        self._record(node, "QGlobalAveragePool", xp, yp)
        return self._emit(node, "QGlobalAveragePool", [xq], attrs, yp)

    def rewrite_lookup(self, node: Node) -> Value:
        """A unary float function -> QLookup (256-entry table)."""
        xq = self.int8_of(node.input(0), node)
        xp, yp = xq.quant, self.params_of(node.output)
        table = lookup_table_for_op(node.op, node.attrs, _scale(xp), _zp(xp), _scale(yp),
                                    _zp(yp))
        self._record(node, "QLookup", xp, yp)
        return self._emit(node, "QLookup", [xq], {
            "table": table, "function": node.op, "x_scale": _scale(xp), "x_zero_point": _zp(xp),
            "y_scale": _scale(yp), "y_zero_point": _zp(yp)}, yp)

    def rewrite_prelu(self, node: Node) -> Value:
        """A standalone PRelu with per-channel (last axis) or scalar slopes -> QPRelu."""
        xq = self.int8_of(node.input(0), node)
        return emit_qprelu(self, node, xq, standalone_slopes(node),
                           self.params_of(node.output), "")

    def rewrite_same(self, node: Node) -> list[Value]:
        """A same-scale op on int8 data: the op itself, its output keeping the input's scale."""
        xq = self.int8_of(node.input(0), node)
        p = xq.quant
        attrs = dict(node.attrs)
        if node.op == "Pad":
            attrs["value"] = float(qmath.quantize_float(np.float32(attrs["value"]), _scale(p),
                                                        _zp(p)))
        inputs = [xq] + list(node.inputs[1:])
        names = [v.name + "_int8" for v in node.outputs]
        new = self.g.add_node(node.op, inputs, attrs=attrs, name=self.free_name(node),
                              before=node, output_names=names)
        for v in new.outputs:
            v.quant = p
        return list(new.outputs)

    def rewrite_clamp(self, node: Node) -> Value:
        """Relu / Clip on int8: fold into the producer's clamp, or an integer Clip."""
        x = node.input(0)
        xq = self.int8_of(x, node)
        p = xq.quant
        if node.op == "Relu":
            lo, hi = activation_range("relu", _scale(p), _zp(p))
        else:
            lo, hi = activation_range("clip", _scale(p), _zp(p),
                                      max(node.attrs["min"], -3e38), min(node.attrs["max"], 3e38))
        prod = xq.producer
        if prod is not None and "act_min" in prod.attrs and len(xq.uses) == 0 and \
                len(x.uses) == 1 and x not in self.g.outputs and prod.op != "QLookup":
            prod.attrs["act_min"] = max(prod.attrs["act_min"], lo)
            prod.attrs["act_max"] = min(prod.attrs["act_max"], hi)
            for rec in self._take_layers_writing(x.name):  # they now write the clamp's output
                rec["value"] = node.output.name
                self._layer_index.setdefault(rec["value"], []).append(rec)
            return xq
        return self._emit(node, "Clip", [xq], {"min": float(lo), "max": float(hi)}, p)

    def rewrite_concat(self, node: Node) -> Value:
        """Concat on int8: inputs with other parameters are requantised to the output's."""
        yp = self.params_of(node.output)
        inputs = []
        for v in node.inputs:
            q = self.int8_of(v, node)
            if not _same_params(q.quant, yp):
                xp = q.quant
                attrs = {"x_zero_point": _zp(xp), "y_zero_point": _zp(yp),
                         **requant_attrs([_scale(xp) / _scale(yp)]),
                         "x_scale": _scale(xp), "y_scale": _scale(yp)}
                rq = self.g.add_node("QRequantize", [q], attrs=attrs, name=f"{v.name}_requant",
                                     before=node, output_names=[v.name + "_requant"])
                rq.output.quant = yp
                q = rq.output
            inputs.append(q)
        return self._emit(node, "Concat", inputs, dict(node.attrs), yp)

    # ---------------------------------------------------------------- driver
    def run(self) -> bool:
        """Apply the pass; True when any node became int8."""
        g = self.g
        self.plan()
        if not self.int8:
            return False
        self.fold_clamp_params()
        self.force_concat_params()
        for node in list(g.nodes):
            if id(node) not in self.int8:
                for i, v in enumerate(node.inputs):
                    if v is not None and v.name in self.qval and v.producer is not None \
                            and id(v.producer) in self.int8:
                        node.set_input(i, self.float_of(v, node))
                continue
            kind = self.kind[id(node)]
            handler = {"conv": self.rewrite_conv, "gemm": self.rewrite_gemm,
                       "matmul": self.rewrite_matmul, "qmatmul": self.rewrite_qmatmul,
                       "add": self.rewrite_binary,
                       "mul": self.rewrite_binary, "avgpool": self.rewrite_avgpool,
                       "gap": self.rewrite_gap, "lookup": self.rewrite_lookup,
                       "same": self.rewrite_same, "clamp": self.rewrite_clamp,
                       "concat": self.rewrite_concat, "prelu": self.rewrite_prelu}[kind]
            outs = handler(node)
            outs = outs if isinstance(outs, list) else [outs]
            for old, new in zip(node.outputs, outs):
                self.qval[old.name] = new
                self.record_to.value_map[old.name] = new.name
        for v in list(g.outputs):
            if v.producer is not None and id(v.producer) in self.int8:
                last = g.nodes[-1]
                dq = self.float_of(v, last)
                g.replace_output_keep_name(v, dq)
        g.toposort()
        g.remove_dead()
        g.meta["quantized"] = True
        return True


@register_pass("quantize", takes_options=True)
def quantize(g: Graph, options: PassOptions) -> bool:
    """Rewrite the graph into int8 ops as `options.quant` says (static: with its calibration;
    dynamic: Gemm/MatMul weights only), recording into `options.quant_record`."""
    opts = options.quant
    if opts is None:
        return False
    if opts.mode == "dynamic":
        return quantize_dynamic(g, opts, options.quant_record)
    if opts.calibration is None:
        raise EdgecError("the quantize pass needs calibration statistics (PassOptions.quant)")
    return Quantizer(g, opts, options.quant_record).run()


__all__ = ["Quantizer", "quantize"]
