"""edgec IR (after the target's passes and quantisation) -> one TFLite subgraph.

The IR is already channels-last (passes/layout_nhwc.py); three patterns at its edges are
folded here so that no TRANSPOSE is left in the usual CNNs:

- a graph input that reaches a Transpose NCHW->NHWC (directly or through its QuantizeLinear)
  becomes an NHWC input of the .tflite (as TFLite models take images); the file's
  `edgec_info` metadata records the permutation, and the runner applies it to ONNX-layout
  inputs;
- a Transpose NHWC->NCHW (through a DequantizeLinear or not) giving a graph output becomes
  an NHWC output (`output_permutations` in the metadata);
- Transpose NHWC->NCHW, Flatten/Reshape to [N, C*H*W], Gemm with constant weights (a
  classifier head flattening channel-first) becomes RESHAPE + FULLY_CONNECTED whose weight
  columns are permuted to the NHWC order instead.

With `int8_io` the graph inputs' QuantizeLinear and the outputs' DequantizeLinear are left
out: the file takes and returns int8 (its I/O tensors carry the scales and zero points).

Every other node goes through the per-op tables of ops_conv.py / ops_misc.py; a node none of
them maps raises UnsupportedError naming it (one line, exit code 2 in the CLI).
"""

from __future__ import annotations

import numpy as np

from edgec.codegen.tflite.flatbuf import ModelBuilder
from edgec.codegen.tflite.ops_conv import lower_conv, lower_gemm
from edgec.codegen.tflite.ops_int8 import LOWERINGS as INT8_LOWERINGS
from edgec.codegen.tflite.ops_conv import reshape
from edgec.codegen.tflite.ops_misc import LOWERINGS
from edgec.errors import UnsupportedError

TO_NHWC = [0, 2, 3, 1]
TO_NCHW = [0, 3, 1, 2]
TABLE = {"Conv": lower_conv, "QConv": lower_conv, "Gemm": lower_gemm, "QGemm": lower_gemm,
         **LOWERINGS, **INT8_LOWERINGS}


def _perm(node) -> list[int]:
    """A Transpose node's permutation (empty when the attribute is absent: reversed axes)."""
    return list(node.attrs.get("perm") or [])


def _only_user(v):
    """The single node reading `v` (None when several or none do)."""
    users = v.users
    return users[0] if len(users) == 1 else None


