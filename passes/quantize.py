"""quantize: rewrite a calibrated fp32 graph into edgec's int8 ops (TFLite int8 scheme).

Input: the graph after the target's fp32 pipeline (fused epilogues, channels-last) and the
pipeline's `PassOptions.quant`, an `edgec.quant.config.QuantOptions` holding the calibration
statistics of every float value (mode "static"; mode "dynamic" is passes/_quantize_dynamic.py).
Output: the same function on int8 data, with float32 graph inputs and outputs (QuantizeLinear
after the inputs, DequantizeLinear before the outputs); what was done is written to
`PassOptions.quant_record` (per-layer records, float value -> int8 value).

Each op's int8 facet (`OpDef.quant`, edgec/ops/int8_facet.py) says whether and how it runs
in int8; this pass never looks at op names. Algorithm:
1. Plan every node with its facet (unless `--keep-float` names it or its op). A *compute*
   node (Conv/Gemm/MatMul with constant weights, MatMul of two activations, Add, Mul,
   AveragePool, GlobalAveragePool, PRelu, unary functions as lookup tables) becomes int8. A
   *same-scale*, *clamp* or *concat* node (views, Transpose, MaxPool, Pad, Slice, Relu/Clip,
   Concat...) becomes int8 when its data input is produced in int8, or when one of its
   readers is int8 (fixpoint): so a Transpose between the graph input and the first Conv
   runs on int8 data. Everything else is float.
2. Quantisation parameters: each value an int8 compute node writes gets scale and zero point
   from its calibrated range (qmath.choose_qparams, asymmetric int8). Same-scale nodes keep
   their input's parameters. A Concat's inputs that are written by int8 layers with a clamp
   epilogue for the Concat alone are given the Concat's parameters (no requantisation);
   other mismatching inputs get a QRequantize. A layer whose Relu/Clip folds into its clamp
   writes with the Relu/Clip output's parameters.
3. Rewrite in execution order, each int8 node by its facet (`quantize`). Wherever a float
   node reads an int8 value a DequantizeLinear is inserted, and wherever an int8 node reads
   a float value a QuantizeLinear (once per value).
"""

from __future__ import annotations

import numpy as np

from edgec import qmath
from edgec.errors import EdgecError
from edgec.ir import DType, Graph, Node, QuantParams, Value
from edgec.ops import get_op
from edgec.ops.int8_facet import Int8Facet, scale_of, zero_point_of
from edgec.ops.int8_scheme import CLAMP_ACTIVATIONS, params_from_range
from edgec.passes._quantize_dynamic import quantize_dynamic
from edgec.passes.registry import PassOptions, register_pass

PROPAGATING_ROLES = ("same", "concat", "clamp")  # int8 when a neighbour is
INHERITING_ROLES = ("same", "clamp")  # the output keeps the input's parameters


