"""Tiny .tflite files built in tests with the TFLite schema object API (no TensorFlow).

`TinyModel` adds tensors and operators one at a time and packs a flatbuffer; the NNAPI and
GPU compatibility tests build one model per rule they want to trip.
"""

from __future__ import annotations

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

_TYPES = {"float32": schema.TensorType.FLOAT32, "int8": schema.TensorType.INT8,
          "uint8": schema.TensorType.UINT8, "int32": schema.TensorType.INT32,
          "int16": schema.TensorType.INT16, "float16": schema.TensorType.FLOAT16}
_NUMPY = {"float32": np.float32, "int8": np.int8, "uint8": np.uint8, "int32": np.int32,
          "int16": np.int16, "float16": np.float16}


class TinyModel:
    """One subgraph: tensors, constant buffers, operators; `pack()` gives the bytes."""

    def __init__(self) -> None:
        self.model = schema.ModelT()
        self.model.version = 3
        self.model.description = "edgec test model"
        self.model.buffers = [schema.BufferT()]  # buffer 0: the empty sentinel
        self.model.operatorCodes = []
        self.sub = schema.SubGraphT()
        self.sub.tensors, self.sub.operators = [], []
        self.sub.inputs, self.sub.outputs = [], []
        self.model.subgraphs = [self.sub]

    def tensor(self, name: str, shape, dtype: str = "float32", scale=None, zero_point=0,
               data=None, axis: int = 0) -> int:
        """Add a tensor (constant when `data` is given); `scale` a float or per-channel list."""
        t = schema.TensorT()
        t.name, t.shape, t.type = name, list(shape), _TYPES[dtype]
        t.buffer = 0
        if scale is not None:
            q = schema.QuantizationParametersT()
            scales = list(np.atleast_1d(np.asarray(scale, np.float32)))
            q.scale = [float(s) for s in scales]
            zps = np.broadcast_to(np.asarray(zero_point, np.int64), (len(scales),))
            q.zeroPoint = [int(z) for z in zps]
            q.quantizedDimension = axis
            t.quantization = q
        if data is not None:
            b = schema.BufferT()
            b.data = np.asarray(data, _NUMPY[dtype]).reshape(shape).tobytes()
            self.model.buffers.append(b)
            t.buffer = len(self.model.buffers) - 1
        self.sub.tensors.append(t)
        return len(self.sub.tensors) - 1

    def op(self, code: str, inputs, outputs, options=None, version: int = 1) -> int:
        """Add an operator (BuiltinOperator name) with its options object (…OptionsT)."""
        builtin = getattr(schema.BuiltinOperator, code)
        key = (builtin, version)
        codes = [(c.builtinCode, c.version) for c in self.model.operatorCodes]
        if key not in codes:
            c = schema.OperatorCodeT()
            c.builtinCode, c.version = builtin, version
            c.deprecatedBuiltinCode = min(builtin, 127)
            self.model.operatorCodes.append(c)
            codes.append(key)
        o = schema.OperatorT()
        o.opcodeIndex = codes.index(key)
        o.inputs, o.outputs = list(inputs), list(outputs)
        if options is not None:
            o.builtinOptionsType = getattr(schema.BuiltinOptions, type(options).__name__[:-1])
            o.builtinOptions = options
        self.sub.operators.append(o)
        return len(self.sub.operators) - 1

    def pack(self, inputs, outputs) -> bytes:
        """The model as .tflite bytes with these subgraph inputs and outputs."""
        self.sub.inputs, self.sub.outputs = list(inputs), list(outputs)
        b = flatbuffers.Builder(1024)
        b.Finish(self.model.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())


def options(kind: str, **fields):
    """A schema options object, e.g. options("Conv2DOptions", strideW=1, strideH=1)."""
    o = getattr(schema, kind + "T")()
    for k, v in fields.items():
        setattr(o, k, v)
    return o


def int8_conv(per_channel: bool = True, dilation: int = 1, bias: bool = True,
              in_scale: float = 0.05, w_scale: float = 0.02, out_scale: float = 0.1,
              dtype: str = "int8", depthwise: bool = False) -> bytes:
    """A quantised 1x8x8x4 -> 1x8x8x4 3x3 CONV_2D (or DEPTHWISE_CONV_2D), SAME padding."""
    m = TinyModel()
    zp = 0 if dtype == "int8" else 128
    rng = np.random.default_rng(0)
    x = m.tensor("x", [1, 8, 8, 4], dtype, in_scale, zp)
    w_shape = [1, 3, 3, 4] if depthwise else [4, 3, 3, 4]
    scales = [w_scale * (1 + i / 8) for i in range(4)] if per_channel else w_scale
    wdtype = "int8" if dtype == "int8" else "uint8"
    wdata = rng.integers(-100, 100, w_shape) + (0 if dtype == "int8" else 128)
    w = m.tensor("w", w_shape, wdtype, scales, 0 if dtype == "int8" else 128, wdata,
                 axis=3 if depthwise else 0)
    ins = [x, w]
    if bias:
        bscales = np.atleast_1d(np.float32(in_scale) * np.asarray(scales, np.float32))
        ins.append(m.tensor("b", [4], "int32", list(bscales), 0, np.arange(4) * 10))
    y = m.tensor("y", [1, 8, 8, 4], dtype, out_scale, zp)
    if depthwise:
        opts = options("DepthwiseConv2DOptions", padding=schema.Padding.SAME, strideW=1,
                       strideH=1, depthMultiplier=1, dilationWFactor=dilation,
                       dilationHFactor=dilation)
        m.op("DEPTHWISE_CONV_2D", ins, [y], opts, version=3 if per_channel else 1)
    else:
        opts = options("Conv2DOptions", padding=schema.Padding.SAME, strideW=1, strideH=1,
                       dilationWFactor=dilation, dilationHFactor=dilation)
        m.op("CONV_2D", ins, [y], opts, version=3 if dtype == "int8" else 1)
    return m.pack([x], [y])


def one_op(code: str, inputs: list[dict], outputs: list[dict], opts=None,
           version: int = 1) -> bytes:
    """A model of one operator; each tensor a dict of `TinyModel.tensor` arguments (shape,
    dtype, scale, zero_point, data); inputs without data become the model's inputs; None
    stands for an omitted optional input (-1)."""
    m = TinyModel()
    ins = [-1 if spec is None else m.tensor(f"in{i}", **spec) for i, spec in enumerate(inputs)]
    outs = [m.tensor(f"out{i}", **spec) for i, spec in enumerate(outputs)]
    m.op(code, ins, outs, opts, version)
    runtime = [t for t, spec in zip(ins, inputs) if spec is not None and "data" not in spec]
    return m.pack(runtime, outs)
