"""`edgec export-qdq`: edgec's int8 graph written as a QDQ ONNX model that onnxruntime runs.

Every int8 op becomes DequantizeLinear -> float op -> QuantizeLinear with the scales edgec
chose, as its int8 facet writes it (`to_qdq`, edgec/ops/int8_export.py lists the forms), so
onnxruntime recomputes the same quantised network independently (its own requantisation:
float, round half to even, where edgec uses TFLite's fixed point; results agree within 1 LSB
almost everywhere); QLookup is exact (a Gather from its table) and an int8 Clip is a Clip on
int8 with int8 bounds.
Same-scale ops (views, Transpose, Concat, MaxPool, Pad, Slice...) run on int8 data, and float
islands as float ops. Channels-last spatial ops are wrapped in Transposes (ONNX is NCHW).
Written with opset 17.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from edgec.errors import UnsupportedError
from edgec.ir import DType, Graph, Node, Value
from edgec.ops import get_op

OPSET = 17
ONNX_DTYPES = {DType.FLOAT32: TensorProto.FLOAT, DType.INT8: TensorProto.INT8,
               DType.UINT8: TensorProto.UINT8, DType.INT32: TensorProto.INT32,
               DType.INT64: TensorProto.INT64, DType.BOOL: TensorProto.BOOL}
IR_ONLY_ATTRS = ("layout", "activation", "act_alpha", "act_beta", "act_slope")
# Ops written as themselves (IR attributes are ONNX attributes, minus IR_ONLY_ATTRS).
PLAIN_OPS = {"Relu", "Sigmoid", "Tanh", "Exp", "Log", "Sqrt", "Neg", "Abs", "Erf", "Floor",
             "Ceil", "Reciprocal", "Softplus", "Softsign", "LeakyRelu", "Elu", "Selu",
             "HardSigmoid", "HardSwish", "Add", "Sub", "Mul", "Div", "Pow", "PRelu", "Max",
             "Min", "Sum", "Mean", "Transpose", "Flatten", "Concat", "Identity", "Where",
             "Equal", "Less", "Greater", "Gemm", "MatMul", "DepthToSpace", "SpaceToDepth"}
SPATIAL_PLAIN = {"MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "Conv"}


class QDQWriter:
    """Builds the ONNX graph node by node (see the module docstring); the int8 ops' export
    facets (edgec/ops/int8_export.py) write through its helpers."""

    ONNX_INT32 = TensorProto.INT32

    def __init__(self, g: Graph):
        self.g = g
        self.nodes: list = []
        self.inits: list = []
        self.counter = 0

    # ---------------------------------------------------------------- helpers
    def fresh(self, hint: str) -> str:
        """A new tensor name."""
        self.counter += 1
        return f"{hint}__qdq{self.counter}"

    def init(self, data, hint: str) -> str:
        """Add an initializer; returns its name."""
        name = self.fresh(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(data), name))
        return name

    def name_of(self, v: Value) -> str:
        """The ONNX name of an IR value (constants become initializers once)."""
        if v.is_const:
            key = f"const::{v.name}"
            if key not in self.__dict__.setdefault("_consts", {}):
                self._consts[key] = self.init(v.data, v.name)
            return self._consts[key]
        return v.name

    def add(self, op: str, inputs: list[str], outputs: list[str] | None = None,
            hint: str = "t", **attrs) -> str:
        """Append an ONNX node; returns its (first) output name."""
        outs = outputs or [self.fresh(hint)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=self.fresh(op), **attrs))
        return outs[0]

    def dq(self, x: str, scale, zp, axis: int | None = None) -> str:
        """DequantizeLinear with constant scale and zero point."""
        extra = {"axis": axis} if axis is not None else {}
        return self.add("DequantizeLinear", [x, self.init(np.asarray(scale, np.float32), "s"),
                                             self.init(zp, "zp")], hint="dq", **extra)

    def q(self, x: str, scale: float, zp: int, out: str) -> str:
        """QuantizeLinear to int8 into tensor `out`."""
        return self.add("QuantizeLinear", [x, self.init(np.float32(scale), "s"),
                                           self.init(np.int8(zp), "zp")], [out])

    def clip_float(self, x: str, lo: int, hi: int, scale: float, zp: int) -> str:
        """The float clamp that makes Q saturate exactly at [lo, hi] (none when full range)."""
        if lo <= -128 and hi >= 127:
            return x
        lo_f = np.float32((lo - zp) * scale) if lo > -128 else np.float32(-3.0e38)
        hi_f = np.float32((hi - zp) * scale) if hi < 127 else np.float32(3.0e38)
        return self.add("Clip", [x, self.init(lo_f, "lo"), self.init(hi_f, "hi")])

    def nchw(self, x: str, rank: int) -> str:
        """Channels-last -> channels-first."""
        return self.add("Transpose", [x], perm=[0, rank - 1, *range(1, rank - 1)])

    def nhwc(self, x: str, rank: int, out: str | None = None) -> str:
        """Channels-first -> channels-last."""
        return self.add("Transpose", [x], [out] if out else None, perm=[0, *range(2, rank), 1])

    def dq_value(self, v: Value, zp_attr: str | None = None, scale=None, zp=None) -> str:
        """DequantizeLinear of an int8 IR value with its own parameters."""
        p = v.quant
        s = float(p.scale[0]) if scale is None else scale
        z = int(p.zero_point[0]) if zp is None else zp
        return self.dq(self.name_of(v), np.float32(s), np.int8(z))

    # ---------------------------------------------------------------- other ops
    def plain(self, node: Node) -> None:
        """An op written as itself (views get their shape/axes back as inputs)."""
        a = {k: v for k, v in node.attrs.items() if k not in IR_ONLY_ATTRS}
        ins = [self.name_of(v) if v is not None else "" for v in node.inputs]
        outs = [v.name for v in node.outputs]
        op = node.op
        act = node.attrs.get("activation", "none")
        if op in ("Gemm", "MatMul", "Conv") and (act != "none" or
                                                  len([v for v in node.inputs if v]) > 3):
            raise UnsupportedError(f"export-qdq: float {op} node '{node.name}' has a fused "
                                   "epilogue, which the exporter does not write")
        if op == "Reshape":
            ins = [ins[0], self.init(np.asarray(a.pop("shape"), np.int64), "shape")]
        elif op in ("Squeeze", "Unsqueeze"):
            axes = a.pop("axes")
            ins = ins[:1] + ([self.init(np.asarray(axes, np.int64), "axes")]
                             if axes is not None else [])
        elif op == "Softmax":
            axes = a.pop("axes")
            if len(axes) != 1:
                raise UnsupportedError(f"export-qdq: Softmax node '{node.name}' over several "
                                       "axes")
            a["axis"] = axes[0]
        elif op == "Clip":
            ctype = node.input(0).dtype.np
            lo, hi = a.pop("min"), a.pop("max")
            if np.issubdtype(ctype, np.integer):
                info = np.iinfo(ctype)
                lo, hi = max(lo, info.min), min(hi, info.max)
            ins = ins[:1] + [self.init(np.asarray(lo).astype(ctype), "lo"),
                             self.init(np.asarray(hi).astype(ctype), "hi")]
        elif op == "Pad":
            pads, mode, value = a.pop("pads"), a.pop("mode"), a.pop("value")
            ctype = node.input(0).dtype.np
            ins = ins[:1] + [self.init(np.asarray(pads, np.int64), "pads"),
                             self.init(np.asarray(value).astype(ctype), "value")]
            a["mode"] = mode
        elif op == "Slice":
            ins = ins[:1] + [self.init(np.asarray(a.pop(k), np.int64), k)
                             for k in ("starts", "ends", "axes", "steps")]
        elif op == "Split":
            ins = ins[:1] + [self.init(np.asarray(a.pop("split"), np.int64), "split")]
        elif op in ("QuantizeLinear", "DequantizeLinear"):
            a = {"axis": a["axis"]} if node.input(1).type.numel > 1 else {}
        elif op not in PLAIN_OPS and op not in SPATIAL_PLAIN:
            raise UnsupportedError(f"export-qdq: {op} node '{node.name}' cannot be written "
                                   "as ONNX yet")
        if op in SPATIAL_PLAIN and node.attrs.get("layout") == "NHWC":
            rank = len(node.input(0).shape)
            ins[0] = self.nchw(ins[0], rank)
            a = {k: v for k, v in a.items() if v not in ([], ())}
            y = self.add(op, ins, **a)
            self.nhwc(y, rank, outs[0])
            return
        a = {k: v for k, v in a.items() if v is not None and v != [] and v != ()}
        self.add(op, ins, outs, **a)

    def write(self) -> onnx.ModelProto:
        """The ONNX model of the whole graph."""
        for node in self.g.nodes:
            op = get_op(node.op)
            if not op.quant.to_qdq(op, node, self):  # int8 ops: DQ -> float op -> Q
                self.plain(node)
        g = self.g
        in_names = g.meta.get("input_names") or [v.name for v in g.inputs]
        out_names = g.meta.get("output_names") or [v.name for v in g.outputs]
        inputs = [helper.make_tensor_value_info(v.name, ONNX_DTYPES[v.dtype], list(v.shape))
                  for v in g.inputs]
        outputs = [helper.make_tensor_value_info(v.name, ONNX_DTYPES[v.dtype], list(v.shape))
                   for v in g.outputs]
        graph = helper.make_graph(self.nodes, g.name, inputs, outputs, self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="edgec export-qdq")
        model.ir_version = 8
        for v, public in list(zip(g.inputs, in_names)) + list(zip(g.outputs, out_names)):
            if v.name != public:
                _rename(model, v.name, public)
        onnx.checker.check_model(model)
        return model


def _rename(model: onnx.ModelProto, old: str, new: str) -> None:
    for n in model.graph.node:
        n.input[:] = [new if x == old else x for x in n.input]
        n.output[:] = [new if x == old else x for x in n.output]
    for vi in list(model.graph.input) + list(model.graph.output):
        if vi.name == old:
            vi.name = new


def qdq_model(g: Graph) -> onnx.ModelProto:
    """The QDQ ONNX model of an int8 IR graph."""
    return QDQWriter(g).write()


def export_qdq(result, path: str | Path) -> Path:
    """Write the int8 graph of a CompileResult as a QDQ ONNX file."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(qdq_model(result.graph), str(out))
    return out
