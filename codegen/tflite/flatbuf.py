"""Assemble a TFLite model (one subgraph) with the schema's object API and serialise it.

`ModelBuilder` collects tensors, operators and constant data while the lowering walks edgec's
IR; `finish()` packs everything into one flatbuffer:

- buffer 0 is the empty buffer every activation tensor points at (TFLite's convention);
- constant data is deduplicated by content (identical weights share one buffer) and every
  buffer's bytes start on a 16-byte boundary (the schema's `force_align: 16`, which the
  Python object API does not apply by itself), so runtimes can map weights in place;
- operator codes carry the version TFLite's rules give for the features used
  (codegen/tflite/versions.py);
- a SignatureDef ("serving_default") names the model's inputs and outputs with the ONNX names;
- metadata entries carry edgec's version and the calibration (JSON, `edgec_info`) and the
  minimum runtime version TFLite's converter records (`min_runtime_version`).
"""

from __future__ import annotations

import hashlib
import json

import flatbuffers
import numpy as np

from edgec.codegen.tflite.schema import load_schema
from edgec.codegen.tflite.versions import MIN_RUNTIME_VERSION, operator_version
from edgec.errors import UnsupportedError

BUFFER_ALIGNMENT = 16
MAX_FLATBUFFER_BYTES = 2**31 - 4096  # flatbuffers' 32-bit offsets, with room for the tables
FILE_IDENTIFIER = b"TFL3"
SCHEMA_VERSION = 3
SIGNATURE_KEY = "serving_default"

TENSOR_TYPES = {"float32": "FLOAT32", "float16": "FLOAT16", "int32": "INT32", "uint8": "UINT8",
                "int64": "INT64", "bool": "BOOL", "int16": "INT16", "int8": "INT8",
                "int4": "INT4"}


class ModelBuilder:
    """One subgraph under construction: tensors, operators, deduplicated constant buffers."""

    def __init__(self) -> None:
        self.tfl = load_schema()
        self.tensors: list = []
        self.operators: list = []
        self.opcodes: dict[tuple[int, int], int] = {}
        self.buffers: list[bytes] = [b""]
        self._buffer_index: dict[bytes, int] = {}
        self.inputs: list[int] = []
        self.outputs: list[int] = []
        self.io_names: tuple[list[str], list[str]] = ([], [])
        self.op_kinds: list[str] = []  # builtin name of each operator (report, tests)

    # ------------------------------------------------------------------ tensors
    def add_buffer(self, data: np.ndarray) -> int:
        """Index of a buffer holding `data` (little-endian, C order); shared when equal."""
        raw = np.ascontiguousarray(data).astype(data.dtype.newbyteorder("<")).tobytes()
        key = hashlib.sha256(raw).digest() + data.dtype.str.encode()
        if key not in self._buffer_index:
            self._buffer_index[key] = len(self.buffers)
            self.buffers.append(raw)
        return self._buffer_index[key]

    def add_tensor(self, name: str, shape, dtype: str, data: np.ndarray | None = None,
                   scale=None, zero_point=None, axis: int = 0) -> int:
        """Append a tensor; constants get a buffer; `scale`/`zero_point` make it quantised
        (per-channel along `axis` when they hold more than one value)."""
        t = self.tfl.TensorT()
        t.name = name
        t.shape = np.asarray(list(shape), dtype=np.int32)
        t.type = getattr(self.tfl.TensorType, TENSOR_TYPES[dtype])
        t.buffer = 0 if data is None else self.add_buffer(np.asarray(data, dtype=dtype))
        if scale is not None:
            q = self.tfl.QuantizationParametersT()
            q.scale = np.atleast_1d(np.asarray(scale, np.float32))
            zp = np.atleast_1d(np.asarray(0 if zero_point is None else zero_point, np.int64))
            q.zeroPoint = np.broadcast_to(zp, q.scale.shape).astype(np.int64).copy()
            q.quantizedDimension = int(axis)
            t.quantization = q
        self.tensors.append(t)
        return len(self.tensors) - 1

    def const(self, name: str, data: np.ndarray, **quant) -> int:
        """A constant tensor holding `data` with its own shape and element type."""
        data = np.asarray(data)
        return self.add_tensor(name, data.shape, data.dtype.name, data, **quant)

    def const_int4(self, name: str, values: np.ndarray, **quant) -> int:
        """A constant INT4 tensor of `values` (in [-8, 7]) with their shape: TFLite's packing,
        two values per byte in C order, the first in the low nibble, an odd count padded."""
        flat = np.asarray(values).reshape(-1).astype(np.int64) & 0xF
        pairs = np.concatenate([flat, np.zeros(flat.size & 1, np.int64)]).reshape(-1, 2)
        packed = (pairs[:, 0] | (pairs[:, 1] << 4)).astype(np.uint8)
        index = self.add_tensor(name, np.shape(values), "int8", None, **quant)
        t = self.tensors[index]
        t.type = self.tfl.TensorType.INT4
        t.buffer = self.add_buffer(packed)
        return index

    def tensor_type(self, index: int) -> str:
        """The numpy name of a tensor's element type."""
        code = self.tensors[index].type
        for np_name, tfl_name in TENSOR_TYPES.items():
            if getattr(self.tfl.TensorType, tfl_name) == code:
                return np_name
        raise KeyError(code)

    # ------------------------------------------------------------------ operators
    def add_operator(self, kind: str, inputs: list[int], outputs: list[int],
                     options=None, options_type: str | None = None, **features) -> None:
        """Append one builtin operator (`kind` as in BuiltinOperator, e.g. "CONV_2D").

        `options` is the op's *OptionsT object; `options_type` the BuiltinOptions member name
        when it differs from the object's class name minus its trailing T. `features` feed the
        version rules (versions.py) besides the input/output element types."""
        code = getattr(self.tfl.BuiltinOperator, kind)
        types_in = [self.tensor_type(i) if i >= 0 else "none" for i in inputs]
        types_out = [self.tensor_type(i) for i in outputs]
        version = operator_version(kind, types_in, types_out, **features)
        key = (code, version)
        if key not in self.opcodes:
            self.opcodes[key] = len(self.opcodes)
        op = self.tfl.OperatorT()
        op.opcodeIndex = self.opcodes[key]
        op.inputs = np.asarray(inputs, dtype=np.int32)
        op.outputs = np.asarray(outputs, dtype=np.int32)
        if options is not None:
            name = options_type or type(options).__name__[:-1]
            op.builtinOptionsType = getattr(self.tfl.BuiltinOptions, name)
            op.builtinOptions = options
        self.operators.append(op)
        self.op_kinds.append(kind)

    # ------------------------------------------------------------------ model
    def finish(self, metadata: dict, description: str) -> bytes:
        """Serialise the model: the .tflite file's bytes."""
        tfl = self.tfl
        model = tfl.ModelT()
        model.version = SCHEMA_VERSION
        model.description = description
        codes = []
        for (code, version), _ in sorted(self.opcodes.items(), key=lambda kv: kv[1]):
            oc = tfl.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code,
                                           tfl.BuiltinOperator.PLACEHOLDER_FOR_GREATER_OP_CODES)
            oc.version = version
            codes.append(oc)
        model.operatorCodes = codes
        sg = tfl.SubGraphT()
        sg.name = "main"
        sg.tensors = self.tensors
        sg.operators = self.operators
        sg.inputs = np.asarray(self.inputs, dtype=np.int32)
        sg.outputs = np.asarray(self.outputs, dtype=np.int32)
        model.subgraphs = [sg]
        runtime = MIN_RUNTIME_VERSION.encode()
        info = json.dumps(metadata, sort_keys=True).encode()
        meta_buffers = [self.add_buffer(np.frombuffer(runtime.ljust(16, b"\0"), np.uint8)),
                        self.add_buffer(np.frombuffer(info, np.uint8))]
        model.buffers = [_AlignedBuffer(raw) for raw in self.buffers]
        model.metadata = []
        for name, index in zip(("min_runtime_version", "edgec_info"), meta_buffers):
            m = tfl.MetadataT()
            m.name, m.buffer = name, index
            model.metadata.append(m)
        model.signatureDefs = [self._signature()]
        total = sum(len(b) + BUFFER_ALIGNMENT for b in self.buffers)
        if total >= MAX_FLATBUFFER_BYTES:
            raise UnsupportedError(f"the model's constants take {total:,} bytes; a TFLite "
                                   "flatbuffer holds less than 2 GiB")
        builder = flatbuffers.Builder(1024 + total)
        builder.Finish(model.Pack(builder), file_identifier=FILE_IDENTIFIER)
        return bytes(builder.Output())

    def _signature(self):
        tfl = self.tfl
        sig = tfl.SignatureDefT()
        sig.signatureKey = SIGNATURE_KEY
        sig.subgraphIndex = 0

        def maps(names, indices):
            out = []
            for name, index in zip(names, indices):
                m = tfl.TensorMapT()
                m.name, m.tensorIndex = name, index
                out.append(m)
            return out

        sig.inputs = maps(self.io_names[0], self.inputs)
        sig.outputs = maps(self.io_names[1], self.outputs)
        return sig


