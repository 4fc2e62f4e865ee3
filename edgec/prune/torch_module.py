"""IR -> torch.nn.Module for the fp32 op set of imported models (distillation fine-tuning).

The module runs the IR's nodes in order with torch functions; constants that are ONNX
initializers of Conv/Gemm/MatMul weights and biases, BatchNorm gamma/beta and PRelu slopes
become trainable parameters (named by their ONNX names, so trained values are written back
into the same initializers); everything else is a buffer. BatchNorm runs with its stored
statistics (eval semantics, as in the exported model). The graph's batch size is free: a
Reshape whose first entry is the graph's batch takes the runtime batch instead.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgec.errors import UnsupportedError
from edgec.ir import Graph

TRAINABLE = {"Conv": (1, 2), "Gemm": (1, 2), "MatMul": (1,), "BatchNormalization": (1, 2),
             "PRelu": (1,), "ConvTranspose": (1, 2)}


def _pad_spatial(x, pads, value=0.0):
    n = len(pads) // 2
    if not any(pads):
        return x
    flat = []
    for i in reversed(range(n)):  # F.pad wants the last axis first
        flat += [pads[i], pads[i + n]]
    return F.pad(x, flat, value=value)


def _conv(node, x, w, b=None):
    a = node.attrs
    x = _pad_spatial(x, a["pads"])
    fn = {3: F.conv1d, 4: F.conv2d, 5: F.conv3d}[x.dim()]
    return fn(x, w, b, a["strides"], 0, a["dilations"], a["group"])


def _pool(node, x, kind):
    a = node.attrs
    nd = x.dim() - 2
    if a.get("ceil_mode"):
        raise UnsupportedError(f"torch module: {node.op} node '{node.name}' with ceil_mode")
    if kind == "max":
        x = _pad_spatial(x, a["pads"], float("-inf"))
        fn = {1: F.max_pool1d, 2: F.max_pool2d}[nd]
        return fn(x, a["kernel_shape"], a["strides"], 0, a.get("dilations") or 1)
    if a.get("count_include_pad") or not any(a["pads"]):
        x = _pad_spatial(x, a["pads"])
        fn = {1: F.avg_pool1d, 2: F.avg_pool2d}[nd]
        return fn(x, a["kernel_shape"], a["strides"])
    raise UnsupportedError(f"torch module: AveragePool node '{node.name}' excludes padding")


def _gemm(node, a_, b, c=None):
    at = node.attrs
    a_ = a_.t() if at["transA"] else a_
    b = b.t() if at["transB"] else b
    y = at["alpha"] * (a_ @ b)
    return y + at["beta"] * c if c is not None else y


def _reshape(node, x, batch: int):
    shape = list(node.attrs["shape"])
    if shape and shape[0] == batch and x.shape[0] != batch:
        shape[0] = x.shape[0]
    shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return torch.reshape(x, shape)


def _slice(node, x):
    idx = [slice(None)] * x.dim()
    a = node.attrs
    for s, e, ax, st in zip(a["starts"], a["ends"], a["axes"], a["steps"]):
        idx[ax] = slice(*slice(s, e, st).indices(x.shape[ax]))
    return x[tuple(idx)]


OPS = {
    "Conv": _conv,
    "BatchNormalization": lambda n, x, s, b, m, v: F.batch_norm(
        x, m, v, s, b, False, 0.0, n.attrs["epsilon"]),
    "Relu": lambda n, x: F.relu(x),
    "LeakyRelu": lambda n, x: F.leaky_relu(x, n.attrs["alpha"]),
    "PRelu": lambda n, x, s: torch.where(x < 0, x * s, x),
    "Clip": lambda n, x, *r: torch.clamp(x, n.attrs.get("min"), n.attrs.get("max")),
    "Sigmoid": lambda n, x: torch.sigmoid(x),
    "Tanh": lambda n, x: torch.tanh(x),
    "HardSwish": lambda n, x: F.hardswish(x),
    "HardSigmoid": lambda n, x: torch.clamp(n.attrs["alpha"] * x + n.attrs["beta"], 0, 1),
    "Add": lambda n, a, b: a + b, "Sub": lambda n, a, b: a - b,
    "Mul": lambda n, a, b: a * b, "Div": lambda n, a, b: a / b,
    "MaxPool": lambda n, x: _pool(n, x, "max"),
    "AveragePool": lambda n, x: _pool(n, x, "avg"),
    "GlobalAveragePool": lambda n, x: x.mean(dim=tuple(range(2, x.dim())), keepdim=True),
    "GlobalMaxPool": lambda n, x: x.amax(dim=tuple(range(2, x.dim())), keepdim=True),
    "Flatten": lambda n, x: torch.flatten(x, n.attrs["axis"]) if n.attrs["axis"] > 0
    else x.reshape(1, -1),
    "Gemm": _gemm,
    "MatMul": lambda n, a, b: a @ b,
    "Concat": lambda n, *xs: torch.cat(xs, n.attrs["axis"]),
    "Softmax": lambda n, x: torch.softmax(x, n.attrs["axes"][0]),
    "Identity": lambda n, x: x, "Dropout": lambda n, x, *r: x,
    "Transpose": lambda n, x: x.permute(*n.attrs["perm"]),
    "Pad": lambda n, x: _pad_spatial(x, n.attrs["pads"], n.attrs["value"])
    if n.attrs["mode"] == "constant" else None,
    "ReduceMean": lambda n, x: x.mean(dim=tuple(n.attrs["axes"]),
                                      keepdim=bool(n.attrs["keepdims"])),
    "Slice": _slice,
    "Split": lambda n, x: torch.split(x, n.attrs["split"], n.attrs["axis"]),
}


class IRModule(torch.nn.Module):
    """A torch module computing an imported fp32 IR graph (module docstring)."""

    def __init__(self, g: Graph, initializer_names: set[str]):
        super().__init__()
        unknown = sorted({n.op for n in g.nodes if n.op not in OPS and n.op != "Reshape"})
        if unknown:
            raise UnsupportedError(f"torch module: ops {', '.join(unknown)} are not converted "
                                   "yet (fine-tuning needs every op)")
        self.g = g
        self.batch = g.inputs[0].shape[0] if g.inputs and g.inputs[0].shape else 1
        self.param_names: dict[str, str] = {}
        self.params = torch.nn.ParameterDict()
        self.consts: dict[str, torch.Tensor] = {}
        for node in g.nodes:
            for i, v in enumerate(node.inputs):
                if v is None or not v.is_const or v.name in self.param_names or \
                        v.name in self.consts:
                    continue
                data = torch.from_numpy(v.data.copy())
                if i in TRAINABLE.get(node.op, ()) and v.name in initializer_names \
                        and data.is_floating_point():
                    key = f"p{len(self.param_names)}"
                    self.param_names[v.name] = key
                    self.params[key] = torch.nn.Parameter(data)
                else:
                    self.consts[v.name] = data

    def value(self, name: str) -> torch.Tensor:
        """A constant or parameter by its IR (ONNX) name."""
        key = self.param_names.get(name)
        return self.params[key] if key is not None else self.consts[name]

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """The graph's first output."""
        env = {v.name: x for v, x in zip(self.g.inputs, inputs)}
        for node in self.g.nodes:
            args = [None if v is None else (self.value(v.name) if v.is_const else env[v.name])
                    for v in node.inputs]
            while args and args[-1] is None:
                args.pop()
            if node.op == "Reshape":
                out = _reshape(node, args[0], self.batch)
            else:
                out = OPS[node.op](node, *args)
            if out is None:
                raise UnsupportedError(f"torch module: {node.op} node '{node.name}' with "
                                       "these attributes is not converted")
            outs = out if isinstance(out, (tuple, list)) else (out,)
            for v, o in zip(node.outputs, outs):
                env[v.name] = o
        return env[self.g.outputs[0].name]

    def trained(self) -> dict:
        """ONNX initializer name -> trained numpy array."""
        return {name: self.params[key].detach().numpy().copy()
                for name, key in self.param_names.items()}
