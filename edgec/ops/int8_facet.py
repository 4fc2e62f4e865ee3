"""The int8 facet: how an op runs on int8 data, asked by every quantisation path.

Every OpDef carries `quant`, an `Int8Facet`. Three paths ask it, never the op's name:

- the quantize pass (passes/quantize.py) on a calibrated float graph: `plan` names the
  rewrite of a node (None: it stays float32) and `quantize` emits its int8 form;
  in dynamic mode (passes/_quantize_dynamic.py) `dynamic_weights` picks the layers;
- import-qdq (passes/import_qdq.py) on a pre-quantised ONNX model: `from_qdq` turns
  DequantizeLinear -> node -> QuantizeLinear into the int8 op (None: the pattern stays);
- export-qdq (edgec/quant/qdq_export.py) on an int8 graph: `to_qdq` writes an int8 op as
  DequantizeLinear -> float op -> QuantizeLinear (False: the op is written as itself).

`role` says how the int8 output scale relates to the inputs'; the quantize pass plans with it:

    "float"    no int8 form: stays float32 (DequantizeLinear before, QuantizeLinear after)
    "compute"  its own calibrated output scale (Conv, Gemm, Add, lookup tables...)
    "same"     output keeps the data input's scale (views, Transpose, MaxPool, Pad...)
    "clamp"    Relu / Clip: same scale, folded into the producer's clamp where it can be
    "concat"   inputs brought to the output's scale

`clamp_epilogue`: the int8 form ends in an integer clamp (act_min, act_max), so a Relu/Clip
after it can tighten the clamp instead of running, and its output may take the scale its
single reader wants.

The generic facets are named in `QuantRule` (an op module says `quant = QuantRule.LOOKUP`);
op families with an int8 form of their own have facets in int8_layers.py and
int8_elementwise.py, edgec's int8 ops their export facets in int8_export.py.

The objects a facet is handed are the passes' own (duck-typed here, so ops import no pass):
a `quantizer` (passes/quantize.py: g, int8_of, params_of, own_params, has_stats, emit, record,
free_name, tighten_clamp), the `inputs` of import-qdq (passes/import_qdq.py QdqInputs: act,
weight, bias, dq) with a `QdqOutput`, and the export `writer` (edgec/quant/qdq_export.py
QDQWriter: dq, q, add, init, clip_float, nchw, nhwc, name_of, ONNX_INT32).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgec import qmath
from edgec.ir import DType, Graph, Node, QuantParams, Value
from edgec.ops.int8_scheme import QMAX, QMIN, lookup_table_of, requant_attrs


def scale_of(p: QuantParams) -> float:
    """The per-tensor scale of int8 parameters."""
    return float(p.scale[0])


def zero_point_of(p: QuantParams) -> int:
    """The per-tensor zero point of int8 parameters."""
    return int(p.zero_point[0])


@dataclass
class QdqOutput:
    """The QuantizeLinear ending a QDQ pattern: its scale and zero point, the clamp of a
    Relu/Clip between the op and it (full int8 range when none), where the int8 op goes."""

    graph: Graph
    scale: float
    zero_point: int
    act_min: int
    act_max: int
    before: Node

    def requant_attrs(self) -> dict:
        """The output half of a requantising int8 op's attributes."""
        return {"y_zero_point": self.zero_point, "act_min": self.act_min,
                "act_max": self.act_max}


class Int8Facet:
    """No int8 form: the op stays float32 (see the module docstring for the questions).

    `category` is how `edgec ops` and docs/ops.md list the op (float-only, same-as-input,
    requantize, lookup); `value` is the same, under the name the listing reads."""

    role = "float"
    clamp_epilogue = False
    category = "float-only"

    def __init__(self, name: str = "float-only", category: str | None = None):
        self.name = name
        if category is not None:
            self.category = category

    def __repr__(self) -> str:
        return f"<int8 facet {self.name}>"

    @property
    def value(self) -> str:
        """The category as `edgec ops` prints it."""
        return self.category

    def plan(self, op, node: Node, quantizer) -> str | None:
        """The quantize pass's rewrite for `node` (its input is float32), or None."""
        return None

    def float_reason(self, op, node: Node, quantizer) -> str:
        """Why `node` stays float32 when `plan` declined it (`edgec report`, report.json)."""
        if self.role == "float":
            return f"{node.op} has no int8 form"
        return f"{node.op}'s int8 form does not apply to this node"

    def quantize(self, op, node: Node, quantizer) -> Value | list[Value]:
        """Emit the int8 form of `node` (planned by `plan`); returns its output value(s)."""
        raise NotImplementedError(f"{self.name}: {node.op} has no int8 rewrite")

    def from_qdq(self, op, node: Node, inputs, out: QdqOutput) -> Value | None:
        """The int8 value replacing QuantizeLinear(node) of a QDQ model, or None."""
        return None

    def to_qdq(self, op, node: Node, writer) -> bool:
        """Write int8 `node` as DequantizeLinear -> float op -> QuantizeLinear (True), or
        leave it to be written as itself (False)."""
        return False

    def dynamic_weights(self, node: Node):
        """Dynamic quantisation: (weights [N, K], bias or None) in float32 when `node` is a
        fully connected layer with constant weights, else None."""
        return None