class _AlignedBuffer:
    """A Buffer table whose data vector starts on a BUFFER_ALIGNMENT boundary."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw

    def Pack(self, builder) -> int:  # noqa: N802 (the object API's method name)
        """Write the table (the data vector first, aligned) and return its offset."""
        tfl = load_schema()
        data = None
        if self.raw:
            builder.StartVector(1, len(self.raw), BUFFER_ALIGNMENT)
            builder.head = builder.head - len(self.raw)
            builder.Bytes[builder.head:builder.head + len(self.raw)] = self.raw
            data = builder.EndVector()
        tfl.BufferStart(builder)
        if data is not None:
            tfl.BufferAddData(builder, data)
        return tfl.BufferEnd(builder)


def read_model(source) -> object:
    """Parse a .tflite file (path or bytes) into the schema's object tree (a ModelT).

    model.subgraphs[0].operators[i].opcodeIndex indexes model.operatorCodes (builtinCode,
    version); tensors[j].buffer indexes model.buffers (data: uint8 numpy array or None);
    tensors[j].quantization holds scale / zeroPoint / quantizedDimension; model.metadata
    names buffers ("edgec_info": JSON); model.signatureDefs[0] maps I/O names to tensors."""
    tfl = load_schema()
    if not isinstance(source, (bytes, bytearray, memoryview)):
        with open(source, "rb") as f:
            source = f.read()
    raw = bytes(source)
    return tfl.ModelT.InitFromObj(tfl.Model.GetRootAs(raw, 0))


def builtin_name(code: int) -> str:
    """The BuiltinOperator member name of a builtin code (e.g. 3 -> "CONV_2D")."""
    tfl = load_schema()
    for name, value in vars(tfl.BuiltinOperator).items():
        if value == code and not name.startswith("_"):
            return name
    return str(code)