class Lowering:
    """Walks a graph once, creating TFLite tensors on first use of each IR value."""

    def __init__(self, g, int8_io: bool = False, fp16_weights: bool = False) -> None:
        self.g = g
        self.int8_io = int8_io
        self.fp16_weights = fp16_weights
        self.io_values: dict[str, object] = {}  # graph I/O value -> the int8 value it uses
        self.b = ModelBuilder()
        self.tensors: dict[str, int] = {}
        self.shape_of: dict[str, tuple] = {}  # values whose TFLite shape differs (NHWC I/O)
        self.skip: set[int] = set()  # ids of nodes folded away
        self.input_perms: dict[str, list[int]] = {}
        self.output_perms: dict[str, list[int]] = {}
        self.input_perms_values: set[str] = set()  # values the input folds alias
        self.alias: dict[str, str] = {}  # folded Transpose output -> the value it equals
        self.differences: list[dict] = []  # where TFLite's arithmetic departs from edgec's

    # ------------------------------------------------------------------ tensors
    def _new(self, v) -> int:
        shape = self.shape_of.get(v.name, v.shape)
        q = v.quant
        quant = {}
        if q is not None:
            if q.per_axis:
                raise UnsupportedError(f"value '{v.name}': per-axis activations have no "
                                       "TFLite form")
            quant = {"scale": q.scale, "zero_point": q.zero_point}
        data = np.asarray(v.data) if v.is_const else None
        index = self.b.add_tensor(v.name, shape, v.dtype.value, data, **quant)
        self.tensors[v.name] = index
        return index

    def tensor(self, v) -> int:
        """The tensor of an IR value that was produced already (or a constant)."""
        if v.name in self.tensors:
            return self.tensors[v.name]
        if v.name in self.alias:
            self.tensors[v.name] = self.tensors[self.alias[v.name]]
            return self.tensors[v.name]
        if v.is_const:
            return self._new(v)
        raise UnsupportedError(f"value '{v.name}' is read before it is produced")

    def output_tensor(self, v) -> int:
        """A new tensor for a node's output value."""
        if v.name in self.tensors:
            return self.tensors[v.name]
        return self._new(v)

    def float_weight(self, name: str, data: np.ndarray) -> int:
        """A float32 weight tensor; with fp16 weights a float16 constant and the DEQUANTIZE
        that widens it at load time (TFLite's float16 quantisation)."""
        if not self.fp16_weights:
            return self.b.const(name, np.asarray(data, np.float32))
        half = self.b.const(f"{name}/fp16", np.asarray(data, np.float16))
        wide = self.b.add_tensor(name, data.shape, "float32")
        self.b.add_operator("DEQUANTIZE", [half], [wide], self.b.tfl.DequantizeOptionsT())
        return wide

    def activation_like(self, like: int, name: str, shape) -> int:
        """A new activation tensor with `like`'s element type and quantisation."""
        src = self.b.tensors[like]
        q = src.quantization
        quant = {} if q is None or q.scale is None else {"scale": q.scale,
                                                          "zero_point": q.zeroPoint}
        return self.b.add_tensor(name, shape, self.b.tensor_type(like), None, **quant)

    # ------------------------------------------------------------------ folds
    def fused_activation(self, node):
        """(TFLite fused activation, value the op writes) for a float node whose only reader
        is a Relu or Clip(0, 6) (that reader is then skipped)."""
        y = node.outputs[0]
        user = _only_user(y)
        if user is None or y in self.g.outputs or y.dtype.value != "float32":
            return "NONE", y
        if user.op == "Relu":
            kind = "RELU"
        elif user.op == "Clip":
            bounds = [v.data.item() if v is not None and v.is_const else None
                      for v in (list(user.inputs[1:]) + [None, None])[:2]]
            kind = {(0.0, 6.0): "RELU6", (-1.0, 1.0): "RELU_N1_TO_1"}.get(tuple(bounds))
            if kind is None:
                return "NONE", y
        else:
            return "NONE", y
        self.skip.add(id(user))
        return kind, user.outputs[0]

    def fold_input_transposes(self) -> None:
        """Graph input [-> QuantizeLinear] -> Transpose(0,2,3,1): NHWC input, no TRANSPOSE."""
        for v in self.g.inputs:
            chain, cur = [v], v
            node = _only_user(cur)
            while node is not None and node.op == "QuantizeLinear" and node.inputs[0] is cur:
                cur = node.outputs[0]
                chain.append(cur)
                node = _only_user(cur)
            if node is None or node.op != "Transpose" or _perm(node) != TO_NHWC \
                    or cur in self.g.outputs:
                continue
            for value in chain:
                self.shape_of[value.name] = tuple(value.shape[i] for i in TO_NHWC)
            self.skip.add(id(node))
            self.alias[node.outputs[0].name] = cur.name
            self.input_perms_values.add(node.outputs[0].name)
            self.input_perms[v.name] = TO_NHWC

    def fold_output_transposes(self) -> None:
        """Transpose(0,3,1,2) [-> DequantizeLinear] -> graph output: an NHWC output of the
        .tflite (metadata `output_permutations` says how to get the ONNX layout back)."""
        for v in self.g.outputs:
            chain, cur = [v], v
            node = cur.producer
            while node is not None and node.op == "DequantizeLinear" and \
                    _only_user(node.inputs[0]) is node:
                cur = node.inputs[0]
                chain.append(cur)
                node = cur.producer
            if node is None or node.op != "Transpose" or _perm(node) != TO_NCHW \
                    or len(cur.users) != (0 if cur is v else 1) or node.inputs[0].is_const \
                    or node.inputs[0].name in self.input_perms_values:
                continue
            self.skip.add(id(node))
            self.alias[cur.name] = node.inputs[0].name
            for value in chain[:-1]:
                self.shape_of[value.name] = tuple(value.shape[i] for i in TO_NHWC)
            self.output_perms[v.name] = TO_NCHW

    def fold_flatten_heads(self) -> dict:
        """Transpose(0,3,1,2) -> Flatten/Reshape [N, CHW] -> (Q)Gemm: permuted weights."""
        heads = {}
        for node in self.g.nodes:
            if node.op != "Transpose" or _perm(node) != TO_NCHW:
                continue
            flat = _only_user(node.outputs[0])
            if flat is None or flat.op not in ("Flatten", "Reshape") or \
                    len(flat.outputs[0].shape) != 2:
                continue
            gemm = _only_user(flat.outputs[0])
            if gemm is None or gemm.op not in ("Gemm", "QGemm") or not gemm.inputs[1].is_const \
                    or gemm.inputs[0] is not flat.outputs[0]:
                continue
            n, c, h, w = node.outputs[0].shape
            wts = np.asarray(gemm.inputs[1].data)
            if wts.shape[1] != c * h * w or (gemm.op == "Gemm" and not gemm.attrs.get("transB")):
                continue
            self.skip.add(id(node))
            heads[id(flat)] = node.inputs[0]
            heads[id(gemm)] = wts.reshape(wts.shape[0], c, h, w).transpose(0, 2, 3, 1) \
                .reshape(wts.shape[0], -1)
        return heads

    def fold_int8_io(self) -> None:
        """int8 model I/O: a graph input's QuantizeLinear and a graph output's
        DequantizeLinear (per tensor) leave the file; the int8 values become its I/O."""
        for v in self.g.inputs:
            node = _only_user(v)
            if node is not None and node.op == "QuantizeLinear" and node.inputs[0] is v and \
                    node.outputs[0].quant is not None and not node.outputs[0].quant.per_axis:
                self.skip.add(id(node))
                self.io_values[v.name] = node.outputs[0]
        for v in self.g.outputs:
            node = v.producer
            if node is not None and node.op == "DequantizeLinear" and \
                    node.inputs[0].quant is not None and not node.inputs[0].quant.per_axis and \
                    not node.inputs[0].is_const and len(v.users) == 0:
                self.skip.add(id(node))
                self.io_values[v.name] = node.inputs[0]

    # ------------------------------------------------------------------ driver
    def run(self, in_names: list[str], out_names: list[str]) -> ModelBuilder:
        """Lower every node; returns the filled ModelBuilder."""
        self.fold_input_transposes()
        self.fold_output_transposes()
        heads = self.fold_flatten_heads()
        if self.int8_io:
            self.fold_int8_io()
        for v in self.g.inputs:
            self._new(self.io_values.get(v.name, v))
        for node in self.g.nodes:
            if id(node) in self.skip:
                continue
            if id(node) in heads and node.op in ("Flatten", "Reshape"):
                src = heads[id(node)]
                reshape(self, self.tensor(src), self.output_tensor(node.outputs[0]),
                        node.outputs[0].shape, node.name)
                continue
            if id(node) in heads:
                lower_gemm(self, node, weights=heads[id(node)])
                continue
            fn = TABLE.get(node.op)
            if fn is None:
                raise UnsupportedError(f"node '{node.name}' ({node.op}) has no TFLite operator "
                                       "in edgec; compile it for a C target instead")
            fn(self, node)
        self.b.inputs = [self.tensors[self.io_values.get(v.name, v).name] for v in self.g.inputs]
        self.b.outputs = [self.tensor(self.io_values.get(v.name, v)) for v in self.g.outputs]
        self.b.io_names = (in_names, out_names)
        return self.b