class SameScale(Int8Facet):
    """The output keeps the data input's scale: the op runs unchanged on int8 codes.
    `fill_attr` names an attribute holding a value in the data's units (Pad's fill value),
    which is quantised with the data's parameters."""

    role = "same"
    category = "same-as-input"

    def __init__(self, name: str, fill_attr: str | None = None):
        super().__init__(name)
        self.fill_attr = fill_attr

    def plan(self, op, node: Node, quantizer) -> str | None:
        """Same-scale when the op runs on int8 data and its other inputs are not float."""
        if DType.INT8 not in getattr(op, "dtypes", ()):
            return None
        others = [v for v in node.inputs[1:] if v is not None]
        if any(v.dtype.is_float and not v.is_const for v in others):
            return None
        return "same"

    def quantize(self, op, node: Node, quantizer) -> list[Value]:
        """The op itself on int8 data, its outputs keeping the input's parameters."""
        xq = quantizer.int8_of(node.input(0), node)
        p = xq.quant
        attrs = dict(node.attrs)
        if self.fill_attr:
            attrs[self.fill_attr] = float(qmath.quantize_float(
                np.float32(attrs[self.fill_attr]), scale_of(p), zero_point_of(p)))
        inputs = [xq] + list(node.inputs[1:])
        names = [v.name + "_int8" for v in node.outputs]
        g = quantizer.g
        new = g.add_node(node.op, inputs, attrs=attrs, name=quantizer.free_name(node),
                         before=node, output_names=names)
        for v in new.outputs:
            v.quant = p
        return list(new.outputs)

    def from_qdq(self, op, node: Node, inputs, out: QdqOutput) -> Value | None:
        """The op on the int8 input, plus a QRequantize when the output's parameters differ."""
        x = inputs.act(0)
        if x is None or DType.INT8 not in getattr(op, "dtypes", ()) or \
                any(d is not None for d in inputs.dq[1:]) or len(node.outputs) != 1:
            return None
        xv, xs, xzp = x
        g = out.graph
        attrs = dict(node.attrs)
        if self.fill_attr:
            fill = attrs[self.fill_attr]
            attrs[self.fill_attr] = float(np.clip(np.rint(fill / xs) + xzp, QMIN, QMAX))
        same = g.add_node(node.op, [xv] + list(node.inputs[1:]), attrs=attrs, name=node.name,
                          before=out.before).output
        if xs == out.scale and xzp == out.zero_point and out.act_min == QMIN and \
                out.act_max == QMAX:
            return same
        rq = {"x_zero_point": xzp, **out.requant_attrs(), **requant_attrs([xs / out.scale]),
              "x_scale": xs, "y_scale": out.scale}
        return g.add_node("QRequantize", [same], attrs=rq, name=node.name + "_requant",
                          before=out.before).output


class Lookup(Int8Facet):
    """A unary float function: a 256-entry table from int8 input codes to output codes."""

    role = "compute"
    category = "lookup"

    def plan(self, op, node: Node, quantizer) -> str | None:
        """A lookup table when the op has exactly one input."""
        return "lookup" if len(node.inputs) == 1 else None

    def quantize(self, op, node: Node, quantizer) -> Value:
        """QLookup with the table of the op's reference between the calibrated scales."""
        xq = quantizer.int8_of(node.input(0), node)
        xp, yp = xq.quant, quantizer.params_of(node.output)
        xs, xzp, ys, yzp = scale_of(xp), zero_point_of(xp), scale_of(yp), zero_point_of(yp)
        table = lookup_table_of(node.op, op.reference, node.attrs, xs, xzp, ys, yzp)
        quantizer.record(node, "QLookup", xp, yp)
        return quantizer.emit(node, "QLookup", [xq], {
            "table": table, "function": node.op, "x_scale": xs, "x_zero_point": xzp,
            "y_scale": ys, "y_zero_point": yzp}, yp)

    def from_qdq(self, op, node: Node, inputs, out: QdqOutput) -> Value | None:
        """QLookup with the table between the model's scales."""
        x = inputs.act(0)
        if x is None or len(node.inputs) != 1:
            return None
        xv, xs, xzp = x
        table = lookup_table_of(node.op, op.reference, node.attrs, xs, xzp, out.scale,
                                out.zero_point)
        return out.graph.add_node("QLookup", [xv], attrs={
            "table": table, "function": node.op, "x_scale": xs, "x_zero_point": xzp,
            "y_scale": out.scale, "y_zero_point": out.zero_point}, name=node.name,
            before=out.before).output


class QuantRule:
    """The generic int8 facets, by how an op's output scale relates to its input's."""

    FLOAT_ONLY = Int8Facet("float-only")  # stays float; dequantise before, quantise after
    # needs an output scale of its own, and edgec has no int8 form for it: stays float
    REQUANTIZE = Int8Facet("requantize", "requantize")
    SAME_AS_INPUT = SameScale("same-as-input")  # output keeps the input's scale
    LOOKUP = Lookup("lookup")  # a 256-entry table on int8 (sigmoid, tanh, hardswish...)


PAD_INT8 = SameScale("pad", fill_attr="value")  # the constant fill in int8 codes
# Sign is listed as a lookup (docs/ops.md) but the quantize pass has never made it one (it
# took only the lookups registered in elementwise.py): it stays float, and the refactor that
# put the int8 rule on the op changed neither the listing nor the output. (Gelu, listed the
# same way, is now a real QuantRule.LOOKUP.)
UNPLANNED_LOOKUP = Int8Facet("unplanned-lookup", "lookup")