class Quantizer:
    """One run of the quantize pass over a graph (see the module docstring). The facets call
    back `int8_of`, `params_of`, `own_params`, `has_stats`, `emit`, `record`, `free_name` and
    `tighten_clamp`."""

    def __init__(self, g: Graph, options, record):
        self.g = g
        self.opts = options
        self.cal = options.calibration
        self.quant_record = record  # QuantRecord: layer records and the value map
        self.params: dict[str, QuantParams] = {}
        self.forced: dict[str, QuantParams] = {}
        self.qval: dict[str, Value] = {}  # float value name -> its int8 replacement
        self.fval: dict[str, Value] = {}  # int8-only value name -> dequantised float value
        self.kind: dict[int, str | None] = {}  # by id(node): the facet's plan
        self.facet: dict[int, Int8Facet] = {}  # by id(node)
        self.int8: set[int] = set()  # id() of int8 nodes
        self._layer_index: dict[str, list[dict]] = {}  # output value -> quant_record.layers
        self._layers_indexed = 0  # how many of quant_record.layers are in _layer_index

    # ---------------------------------------------------------------- planning
    def classify(self, node: Node) -> str | None:
        """The int8 rewrite `node`'s facet plans, or None when it stays float."""
        if self.opts.keeps_float(node.name, node.op):
            return None
        x = node.input(0)
        if x is None or x.dtype != DType.FLOAT32 or any(
                v.dtype != DType.FLOAT32 for v in node.outputs):
            return None
        op = get_op(node.op)
        return op.quant.plan(op, node, self)

    def is_compute(self, node: Node) -> bool:
        """True when `node` would become an int8 compute op (its own output scale)."""
        return self.classify(node) is not None and get_op(node.op).quant.role == "compute"

    def weight_bits(self, node: Node) -> int:
        """The storage width of `node`'s weights: 4 under `--weight-bits 4` unless the layer
        is one mixed precision keeps at int8, else 8."""
        bits = getattr(self.opts, "weight_bits", 8)
        keep8 = getattr(self.opts, "int8_weight_layers", ())
        source = node.meta.get("source_name", node.name)
        return 8 if bits == 8 or node.name in keep8 or source in keep8 else bits

    def has_stats(self, name: str) -> bool:
        """True when calibration observed value `name` (e.g. a pre-activation NAME::pre)."""
        return name in self.cal.stats

    def _role(self, node: Node) -> str:
        return self.facet[id(node)].role

    def plan(self) -> None:
        """Decide which nodes run in int8 (step 1 of the module docstring)."""
        g = self.g
        for node in g.nodes:
            self.facet[id(node)] = get_op(node.op).quant
            self.kind[id(node)] = self.classify(node)
            if self.kind[id(node)] is not None and self._role(node) == "compute":
                self.int8.add(id(node))
        changed = True
        while changed:
            changed = False
            for node in g.nodes:
                if self.kind[id(node)] is None or self._role(node) not in PROPAGATING_ROLES \
                        or id(node) in self.int8:
                    continue
                concat = self._role(node) == "concat"
                data = list(node.inputs) if concat else [node.input(0)]
                fed = any(v.producer is not None and id(v.producer) in self.int8 for v in data)
                wanted = any(id(u) in self.int8 for v in node.outputs for u in v.users)
                if fed or wanted:
                    self.int8.add(id(node))
                    changed = True

    def float_reasons(self) -> dict[str, str]:
        """Why each node that stays float32 does, by node name (after `plan`)."""
        out = {}
        for node in self.g.nodes:
            if id(node) in self.int8 or not node.outputs or \
                    not all(v.dtype.is_float for v in node.outputs):
                continue
            x = node.input(0)
            if self.opts.keeps_float(node.name, node.op):
                out[node.name] = "--keep-float names it" if node.name in self.opts.keep_float \
                    else f"--keep-float names its op {node.op}"
            elif x is None or x.dtype != DType.FLOAT32 or \
                    any(v.dtype != DType.FLOAT32 for v in node.outputs):
                out[node.name] = "its data is not float32"
            elif self.kind[id(node)] is None:
                out[node.name] = self.facet[id(node)].float_reason(get_op(node.op), node, self)
            else:
                out[node.name] = "float island: " + self._island_source(node)
        return out

    def _island_source(self, node: Node) -> str:
        """What keeps a same-scale node float: the float node (or graph input) it reads,
        through other such nodes, when no int8 node reads it."""
        seen: set[int] = set()
        while id(node) not in seen:
            seen.add(id(node))
            v = node.input(0)
            p = v.producer
            if p is None:
                source = "a constant" if v.is_const else f"graph input '{v.name}'"
                return f"reads {source} and feeds only float nodes"
            if self.kind.get(id(p)) is None or id(p) in self.int8:
                return f"reads the output of float node '{p.name}' ({p.op})"
            node = p
        return "no int8 neighbour"

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
        if node is not None and id(node) in self.int8 and self._role(node) in INHERITING_ROLES:
            return self.params_of(node.input(0))
        return self.own_params(v.name)

    def _writes_through_clamp(self, v: Value) -> bool:
        """`v` is the only use of an int8 layer whose clamp epilogue is relu/clip/none."""
        prod = v.producer
        return (prod is not None and id(prod) in self.int8 and len(v.uses) == 1
                and v not in self.g.outputs and self.facet[id(prod)].clamp_epilogue
                and prod.attrs.get("activation", "none") in CLAMP_ACTIVATIONS)

    def foldable_clamp(self, node: Node) -> bool:
        """A Relu/Clip reading the sole output use of an int8 layer with a clamp epilogue."""
        return (id(node) in self.int8 and self._role(node) == "clamp"
                and self._writes_through_clamp(node.input(0)))

    def fold_clamp_params(self) -> None:
        """A layer whose Relu/Clip folds into its clamp writes with the clamp output's scale."""
        for node in self.g.nodes:
            if self.foldable_clamp(node):
                self.forced[node.input(0).name] = self.own_params(node.output.name)

    def force_concat_params(self) -> None:
        """Concat inputs written only for the Concat by int8 compute nodes share its scale."""
        for node in reversed(self.g.nodes):
            if id(node) not in self.int8 or self._role(node) != "concat":
                continue
            out = self.forced.get(node.output.name) or self.own_params(node.output.name)
            for v in node.inputs:
                prod = v.producer
                if prod is not None and id(prod) in self.int8 and len(v.uses) == 1 \
                        and v not in self.g.outputs \
                        and (self.facet[id(prod)].clamp_epilogue
                             or self._role(prod) == "concat") \
                        and prod.attrs.get("activation", "none") in CLAMP_ACTIVATIONS:
                    self.forced[v.name] = out

    # ---------------------------------------------------------------- value access
    def int8_of(self, v: Value, before: Node) -> Value:
        """The int8 form of float value `v` (a QuantizeLinear, or compile-time constant)."""
        if v.name in self.qval:
            return self.qval[v.name]
        p = self.params_of(v) if not v.is_const else self._const_params(v)
        if v.is_const:
            q = qmath.quantize_float(v.data, scale_of(p), zero_point_of(p)).astype(np.int8)
            qv = self.g.const(q, v.name + "_int8")
        else:
            node = self.g.add_node(
                "QuantizeLinear",
                [v, self.g.const(np.float32(scale_of(p)), v.name + "_scale"),
                 self.g.const(np.int8(zero_point_of(p)), v.name + "_zp")],
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
                [q, self.g.const(np.float32(scale_of(p)), v.name + "_dq_scale"),
                 self.g.const(np.int8(zero_point_of(p)), v.name + "_dq_zp")],
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

    def emit(self, node: Node, op: str, inputs, attrs: dict, out_params: QuantParams,
             suffix: str = "") -> Value:
        """Add int8 node `op` in place of float `node` (named after it); its output value."""
        name = self.free_name(node) + suffix
        new = self.g.add_node(op, inputs, attrs=attrs, name=name, before=node,
                              output_names=[node.output.name + (suffix or "_int8")])
        new.output.quant = out_params
        return new.output

    def record(self, node: Node, op: str, x: QuantParams, y: QuantParams, **extra) -> None:
        """Append the layer record of float `node` becoming `op` (report.json)."""
        self.quant_record.layers.append({
            "node": node.meta.get("source_name", node.name), "value": node.outputs[0].name,
            "source_op": node.op, "op": op,
            "x_scale": scale_of(x), "x_zero_point": zero_point_of(x),
            "y_scale": scale_of(y), "y_zero_point": zero_point_of(y), **extra})

    def _take_layers_writing(self, name: str) -> list[dict]:
        """The layer records whose output value is `name`, removed from the index (which
        takes in records added since the last call): O(1) amortised, not a scan of all."""
        layers = self.quant_record.layers
        if self._layers_indexed > len(layers):  # the list was replaced: index it afresh
            self._layer_index, self._layers_indexed = {}, 0
        for rec in layers[self._layers_indexed:]:
            self._layer_index.setdefault(rec["value"], []).append(rec)
        self._layers_indexed = len(layers)
        return self._layer_index.pop(name, [])

    def tighten_clamp(self, producer: Node, lo: int, hi: int, old_value: str,
                      new_value: str) -> None:
        """Fold a clamp [lo, hi] into `producer`'s act_min/act_max; the layer records that
        wrote `old_value` now write `new_value` (the folded Relu/Clip's output)."""
        producer.attrs["act_min"] = max(producer.attrs["act_min"], lo)
        producer.attrs["act_max"] = min(producer.attrs["act_max"], hi)
        for rec in self._take_layers_writing(old_value):
            rec["value"] = new_value
            self._layer_index.setdefault(rec["value"], []).append(rec)

    # ---------------------------------------------------------------- driver
    def run(self) -> bool:
        """Apply the pass; True when any node became int8."""
        g = self.g
        self.plan()
        self.quant_record.float_reasons.update(self.float_reasons())
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
            outs = self.facet[id(node)].quantize(get_op(node.op), node, self)
            outs = outs if isinstance(outs, list) else [outs]
            for old, new in zip(node.outputs, outs):
                self.qval[old.name] = new
                self.quant_record.value_map[old.name] = new.name
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
